"""The batch's rate learner and pacer, against simulated token-bucket servers (no I/O, no clock).

Each simulation paces sends at the learner's rate (the way :class:`FlowControl` and the Ray
engine's limit actor do), answers them from a token bucket of known rate and burst, pauses on a
refusal for its ``Retry-After`` (whole seconds, as HTTP has it), and reports back to the learner.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time

import pytest

from hfdriver.batch import FlowControl
from hfdriver.batch._learner import RateLearner
from hfdriver.batch._learner import drain_profile as _drain_profile
from hfdriver.batch._learner import fit_token_bucket as _fit_token_bucket
from hfdriver.batch._pacer import LocalPacer
from hfdriver.errors import HuggingFaceErrorKind


class Outcome:
    def __init__(self) -> None:
        self.refusals = 0
        self.reactions: list[tuple[float, float]] = []  # (when, learned rate after)
        self.seconds = 0.0


def simulate(
    limit: float,
    burst: float,
    rows: int,
    *,
    rpm: float | None = None,
    latency: float = 0.02,
    whole_seconds: bool = True,
) -> tuple[RateLearner, Outcome]:
    pacer = LocalPacer(rpm=rpm)  # its pacing rule (_advance), its learner
    learner = pacer.learner
    learner._measure_from = 0.0
    out = Outcome()
    tokens, refilled = burst, 0.0
    done = 0
    pending: list[tuple[float, bool, float, float]] = []  # (answered at, ok, sent at, retry after)
    now = 0.0
    while done < rows:
        release = max(pacer._next_send, learner.paused_until)
        while pending and (pending[0][0] <= release or done + len(pending) >= rows):
            answered, ok, sent, retry_after = heapq.heappop(pending)
            if ok:
                done += 1
                learner.on_success(answered)
            else:
                out.refusals += 1
                learner.rate_limited += 1
                if sent >= learner.reacted_at:
                    learner.on_congestion(answered, HuggingFaceErrorKind.RATE_LIMITED, retry_after, sent)
                    out.reactions.append((answered, learner.effective_rate() or 0.0))
            release = max(pacer._next_send, learner.paused_until, answered)
        if done >= rows:
            break
        now = release
        rate = learner.effective_rate()
        assert rate is not None
        pacer._advance(now, rate)
        learner.on_sent(now)
        tokens = min(burst, tokens + (now - refilled) * limit)
        refilled = now
        if tokens >= 1.0:
            tokens -= 1.0
            heapq.heappush(pending, (now + latency, True, now, 0.0))
        else:
            wait = (1.0 - tokens) / limit
            retry_after = float(max(1, math.ceil(wait))) if whole_seconds else wait
            heapq.heappush(pending, (now + 0.001, False, now, retry_after))
    out.seconds = now
    return learner, out


@pytest.mark.parametrize(
    ("limit", "burst"),
    [(100, 10), (100, 3), (100, 20), (100, 50), (50, 5), (200, 20), (1000, 100)],
)
def test_two_refusals_pin_the_limit_down(limit: float, burst: float) -> None:
    learner, out = simulate(limit, burst, rows=int(limit * 60))
    # The slow start's refusal, then one more while climbing back: two pauses, no more.
    assert out.refusals <= 3, out.reactions
    settled = learner.effective_rate()
    assert settled is not None
    assert 0.95 * limit <= settled <= limit, out.reactions
    # Under the limit for the rest of the run: the rate stays there (one probe at most).
    assert len(out.reactions) <= 3
    assert int(limit * 60) / out.seconds >= 0.9 * limit


def test_a_budget_it_is_told_is_used_from_the_start() -> None:
    told = RateLearner(rpm=6000)
    assert told.rate is None and told.effective_rate() == 100.0  # no slow start
    _, out = simulate(100, 10, rows=3000, rpm=6000)
    assert out.refusals == 0
    assert out.seconds <= 30.5


def test_a_budget_above_the_limit_is_corrected() -> None:
    learner, out = simulate(100, 10, rows=3000, rpm=6600)  # told 110/s; the server takes 100/s
    assert out.refusals <= 3
    rate = learner.effective_rate()
    assert rate is not None and 0.95 * 100 <= rate <= 100


def test_a_server_without_a_burst_is_not_sent_two_at_once_after_a_pause() -> None:
    # A strict limiter (burst 1): after every pause, the old pacer let two requests go at once
    # and was refused again, pause after pause.
    _, out = simulate(20, 1, rows=400)
    assert out.refusals <= 4, out.reactions
    assert 400 / out.seconds >= 0.7 * 20


def test_a_slow_limit_is_measured_over_a_longer_window() -> None:
    learner, out = simulate(4, 2, rows=120, latency=0.05)
    assert out.refusals <= 4, out.reactions
    rate = learner.effective_rate()
    assert rate is not None and 2.5 <= rate <= 4.0


def test_the_fit_recovers_rate_and_burst_of_a_bucket() -> None:
    # Episode 1: a steep ramp; episode 2: a gentle one; both refused when a bucket of rate 80
    # and burst 12 ran dry. The fit finds 80 from the send times alone.
    def episode(rates: list[tuple[float, float]]) -> tuple[list[float], float]:
        sends, t, tokens, refilled = [], 0.0, 12.0, 0.0
        for until, rate in rates:
            while t < until:
                tokens = min(12.0, tokens + (t - refilled) * 80.0)
                refilled = t
                if tokens < 1.0:
                    return sends, t
                tokens -= 1.0
                sends.append(t)
                t += 1.0 / rate
        raise AssertionError("never refused")

    steep = [(0.1 * (i + 1), 20.0 * 1.5**i) for i in range(12)]
    gentle = [(0.5 * (i + 1), 60.0 + 4.0 * i) for i in range(40)]
    first, second = episode(steep), episode(gentle)
    fitted = _fit_token_bucket(_drain_profile(*first), _drain_profile(*second))
    assert fitted is not None and 76.0 <= fitted <= 84.0
    # Two drains of the same shape cannot tell rate from burst: no answer rather than a guess.
    assert _fit_token_bucket(_drain_profile(*second), _drain_profile(*second)) is None


async def test_the_pacer_never_lets_two_go_at_once_after_a_pause() -> None:
    flow = FlowControl(max_concurrency=64, rpm=1200, adaptive=False)  # 20/s
    flow.learner.on_congestion(time.monotonic(), HuggingFaceErrorKind.RATE_LIMITED, 0.2)
    flow.pacer.reschedule()  # type: ignore[attr-defined]
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def one() -> None:
        await flow.wait_for_turn()
        times.append(loop.time())

    await asyncio.gather(*(one() for _ in range(8)))
    times.sort()
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.8 / 20, gaps  # one interval apart (timer slack aside), never together
