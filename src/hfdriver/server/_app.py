"""The OpenAI-compatible routes over any :class:`Driver` (``hfdriver serve``).

Every answer is JSON or SSE in OpenAI's shapes; every failure is an OpenAI error object whose
status and type come from the error-kind table, never a traceback page. Anything unexpected is
logged and answered as a 500 ``server_error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from aiohttp import web

from hfdriver._compose import compose
from hfdriver._version import __version__
from hfdriver._wrapper import embed_with
from hfdriver.driver import Driver, describe
from hfdriver.dto.request import GenerateRequest
from hfdriver.dto.response import Usage
from hfdriver.errors import KINDS, HuggingFaceError, HuggingFaceErrorKind
from hfdriver.openai import chunk_payload, request_from_payload, response_payload
from hfdriver.openai.embeddings import embed_request_from_payload, embeddings_body
from hfdriver.server._guard import Guard
from hfdriver.telemetry import Call, InstrumentedDriver, start_call
from hfdriver.telemetry import enabled as telemetry_enabled

__all__ = [
    "ROUTES",
    "DEFAULT_BODY_TIMEOUT",
    "Route",
    "DEFAULT_MAX_REQUEST_BYTES",
    "STATE",
    "ServerState",
    "create_app",
    "error_status",
]

logger = logging.getLogger("hfdriver")
K = HuggingFaceErrorKind

DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024
DEFAULT_BODY_TIMEOUT = 30.0
"""Seconds a client has to send its whole request body (a slow sender is cut off after it)."""

_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def error_status(kind: HuggingFaceErrorKind) -> int:
    """The HTTP status the server answers for an error of ``kind`` (its row in the kind table)."""
    return KINDS[kind].served_status


def _error_body(kind: HuggingFaceErrorKind, message: str, *, param: str | None = None) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": KINDS[kind].openai_type, "param": param, "code": kind.value}
    }


def _error_json(
    kind: HuggingFaceErrorKind,
    message: str,
    *,
    status: int | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    param = message.split(":", 1)[0] if kind is K.INVALID_REQUEST and ":" in message else None
    return web.json_response(
        _error_body(kind, message, param=param), status=status or error_status(kind), headers=headers
    )


def _error_response(error: HuggingFaceError) -> web.Response:
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, min(86_400, round(error.retry_after))))
    if error.request_id:
        headers["x-request-id"] = error.request_id
    return _error_json(error.kind, error.message, headers=headers)


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
_CALL: Any = getattr(web, "RequestKey", lambda name, _t: name)("hfdriver_call", object)
_ANSWER: Any = getattr(web, "RequestKey", lambda name, _t: name)("hfdriver_answer", object)


@attrs.frozen(slots=True)
class Route:
    """One route of ``serve``: its method, path, the operation it serves (spans name it) and the
    name of its handler (a method of :class:`_Handlers`)."""

    method: str
    path: str
    operation: str | None
    handler: str


ROUTES: tuple[Route, ...] = (
    Route("GET", "/health", None, "health"),
    Route("GET", "/v1/models", None, "models"),
    Route("POST", "/v1/chat/completions", "chat", "chat"),
    Route("POST", "/v1/embeddings", "embeddings", "embeddings"),
)
"""Every route of ``hfdriver serve``; a new operation adds its entry and its handler."""
_OPERATIONS = {route.path: route.operation for route in ROUTES if route.operation is not None}


def create_app(
    driver: Driver,
    *,
    model_name: str | None = None,
    api_key: str | None = None,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    allowed_hosts: tuple[str, ...] = (),
    allowed_origins: tuple[str, ...] = (),
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
) -> web.Application:
    """An aiohttp application serving ``driver`` as an OpenAI-compatible API (see :data:`ROUTES`).

    ``api_key`` requires ``Authorization: Bearer <api_key>`` on ``/v1/*``. ``allowed_hosts`` and
    ``allowed_origins`` extend the loopback defaults (see :mod:`hfdriver.server._guard`). A driver
    that is not instrumented yet gets OpenTelemetry spans (:func:`hfdriver.compose`).
    """
    if not isinstance(driver, InstrumentedDriver):
        driver = compose(driver)
    served = model_name or describe(driver).model or "hfdriver"
    state = ServerState()
    guard = Guard(allowed_hosts=allowed_hosts, allowed_origins=allowed_origins, api_key=api_key)
    handlers = _Handlers(driver, served, state, guard, max_request_bytes, body_timeout)

    @web.middleware
    async def checks_and_errors(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if state.closing():
            return _error_json(
                K.OVERLOADED,
                "the server is shutting down; retry the request",
                headers={"Connection": "close"},
            )
        refused = guard.check_host(request.headers.get("Host")) or guard.check_origin(
            request.headers.get("Origin")
        )
        if refused:
            return _error_json(K.PERMISSION, refused)
        if request.path.startswith("/v1/") and not guard.check_key(request.headers.get("Authorization")):
            return _error_json(
                K.AUTHENTICATION, "missing or wrong API key: send 'Authorization: Bearer <key>'"
            )
        task = asyncio.current_task()
        if task is not None:
            state.inflight.add(task)
        try:
            return await handler(request)
        except HuggingFaceError as exc:
            return _error_response(exc)
        except web.HTTPRequestEntityTooLarge:
            return _error_json(
                K.INVALID_REQUEST, f"body: larger than {max_request_bytes} bytes, the limit", status=413
            )
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _error_json(
                K.NOT_FOUND if exc.status == 404 else K.INVALID_REQUEST, exc.reason, status=exc.status
            )
        except asyncio.CancelledError:
            if not state.closing():
                raise  # the client went away: aiohttp cancelled the handler, and the upstream call with it
            _uncancel()
            return _error_json(K.OVERLOADED, "the server is shutting down; retry the request")
        except Exception:
            logger.exception("hfdriver serve: unexpected error on %s %s", request.method, request.path)
            return _error_json(
                K.SERVER, "internal error in hfdriver serve (logged on the server)", status=500
            )
        finally:
            if task is not None:
                state.inflight.discard(task)

    @web.middleware
    async def server_span(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """One SERVER span per operation request (when telemetry is on); the driver's is its child."""
        operation = _OPERATIONS.get(request.path)
        call = (
            start_call(
                operation,
                None,
                model=served,
                base_url=f"http://{request.host}",
                provider="hfdriver",
                server=True,
            )
            if operation is not None and telemetry_enabled()
            else None
        )
        if call is None:
            return await handler(request)
        request[_CALL] = call
        call.enter()
        try:
            response = await handler(request)
        except BaseException as exc:
            call.end(error=exc)
            raise
        finally:
            call.leave()
        call.end(request.get(_ANSWER))
        return response

    app = web.Application(client_max_size=max_request_bytes, middlewares=[checks_and_errors, server_span])
    for route in ROUTES:
        app.router.add_route(route.method, route.path, getattr(handlers, route.handler))
    app[STATE] = state
    return app


class _Handlers:
    """The handlers of :data:`ROUTES`, over one driver."""

    def __init__(
        self,
        driver: Driver,
        served: str,
        state: ServerState,
        guard: Guard,
        max_request_bytes: int,
        body_timeout: float,
    ) -> None:
        self.driver = driver
        self.served = served
        self.state = state
        self.guard = guard
        self.max_request_bytes = max_request_bytes
        self.body_timeout = body_timeout
        self.created = int(time.time())

    async def health(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "model": self.served, "version": __version__})

    async def models(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"id": self.served, "object": "model", "created": self.created, "owned_by": "hfdriver"}
                ],
            }
        )

    async def read_body(self, request: web.Request) -> Any:
        """The JSON body of a POST, after the size and content-type checks."""
        if request.content_length is not None and request.content_length > self.max_request_bytes:
            raise web.HTTPRequestEntityTooLarge(
                max_size=self.max_request_bytes, actual_size=request.content_length
            )
        refused = self.guard.check_content_type(request.headers.get("Content-Type"))
        if refused:
            raise HuggingFaceError(K.INVALID_REQUEST, f"body: {refused}")
        payload = await _read_json(request, self.body_timeout)
        if isinstance(payload, dict) and payload.get("model") == self.served:
            payload = {k: v for k, v in payload.items() if k != "model"}  # the served model is the default
        return payload

    async def chat(self, request: web.Request) -> web.StreamResponse:
        generate_request, stream = request_from_payload(await self.read_body(request))
        call_id = f"chatcmpl-{os.urandom(12).hex()}"
        model = generate_request.model or self.served
        server_call: Call | None = request.get(_CALL)
        if server_call is not None:
            server_call.describe_request("chat", generate_request, model)
        if not stream:
            response = await self.driver.generate(generate_request)
            request[_ANSWER] = response
            answer = response_payload(response, id=call_id, created=int(time.time()), model=model)
            return web.Response(body=_dumps(answer).encode(), content_type="application/json")
        return await _stream(request, self.driver, generate_request, call_id, model, self.state)

    async def embeddings(self, request: web.Request) -> web.Response:
        embed_request, encoding = embed_request_from_payload(await self.read_body(request))
        model = embed_request.model or self.served
        server_call: Call | None = request.get(_CALL)
        if server_call is not None:
            server_call.describe_request("embeddings", embed_request, model)
        response = await embed_with(self.driver, embed_request)
        request[_ANSWER] = response
        body = embeddings_body(response, model=model, encoding_format=encoding)
        return web.Response(body=body, content_type="application/json")


def _uncancel() -> None:
    current = asyncio.current_task()
    if current is not None and hasattr(current, "uncancel"):
        current.uncancel()


async def _read_json(request: web.Request, timeout: float) -> Any:
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


def _event(obj: Any) -> bytes:
    return b"data: " + _dumps(obj).encode() + b"\n\n"


async def _stream(
    request: web.Request,
    driver: Driver,
    generate_request: GenerateRequest,
    call_id: str,
    model: str,
    state: ServerState,
) -> web.StreamResponse:
    stream = driver.generate_stream(generate_request)
    # Open first, so an upstream error is an ordinary HTTP error rather than a broken stream.
    await stream.__aenter__()
    response = web.StreamResponse(headers=_SSE_HEADERS)
    await response.prepare(request)
    created = int(time.time())
    usage: Usage | None = None
    pending: list[bytes] = []
    try:
        first = True
        async for chunk in stream:
            pending.append(
                _event(chunk_payload(chunk, id=call_id, created=created, model=model, first=first))
            )
            first = False
            if chunk.usage is not None:
                usage = chunk.usage
            if not stream.pending:  # events that are ready together go out in one write
                await response.write(b"".join(pending))
                pending.clear()
        if generate_request.stream_usage and usage is not None:
            pending.append(_event(chunk_payload(None, id=call_id, created=created, model=model, usage=usage)))
        pending.append(b"data: [DONE]\n\n")
        await response.write(b"".join(pending))
        await response.write_eof()
    except HuggingFaceError as exc:
        pending += (_event(_error_body(exc.kind, exc.message)), b"data: [DONE]\n\n")
        with contextlib.suppress(ConnectionResetError):
            await response.write(b"".join(pending))
            await response.write_eof()
    except asyncio.CancelledError:
        if not state.closing():
            raise  # the client went away: the stream is closed below, which stops the upstream call
        _uncancel()
        # Our own shutdown cancelled this stream after the grace period: end it properly.
        pending += (
            _event(_error_body(K.OVERLOADED, "the server is shutting down; retry the request")),
            b"data: [DONE]\n\n",
        )
        with contextlib.suppress(ConnectionResetError):
            await response.write(b"".join(pending))
            await response.write_eof()
    except ConnectionResetError:
        pass  # the client left; the stream is closed below
    finally:
        await stream.aclose()
        with contextlib.suppress(Exception):
            request[_ANSWER] = stream.response()  # what was delivered, for the server span
    return response
