"""The OpenAI-compatible routes over any :class:`Driver` (``hfdriver serve``).

Every answer is JSON or SSE in OpenAI's shapes; every failure is an OpenAI error object whose
status and type come from the error-kind table, never a traceback page. Anything unexpected is
logged and answered as a 500 ``server_error``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import attrs
from aiohttp import web

from hfdriver._compose import compose
from hfdriver._version import __version__
from hfdriver._wrapper import embed_with
from hfdriver.driver import Driver, describe
from hfdriver.dto.response import GenerateResponse, Usage
from hfdriver.dto.stream import StreamChunk
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.openai import chunk_payload, request_from_payload, response_payload
from hfdriver.openai.embeddings import embed_request_from_payload, embeddings_body
from hfdriver.server._guard import Guard
from hfdriver.server._responses import ResponsesRoutes
from hfdriver.server._store import MemoryResponseStore, ResponseStore
from hfdriver.server._wire import (
    ANSWER,
    CALL,
    MODEL,
    SHUTTING_DOWN,
    STATE,
    ServerState,
    dumps,
    error_body,
    error_json,
    error_response,
    error_status,
    pump,
    read_json,
    uncancel,
)
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
access_logger = logging.getLogger("hfdriver.access")
"""One INFO line per request: client, method, path, status, time, model; never a token, a
query string or a prompt. ``hfdriver serve`` shows it; a library user turns it on like any logger."""
K = HuggingFaceErrorKind

DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024
DEFAULT_BODY_TIMEOUT = 30.0
"""Seconds a client has to send its whole request body (a slow sender is cut off after it)."""


@attrs.frozen(slots=True)
class Route:
    """One route of ``serve``: its method, path, the operation it serves (spans name it) and its
    handler: the name of a method of :class:`_Handlers`, or (for routes added with
    ``create_app(routes=...)``, such as the console's) the handler itself. ``public`` routes need
    no API key (the console's page, which then asks for the key); the other guards still apply."""

    method: str
    path: str
    operation: str | None
    handler: str | Callable[[web.Request], Awaitable[web.StreamResponse]]
    public: bool = False


ROUTES: tuple[Route, ...] = (
    Route("GET", "/health", None, "health"),
    Route("GET", "/v1/models", None, "models"),
    Route("POST", "/v1/chat/completions", "chat", "chat"),
    Route("POST", "/v1/embeddings", "embeddings", "embeddings"),
    *(
        route
        for root in ("/v1/responses", "/responses")  # Codex and others also call it without /v1
        for route in (
            Route("POST", root, "chat", "responses"),
            Route("GET", root + "/{response_id}", None, "get_response"),
            Route("DELETE", root + "/{response_id}", None, "delete_response"),
            Route("GET", root + "/{response_id}/input_items", None, "response_input_items"),
        )
    ),
)
"""Every route of ``hfdriver serve``; a new operation adds its entry and its handler."""
_OPERATIONS = {route.path: route.operation for route in ROUTES if route.operation is not None}
_OPEN = frozenset({"/health"})
"""The paths a client may call without the API key (with the public routes added); every other
one needs it."""


def create_app(
    driver: Driver,
    *,
    model_name: str | None = None,
    api_key: str | None = None,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    allowed_hosts: tuple[str, ...] = (),
    allowed_origins: tuple[str, ...] = (),
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    response_store: ResponseStore | None = None,
    routes: Iterable[Route] = (),
) -> web.Application:
    """An aiohttp application serving ``driver`` as an OpenAI-compatible API (see :data:`ROUTES`).

    ``api_key`` requires ``Authorization: Bearer <api_key>`` on every route but ``/health``.
    ``allowed_hosts`` and ``allowed_origins`` extend the loopback defaults (see
    :mod:`hfdriver.server._guard`). ``response_store`` keeps the Responses API's stored responses
    (default: a :class:`MemoryResponseStore`; ``hfdriver serve`` uses a SQLite file). ``routes``
    are served too, behind the same guards (the console's page and ``/api/``). A driver that is
    not instrumented yet gets OpenTelemetry spans (:func:`hfdriver.compose`).
    """
    routes = (*ROUTES, *routes)
    open_paths = _OPEN | {route.path for route in routes if route.public}
    if not isinstance(driver, InstrumentedDriver):
        driver = compose(driver)
    served = model_name or describe(driver).model or "hfdriver"
    state = ServerState()
    guard = Guard(allowed_hosts=allowed_hosts, allowed_origins=allowed_origins, api_key=api_key)
    store = response_store if response_store is not None else MemoryResponseStore()
    handlers = _Handlers(driver, served, state, guard, max_request_bytes, body_timeout, store)

    @web.middleware
    async def access_log(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not access_logger.isEnabledFor(logging.INFO):
            return await handler(request)
        started = time.perf_counter()
        status = 499  # the client went away before an answer (nginx's code for it)
        try:
            response = await handler(request)
            status = response.status
            return response
        finally:
            access_logger.info(
                '%s "%s %s" %d %.0fms model=%s',
                request.remote or "-",
                request.method,
                request.path,
                status,
                (time.perf_counter() - started) * 1000,
                request.get(MODEL) or "-",
            )

    @web.middleware
    async def checks_and_errors(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if state.closing():
            return error_json(K.OVERLOADED, SHUTTING_DOWN, headers={"Connection": "close"})
        refused = guard.check_host(request.headers.get("Host")) or guard.check_origin(
            request.headers.get("Origin")
        )
        if refused:
            return error_json(K.PERMISSION, refused)
        if (
            request.path not in open_paths
            and request.match_info.http_exception is None  # no such route: a 404 (or 405), key or not
            and not guard.check_key(request.headers.get("Authorization"))
        ):
            return error_json(
                K.AUTHENTICATION, "missing or wrong API key: send 'Authorization: Bearer <key>'"
            )
        task = asyncio.current_task()
        if task is not None:
            state.inflight.add(task)
        try:
            return await handler(request)
        except HuggingFaceError as exc:
            return error_response(exc)
        except web.HTTPRequestEntityTooLarge:
            return error_json(
                K.INVALID_REQUEST, f"body: larger than {max_request_bytes} bytes, the limit", status=413
            )
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return error_json(
                K.NOT_FOUND if exc.status == 404 else K.INVALID_REQUEST, exc.reason, status=exc.status
            )
        except asyncio.CancelledError:
            if not state.closing():
                raise  # the client went away: aiohttp cancelled the handler, and the upstream call with it
            uncancel()
            return error_json(K.OVERLOADED, SHUTTING_DOWN)
        except Exception:
            logger.exception("hfdriver serve: unexpected error on %s %s", request.method, request.path)
            return error_json(K.SERVER, "internal error in hfdriver serve (logged on the server)", status=500)
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
        request[CALL] = call
        call.enter()
        try:
            response = await handler(request)
        except BaseException as exc:
            call.end(error=exc)
            raise
        finally:
            call.leave()
        call.end(request.get(ANSWER))
        return response

    app = web.Application(
        client_max_size=max_request_bytes, middlewares=[access_log, checks_and_errors, server_span]
    )
    for route in routes:
        handler = getattr(handlers, route.handler) if isinstance(route.handler, str) else route.handler
        app.router.add_route(route.method, route.path, handler)
    app[STATE] = state
    return app


class _Handlers(ResponsesRoutes):
    """The handlers of :data:`ROUTES`, over one driver."""

    def __init__(
        self,
        driver: Driver,
        served: str,
        state: ServerState,
        guard: Guard,
        max_request_bytes: int,
        body_timeout: float,
        store: ResponseStore,
    ) -> None:
        self.driver = driver
        self.store = store
        self.warned: set[str] = set()
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
        payload = await read_json(request, self.body_timeout)
        if isinstance(payload, dict) and payload.get("model") == self.served:
            payload = {k: v for k, v in payload.items() if k != "model"}  # the served model is the default
        return payload

    async def chat(self, request: web.Request) -> web.StreamResponse:
        generate_request, stream = request_from_payload(await self.read_body(request))
        call_id = f"chatcmpl-{os.urandom(12).hex()}"
        model = request[MODEL] = generate_request.model or self.served
        server_call: Call | None = request.get(CALL)
        if server_call is not None:
            server_call.describe_request("chat", generate_request, model)
        if not stream:
            response = await self.driver.generate(generate_request)
            request[ANSWER] = response
            answer = response_payload(response, id=call_id, created=int(time.time()), model=model)
            return web.Response(body=dumps(answer).encode(), content_type="application/json")
        answer_stream = self.driver.generate_stream(generate_request)
        await answer_stream.__aenter__()  # opened first: an upstream error is an ordinary HTTP error
        encoder = _ChatEncoder(call_id, model, generate_request.stream_usage)
        return await pump(request, answer_stream, encoder, self.state)

    async def embeddings(self, request: web.Request) -> web.Response:
        embed_request, encoding = embed_request_from_payload(await self.read_body(request))
        model = request[MODEL] = embed_request.model or self.served
        server_call: Call | None = request.get(CALL)
        if server_call is not None:
            server_call.describe_request("embeddings", embed_request, model)
        response = await embed_with(self.driver, embed_request)
        request[ANSWER] = response
        body = embeddings_body(response, model=model, encoding_format=encoding)
        return web.Response(body=body, content_type="application/json")


_DONE = b"data: [DONE]\n\n"


def _event(obj: Any) -> bytes:
    return b"data: " + dumps(obj).encode() + b"\n\n"


class _ChatEncoder:
    """``chat.completion.chunk`` events, the usage chunk when asked for, then ``[DONE]``."""

    __slots__ = ("call_id", "created", "first", "model", "stream_usage", "usage")

    def __init__(self, call_id: str, model: str, stream_usage: bool) -> None:
        self.call_id = call_id
        self.model = model
        self.created = int(time.time())
        self.stream_usage = stream_usage
        self.first = True
        self.usage: Usage | None = None

    def start(self) -> bytes:
        return b""

    def chunk(self, chunk: StreamChunk) -> bytes:
        event = _event(
            chunk_payload(chunk, id=self.call_id, created=self.created, model=self.model, first=self.first)
        )
        self.first = False
        if chunk.usage is not None:
            self.usage = chunk.usage
        return event

    def end(self, delivered: GenerateResponse) -> bytes:
        if self.stream_usage and self.usage is not None:
            usage = chunk_payload(
                None, id=self.call_id, created=self.created, model=self.model, usage=self.usage
            )
            if delivered.cost is not None:  # an extra field OpenAI clients ignore; the console shows it
                cost = delivered.cost
                usage["cost"] = {
                    "input": cost.input,
                    "output": cost.output,
                    "total": cost.total,
                    "currency": cost.currency,
                }
            return _event(usage) + _DONE
        return _DONE

    def fail(self, kind: HuggingFaceErrorKind, message: str) -> bytes:
        return _event(error_body(kind, message)) + _DONE
