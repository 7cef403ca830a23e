"""The one mapping of foreign transport failures to :class:`HuggingFaceError`.

aiohttp's exceptions (and asyncio's and the OS's) are mapped by :func:`map_transport_error`
over one ordered table, the way httpx maps httpcore's: nothing above the transport catches a
foreign exception. huggingface-hub's download errors (``ModelStore`` downloads through it) are
mapped by :func:`map_download_error`, by class, in the same module.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, NamedTuple

import aiohttp

from hfdriver.errors import MAX_MESSAGE_CHARS, HuggingFaceError, HuggingFaceErrorKind, Secret, clip, redact

__all__ = ["TRANSPORT_ERRORS", "map_download_error", "map_transport_error"]

K = HuggingFaceErrorKind

TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
"""What a socket operation can raise: catch these around aiohttp, then map them."""

_PHASES = {
    "request": "waiting for the answer",
    "open": "waiting for the first streamed chunk",
    "stream": "streaming",
}


class _Rule(NamedTuple):
    types: tuple[type[BaseException], ...]
    kind: HuggingFaceErrorKind
    retryable: bool
    template: str


# First match wins: the specific timeouts before TimeoutError, payload errors before the
# connection errors they may wrap. {service}, {hint}, {where} and {detail} are filled in.
_RULES: tuple[_Rule, ...] = (
    _Rule(
        (aiohttp.ConnectionTimeoutError,),
        K.TIMEOUT,
        True,
        "connect timeout fired: no connection to {service} within the limit ({detail}); "
        "{hint}, or raise Timeouts(connect=...)",
    ),
    _Rule(
        (aiohttp.SocketTimeoutError,),
        K.TIMEOUT,
        False,
        "read timeout fired: {service} sent nothing for longer than Timeouts(read=...) while {where}; "
        "raise it for slow models",
    ),
    _Rule(
        (TimeoutError, aiohttp.ServerTimeoutError),
        K.TIMEOUT,
        False,
        "total timeout fired: {where} took longer than Timeouts(total=...); raise it, or stream long generations",
    ),
    _Rule((aiohttp.ClientPayloadError,), K.STREAM, False, "the stream broke: {detail}"),
    _Rule((aiohttp.InvalidURL,), K.CONFIG, False, "not a valid URL: {detail}; {hint}"),
    # A host name that does not resolve will not resolve in a second either: no retry, so a
    # fallback moves on at once (aiohttp >= 3.10 names it; socket.gaierror where it does not).
    _Rule(
        (
            *((aiohttp.ClientConnectorDNSError,) if hasattr(aiohttp, "ClientConnectorDNSError") else ()),
            socket.gaierror,
        ),
        K.CONNECTION,
        False,
        "{unreachable}: the host name does not resolve ({detail}); {hint}",
    ),
    _Rule(
        (aiohttp.ClientConnectionError, ConnectionError, OSError),
        K.CONNECTION,
        True,
        "{unreachable}: {detail}; {hint}",
    ),
    _Rule((BaseException,), K.CONNECTION, True, "transport failure: {detail}"),
)
_BROKEN_STREAM = next(rule for rule in _RULES if rule.kind is K.STREAM)


def map_transport_error(
    exc: BaseException,
    *,
    phase: str = "request",
    secret: str | Secret | None = None,
    service: str = "the server",
    hint: str = "check the base_url and your network",
    unreachable: str | None = None,
) -> HuggingFaceError:
    """Map a transport exception (aiohttp, asyncio or OS) to ``TIMEOUT`` / ``CONNECTION`` / ``STREAM``.

    ``phase`` is ``request`` (before an answer), ``open`` (before a stream's first chunk) or
    ``stream`` (after chunks reached the caller: a failure then is ``STREAM`` and never retried).
    ``service`` and ``hint`` name what was called and what to check, for the message;
    ``unreachable`` replaces "could not reach <service>" for connection failures.
    """
    rule = next(r for r in _RULES if isinstance(exc, r.types))
    if phase == "stream" and rule.kind is K.CONNECTION:
        rule = _BROKEN_STREAM
    retryable = rule.retryable if rule.kind is not K.STREAM else phase != "stream"
    detail = redact(clip(str(exc) or type(exc).__name__, MAX_MESSAGE_CHARS), secret)
    message = rule.template.format(
        service=service,
        hint=hint,
        where=_PHASES.get(phase, phase),
        detail=detail,
        unreachable=unreachable or f"could not reach {service}",
    )
    return HuggingFaceError(rule.kind, message, retryable=retryable)


def _hub_error_classes(*names: str) -> tuple[type[BaseException], ...]:
    try:
        from huggingface_hub import errors
    except ImportError:  # pragma: no cover - the caller needed huggingface-hub to get here
        return ()
    found = (getattr(errors, name, None) for name in names)
    return tuple(cls for cls in found if isinstance(cls, type) and issubclass(cls, BaseException))


def _status_of(exc: BaseException) -> int | None:
    response: Any = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def map_download_error(
    exc: BaseException, what: str, *, secret: str | Secret | None = None
) -> HuggingFaceError:
    """Map a failure of a huggingface-hub download of ``what`` (``repo/file``) to its kind."""
    status = _status_of(exc)
    name = type(exc).__name__
    detail = redact(clip(str(exc), MAX_MESSAGE_CHARS), secret)
    missing = _hub_error_classes(
        "RepositoryNotFoundError", "RevisionNotFoundError", "EntryNotFoundError", "RemoteEntryNotFoundError"
    )
    if status == 404 or (missing and isinstance(exc, missing)):
        return HuggingFaceError(K.NOT_FOUND, f"{what} was not found on the Hub ({name})", status=status)
    gated = _hub_error_classes("GatedRepoError")
    if status in (401, 403) or (gated and isinstance(exc, gated)):
        kind = K.AUTHENTICATION if status == 401 and not isinstance(exc, gated) else K.PERMISSION
        return HuggingFaceError(
            kind,
            f"{what}: access denied ({name}); log in with `hfdriver login`, and accept the model's "
            "licence on its page if it is gated",
            status=status,
        )
    text = str(exc)
    if "Consistency check failed" in text or ("size" in text.lower() and "should be" in text):
        return HuggingFaceError(
            K.STREAM,
            f"{what}: the download was incomplete ({detail}); run the pull again to resume",
            retryable=True,
        )
    if status is not None and status >= 500:
        return HuggingFaceError(K.SERVER, f"{what}: {name}: {detail}", status=status)
    return HuggingFaceError(
        K.CONNECTION,
        f"{what}: the download failed ({name}: {detail}); run the pull again to resume",
        status=status,
    )
