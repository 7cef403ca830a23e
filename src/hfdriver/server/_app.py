"""An OpenAI-compatible HTTP server over any :class:`Driver` (``hfdriver serve``)."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from aiohttp import web

from hfdriver._version import __version__
from hfdriver.driver import Driver
from hfdriver.dto.request import GenerateRequest
from hfdriver.dto.response import Usage
from hfdriver.errors import KINDS, HuggingFaceError, HuggingFaceErrorKind
from hfdriver.openai import chunk_payload, request_from_payload, response_payload

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "OpenAIServer", "create_app", "error_status"]

logger = logging.getLogger("hfdriver")
K = HuggingFaceErrorKind

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9231
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024


def error_status(kind: HuggingFaceErrorKind) -> int:
    """The HTTP status the server answers for an error of ``kind`` (its row in the kind table)."""
    return KINDS[kind].served_status


def _error_body(kind: HuggingFaceErrorKind, message: str, *, param: str | None = None) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": KINDS[kind].openai_type, "param": param, "code": kind.value}
    }


def _error_response(error: HuggingFaceError) -> web.Response:
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(error.retry_after)))
    if error.request_id:
        headers["x-request-id"] = error.request_id
    param = (
        error.message.split(":", 1)[0] if error.kind is K.INVALID_REQUEST and ":" in error.message else None
    )
    return web.json_response(
        _error_body(error.kind, error.message, param=param), status=error_status(error.kind), headers=headers
    )


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _State:
    def __init__(self) -> None:
        self.streams: set[asyncio.Task[Any]] = set()
        self.closing = False


_STATE = web.AppKey("hfdriver_state", _State)


def create_app(
    driver: Driver,
    *,
    model_name: str | None = None,
    api_key: str | None = None,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
) -> web.Application:
    """An aiohttp application serving ``driver`` as an OpenAI-compatible API.

    Routes: ``GET /health``, ``GET /v1/models``, ``POST /v1/chat/completions`` (unary and SSE).
    ``api_key`` requires ``Authorization: Bearer <api_key>`` on ``/v1/*``.
    """
    served = model_name or getattr(driver, "model", None) or "hfdriver"
    state = _State()
    created = int(time.time())

    @web.middleware
    async def errors_and_auth(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if api_key is not None and request.path.startswith("/v1/"):
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                return web.json_response(
                    _error_body(
                        K.AUTHENTICATION, "missing or wrong API key: send 'Authorization: Bearer <key>'"
                    ),
                    status=401,
                )
        try:
            return await handler(request)
        except HuggingFaceError as exc:
            return _error_response(exc)
        except web.HTTPRequestEntityTooLarge:
            return web.json_response(
                _error_body(K.INVALID_REQUEST, f"request body larger than {max_request_bytes} bytes"),
                status=413,
            )
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return web.json_response(
                _error_body(K.NOT_FOUND if exc.status == 404 else K.INVALID_REQUEST, exc.reason),
                status=exc.status,
            )

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "model": served, "version": __version__})

    async def models(_request: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [{"id": served, "object": "model", "created": created, "owned_by": "hfdriver"}],
            }
        )

    async def chat(request: web.Request) -> web.StreamResponse:
        try:
            payload = await request.json(loads=json.loads)
        except ValueError:
            raise HuggingFaceError(K.INVALID_REQUEST, "body: not valid JSON") from None
        if isinstance(payload, dict) and payload.get("model") == served:
            payload = {k: v for k, v in payload.items() if k != "model"}  # the served model is the default
        generate_request, stream = request_from_payload(payload)
        call_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        model = generate_request.model or served
        if not stream:
            response = await driver.generate(generate_request)
            return web.json_response(
                response_payload(response, id=call_id, created=int(time.time()), model=model)
            )
        return await _stream(request, driver, generate_request, call_id, model, state)

    app = web.Application(client_max_size=max_request_bytes, middlewares=[errors_and_auth])
    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", chat)
    app[_STATE] = state
    return app


async def _stream(
    request: web.Request,
    driver: Driver,
    generate_request: GenerateRequest,
    call_id: str,
    model: str,
    state: _State,
) -> web.StreamResponse:
    stream = driver.generate_stream(generate_request)
    # Open first, so an upstream error is an ordinary HTTP error rather than a broken stream.
    await stream.__aenter__()
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    created = int(time.time())
    task = asyncio.current_task()
    if task is not None:
        state.streams.add(task)
    usage: Usage | None = None

    async def send(obj: Any) -> None:
        await response.write(
            b"data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"
        )

    try:
        first = True
        async for chunk in stream:
            await send(chunk_payload(chunk, id=call_id, created=created, model=model, first=first))
            first = False
            if chunk.usage is not None:
                usage = chunk.usage
        if generate_request.stream_usage and usage is not None:
            await send(chunk_payload(None, id=call_id, created=created, model=model, usage=usage))
    except HuggingFaceError as exc:
        await send(_error_body(exc.kind, exc.message))
    except asyncio.CancelledError:
        if not state.closing:
            raise  # the client went away, or the task was cancelled from outside
        # Our own shutdown cancelled this stream after the grace period: end it properly.
        current = asyncio.current_task()
        if current is not None and hasattr(current, "uncancel"):
            current.uncancel()
        with contextlib.suppress(ConnectionResetError):
            await send(_error_body(K.OVERLOADED, "the server is shutting down; retry the request"))
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        return response
    except ConnectionResetError:
        return response  # the client left; the stream is closed below
    finally:
        await stream.aclose()
        if task is not None:
            state.streams.discard(task)
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


class OpenAIServer:
    """Run :func:`create_app` on a real socket: ``async with OpenAIServer(driver) as server``.

    ``grace`` is how long in-flight streams may run on after a shutdown starts; streams still
    running then end with an error event and ``[DONE]``.
    """

    def __init__(
        self,
        driver: Driver,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        api_key: str | None = None,
        model_name: str | None = None,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        grace: float = 10.0,
    ) -> None:
        self.driver = driver
        self.host = host
        self.port = port
        self.grace = grace
        self.app = create_app(
            driver, model_name=model_name, api_key=api_key, max_request_bytes=max_request_bytes
        )
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def warn_if_exposed(self) -> bool:
        """Log a WARNING when the server is reachable from other machines; True if it is."""
        if _is_loopback(self.host):
            return False
        logger.warning(
            "hfdriver serve: listening on %s, reachable from other machines; set --api-key, or bind 127.0.0.1",
            self.host or "all interfaces",
        )
        return True

    async def start(self) -> OpenAIServer:
        self.warn_if_exposed()
        self._runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=self.grace
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        state = self.app[_STATE]
        state.closing = True
        # In-flight streams get `grace` seconds to finish; the rest are ended properly (an error
        # event and [DONE]) while their sockets are still open, before aiohttp tears down.
        if state.streams:
            _done, pending = await asyncio.wait(set(state.streams), timeout=self.grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5.0)
        await runner.cleanup()

    async def __aenter__(self) -> OpenAIServer:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
