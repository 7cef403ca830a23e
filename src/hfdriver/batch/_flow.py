"""Flow control for a batch: use the whole rate limit, and no more.

:class:`FlowControl` is the :class:`~hfdriver.transport.AttemptGate` of a batch: every attempt
of every row (retries included) asks it first. It holds three limits:

- **concurrency**, adaptive (AIMD): halved on a rate-limit signal, grown by one per window of
  successes up to ``max_concurrency``;
- **rate**: ``rpm`` (fixed, optional) and a learned rate. The first ``RATE_LIMITED`` /
  ``OVERLOADED`` answer sets the learned rate just under what the server accepted over the last
  seconds; from there it grows slowly (fast while well under the last ceiling, slowly near it),
  so a run settles just under the server's limit instead of oscillating across it;
- **tokens**: ``tpm`` (optional), spent by an estimate before sending and corrected by usage.

A ``Retry-After`` pauses every worker at once (not one request), and one congestion signal is
acted on once: attempts that were already in flight when the batch reacted do not count again.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections import deque

import attrs

from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

__all__ = ["FlowControl", "FlowStats", "RateLearner", "reset_row_attempt_counter", "row_attempt_counter"]

logger = logging.getLogger("hfdriver")

_CONGESTION = frozenset({HuggingFaceErrorKind.RATE_LIMITED, HuggingFaceErrorKind.OVERLOADED})
_DEFAULT_PAUSE = 1.0  # a rate-limit answer without Retry-After pauses this long
_START_RATE = 16.0
_MEASURE = 0.5  # seconds of successes that estimate the server's limit at a 429  # requests/s where the learned rate starts (slow start) when adaptive

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


class RateLearner:
    """The rate a server accepts, learned from its rate-limit answers (no I/O, no clock of its own).

    Shared by :class:`FlowControl` (one process) and the Ray engine's limit actor (a cluster).
    """

    def __init__(self, *, rpm: float | None = None, adaptive: bool = True) -> None:
        self.rpm = rpm
        self.adaptive = adaptive
        self.rate: float | None = _START_RATE if adaptive else None
        self._ceiling: float | None = None
        self.paused_until = 0.0
        self.reacted_at = 0.0
        self._measure_from = time.monotonic()
        self._successes: deque[float] = deque()
        self._accepted = 0  # successes since the end of the last pause
        self._climbed = False  # the rate climbed fast since the last pause (the average is low)
        self.rate_limited = 0
        self.pauses = 0
        self.paused_seconds = 0.0

    def effective_rate(self) -> float | None:
        fixed = self.rpm / 60.0 if self.rpm else None
        learned = self.rate
        if fixed is None:
            return learned
        return fixed if learned is None else min(fixed, learned)

    def on_success(self, now: float, count: int = 1) -> None:
        """``count`` answers arrived (a shared limit gets them in batches)."""
        self._accepted += count
        successes = self._successes
        successes.extend([now] * count)
        while successes and successes[0] < now - _MEASURE:
            successes.popleft()
        rate = self.rate
        if rate is None or not self.adaptive:
            return
        # Per success, so per second the rate grows by this fraction of itself: slow start
        # (x50 a second) before any ceiling is known, 10%/s well under it, 0.1%/s near it.
        ceiling = self._ceiling
        if ceiling is None:
            step = 4.0
        elif rate < 0.9 * ceiling:
            step = 0.1
            self._climbed = True
        else:
            step = 0.001
            if rate > ceiling:  # past the old ceiling without a 429: the limit was higher
                self._ceiling = rate
        # Never run far ahead of what is actually sent (latency or concurrency may bind instead).
        sent = len(successes) / _MEASURE
        if rate < max(3.0 * sent, _START_RATE):
            self.rate = rate + step * count

    def on_congestion(self, now: float, kind: HuggingFaceErrorKind, retry_after: float | None) -> None:
        """A rate-limit answer to an attempt started after the last reaction: pause, and learn."""
        self.reacted_at = now
        pause = retry_after if retry_after is not None else _DEFAULT_PAUSE
        if now + pause > self.paused_until:
            self.paused_until = now + pause
            self.pauses += 1
            self.paused_seconds += pause
        if not self.adaptive:
            return
        # What the server accepted is its limit, plus its burst spread over the time measured:
        # since the last pause when that is long (a precise figure), else the last half second
        # (the ramp of slow start, or events close together).
        current = self.rate if self.rate is not None else _START_RATE
        since = now - self._measure_from
        recent_span = min(_MEASURE, since)
        recent = sum(1 for t in self._successes if t >= now - recent_span) if recent_span > 0 else 0
        estimate: float | None = None
        margin = 0.97
        short = recent / recent_span if recent_span >= _MEASURE / 2 and recent >= 5 else None
        if self._ceiling is not None and since >= 2.0 and self._accepted >= 10 and not self._climbed:
            # Creeping at a steady rate since the pause: the average is the limit (plus the
            # server's burst spread over `since`).
            estimate = self._accepted / since
        elif short is not None:
            estimate = short
            margin = 0.9  # a short window over-counts by the server's burst
        if estimate is not None:
            self.rate = max(0.5, margin * min(estimate, current))
            # A short window during slow start under-counts (the rate was still climbing): keep
            # the rate that was refused as the ceiling, so the rate climbs back quickly to it.
            self._ceiling = estimate if margin > 0.9 or self._ceiling is not None else max(estimate, current)
        else:
            self.rate = max(0.5, current / 2)
        logger.debug(
            "batch: %s, pausing %.2fs; rate now %.1f/s (server limit about %s/s)",
            kind.name,
            pause,
            self.rate,
            f"{self._ceiling:.1f}" if self._ceiling is not None else "?",
        )
        self._measure_from = now + pause  # measure again from the end of the pause
        self._successes.clear()
        self._accepted = 0
        self._climbed = False


class FlowControl:
    """Adaptive concurrency + rate pacing + a global pause; see the module docstring.

    Args:
        max_concurrency: attempts in flight at most.
        initial_concurrency: where the adaptive limit starts (defaults to ``max_concurrency``).
        rpm: requests per minute at most (fixed budget).
        tpm: tokens per minute at most (prompt estimate + ``max_tokens``, corrected by usage).
        adaptive: learn a rate from rate-limit answers (on by default).
    """

    def __init__(
        self,
        *,
        max_concurrency: int = 64,
        initial_concurrency: int | None = None,
        rpm: float | None = None,
        tpm: float | None = None,
        adaptive: bool = True,
    ) -> None:
        for name, value in (("max_concurrency", max_concurrency), ("rpm", rpm), ("tpm", tpm)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0
            ):
                raise HuggingFaceError(
                    HuggingFaceErrorKind.CONFIG, f"{name} must be a number > 0, got {value!r}"
                )
        self.max_concurrency = int(max_concurrency)
        self.limit = float(min(initial_concurrency or max_concurrency, max_concurrency))
        self.rpm = rpm
        self.tpm = tpm
        self.adaptive = adaptive
        self.in_flight = 0
        self.learner = RateLearner(rpm=rpm, adaptive=adaptive)
        self._next_send = 0.0
        self._waiters: deque[asyncio.Future[None]] = deque()  # for a concurrency slot
        self._queue: deque[asyncio.Future[None]] = deque()  # for a send time
        self._timer: asyncio.TimerHandle | None = None
        # The token budget holds at most 10 seconds' worth: no minute-sized burst at the start.
        self._token_cap = float(tpm) / 6.0 if tpm else 0.0
        self._tokens = self._token_cap
        self._tokens_at = time.monotonic()

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

    @property
    def _paused_until(self) -> float:
        return self.learner.paused_until

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
            await self.wait_for_turn()
        except BaseException:
            self._release()
            raise
        _attempt_started.set(time.monotonic())
        counter = _row_attempts.get()
        if counter is not None:
            counter[0] += 1

    async def wait_for_turn(self) -> None:
        """The global pause, then the rate pacer: attempts leave one by one, 1/rate apart, in
        arrival order. Nothing is booked ahead, so a changed rate or pause applies at once."""
        now = time.monotonic()
        if not self._queue and now >= self._paused_until:
            rate = self._effective_rate()
            if rate is None:
                return
            if now >= self._next_send:
                # At most one interval of credit: no burst after an idle spell.
                self._next_send = max(self._next_send, now - 1.0 / rate) + 1.0 / rate
                return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(waiter)
        self._schedule()
        try:
            await waiter
        except BaseException:
            if waiter in self._queue:
                self._queue.remove(waiter)
            elif not waiter.cancelled():
                self._next_send = time.monotonic()  # its turn was given and not used
            raise

    def _schedule(self) -> None:
        if self._timer is not None or not self._queue:
            return
        when = max(self._next_send, self._paused_until)
        self._timer = asyncio.get_running_loop().call_later(
            max(0.0, when - time.monotonic()), self._release_one
        )

    def _release_one(self) -> None:
        self._timer = None
        now = time.monotonic()
        if now >= self._paused_until and now >= self._next_send:
            while self._queue:
                waiter = self._queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    rate = self._effective_rate()
                    self._next_send = max(self._next_send, now - 1.0 / rate) + 1.0 / rate if rate else now
                    break
        self._schedule()

    def _effective_rate(self) -> float | None:
        return self.learner.effective_rate()

    def after_attempt(self, error: BaseException | None) -> None:
        self._release()
        now = time.monotonic()
        if error is None:
            self._on_success(now)
        elif isinstance(error, HuggingFaceError) and error.kind in _CONGESTION:
            self.learner.rate_limited += 1
            if _attempt_started.get() >= self.learner.reacted_at:  # not already acted on
                self._on_congestion(now, error.kind, error.retry_after)

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

    def _on_success(self, now: float) -> None:
        if self.limit < self.max_concurrency:
            self.limit = min(float(self.max_concurrency), self.limit + 1.0 / max(self.limit, 1.0))
            if self._waiters:
                self._wake()
        self.learner.on_success(now)

    def _on_congestion(self, now: float, kind: HuggingFaceErrorKind, retry_after: float | None) -> None:
        if kind is HuggingFaceErrorKind.OVERLOADED:
            self.limit = max(1.0, self.limit / 2)  # a capacity signal: fewer at once
        self.learner.on_congestion(now, kind, retry_after)
        self.reschedule()

    def reschedule(self) -> None:
        """Re-arm the pacer after the rate or a pause changed."""
        self._schedule()

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


def row_attempt_counter() -> tuple[list[int], contextvars.Token[list[int] | None]]:
    """A fresh per-row attempt counter for the current context (one per row task)."""
    counter = [0]
    return counter, _row_attempts.set(counter)


def reset_row_attempt_counter(token: contextvars.Token[list[int] | None]) -> None:
    _row_attempts.reset(token)
