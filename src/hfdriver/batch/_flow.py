"""Flow control for a batch: use the whole rate limit, and no more.

:class:`FlowControl` is the :class:`~hfdriver.transport.AttemptGate` of a batch: every attempt
of every row (retries included) asks it first. It holds three limits:

- **concurrency**, adaptive (AIMD): halved on a rate-limit signal, grown by one per window of
  successes up to ``max_concurrency``;
- **rate**: ``rpm`` (fixed, optional; a run told one starts at it) and a learned rate. Without
  a budget, a slow start finds the neighbourhood of the server's limit (the first refusal) and a
  climb back its edge (the second); the send times before two refusals, each after a pause (when
  a token bucket is full again), give the bucket's rate and burst, and the run paces just under
  that rate, probing slowly above it, so it settles instead of oscillating. Servers that fit no
  token bucket get simpler estimates: the rate sent before the refusal, with a margin;
- **tokens**: ``tpm`` (optional), spent by an estimate before sending and corrected by usage.

A ``Retry-After`` pauses every worker at once (not one request), and one congestion signal is
acted on once: attempts that were already in flight when the batch reacted do not count again.
"""

from __future__ import annotations

import asyncio
import bisect
import contextvars
import copy as copy_module
import logging
import math
import time
from collections import deque

import attrs

from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

__all__ = [
    "DEFAULT_MAX_PAUSE",
    "attempt_started",
    "FlowControl",
    "FlowStats",
    "RateLearner",
    "reset_row_attempt_counter",
    "row_attempt_counter",
]

logger = logging.getLogger("hfdriver")

_CONGESTION = frozenset({HuggingFaceErrorKind.RATE_LIMITED, HuggingFaceErrorKind.OVERLOADED})
_DEFAULT_PAUSE = 1.0  # a rate-limit answer without Retry-After pauses this long
DEFAULT_MAX_PAUSE = 60.0  # the longest shared pause: RetryPolicy().max_retry_after
_START_RATE = 16.0  # requests/s where the learned rate starts (slow start) when adaptive
_MEASURE = 0.5  # seconds of sends before a refused one that estimate the server's limit
_KEEP_SENT = 10.0  # seconds of send times kept: a refusal is measured against them
_SETTLE = 0.985  # the learned rate, as a share of a fitted limit (fits land within about 1%)

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

    def __init__(
        self, *, rpm: float | None = None, adaptive: bool = True, max_pause: float = DEFAULT_MAX_PAUSE
    ) -> None:
        self.rpm = rpm
        self.adaptive = adaptive
        self.max_pause = max_pause
        # Told a budget (rpm), the run starts at it; otherwise at a slow start's first rate.
        self.rate: float | None = _START_RATE if adaptive and not rpm else None
        self._ceiling: float | None = None
        self.paused_until = 0.0
        self.reacted_at = 0.0
        self._measure_from = time.monotonic()
        self._successes: deque[float] = deque()
        self._sent: list[float] = []  # when this episode's attempts were let go (_KEEP_SENT's worth)
        self._last_episode: list[tuple[float, int]] | None = None  # the last refusal's drain profile
        self._accepted = 0  # successes since the end of the last pause
        self._climbed = False  # the rate climbed fast since the last pause (the average is low)
        self.rate_limited = 0
        self.pauses = 0
        self.paused_seconds = 0.0

    def shifted(self, delta: float) -> RateLearner:
        """A copy whose clock readings are moved by ``delta`` seconds: this state, adopted by a
        process whose monotonic clock reads ``delta`` more (another machine of a cluster)."""
        copy = copy_module.copy(self)
        copy.paused_until = self.paused_until + delta
        copy.reacted_at = self.reacted_at + delta
        copy._measure_from = self._measure_from + delta
        copy._successes = deque(t + delta for t in self._successes)
        copy._sent = [t + delta for t in self._sent]
        return copy

    def effective_rate(self) -> float | None:
        fixed = self.rpm / 60.0 if self.rpm else None
        learned = self.rate
        if fixed is None:
            return learned
        return fixed if learned is None else min(fixed, learned)

    def on_sent(self, now: float) -> None:
        """An attempt was let go (send times are what refusals are measured against)."""
        sent = self._sent
        sent.append(now)
        if sent[0] < now - _KEEP_SENT:  # trim the old half at once (amortised)
            cut = bisect.bisect_left(sent, now - _KEEP_SENT)
            if 2 * cut >= len(sent):
                del sent[:cut]

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
        # (x50 a second) before any ceiling is known, 10%/s well under it, 1%/s closer, and
        # 0.02%/s at it (a probe: a limit that was raised is found, a steady one costs a 429
        # every few minutes).
        ceiling = self._ceiling
        if ceiling is None:
            step = 4.0
        elif rate < 0.97 * ceiling:
            step = 0.1 if rate < 0.9 * ceiling else 0.01
            self._climbed = True
        else:
            step = 0.0002
            if rate > ceiling:  # past the old ceiling without a 429: the limit was higher
                self._ceiling = rate
        # Never run far ahead of what is actually sent (latency or concurrency may bind instead).
        sent = len(successes) / _MEASURE
        if rate < max(3.0 * sent, _START_RATE):
            self.rate = rate + step * count

    def on_congestion(
        self,
        now: float,
        kind: HuggingFaceErrorKind,
        retry_after: float | None,
        started: float | None = None,
    ) -> None:
        """A rate-limit answer to an attempt let go at ``started`` (after the last reaction):
        pause, and learn."""
        self.reacted_at = now
        pause = (
            retry_after
            if retry_after is not None and math.isfinite(retry_after) and retry_after >= 0
            else _DEFAULT_PAUSE
        )
        # A server asking for a day (Retry-After: 86400) must not stop the whole batch for a day:
        # the shared pause is capped where the retry policy stops waiting (that row fails as an
        # over-limit 429, and a rerun sends it).
        pause = min(pause, self.max_pause)
        if now + pause > self.paused_until:
            self.paused_until = now + pause
            self.pauses += 1
            self.paused_seconds += pause
        if not self.adaptive:
            return
        slow_start = self.rate is not None and self._ceiling is None
        current = self.rate if self.rate is not None else self.effective_rate() or _START_RATE
        edge = min(now, started) if started is not None else now
        since = edge - self._measure_from  # how long this episode (since the last pause) sent
        sent = self._sent
        upto = bisect.bisect_left(sent, edge)  # the sends before the refused one: all accepted

        def sent_between(a: float, b: float) -> int:
            return bisect.bisect_left(sent, b, 0, upto) - bisect.bisect_left(sent, a, 0, upto)

        # What was sent in the half second before the refusal (or longer at a slow rate).
        span = min(_MEASURE, since)
        recent = sent_between(edge - span, edge) if span > 0 else 0
        if recent < 8:
            span = min(_KEEP_SENT, since)
            recent = sent_between(edge - span, edge) if span > 0 else 0
        short = recent / span if span >= _MEASURE / 2 and recent >= 5 else None
        episode = _drain_profile(sent[:upto], edge)
        fitted = _fit_token_bucket(self._last_episode, episode) if self._last_episode else None
        self._last_episode = episode
        ceiling = self._ceiling
        if fitted is not None and (short is None or fitted <= 1.05 * short):
            # Two refusals, each after the server's bucket was full (the start, a pause): the
            # rate and burst that explain both. The most precise figure there is.
            limit = fitted
            self.rate = max(0.5, min(_SETTLE * limit, current))
            self._ceiling = limit
        elif slow_start:
            # Slow start (x50 a second): what went out in the last half second is about the
            # limit (it under-counts the ramp, over-counts the burst; too few sends: half the
            # rate). Climb back quickly, and no longer x50, to the rate that was refused.
            estimate = short if short is not None else current / 2
            self.rate = max(0.5, 0.9 * min(estimate, current))
            self._ceiling = max(estimate, current)
        elif (
            ceiling is not None
            and self._climbed
            and since >= 2.5
            and sent_between(edge - 2.0, edge - 1.0) >= 10
        ):
            # Climbing since the pause: the rate a second and a half before the refusal had not
            # yet used up the server's burst; that is the limit, or just under it.
            earlier = float(sent_between(edge - 2.0, edge - 1.0))
            self.rate = max(0.5, min(earlier, current, 0.97 * (short or current)))
            self._ceiling = self.rate
        elif not self._climbed and since >= 2.0 and self._accepted >= 10:
            # Creeping at a steady rate since the pause: the average is the limit, plus the
            # server's burst spread over `since`.
            estimate = self._accepted / since
            self.rate = max(0.5, 0.97 * min(estimate, current))
            self._ceiling = estimate
        elif short is not None:
            self.rate = max(0.5, 0.9 * min(short, current))  # a short window over-counts the burst
            self._ceiling = short
        else:  # too few sends to measure: halve
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
        sent.clear()
        self._accepted = 0
        self._climbed = False


def _drain_profile(sends: list[float], edge: float) -> list[tuple[float, int]]:
    """The upper convex hull of (seconds before ``edge``, sends in them) over an episode's sends.

    A token bucket refilling at ``rate`` that let every one of these sends through and refused
    the one at ``edge`` must have held ``max(n - rate * d for d, n in hull)`` tokens of burst at
    the start of the episode (when it was full): :func:`_burst_needed`.
    """
    hull: list[tuple[float, int]] = [(0.0, 0)]
    for count, t in enumerate(reversed(sends), 1):
        point = (edge - t, count)
        while len(hull) >= 2:
            (x0, y0), (x1, y1) = hull[-2], hull[-1]
            if (x1 - x0) * (point[1] - y0) - (y1 - y0) * (point[0] - x0) >= 0:
                hull.pop()  # not on the upper hull
            else:
                break
        hull.append(point)
    return hull


def _burst_needed(hull: list[tuple[float, int]], rate: float) -> tuple[float, float]:
    """The burst, and how long the drain before the refusal lasted, for a bucket at ``rate``."""
    best, lasted = 0.0, 0.0
    for seconds, count in hull:
        excess = count - rate * seconds
        if excess > best:
            best, lasted = excess, seconds
    return best, lasted


def _fit_token_bucket(first: list[tuple[float, int]], second: list[tuple[float, int]]) -> float | None:
    """The rate of the token bucket (same rate, same burst) that explains two refusals, each at
    the end of an episode that began with the bucket full; ``None`` when the two do not pin it
    down (a server that is no token bucket, too few sends, drains of the same shape)."""
    if len(first) < 3 or len(second) < 3:
        return None

    def gap(rate: float) -> float:
        return _burst_needed(second, rate)[0] - _burst_needed(first, rate)[0]

    # Between a quarter of the slower episode's average rate and the fastest any sends went.
    top = max(n / d for d, n in first + second if d > 0)
    low, high = min(first[-1][1] / first[-1][0], second[-1][1] / second[-1][0]) / 4.0, top
    g_low, g_high = gap(low), gap(high)
    if g_low == 0 or g_low * g_high > 0:
        return None
    for _ in range(40):
        middle = (low + high) / 2
        g_mid = gap(middle)
        if (g_mid > 0) == (g_low > 0):
            low, g_low = middle, g_mid
        else:
            high = middle
    rate = (low + high) / 2
    burst, lasted_second = _burst_needed(second, rate)
    _, lasted_first = _burst_needed(first, rate)
    # A burst of at least one request, and drains different enough to tell rate from burst.
    if burst < 1.0 or abs(lasted_second - lasted_first) < 0.2:
        return None
    return rate


class FlowControl:
    """Adaptive concurrency + rate pacing + a global pause; see the module docstring.

    Args:
        max_concurrency: attempts in flight at most.
        initial_concurrency: where the adaptive limit starts (defaults to ``max_concurrency``).
        rpm: requests per minute at most (fixed budget).
        tpm: tokens per minute at most (prompt estimate + ``max_tokens``, corrected by usage).
        adaptive: learn a rate from rate-limit answers (on by default).
        max_pause: the longest pause one ``Retry-After`` imposes on every row (the retry
            policy's ``max_retry_after``; a server asking for longer fails that row instead).
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
    ) -> None:
        if isinstance(max_pause, bool) or not isinstance(max_pause, (int, float)) or not max_pause >= 0:
            raise HuggingFaceError(
                HuggingFaceErrorKind.CONFIG, f"max_pause must be a number >= 0, got {max_pause!r}"
            )
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
        self.learner = RateLearner(rpm=rpm, adaptive=adaptive, max_pause=float(max_pause))
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
        started = time.monotonic()
        _attempt_started.set(started)
        if self.adaptive:  # send times serve only the learning (a cluster's worker gate learns nothing)
            self.learner.on_sent(started)
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
                self._advance(now, rate)
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
                    if rate:
                        self._advance(now, rate)
                    else:
                        self._next_send = now
                    break
        self._schedule()

    def _advance(self, now: float, rate: float) -> None:
        """An attempt leaves at ``now``: when may the next one go? A timer that fired late (by less
        than an interval) keeps the schedule, so the rate holds; anything later (an idle spell,
        a pause) starts afresh, one interval on: never two at once, which a limiter without a
        burst allowance would refuse."""
        interval = 1.0 / rate
        following = self._next_send + interval
        self._next_send = following if following > now else now + interval

    def _effective_rate(self) -> float | None:
        return self.learner.effective_rate()

    def after_attempt(self, error: BaseException | None) -> None:
        self._release()
        now = time.monotonic()
        if error is None:
            self._on_success(now)
        elif isinstance(error, HuggingFaceError) and error.kind in _CONGESTION:
            self.learner.rate_limited += 1
            started = _attempt_started.get()
            if started >= self.learner.reacted_at:  # not already acted on
                self._on_congestion(now, error.kind, error.retry_after, started)

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

    def _on_congestion(
        self, now: float, kind: HuggingFaceErrorKind, retry_after: float | None, started: float
    ) -> None:
        if kind is HuggingFaceErrorKind.OVERLOADED:
            self.limit = max(1.0, self.limit / 2)  # a capacity signal: fewer at once
        self.learner.on_congestion(now, kind, retry_after, started)
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


def attempt_started() -> float:
    """When the attempt in progress in this context was let go (``time.monotonic()``)."""
    return _attempt_started.get()


def row_attempt_counter() -> tuple[list[int], contextvars.Token[list[int] | None]]:
    """A fresh per-row attempt counter for the current context (one per row task)."""
    counter = [0]
    return counter, _row_attempts.set(counter)


def reset_row_attempt_counter(token: contextvars.Token[list[int] | None]) -> None:
    _row_attempts.reset(token)
