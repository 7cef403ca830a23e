"""Small frozen values that configure every client: :class:`Timeouts` and :class:`RetryPolicy`."""

from __future__ import annotations

import attrs

from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

__all__ = ["RetryPolicy", "Timeouts"]


def _positive(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise HuggingFaceError(HuggingFaceErrorKind.CONFIG, f"{attr.name} must be > 0 seconds, got {value!r}")


def _non_negative(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:
        raise HuggingFaceError(HuggingFaceErrorKind.CONFIG, f"{attr.name} must be >= 0, got {value!r}")


def _at_least_one(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise HuggingFaceError(
            HuggingFaceErrorKind.CONFIG, f"{attr.name} must be an integer >= 1, got {value!r}"
        )


@attrs.frozen(slots=True)
class Timeouts:
    """Finite time limits, in seconds.

    - ``connect``: to open a connection (and wait for a free one in the pool); retried.
    - ``read``: the longest silence between two pieces of a streamed response; a stalled
      stream fails after it.
    - ``total``: the whole of a unary call (each attempt). A unary answer is sent only once it
      is fully generated, so silence is normal there and ``total`` is its bound. Streams have
      no total: they may legitimately run for minutes, and ``read`` catches a stalled one.

    >>> Timeouts(read=120).read
    120
    """

    connect: float = attrs.field(default=10.0, validator=_positive)
    read: float = attrs.field(default=60.0, validator=_positive)
    total: float = attrs.field(default=300.0, validator=_positive)


@attrs.frozen(slots=True)
class RetryPolicy:
    """How failed calls are retried (tenacity under the hood).

    - ``attempts``: calls in all, the first included (1 disables retries).
    - ``deadline``: no retry starts after this many seconds since the first attempt.
    - ``initial_backoff`` / ``max_backoff``: exponential backoff bounds, doubled per attempt.
    - ``jitter``: up to this many random seconds added to each backoff.
    - ``max_retry_after``: the longest ``Retry-After`` / ``estimated_time`` honoured; a server
      asking for longer gets the error raised at once, with ``retry_after`` set.

    >>> RetryPolicy.disabled().attempts
    1
    """

    attempts: int = attrs.field(default=4, validator=_at_least_one)
    deadline: float = attrs.field(default=120.0, validator=_positive)
    initial_backoff: float = attrs.field(default=0.5, validator=_non_negative)
    max_backoff: float = attrs.field(default=10.0, validator=_non_negative)
    jitter: float = attrs.field(default=0.5, validator=_non_negative)
    max_retry_after: float = attrs.field(default=60.0, validator=_non_negative)

    @classmethod
    def disabled(cls) -> RetryPolicy:
        """One attempt, no retries."""
        return cls(attempts=1)
