"""A programmable, local, OpenAI-compatible router for tests (ours and yours)."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
from aiohttp import web

from hfdriver.testing._fake_embeddings import hf_embeddings_body, openai_embeddings_body
from hfdriver.testing._fake_tasks import TaskScripts
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
    query: str = ""
    """The query string, without ``?``."""
    body: bytes = b""
    """The raw body (an uploaded image or sound; JSON bodies are in ``json`` too)."""


def _peer(request: web.Request) -> str | None:
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    return f"{peer[0]}:{peer[1]}" if peer else None


def _not_scripted(request: web.Request) -> FakeResponse:
    return FakeResponse.error(404, f"FakeRouter: nothing scripted for {request.method} {request.path_qs}")


def _last_user_text(body: Any) -> str:
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return ""
    for message in reversed(body["messages"]):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return " ".join(
                p.get("text", "")
                for p in content or []
                if isinstance(p, dict) and isinstance(p.get("text"), str)
            )
    return ""


class FakeRouter(TaskScripts, LocalServer):
    """A real aiohttp server on 127.0.0.1 (random port) that speaks chat completions.

    >>> async def test_my_app():  # doctest: +SKIP
    ...     async with FakeRouter() as router:
    ...         router.enqueue(FakeResponse.completion("Paris"))
    ...         driver = HuggingFaceDriver(token="hf_test", base_url=router.base_url)
    ...         assert (await driver.generate(request)).text == "Paris"

    Routes: ``POST /v1/chat/completions`` (unary and SSE), ``GET /v1/models``, and embeddings as
    the router has them: ``POST /{provider}/v1/embeddings`` (deepinfra's ``/v1/openai/embeddings``),
    ``POST /hf-inference/models/{id}/pipeline/feature-extraction`` and an endpoint's
    ``POST /v1/embeddings`` (floats or ``encoding_format="base64"``, ``dimensions``).
    Answers come from a FIFO queue (:meth:`enqueue`); when it is empty the router echoes the
    last user message (``"echo: <text>"``), streaming it word by word when ``stream`` is set,
    and embeds each input as a unit vector that depends only on its text (384 dimensions, or
    ``dimensions``).
    ``token`` makes it answer 401 to any other bearer token. Every request is recorded in
    :attr:`requests` (``record=False`` keeps only counters, for long benchmarks).

    Load and failure scripting:

    - ``rate_limit`` (requests/s) with ``burst``: a token bucket; a chat request past it is
      answered 429 with ``Retry-After`` (whole seconds, as HTTP has it, or the exact fraction
      with ``fractional_retry_after=True``). :attr:`rate_limited` counts them, :attr:`served`
      the answered ones, :meth:`per_second` the answered ones in each second.
    - ``state_limit``: every answer states the limit, as OpenAI does (``"openai"``:
      ``x-ratelimit-limit-requests`` per minute and ``-reset-requests``) or the IETF way
      (``"ietf"``: ``RateLimit-Policy: 100;w=1``); ``stated_rate`` states another one than the
      real ``rate_limit`` (a server whose headers are wrong).
    - ``latency``: seconds every chat answer waits before it is sent (generation time).
    - :meth:`fail_when`: answer requests whose last user message contains a text with a
      scripted response (every time, or ``times`` times), whatever the order of arrival.
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        models: Sequence[Mapping[str, Any]] = DEFAULT_MODELS,
        host: str = "127.0.0.1",
        port: int = 0,
        provider: str = "fake-provider",
        rate_limit: float | None = None,
        burst: float | None = None,
        fractional_retry_after: bool = False,
        latency: float = 0.0,
        record: bool = True,
        state_limit: str | None = None,
        stated_rate: float | None = None,
    ) -> None:
        super().__init__(host, port)
        if state_limit not in (None, "openai", "ietf"):
            raise ValueError("state_limit: 'openai' (x-ratelimit-*-requests) or 'ietf' (RateLimit-Policy)")
        self.state_limit = state_limit
        self.stated_rate = stated_rate
        if rate_limit is not None and rate_limit <= 0:
            raise ValueError("rate_limit must be > 0 requests/s")
        self.rate_limit = rate_limit
        self.burst = burst if burst is not None else (max(1.0, rate_limit / 10) if rate_limit else 0.0)
        self.fractional_retry_after = fractional_retry_after
        self.latency = latency
        self.record = record
        self._bucket = self.burst
        self._bucket_at = time.monotonic()
        self.rate_limited = 0
        self.served = 0
        self.served_at: list[float] = []
        self._rules: list[list[Any]] = []
        self.token = token
        self.models = [dict(m) for m in models]
        self.provider = provider
        self.requests: list[RecordedRequest] = []
        self._queue: deque[FakeResponse] = deque()
        self._ids = itertools.count(1)
        self._live: set[asyncio.Task[Any]] = set()
        self._init_scripts()

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/hf-inference/models/{model:.+}/pipeline/feature-extraction", self._embeddings)
        app.router.add_post("/{provider}/v1/embeddings", self._embeddings)
        app.router.add_post("/{provider}/v1/openai/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/_fake/stats", self._stats)
        app.router.add_post("/_fake/reset", self._reset)
        app.router.add_route("*", "/{tail:.*}", self._any)  # scripted routes: tasks, jobs, media
        return app

    def stats(self) -> dict[str, Any]:
        """Counters (also served as JSON at ``GET /_fake/stats``, for a fake in another process);
        ``span``: seconds from the first answered request to the last; ``first`` / ``last``: when
        they were answered (``time.monotonic()``, which processes of one machine share)."""
        served_at = self.served_at
        span = served_at[-1] - served_at[0] if len(served_at) > 1 else 0.0
        return {
            "served": self.served,
            "rate_limited": self.rate_limited,
            "per_second": self.per_second(),
            "span": span,
            "first": served_at[0] if served_at else None,
            "last": served_at[-1] if served_at else None,
        }

    def reset_counters(self) -> None:
        """Zero the counters and refill the rate limiter (``POST /_fake/reset``)."""
        self.served = self.rate_limited = 0
        self.served_at.clear()
        self._bucket, self._bucket_at = self.burst, time.monotonic()

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset_counters()
        return web.json_response(self.stats())

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

    def fail_when(
        self, contains: str, response: FakeResponse, *, times: int | None = None, model: str | None = None
    ) -> FakeRouter:
        """Answer ``response`` to requests whose last user message contains ``contains``
        (``""`` matches every request) — and, with ``model``, that ask for that model —
        ``times`` times or always."""
        self._rules.append([contains, response, times, model])
        return self

    def per_second(self) -> list[int]:
        """Answered chat requests in each second since the first one (for rate assertions)."""
        if not self.served_at:
            return []
        start = self.served_at[0]
        counts = [0] * (int(self.served_at[-1] - start) + 1)
        for t in self.served_at:
            counts[int(t - start)] += 1
        return counts

    def _take_token(self) -> float | None:
        """None when the request may pass; else the seconds until it could."""
        rate = self.rate_limit
        if rate is None:
            return None
        now = time.monotonic()
        self._bucket = min(self.burst, self._bucket + (now - self._bucket_at) * rate)
        self._bucket_at = now
        if self._bucket >= 1.0:
            self._bucket -= 1.0
            return None
        return (1.0 - self._bucket) / rate

    def _rule_for(self, body: Any) -> FakeResponse | None:
        if not self._rules:
            return None
        text = _last_user_text(body)
        asked = body.get("model") if isinstance(body, dict) else None
        for rule in self._rules:
            contains, response, times, model = rule
            if contains in text and (times is None or times > 0) and (model is None or model == asked):
                if times is not None:
                    rule[2] = times - 1
                return response  # type: ignore[no-any-return]
        return None

    @property
    def pending(self) -> int:
        """Scripted answers not used yet."""
        return len(self._queue)

    # ------------------------------------------------------------------ handlers
    def _headers(self, extra: Mapping[str, str]) -> dict[str, str]:
        headers = {"x-request-id": f"fake-{next(self._ids)}", "x-inference-provider": self.provider}
        if self.state_limit is not None and self.rate_limit is not None:
            headers.update(self._limit_headers(self.stated_rate or self.rate_limit))
        headers.update(extra)
        return headers

    def _limit_headers(self, rate: float) -> dict[str, str]:
        """The limit stated the way ``state_limit`` says (``stated_rate`` may differ from the real one)."""
        remaining = str(max(0, int(self._bucket)))
        if self.state_limit == "openai":  # requests per minute; the reset: until the bucket is full
            reset = max(0.0, (self.burst - self._bucket) / self.rate_limit) if self.rate_limit else 0.0
            return {
                "x-ratelimit-limit-requests": f"{rate * 60:g}",
                "x-ratelimit-remaining-requests": remaining,
                "x-ratelimit-reset-requests": f"{reset:.3f}s",
            }
        return {"RateLimit-Policy": f"{rate:g};w=1", "RateLimit": f"limit={rate:g}, remaining={remaining}"}

    async def _models(self, request: web.Request) -> web.Response:
        if self.record:
            self.requests.append(
                RecordedRequest(request.method, request.path, dict(request.headers), None, _peer(request))
            )
        return web.json_response({"object": "list", "data": self.models}, headers=self._headers({}))

    async def _admit(self, request: web.Request) -> tuple[Any, web.Response | None]:
        """Record an inference request; answer it 401 or 429 when the fake says so."""
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        if self.record:
            self.requests.append(
                RecordedRequest(
                    request.method,
                    request.path,
                    dict(request.headers),
                    body,
                    _peer(request),
                    request.query_string,
                    raw,
                )
            )
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            return body, web.json_response(
                {"error": "Invalid credentials in Authorization header"},
                status=401,
                headers=self._headers({}),
            )
        wait = self._take_token()
        if wait is not None:
            self.rate_limited += 1
            retry_after = f"{wait:.3f}" if self.fractional_retry_after else str(max(1, math.ceil(wait)))
            return body, web.json_response(
                {"error": "Rate limit reached: too many requests, please retry later"},
                status=429,
                headers=self._headers({"Retry-After": retry_after}),
            )
        return body, None

    async def _answer(
        self, request: web.Request, body: Any, default: Callable[[Any], FakeResponse]
    ) -> web.StreamResponse:
        scripted = (
            self._take_script(request)
            or self._rule_for(body)
            or (self._queue.popleft() if self._queue else default(body))
        )
        if self.latency:
            await asyncio.sleep(self.latency)
        if 200 <= scripted.status < 300:
            self.served += 1
            self.served_at.append(time.monotonic())
        return await self._send(request, scripted)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body, refused = await self._admit(request)
        if refused is not None:
            return refused
        return await self._answer(request, body, self._echo)

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        """OpenAI-style ``/v1/embeddings`` (also under ``/{provider}/v1/...``) and hf-inference's
        ``/hf-inference/models/{id}/pipeline/feature-extraction``."""
        body, refused = await self._admit(request)
        if refused is not None:
            return refused
        shape = hf_embeddings_body if "model" in request.match_info else openai_embeddings_body

        def computed(sent: Any) -> FakeResponse:
            status, answer = shape(sent)
            return FakeResponse(status=status, json=answer)

        return await self._answer(request, body, computed)

    async def _any(self, request: web.Request) -> web.StreamResponse:
        """Any other route: its script (:meth:`script`), else the shared queue, else a 404."""
        body, refused = await self._admit(request)
        if refused is not None:
            return refused
        return await self._answer(request, body, lambda _: _not_scripted(request))

    def _echo(self, body: Any) -> FakeResponse:
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return FakeResponse.error(
                422, "Failed to deserialize the JSON body into the target type: missing field `messages`"
            )
        text = _last_user_text(body)
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
            try:
                await response.write(piece)
            except ConnectionResetError:
                return response  # the client hung up mid-answer: what a real server shrugs off
        await response.write_eof()
        return response
