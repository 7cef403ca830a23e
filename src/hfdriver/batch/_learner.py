"""The rate a server accepts, learned from its rate-limit answers: pure state, no I/O, no clock.

:class:`RateLearner` is what every pacer of a batch learns with — one process's
(:class:`~hfdriver.batch._pacer.LocalPacer`) and the Ray engine's limit actor. Without a budget it
starts slow and climbs fast until the first refusal; the send times before two refusals, each at
the end of an episode that began with the server's token bucket full (the start, a pause), give
the bucket's rate and burst (:func:`fit_token_bucket`), and the rate settles just under it.
Servers that fit no bucket get simpler estimates, each with its reason below.
"""

from __future__ import annotations

import bisect
import copy as copy_module
import logging
import math
import time
from collections import deque

from hfdriver.errors import HuggingFaceErrorKind

__all__ = ["DEFAULT_MAX_PAUSE", "RateLearner", "burst_needed", "drain_profile", "fit_token_bucket"]

logger = logging.getLogger("hfdriver")

DEFAULT_MAX_PAUSE = 60.0
"""The longest shared pause: ``RetryPolicy().max_retry_after`` (a server asking for longer fails
that row, which a rerun sends, instead of stopping the whole batch)."""
_DEFAULT_PAUSE = 1.0  # a rate-limit answer without Retry-After: a second, as most servers refill
_START_RATE = 16.0  # requests/s a slow start begins at: far under any provider's limit
_MEASURE = 0.5  # seconds of sends before a refusal that estimate the limit: short, so recent
_KEEP_SENT = 10.0  # seconds of send times kept: enough for a slow limit's episode
_SETTLE = 0.985  # the rate, as a share of a fitted limit: fits land within about 1%
_FLOOR = 0.5  # requests/s the rate never goes under: a batch always moves
# How fast the rate climbs, per answer, as a share of itself (per second it is that much):
_SLOW_START_STEP = 4.0  # x50 a second before any limit is known: find it in a fraction of a second
_FAR_STEP = 0.1  # 10%/s well under the last limit: come back soon after a pause
_NEAR_STEP = 0.01  # 1%/s close to it: approach without a refusal
_PROBE_STEP = 0.0002  # 0.02%/s at it: a raised limit is found, a steady one costs a 429 in minutes
_WELL_UNDER = 0.9  # "well under" the last limit
_NEAR = 0.97  # "close to" it; also the margin kept under an average that includes a burst
_AHEAD = 3.0  # the rate never runs this far ahead of what is actually sent (latency may bind)
_FEW_SENDS = 8  # fewer sends in the short window: measure over a longer one
_MIN_SENDS = 5  # fewer than this measure nothing
_ENOUGH_SENDS = 10  # sends that make an average worth trusting
_FIT_TOLERANCE = 1.05  # a fit above the short window's rate by more is not believed
_SHORT_MARGIN = 0.9  # a short window over-counts the burst: keep this share of it
_CLIMB_SPAN = 2.5  # seconds of climbing that make "the rate a second and a half before" telling
_STEADY_SPAN = 2.0  # seconds at a steady rate that make its average the limit
_FIT_LOW = 4.0  # the fit searches from a quarter of the slower episode's average rate
_DISTINCT_DRAINS = 0.2  # seconds two drains must differ by to tell a rate from a burst


class RateLearner:
    """The rate a server accepts, learned from its rate-limit answers (no I/O, no clock of its own).

    Shared by every pacer: one process's and the Ray engine's limit actor (a cluster).
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
        self._stated: float | None = None  # the last limit a server stated (requests/s)

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

    def stated(self, limit: float, now: float) -> bool:
        """The server stated its limit (``limit`` requests/s, from its rate-limit headers): pace
        just under it from now on, as a fitted limit is, rather than learn it from 429s. Only a
        new statement acts: the same one said again by every answer does not undo what a 429 has
        corrected since (a stated limit that contradicts the refusals is corrected by them). A
        fixed rate (``adaptive=False``) stays as it is; a told ``rpm`` stays the cap. True when
        it acted."""
        if not self.adaptive or limit <= 0 or limit == self._stated:
            return False
        self._stated = limit
        self.rate = self._ceiling = max(_FLOOR, _SETTLE * limit)
        self._measure_from = now
        return True

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
            step = _SLOW_START_STEP
        elif rate < _NEAR * ceiling:
            step = _FAR_STEP if rate < _WELL_UNDER * ceiling else _NEAR_STEP
            self._climbed = True
        else:
            step = _PROBE_STEP
            if rate > ceiling:  # past the old ceiling without a 429: the limit was higher
                self._ceiling = rate
        # Never run far ahead of what is actually sent (latency or concurrency may bind instead).
        sent = len(successes) / _MEASURE
        if rate < max(_AHEAD * sent, _START_RATE):
            self.rate = rate + step * count

    def refused(
        self, now: float, kind: HuggingFaceErrorKind, retry_after: float | None, started: float
    ) -> bool:
        """A rate-limit answer to an attempt let go at ``started``. Counted always; acted on (a
        pause, a new rate) once per episode: attempts let go before the last reaction were sent
        at the old rate and say nothing new. True when it acted. The one rule for every pacer."""
        self.rate_limited += 1
        if started < self.reacted_at:
            return False
        self.on_congestion(now, kind, retry_after, started)
        return True

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
        if recent < _FEW_SENDS:
            span = min(_KEEP_SENT, since)
            recent = sent_between(edge - span, edge) if span > 0 else 0
        short = recent / span if span >= _MEASURE / 2 and recent >= _MIN_SENDS else None
        episode = drain_profile(sent[:upto], edge)
        fitted = fit_token_bucket(self._last_episode, episode) if self._last_episode else None
        self._last_episode = episode
        ceiling = self._ceiling
        if fitted is not None and (short is None or fitted <= _FIT_TOLERANCE * short):
            # Two refusals, each after the server's bucket was full (the start, a pause): the
            # rate and burst that explain both. The most precise figure there is.
            limit = fitted
            self.rate = max(_FLOOR, min(_SETTLE * limit, current))
            self._ceiling = limit
        elif slow_start:
            # Slow start (x50 a second): what went out in the last half second is about the
            # limit (it under-counts the ramp, over-counts the burst; too few sends: half the
            # rate). Climb back quickly, and no longer x50, to the rate that was refused.
            estimate = short if short is not None else current / 2
            self.rate = max(_FLOOR, _SHORT_MARGIN * min(estimate, current))
            self._ceiling = max(estimate, current)
        elif (
            ceiling is not None
            and self._climbed
            and since >= _CLIMB_SPAN
            and sent_between(edge - 2.0, edge - 1.0) >= _ENOUGH_SENDS
        ):
            # Climbing since the pause: the rate a second and a half before the refusal had not
            # yet used up the server's burst; that is the limit, or just under it.
            earlier = float(sent_between(edge - 2.0, edge - 1.0))
            self.rate = max(_FLOOR, min(earlier, current, _NEAR * (short or current)))
            self._ceiling = self.rate
        elif not self._climbed and since >= _STEADY_SPAN and self._accepted >= _ENOUGH_SENDS:
            # Creeping at a steady rate since the pause: the average is the limit, plus the
            # server's burst spread over `since`.
            estimate = self._accepted / since
            self.rate = max(_FLOOR, _NEAR * min(estimate, current))
            self._ceiling = estimate
        elif short is not None:
            self.rate = max(
                _FLOOR, _SHORT_MARGIN * min(short, current)
            )  # a short window over-counts the burst
            self._ceiling = short
        else:  # too few sends to measure: halve
            self.rate = max(_FLOOR, current / 2)
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


def drain_profile(sends: list[float], edge: float) -> list[tuple[float, int]]:
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


def burst_needed(hull: list[tuple[float, int]], rate: float) -> tuple[float, float]:
    """The burst, and how long the drain before the refusal lasted, for a bucket at ``rate``."""
    best, lasted = 0.0, 0.0
    for seconds, count in hull:
        excess = count - rate * seconds
        if excess > best:
            best, lasted = excess, seconds
    return best, lasted


def fit_token_bucket(first: list[tuple[float, int]], second: list[tuple[float, int]]) -> float | None:
    """The rate of the token bucket (same rate, same burst) that explains two refusals, each at
    the end of an episode that began with the bucket full; ``None`` when the two do not pin it
    down (a server that is no token bucket, too few sends, drains of the same shape)."""
    if len(first) < 3 or len(second) < 3:
        return None

    def gap(rate: float) -> float:
        return burst_needed(second, rate)[0] - burst_needed(first, rate)[0]

    # Between a quarter of the slower episode's average rate and the fastest any sends went.
    top = max(n / d for d, n in first + second if d > 0)
    low, high = min(first[-1][1] / first[-1][0], second[-1][1] / second[-1][0]) / _FIT_LOW, top
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
    burst, lasted_second = burst_needed(second, rate)
    _, lasted_first = burst_needed(first, rate)
    # A burst of at least one request, and drains different enough to tell rate from burst.
    if burst < 1.0 or abs(lasted_second - lasted_first) < _DISTINCT_DRAINS:
        return None
    return rate
