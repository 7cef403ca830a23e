"""What every route of ``serve`` shares: OpenAI error answers, the bounded JSON body reader, the
per-request keys, and :func:`pump`, which streams a driver's answer as Server-Sent Events in the
dialect of an :class:`Encoder` (chat-completions chunks, or Responses API events)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from hfdriver.driver import ResponseStream
from hfdriver.dto.response import GenerateResponse
from hfdriver.dto.stream import StreamChunk
from hfdriver.errors import KINDS, HuggingFaceError, HuggingFaceErrorKind

__all__ = [
    "ANSWER",
    "CALL",
    "MODEL",
    "Encoder",
    "ServerState",
    "STATE",
    "dumps",
    "error_body",
    "error_json",
    "error_response",
    "error_status",
    "pump",
    "read_json",
    "uncancel",
]

K = HuggingFaceErrorKind
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
SHUTTING_DOWN = "the server is shutting down; retry the request"
dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def error_status(kind: HuggingFaceErrorKind) -> int:
    """The HTTP status the server answers for an error of ``kind`` (its row in the kind table)."""
    return KINDS[kind].served_status


def error_body(kind: HuggingFaceErrorKind, message: str, *, param: str | None = None) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": KINDS[kind].openai_type, "param": param, "code": kind.value}
    }


def error_json(
    kind: HuggingFaceErrorKind,
    message: str,
    *,
    status: int | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    param = message.split(":", 1)[0] if kind is K.INVALID_REQUEST and ":" in message else None
    return web.json_response(
        error_body(kind, message, param=param), status=status or error_status(kind), headers=headers
    )


def error_response(error: HuggingFaceError) -> web.Response:
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, min(86_400, round(error.retry_after))))
    if error.request_id:
        headers["x-request-id"] = error.request_id
    return error_json(error.kind, error.message, headers=headers)


class ServerState:
    """What the lifecycle needs to know: requests in flight, and whether shutdown has begun."""

    def __init__(self) -> None:
        self.inflight: set[asyncio.Task[Any]] = set()
        self._closing = False

    def closing(self) -> bool:
        """Whether shutdown has begun (a method: it changes while a request awaits)."""
        return self._closing

    def begin_shutdown(self) -> None:
        self._closing = True


STATE = web.AppKey("hfdriver_state", ServerState)
CALL: Any = getattr(web, "RequestKey", lambda name, _t: name)("hfdriver_call", object)
ANSWER: Any = getattr(web, "RequestKey", lambda name, _t: name)("hfdriver_answer", object)
MODEL: Any = getattr(web, "RequestKey", lambda name, _t: name)("hfdriver_model", str)


def uncancel() -> None:
    current = asyncio.current_task()
    if current is not None and hasattr(current, "uncancel"):
        current.uncancel()


async def read_json(request: web.Request, timeout: float) -> Any:
    """The request body as JSON: bounded in time and size, and every way it can be wrong is a 400."""
    try:
        if request.content.is_eof():  # the whole body came with the headers: no timer needed
            raw = await request.read()
        elif sys.version_info >= (3, 11):
            async with asyncio.timeout(timeout):  # no extra task per request, unlike wait_for
                raw = await request.read()
        else:  # pragma: no cover - Python 3.10
            raw = await asyncio.wait_for(request.read(), timeout)
    except asyncio.TimeoutError:
        raise HuggingFaceError(
            K.INVALID_REQUEST, f"body: not received within {timeout:g} seconds; send it at once"
        ) from None
    charset = request.charset or "utf-8"
    body: bytes | str = raw  # json.loads reads UTF-8 bytes itself: no decode step in the common case
    try:
        if charset.lower() not in ("utf-8", "utf8"):
            body = raw.decode(charset)
        return json.loads(body)
    except LookupError:
        raise HuggingFaceError(K.INVALID_REQUEST, f"body: unknown charset {charset!r}; send UTF-8") from None
    except UnicodeDecodeError:
        raise HuggingFaceError(K.INVALID_REQUEST, f"body: not valid {charset} text; send UTF-8") from None
    except RecursionError:
        raise HuggingFaceError(K.INVALID_REQUEST, "body: JSON nested too deeply") from None
    except ValueError as exc:
        raise HuggingFaceError(K.INVALID_REQUEST, f"body: not valid JSON ({exc})") from None


class Encoder(Protocol):
    """One SSE dialect: the bytes to write at the start, per chunk, at the end, and on failure."""

    def start(self) -> bytes: ...

    def chunk(self, chunk: StreamChunk) -> bytes: ...

    def end(self, delivered: GenerateResponse) -> bytes: ...

    def fail(self, kind: HuggingFaceErrorKind, message: str) -> bytes: ...


async def pump(
    request: web.Request,
    stream: ResponseStream,
    encoder: Encoder,
    state: ServerState,
    *,
    before_end: Callable[[], Awaitable[None]] | None = None,
) -> web.StreamResponse:
    """Write ``stream`` (already opened, so that an upstream error was an ordinary HTTP error) as
    SSE. Events that are ready together go out in one write; a failure mid-stream ends with the
    encoder's error events; a client that leaves cancels the handler, and closing the stream below
    stops the upstream call; the server's own shutdown ends the stream properly. ``before_end``
    runs once the last events are known and before they are written (to store the answer)."""
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    pending: list[bytes] = [encoder.start()]
    try:
        async for chunk in stream:
            pending.append(encoder.chunk(chunk))
            if not stream.pending:
                await response.write(b"".join(pending))
                pending.clear()
        pending.append(encoder.end(await stream.collect()))  # read out: priced, where the driver prices
        if before_end is not None:
            await before_end()
        await response.write(b"".join(pending))
        await response.write_eof()
    except HuggingFaceError as exc:
        pending.append(encoder.fail(exc.kind, exc.message))
        if before_end is not None:
            await before_end()
        with contextlib.suppress(ConnectionResetError):
            await response.write(b"".join(pending))
            await response.write_eof()
    except asyncio.CancelledError:
        if not state.closing():
            raise  # the client went away: the stream is closed below, which stops the upstream call
        uncancel()
        pending.append(encoder.fail(K.OVERLOADED, SHUTTING_DOWN))
        with contextlib.suppress(ConnectionResetError):
            await response.write(b"".join(pending))
            await response.write_eof()
    except ConnectionResetError:
        pass  # the client left; the stream is closed below
    finally:
        await stream.aclose()
        with contextlib.suppress(Exception):
            request[ANSWER] = stream.response()  # what was delivered, for the server span
    return response
