"""One mapping from what a server said to a :class:`HuggingFaceError`.

It understands every error-body shape seen from the router and the servers behind it:
``{"error": str}``, ``{"error": {message, type, code, param}}``, ``{"error": [...]}``,
``{"error", "error_type"}`` (TGI), ``{"detail": ...}`` (FastAPI), ``{"message": ...}``,
``{"object": "error", "message": ...}`` (vLLM), plain text, HTML and empty bodies.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import time
from collections.abc import Mapping
from typing import Any

from hfdriver.errors._error import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.errors._redact import Secret, redact
from hfdriver.errors._table import KINDS

__all__ = [
    "MAX_BODY_CHARS",
    "MAX_MESSAGE_CHARS",
    "MAX_PARSED_BYTES",
    "clip",
    "scrub",
    "error_from_response",
    "error_from_stream_event",
    "parse_retry_after",
]

K = HuggingFaceErrorKind

MAX_MESSAGE_CHARS = 500
MAX_BODY_CHARS = 4000
MAX_PARSED_BYTES = 1024 * 1024
"""Only this much of an error body is looked at: the rest cannot change what it means."""

# Built from the kind table: the statuses and server codes each kind claims.
_STATUS_KINDS: dict[int, HuggingFaceErrorKind] = {
    status: kind for kind, row in KINDS.items() for status in row.statuses
}
_TYPE_KINDS: dict[str, HuggingFaceErrorKind] = {
    code: kind for kind, row in KINDS.items() for code in row.codes
}

# Phrases that mean "this model cannot be used for chat here", whatever the status says.
_NOT_SUPPORTED_RE = re.compile(
    r"not supported by any provider|is not a chat model|does not support chat"
    r"|template not found|no chat template|allowed now, your model"
    r"|not supported for task|model_not_supported",
    re.IGNORECASE,
)
_LOADING_RE = re.compile(r"currently loading|is loading", re.IGNORECASE)
_OVERLOADED_RE = re.compile(r"\boverloaded\b|too many requests in flight", re.IGNORECASE)
_HTML_RE = re.compile(rb"^\s*(<!doctype html|<html)", re.IGNORECASE)
_TITLE_RE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_SPACES_RE = re.compile(r"\s+")


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, val in headers.items():
        if key.lower() == lowered:
            return val
    return None


def scrub(value: str | None, token: str | Secret | None) -> str | None:
    """A server-chosen header value, bounded and with any secret redacted, fit to show."""
    if value is None:
        return None
    if len(value) <= 200 and value.isprintable() and "  " not in value and value == value.strip():
        return redact(value, token)  # the common case: nothing to clip
    return redact(clip(value, 200), token)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date.

    >>> parse_retry_after("7")
    7.0
    >>> parse_retry_after("garbage") is None
    True
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        current = time.time() if now is None else now
        return max(0.0, when.timestamp() - current)
    if seconds != seconds or seconds < 0 or seconds == float("inf"):  # NaN, negative, inf
        return None
    return seconds


def _ratelimit_reset(value: str | None) -> float | None:
    # The Hub's IETF-draft header: `"api";r=0;t=55` -> 55 seconds until the window resets.
    if not value:
        return None
    match = re.search(r"(?:^|;)\s*t=(\d{1,9}(?:\.\d+)?)", value)
    return float(match.group(1)) if match else None


def clip(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    text = _SPACES_RE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "; ".join(_as_text(v) for v in value)
    if isinstance(value, dict):
        for key in ("message", "msg", "error", "detail"):
            if key in value:
                text = _as_text(value[key])
                loc = value.get("loc")
                if isinstance(loc, list) and loc:
                    text = f"{'.'.join(str(p) for p in loc)}: {text}"
                return text
    return json.dumps(value, ensure_ascii=False, default=str)


class _Parsed:
    __slots__ = ("codes", "estimated_time", "message", "status_hint")

    def __init__(self) -> None:
        self.message: str = ""
        self.codes: list[str] = []
        self.estimated_time: float | None = None
        self.status_hint: int | None = None


def _parse_error_object(data: Any) -> _Parsed:
    """Pull message, type/code and estimated_time out of any JSON error shape."""
    out = _Parsed()
    if not isinstance(data, dict):
        out.message = _as_text(data)
        return out
    err = data.get("error")
    if isinstance(err, dict):
        out.message = _as_text(err.get("message", err))
        for key in ("type", "code", "error_type"):
            val = err.get(key)
            if isinstance(val, str) and val:
                out.codes.append(val)
            elif isinstance(val, int) and not isinstance(val, bool) and 100 <= val <= 599:
                out.status_hint = val
        for key in ("http_status_code", "status_code", "status"):
            hint = err.get(key)
            if isinstance(hint, int) and not isinstance(hint, bool) and 100 <= hint <= 599:
                out.status_hint = hint
                break
    elif err is not None:
        out.message = _as_text(err)
    elif "detail" in data:
        out.message = _as_text(data["detail"])
    elif "message" in data:
        out.message = _as_text(data["message"])
    else:
        out.message = _as_text(data)
    for key in ("error_type", "type", "code"):
        val = data.get(key)
        if isinstance(val, str) and val:
            out.codes.append(val)
    estimated = data.get("estimated_time")
    if isinstance(estimated, (int, float)) and not isinstance(estimated, bool) and 0 <= estimated < math.inf:
        out.estimated_time = float(estimated)
    return out


def _kind_for(status: int | None, parsed: _Parsed) -> HuggingFaceErrorKind:
    for code in parsed.codes:
        kind = _TYPE_KINDS.get(code.lower())
        if kind is not None:
            return kind
    if _NOT_SUPPORTED_RE.search(parsed.message) and (status is None or status in (400, 404, 422)):
        return K.MODEL_NOT_SUPPORTED
    if status == 503 or (status is None and parsed.estimated_time is not None):
        if parsed.estimated_time is not None or _LOADING_RE.search(parsed.message):
            return K.MODEL_LOADING
        return K.OVERLOADED if _OVERLOADED_RE.search(parsed.message) else K.SERVER
    if status is None:
        return K.STREAM
    kind = _STATUS_KINDS.get(status)
    if kind is not None:
        return kind
    if status >= 500:
        return K.OVERLOADED if _OVERLOADED_RE.search(parsed.message) else K.SERVER
    return K.BAD_REQUEST


def _compose(kind: HuggingFaceErrorKind, server_message: str, fallback: str) -> str:
    message = server_message or fallback
    advice = KINDS[kind].advice
    if advice:
        message = f"{message.rstrip('.')}. {advice[0].upper()}{advice[1:]}."
    return message


def error_from_response(
    status: int,
    headers: Mapping[str, str] | None,
    body: bytes,
    *,
    token: str | Secret | None = None,
) -> HuggingFaceError:
    """Map an HTTP error answer to a :class:`HuggingFaceError` of the right kind.

    ``token`` is scrubbed from the message and body (as are anything that looks like an
    ``hf_`` token), so errors can be logged safely.
    """
    request_id = scrub(_header(headers, "x-request-id"), token)
    provider = scrub(_header(headers, "x-inference-provider"), token)
    # `retry-after-ms` (OpenAI-compatible servers) is more precise than whole seconds.
    retry_after_ms = parse_retry_after(_header(headers, "retry-after-ms"))
    retry_after = (
        retry_after_ms / 1000.0
        if retry_after_ms is not None
        else parse_retry_after(_header(headers, "retry-after"))
    )
    if retry_after is None:
        retry_after = _ratelimit_reset(_header(headers, "ratelimit"))

    body = body[:MAX_PARSED_BYTES] if body else b""
    text = body.decode("utf-8", "replace")
    parsed: _Parsed
    if _HTML_RE.match(body or b""):
        parsed = _Parsed()
        title = _TITLE_RE.search(text)
        parsed.message = (
            f"the server answered with an HTML page ({title.group(1).strip()})"
            if title
            else "the server answered with an HTML page"
        )
    else:
        try:
            data = json.loads(text) if text.strip() else None
        except (ValueError, RecursionError):
            data = None
            parsed = _Parsed()
            parsed.message = text
        else:
            parsed = _parse_error_object(data) if data is not None else _Parsed()
    if not parsed.message:
        parsed.message = _header(headers, "x-error-message") or ""
    parsed.message = parsed.message[: 8 * MAX_MESSAGE_CHARS]  # the regexes below see a bounded text

    kind = _kind_for(status, parsed)
    if kind is K.MODEL_LOADING and retry_after is None:
        retry_after = parsed.estimated_time
    message = _compose(kind, clip(parsed.message, MAX_MESSAGE_CHARS), f"HTTP {status} with an empty body")
    return HuggingFaceError(
        kind,
        redact(message, token),
        status=status,
        request_id=request_id,
        provider=provider,
        retry_after=retry_after,
        body=redact(text[:MAX_BODY_CHARS], token) if text else None,
    )


def error_from_stream_event(
    data: Any,
    *,
    request_id: str | None = None,
    provider: str | None = None,
    token: str | Secret | None = None,
) -> HuggingFaceError:
    """Map an ``{"error": ...}`` event found inside a 200 event stream.

    TGI sends ``{"error": str, "error_type": "validation"}`` or
    ``{"error": {"message", "http_status_code"}}``; llama.cpp ``{"error": {code, message, type}}``.
    The kind follows the error's type or status when it names one, else ``STREAM``.
    """
    parsed = _parse_error_object(data)
    parsed.message = parsed.message[: 8 * MAX_MESSAGE_CHARS]
    kind = _kind_for(parsed.status_hint, parsed)
    if kind is K.BAD_REQUEST and parsed.status_hint is None:
        kind = K.STREAM
    message = _compose(kind, clip(parsed.message, MAX_MESSAGE_CHARS), "the server sent an error event")
    try:
        raw = json.dumps(data, ensure_ascii=False, default=str)[:MAX_BODY_CHARS]
    except (ValueError, RecursionError):
        raw = repr(data)[:MAX_BODY_CHARS]
    return HuggingFaceError(
        kind,
        redact(message, token),
        status=parsed.status_hint,
        request_id=scrub(request_id, token),
        provider=scrub(provider, token),
        retry_after=parsed.estimated_time,
        body=redact(raw, token),
        # A failure reported mid-stream was already partly delivered: never retried blindly.
        retryable=kind in (K.OVERLOADED, K.MODEL_LOADING, K.RATE_LIMITED),
    )
