"""The request rate a server states in its rate-limit headers, in requests per second.

A batch paces at a stated limit from the first answer that states it, instead of learning it from
429s (:meth:`hfdriver.batch.FlowControl.stated_rate`). Only a limit with a known window counts: a
guess could pace a batch far under what it may use, or over.

- IETF ``RateLimit-Policy`` (``100;w=60``, or ``"default";q=100;w=60``): the quota over the window.
- ``x-ratelimit-limit-requests-minute`` (Cerebras and others): per minute. ``...-day`` is a daily
  budget, not a pace: ignored.
- OpenAI's ``x-ratelimit-limit-requests``: per minute — when ``x-ratelimit-reset-requests`` (the
  time until the bucket is full again) is a minute or less; Groq sends the same name for a daily
  budget, whose reset is hours away.
- Together's bare ``x-ratelimit-limit`` names no window: not used (the learner finds the limit).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["duration_seconds", "stated_rate"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(value: str) -> float | None:
    """``"1s"``, ``"6m0s"``, ``"59.2ms"``, ``"2"`` -> seconds (None when it is none of these)."""
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if number > 0 else None


def _ietf(policy: str) -> float | None:
    """The first policy of an IETF ``RateLimit-Policy`` field, as requests per second."""
    first = policy.split(",", 1)[0]
    quota: float | None = None
    window: float | None = None
    for index, item in enumerate(first.split(";")):
        key, _, raw = item.strip().partition("=")
        if index == 0 and not raw:
            quota = _number(key)  # draft 7: "100;w=60"
        elif key == "q":
            quota = _number(raw)
        elif key == "w":
            window = _number(raw)
    if quota is None or window is None:
        return None
    return quota / window


def stated_rate(headers: Mapping[str, str]) -> float | None:
    """Requests per second the answer's headers state as the limit, or None."""
    policy = headers.get("RateLimit-Policy") or headers.get("ratelimit-policy")
    if policy:
        rate = _ietf(policy)
        if rate is not None:
            return rate
    per_minute = _number(headers.get("x-ratelimit-limit-requests-minute"))
    if per_minute is not None:
        return per_minute / 60.0
    limit = _number(headers.get("x-ratelimit-limit-requests"))
    if limit is not None:
        reset = headers.get("x-ratelimit-reset-requests")
        seconds = duration_seconds(reset) if reset is not None else None
        if seconds is not None and seconds <= 60.0:
            return limit / 60.0
    return None
