"""Flow control for a batch: use the whole rate limit, and no more.

:class:`FlowControl` is the :class:`~hfdriver.transport.AttemptGate` of a batch: every attempt
of every row (retries included) asks it first. It holds:

- **concurrency**, adaptive (AIMD): halved on an overload signal, grown by one per window of
  successes up to ``max_concurrency``;
- **tokens**: ``tpm`` (optional), spent by an estimate before sending and corrected by usage;
- **a pacer** (:mod:`hfdriver.batch._pacer`) that decides when each attempt leaves — ``rpm`` and
  the rate learned from the server's rate-limit answers (:mod:`hfdriver.batch._learner`), a
  ``Retry-After`` pausing every worker at once — in this process, or the cluster's one limit.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import deque

import attrs

from hfdriver.batch._learner import DEFAULT_MAX_PAUSE, RateLearner
from hfdriver.batch._pacer import LocalPacer, Pacer
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

__all__ = [
    "DEFAULT_MAX_PAUSE",
    "FATAL_KINDS",
    "FlowControl",
    "FlowStats",
    "RateLearner",
    "attempt_started",
    "reset_row_attempt_counter",
    "row_attempt_counter",
]

_CONGESTION = frozenset({HuggingFaceErrorKind.RATE_LIMITED, HuggingFaceErrorKind.OVERLOADED})
FATAL_KINDS = frozenset(
    {HuggingFaceErrorKind.AUTHENTICATION, HuggingFaceErrorKind.PAYMENT_REQUIRED, HuggingFaceErrorKind.CONFIG}
)
"""Failures that would hit every row: the batch stops early on the first one."""

_attempt_started: contextvars.ContextVar[float] = contextvars.ContextVar(
    "hfdriver_batch_attempt", default=0.0
)
_row_attempts: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "hfdriver_batch_row_attempts", default=None
)


@attrs.frozen(slots=True, kw_only=True)
class FlowStats:
    """Where flow control stands (for progress and the summary)."""

    concurrency: float
    in_flight: int
    rate: float | None
    """The learned requests/s cap (``None`` until the server first pushed back)."""
    rate_limited: int
    """RATE_LIMITED / OVERLOADED answers received (each retried attempt counts)."""
    pauses: int
    """Global pauses taken."""
    paused_seconds: float


def _check(name: str, value: float | None, *, zero: bool = False) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (value >= 0 if zero else value > 0)
    ):
        raise HuggingFaceError(
            HuggingFaceErrorKind.CONFIG, f"{name} must be a number {'>=' if zero else '>'} 0, got {value!r}"
        )


class FlowControl:
    """Adaptive concurrency, a token budget and a pacer; see the module docstring.

    Args:
        max_concurrency: attempts in flight at most.
        initial_concurrency: where the adaptive limit starts (defaults to ``max_concurrency``).
        rpm: requests per minute at most (fixed budget).
        tpm: tokens per minute at most (prompt estimate + ``max_tokens``, corrected by usage).
        adaptive: learn a rate from rate-limit answers (on by default).
        max_pause: the longest pause one ``Retry-After`` imposes on every row (the retry
            policy's ``max_retry_after``; a server asking for longer fails that row instead).
        pacer: who decides when attempts leave (default: a :class:`LocalPacer` with ``rpm``,
            ``adaptive`` and ``max_pause``); the Ray engine's workers pass the cluster's.
    """

    def __init__(
        self,
        *,
        max_concurrency: int = 64,
        initial_concurrency: int | None = None,
        rpm: float | None = None,
        tpm: float | None = None,
        adaptive: bool = True,
        max_pause: float = DEFAULT_MAX_PAUSE,
        pacer: Pacer | None = None,
    ) -> None:
        _check("max_pause", max_pause, zero=True)
        for name, value in (("max_concurrency", max_concurrency), ("rpm", rpm), ("tpm", tpm)):
            _check(name, value)
        self.max_concurrency = int(max_concurrency)
        self.limit = float(min(initial_concurrency or max_concurrency, max_concurrency))
        self.rpm = rpm
        self.tpm = tpm
        self.adaptive = adaptive
        self.in_flight = 0
        self.pacer: Pacer = pacer or LocalPacer(rpm=rpm, adaptive=adaptive, max_pause=max_pause)
        self._waiters: deque[asyncio.Future[None]] = deque()  # for a concurrency slot
        # The token budget holds at most 10 seconds' worth: no minute-sized burst at the start.
        self._token_cap = float(tpm) / 6.0 if tpm else 0.0
        self._tokens = self._token_cap
        self._tokens_at = time.monotonic()

    @property
    def learner(self) -> RateLearner:
        return self.pacer.learner

    @property
    def rate(self) -> float | None:
        """The learned requests/s cap (``None`` when not adaptive)."""
        return self.learner.rate

    @property
    def rate_limited(self) -> int:
        return self.learner.rate_limited

    @property
    def pauses(self) -> int:
        return self.learner.pauses

    @property
    def paused_seconds(self) -> float:
        return self.learner.paused_seconds

    async def wait_for_turn(self) -> None:
        """The pacer's turn (pause, rate), without a concurrency slot."""
        await self.pacer.turn()

    # ------------------------------------------------------------------ the AttemptGate protocol
    async def before_attempt(self) -> None:
        while self.in_flight >= max(1, int(self.limit)):
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif not waiter.cancelled():
                    self._wake()  # woken and cancelled at once: pass the turn on
                raise
        self.in_flight += 1
        try:
            await self.pacer.turn()
        except BaseException:
            self._release()
            raise
        _attempt_started.set(time.monotonic())
        counter = _row_attempts.get()
        if counter is not None:
            counter[0] += 1

    def after_attempt(self, error: BaseException | None) -> None:
        self._release()
        if error is None:
            if self.limit < self.max_concurrency:
                self.limit = min(float(self.max_concurrency), self.limit + 1.0 / max(self.limit, 1.0))
                if self._waiters:
                    self._wake()
            self.pacer.succeeded(time.monotonic())
        elif isinstance(error, HuggingFaceError):
            if error.kind in _CONGESTION:
                if error.kind is HuggingFaceErrorKind.OVERLOADED:
                    self.limit = max(1.0, self.limit / 2)  # a capacity signal: fewer at once
                self.pacer.refused(error.kind, error.retry_after, _attempt_started.get())
            elif error.kind in FATAL_KINDS:
                self.pacer.stop(error.kind, error.message)

    def stated_rate(self, limit: float) -> None:
        """The transport saw an answer state the server's limit (requests/s): the pacer adopts it."""
        self.pacer.stated(limit)

    def _release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        free = max(1, int(self.limit)) - self.in_flight
        waiters = self._waiters
        while free > 0 and waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1

    # ------------------------------------------------------------------ tokens per minute
    async def spend_tokens(self, estimate: int) -> None:
        """Wait until ``estimate`` tokens fit in the per-minute budget, then spend them."""
        tpm = self.tpm
        if not tpm:
            return
        cap = self._token_cap
        need = min(float(estimate), cap)  # a request larger than the bucket waits for a full one
        while True:
            now = time.monotonic()
            self._tokens = min(cap, self._tokens + (now - self._tokens_at) * tpm / 60.0)
            self._tokens_at = now
            if self._tokens >= need:
                self._tokens -= need
                return
            await asyncio.sleep((need - self._tokens) * 60.0 / tpm)

    def refund_tokens(self, estimate: int, used: int) -> None:
        """Correct an estimate once the answer's usage is known."""
        if self.tpm:
            self._tokens = min(self._token_cap, self._tokens + (estimate - used))

    # ------------------------------------------------------------------ reporting
    def stats(self) -> FlowStats:
        return FlowStats(
            concurrency=self.limit,
            in_flight=self.in_flight,
            rate=self.rate,
            rate_limited=self.rate_limited,
            pauses=self.pauses,
            paused_seconds=self.paused_seconds,
        )


def attempt_started() -> float:
    """When the attempt in progress in this context was let go (``time.monotonic()``)."""
    return _attempt_started.get()


def row_attempt_counter() -> tuple[list[int], contextvars.Token[list[int] | None]]:
    """A fresh per-row attempt counter for the current context (one per row task)."""
    counter = [0]
    return counter, _row_attempts.set(counter)


def reset_row_attempt_counter(token: contextvars.Token[list[int] | None]) -> None:
    _row_attempts.reset(token)
