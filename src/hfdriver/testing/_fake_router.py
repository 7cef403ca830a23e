"""A programmable, local, OpenAI-compatible router for tests (ours and yours)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from aiohttp import web

from hfdriver.testing._responses import FakeResponse, completion_body, stream_events
from hfdriver.testing._server import LocalServer

__all__ = ["DEFAULT_MODELS", "FakeRouter", "RecordedRequest"]

DEFAULT_MODELS: tuple[dict[str, Any], ...] = (
    {
        "id": "meta-llama/Llama-3.2-1B-Instruct",
        "object": "model",
        "created": 1727136000,
        "owned_by": "meta-llama",
        "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
        "providers": [
            {
                "provider": "novita",
                "status": "live",
                "context_length": 131072,
                "pricing": {"input": 0.02, "output": 0.05},
                "supports_tools": False,
                "supports_structured_output": True,
            },
            {
                "provider": "together",
                "status": "live",
                "context_length": 131072,
                "pricing": {"input": 0.06, "output": 0.06},
                "supports_tools": True,
                "supports_structured_output": True,
                "first_token_latency_ms": 180,
                "throughput": 210.5,
            },
        ],
    },
)


@attrs.frozen(slots=True)
class RecordedRequest:
    """A request the fake received."""

    method: str
    path: str
    headers: Mapping[str, str]
    json: Any
    peer: str | None = None
    """The client's ``host:port``: the same value twice means a pooled connection was reused."""


def _peer(request: web.Request) -> str | None:
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    return f"{peer[0]}:{peer[1]}" if peer else None


class FakeRouter(LocalServer):
    """A real aiohttp server on 127.0.0.1 (random port) that speaks chat completions.

    >>> async def test_my_app():  # doctest: +SKIP
    ...     async with FakeRouter() as router:
    ...         router.enqueue(FakeResponse.completion("Paris"))
    ...         driver = HuggingFaceDriver(token="hf_test", base_url=router.base_url)
    ...         assert (await driver.generate(request)).text == "Paris"

    Routes: ``POST /v1/chat/completions`` (unary and SSE) and ``GET /v1/models``.
    Answers come from a FIFO queue (:meth:`enqueue`); when it is empty the router echoes the
    last user message (``"echo: <text>"``), streaming it word by word when ``stream`` is set.
    ``token`` makes it answer 401 to any other bearer token. Every request is recorded in
    :attr:`requests`.
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        models: Sequence[Mapping[str, Any]] = DEFAULT_MODELS,
        host: str = "127.0.0.1",
        port: int = 0,
        provider: str = "fake-provider",
    ) -> None:
        super().__init__(host, port)
        self.token = token
        self.models = [dict(m) for m in models]
        self.provider = provider
        self.requests: list[RecordedRequest] = []
        self._queue: deque[FakeResponse] = deque()
        self._ids = itertools.count(1)
        self._live: set[asyncio.Task[Any]] = set()

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        return app

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL to give a driver: ``http://127.0.0.1:<port>/v1``."""
        return f"{self.url}/v1"

    @property
    def open_connections(self) -> int:
        """Client connections the server currently holds open."""
        server = self._runner.server if self._runner else None
        if server is None:
            return 0
        # A handler still running a scripted stall stays listed after its client left.
        return sum(1 for handler in server.connections if handler.transport is not None)

    # ------------------------------------------------------------------ scripting
    def enqueue(self, *responses: FakeResponse) -> FakeRouter:
        """Answer the next chat requests with ``responses``, in order."""
        self._queue.extend(responses)
        return self

    @property
    def pending(self) -> int:
        """Scripted answers not used yet."""
        return len(self._queue)

    # ------------------------------------------------------------------ handlers
    def _headers(self, extra: Mapping[str, str]) -> dict[str, str]:
        headers = {"x-request-id": f"fake-{next(self._ids)}", "x-inference-provider": self.provider}
        headers.update(extra)
        return headers

    async def _models(self, request: web.Request) -> web.Response:
        self.requests.append(
            RecordedRequest(request.method, request.path, dict(request.headers), None, _peer(request))
        )
        return web.json_response({"object": "list", "data": self.models}, headers=self._headers({}))

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        self.requests.append(
            RecordedRequest(request.method, request.path, dict(request.headers), body, _peer(request))
        )
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response(
                {"error": "Invalid credentials in Authorization header"},
                status=401,
                headers=self._headers({}),
            )
        scripted = self._queue.popleft() if self._queue else self._echo(body)
        return await self._send(request, scripted)

    def _echo(self, body: Any) -> FakeResponse:
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return FakeResponse.error(
                422, "Failed to deserialize the JSON body into the target type: missing field `messages`"
            )
        text = ""
        for message in reversed(body["messages"]):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                text = (
                    content
                    if isinstance(content, str)
                    else " ".join(p.get("text", "") for p in content or [] if isinstance(p, dict))
                )
                break
        words = f"echo: {text}".split(" ")
        finish = "stop"
        limit = body.get("max_tokens")
        if isinstance(limit, int) and limit < len(words):
            words, finish = words[:limit], "length"
        model = str(body.get("model", "fake/model"))
        if body.get("stream"):
            pieces = [w if i == 0 else f" {w}" for i, w in enumerate(words)]
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return FakeResponse(events=stream_events(pieces, model=model, finish_reason=finish, usage=usage))
        return FakeResponse(json=completion_body(" ".join(words), model=model, finish_reason=finish))

    async def _send(self, request: web.Request, scripted: FakeResponse) -> web.StreamResponse:
        headers = self._headers(scripted.headers)
        writes = scripted.writes()
        content_type = scripted.content_type or (
            "text/event-stream" if scripted.is_stream else "application/json"
        )
        if not scripted.is_stream and not (
            scripted.delay or scripted.stall_after is not None or scripted.disconnect_after is not None
        ):
            return web.Response(
                status=scripted.status,
                body=b"".join(writes),
                headers={**headers, "Content-Type": content_type},
            )
        response = web.StreamResponse(
            status=scripted.status, headers={**headers, "Content-Type": content_type}
        )
        if scripted.is_stream:
            response.headers["Cache-Control"] = "no-cache"
        await response.prepare(request)
        for count, piece in enumerate(writes):
            if scripted.disconnect_after is not None and count >= scripted.disconnect_after:
                transport = request.transport
                if transport is not None:
                    transport.close()
                return response
            if scripted.stall_after is not None and count >= scripted.stall_after:
                await asyncio.sleep(3600)
            if scripted.delay:
                await asyncio.sleep(scripted.delay)
            await response.write(piece)
        await response.write_eof()
        return response
