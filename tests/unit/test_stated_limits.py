"""Rate limits a server states: the header dialects, and the learner pacing at them (issue 24)."""

from __future__ import annotations

import pytest

from hfdriver.batch._learner import RateLearner
from hfdriver.errors import HuggingFaceErrorKind
from hfdriver.transport._ratelimit import duration_seconds, stated_rate


@pytest.mark.parametrize(
    ("headers", "rate"),
    [
        # OpenAI: requests per minute, the reset a duration of a minute at most.
        ({"x-ratelimit-limit-requests": "6000", "x-ratelimit-reset-requests": "1s"}, 100.0),
        ({"x-ratelimit-limit-requests": "60", "x-ratelimit-reset-requests": "59.2ms"}, 1.0),
        ({"x-ratelimit-limit-requests": "600", "x-ratelimit-reset-requests": "1m0s"}, 10.0),
        # Groq uses the same name for a daily budget (the reset is hours away): not a pace.
        ({"x-ratelimit-limit-requests": "14400", "x-ratelimit-reset-requests": "2h59m56.2s"}, None),
        ({"x-ratelimit-limit-requests": "6000"}, None),  # no reset: no known window
        # Cerebras: per minute named; the day budget is ignored.
        ({"x-ratelimit-limit-requests-minute": "1200", "x-ratelimit-limit-requests-day": "216000"}, 20.0),
        ({"x-ratelimit-limit-requests-day": "216000"}, None),
        # IETF RateLimit-Policy, drafts 7 and 8+.
        ({"RateLimit-Policy": "100;w=1"}, 100.0),
        ({"ratelimit-policy": '"default";q=600;w=60, "burst";q=50;w=1'}, 10.0),
        ({"RateLimit-Policy": "garbage"}, None),
        # Together's bare x-ratelimit-limit names no window; tokens are not requests.
        ({"x-ratelimit-limit": "100", "x-ratelimit-reset": "2"}, None),
        ({"x-ratelimit-limit-tokens": "400000", "x-ratelimit-reset-tokens": "1s"}, None),
        ({"x-ratelimit-limit-requests": "0", "x-ratelimit-reset-requests": "1s"}, None),
    ],
)
def test_the_header_dialects(headers: dict[str, str], rate: float | None) -> None:
    assert stated_rate(headers) == rate


def test_durations() -> None:
    assert duration_seconds("6m0s") == 360.0 and duration_seconds("2") == 2.0
    assert duration_seconds("1h2m") == 3720.0 and duration_seconds("soon") is None


def test_a_stated_limit_is_paced_at_once_and_corrected_by_429s() -> None:
    learner = RateLearner()
    assert learner.effective_rate() == 16.0  # the slow start
    assert learner.stated(100.0, 1.0)
    assert learner.effective_rate() == pytest.approx(98.5)  # just under, from the first answer
    assert not learner.stated(100.0, 2.0)  # said again: nothing new
    for t in range(20):  # sends at the paced rate, then the server refuses: it was lower
        learner.on_sent(3.0 + t * 0.01)
    learner.refused(3.3, HuggingFaceErrorKind.RATE_LIMITED, 1.0, 3.1)
    corrected = learner.effective_rate()
    assert corrected is not None and corrected < 98.5
    assert not learner.stated(100.0, 5.0)  # the same statement does not undo the correction
    assert learner.effective_rate() == corrected
    assert learner.stated(50.0, 6.0) and learner.effective_rate() == pytest.approx(49.25)  # a new one


def test_a_told_budget_and_a_fixed_rate_are_not_overridden() -> None:
    fixed = RateLearner(rpm=600, adaptive=False)
    assert not fixed.stated(100.0, 1.0) and fixed.effective_rate() == 10.0
    told = RateLearner(rpm=600)
    told.stated(100.0, 1.0)
    assert told.effective_rate() == 10.0  # the user's budget stays the cap
