"""The one exception type, :class:`HuggingFaceError`."""

from __future__ import annotations

from typing import Any

from hfdriver.errors._kind import HuggingFaceErrorKind
from hfdriver.errors._redact import redact
from hfdriver.errors._table import KINDS

__all__ = ["HuggingFaceError", "HuggingFaceErrorKind", "default_retryable", "invalid_request"]


# 501 Not Implemented and 505 HTTP Version Not Supported will not change on a retry.
_PERMANENT_SERVER_STATUSES = frozenset({501, 505})


def default_retryable(kind: HuggingFaceErrorKind, status: int | None) -> bool:
    """Whether a failure of ``kind`` may be retried (its row in the kind table; 501 and 505 never
    are), before ``Retry-After`` caps are considered (see :mod:`hfdriver.transport`)."""
    return KINDS[kind].retryable and (status is None or status not in _PERMANENT_SERVER_STATUSES)


class HuggingFaceError(Exception):
    """The single exception hfdriver raises.

    Attributes:
        kind: what went wrong (:class:`HuggingFaceErrorKind`).
        message: a human sentence: what happened and what to do.
        status: the HTTP status, when a server answered.
        request_id: the server's ``x-request-id``, for support tickets.
        provider: the ``x-inference-provider`` that served (or refused) the call.
        retry_after: seconds the server asked us to wait, when it said so.
        body: the error body as received (bounded, token redacted), for debugging.
        retryable: whether retrying the same request may succeed.

    >>> err = HuggingFaceError(HuggingFaceErrorKind.RATE_LIMITED, "slow down", status=429)
    >>> err.retryable
    True
    """

    __slots__ = (
        "body",
        "kind",
        "message",
        "provider",
        "request_id",
        "retry_after",
        "retryable",
        "status",
    )

    def __init__(
        self,
        kind: HuggingFaceErrorKind,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        provider: str | None = None,
        retry_after: float | None = None,
        body: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        # Whoever built the message, no token-shaped text and no URL credentials (a proxy's
        # `user:password@`) ever leave in it: the last line of defence, for every error.
        message = redact(message)
        if body is not None:
            body = redact(body)
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.request_id = request_id
        self.provider = provider
        self.retry_after = retry_after
        self.body = body
        self.retryable = default_retryable(kind, status) if retryable is None else retryable

    def __str__(self) -> str:
        parts = [f"{self.kind.name}: {self.message}"]
        extra = []
        if self.status is not None:
            extra.append(f"status {self.status}")
        if self.provider:
            extra.append(f"provider {self.provider}")
        if self.request_id:
            extra.append(f"request id {self.request_id}")
        if extra:
            parts.append(f"({', '.join(extra)})")
        return " ".join(parts)

    def __repr__(self) -> str:
        return (
            f"HuggingFaceError(kind={self.kind.name}, message={self.message!r}, "
            f"status={self.status!r}, retry_after={self.retry_after!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions with keyword-only arguments need help to pickle (multiprocessing, logging).
        return (_rebuild, (self.kind, self.message, self._state()))

    def _state(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "request_id": self.request_id,
            "provider": self.provider,
            "retry_after": self.retry_after,
            "body": self.body,
            "retryable": self.retryable,
        }


def _rebuild(kind: HuggingFaceErrorKind, message: str, state: dict[str, Any]) -> HuggingFaceError:
    return HuggingFaceError(kind, message, **state)


def invalid_request(field: str, problem: str) -> HuggingFaceError:
    """A client-side validation failure naming the field (nothing was sent)."""
    return HuggingFaceError(HuggingFaceErrorKind.INVALID_REQUEST, f"{field}: {problem}")
