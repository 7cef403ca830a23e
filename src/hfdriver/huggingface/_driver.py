"""``HuggingFaceDriver``: chat completions over the router or any OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import attrs

from hfdriver.auth import NO_TOKEN, NoToken, Token, missing_token_message, resolve_token
from hfdriver.cache import Cache, CachedStream, CacheLayer
from hfdriver.dto.request import GenerateRequest, validate_model, validate_routing
from hfdriver.dto.response import GenerateResponse
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind, redact, scrub
from hfdriver.fallback import FallbackDriver, FallbackStream, Route
from hfdriver.hub import ROUTER_URL, PriceBook, router_price_book
from hfdriver.huggingface._stream import HuggingFaceStream
from hfdriver.openai import DEFAULT_MAX_EVENT_BYTES, check_text, parse_response, resolve_model, to_payload
from hfdriver.telemetry import InstrumentedStream, enabled, start_chat, traced
from hfdriver.transport import (
    DEFAULT_MAX_BODY_BYTES,
    ClientSession,
    HttpClient,
    RetryPolicy,
    Timeouts,
    call_with_retries,
    split_credentials,
    stream_timeout,
    unary_timeout,
)

if TYPE_CHECKING:
    from hfdriver.hub import RouterModel, WhoAmI

__all__ = ["HuggingFaceDriver"]

logger = logging.getLogger("hfdriver")

# json.dumps with options builds a new encoder on every call: one, made once, for the hot path.
_encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


# Seconds an answer waits for the price list after it arrived.
_PRICE_WAIT = 5.0


def _is_router(base_url: str) -> bool:
    return base_url.rstrip("/").startswith("https://router.huggingface.co")


class HuggingFaceDriver:
    """Chat completions over the Hugging Face router, or any OpenAI-compatible ``/v1``.

    Args:
        token: a Hugging Face token; defaults to ``HF_TOKEN`` & co., then the token file.
            Required for the router; optional for other base URLs. ``NO_TOKEN`` sends none and
            looks nowhere (a server that takes no token).
        model: the default model (``org/name``, optionally ``:fastest``/``:cheapest``/``:provider``).
        base_url: the router by default; a dedicated Inference Endpoint, TGI, vLLM, llama.cpp
            server or any OpenAI-compatible ``.../v1`` URL works unchanged. A ``user:password@``
            in it is sent as Basic auth (and never shown); the token found in the environment
            is then not sent, and a ``token=`` given as well is refused.
        routing: default routing policy or provider (``fastest``, ``cheapest``, ``preferred``,
            ``together``...), appended to the model as ``:<routing>``.
        bill_to: an organisation to bill (sends ``X-HF-Bill-To``).
        timeouts, retry: :class:`Timeouts` and :class:`RetryPolicy`.
        session: an ``aiohttp.ClientSession`` to use; the driver never closes a session it did
            not create.
        headers: extra headers sent with every request.
        connection_limit, connection_limit_per_host: pool sizes of the driver's own session.
        catalogue: the router's catalogue (``await HubClient().router_models()``); when given, a
            request routed to a provider the catalogue does not list for its model is still sent,
            with a WARNING.
        max_body_bytes: the largest unary answer read (64 MiB); a larger one is ``DECODE``.
        max_event_bytes: the longest SSE line or event of a stream (16 MiB); past it, ``STREAM``.
        cache: a response :class:`~hfdriver.cache.Cache` (``SQLiteCache(path)``, ``MemoryCache()``):
            complete answers are stored and replayed, identical concurrent requests make one call.
        fallbacks: other routes to try when one fails in a way another may not (out of credits,
            rate-limited, overloaded, down, model not served): ``["org/model:provider",
            "org/other-model"]``, tried in order after the request's own model (see
            :class:`~hfdriver.fallback.FallbackDriver`, whose ``cooldown`` skips a failing route).
        costs: fill ``response.cost`` from the router catalogue's prices (fetched once per process
            and hour, in parallel with the first request). On by default for the router, off for
            other base URLs; prices in ``catalogue`` are always used.

    >>> async def main():  # doctest: +SKIP
    ...     async with HuggingFaceDriver(model="meta-llama/Llama-3.2-1B-Instruct") as driver:
    ...         print((await driver.generate(request)).text)
    """

    attempt_gate_aware = True
    """Every attempt (retries too) passes :func:`hfdriver.transport.use_attempt_gate`'s gate."""

    def __init__(
        self,
        token: str | Token | NoToken | None = None,
        *,
        model: str | None = None,
        base_url: str = ROUTER_URL,
        routing: str | None = None,
        bill_to: str | None = None,
        timeouts: Timeouts = Timeouts(),  # noqa: B008 - frozen value
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen value
        session: ClientSession | None = None,
        headers: Mapping[str, str] | None = None,
        connection_limit: int = 100,
        connection_limit_per_host: int = 0,
        catalogue: Sequence[RouterModel] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        cache: Cache | None = None,
        costs: bool | None = None,
        fallbacks: Sequence[str] = (),
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise HuggingFaceError(
                HuggingFaceErrorKind.CONFIG, f"base_url {base_url!r} must be an http(s):// URL"
            )
        base_url, basic_auth = split_credentials(base_url.rstrip("/"))
        if base_url.endswith("/chat/completions"):
            base_url = base_url[: -len("/chat/completions")]
        if routing is not None:
            validate_routing(routing)
        if model is not None:
            validate_model(model)
        self.base_url = base_url
        self.model = model
        self.routing = routing
        self.bill_to = bill_to
        self.timeouts = timeouts
        self.retry = retry
        self._token = resolve_token(token)
        if basic_auth is not None:
            if self._token is not None and token is not None:
                raise HuggingFaceError(
                    HuggingFaceErrorKind.CONFIG,
                    f"base_url {base_url} was given with a user name and password in it, and a token too: "
                    "both cannot go in the Authorization header; keep one",
                )
            self._token = None  # a token found in the environment is not for this server
        self._token_required = _is_router(base_url) and basic_auth is None
        self._url = f"{base_url}/chat/completions"
        for name, limit in (("max_body_bytes", max_body_bytes), ("max_event_bytes", max_event_bytes)):
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1024:
                raise HuggingFaceError(
                    HuggingFaceErrorKind.CONFIG, f"{name} must be an integer >= 1024 bytes, got {limit!r}"
                )
        self.max_body_bytes = max_body_bytes
        self.max_event_bytes = max_event_bytes
        self._streams: weakref.WeakSet[HuggingFaceStream] = weakref.WeakSet()
        self._providers_by_model: dict[str, frozenset[str]] | None = None
        self._warned_routes: set[str] = set()
        self._cache = (
            CacheLayer(cache, read=timeouts.read, total=timeouts.total) if cache is not None else None
        )
        self._costs = _is_router(base_url) if costs is None else bool(costs)
        self._prices: PriceBook | None = None
        self._prices_task: asyncio.Task[PriceBook | None] | None = None
        if catalogue is not None:
            self.use_catalogue(catalogue)
        self.fallbacks = tuple(fallbacks)
        for route in self.fallbacks:
            validate_model(route)
        self._fallback = (
            FallbackDriver(
                [
                    Route(model or "the request's model", _Routes(self), model)
                    for model in (None, *self.fallbacks)
                ],
                instrument=False,  # this driver's own span covers its routes
            )
            if self.fallbacks
            else None
        )
        # A unary answer arrives only once it is fully generated, so silence before it is normal:
        # `total` bounds unary calls, `read` (silence between bytes) bounds streams.
        self._unary_timeout = unary_timeout(timeouts)
        self._stream_timeout = stream_timeout(timeouts)
        base_headers = {"Content-Type": "application/json"}
        if bill_to:
            base_headers["X-HF-Bill-To"] = bill_to
        if headers:
            base_headers.update(headers)
        if self._token is not None:
            base_headers["Authorization"] = f"Bearer {self._token.reveal()}"
        elif basic_auth is not None:
            base_headers["Authorization"] = basic_auth
        self._http = HttpClient(
            session=session,
            headers=base_headers,
            secret=self._token,
            limit=connection_limit,
            limit_per_host=connection_limit_per_host,
            owner="HuggingFaceDriver",
        )
        self._stream_headers = {**self._http.headers, "Accept": "text/event-stream"}

    def __repr__(self) -> str:
        token = self._token.masked if self._token else None
        return f"HuggingFaceDriver(base_url={self.base_url!r}, model={self.model!r}, token={token!r})"

    def cache_identity(self) -> str:
        """The server answers come from, for a response cache (the model is in each request)."""
        return f"base_url={self.base_url}"

    @property
    def token(self) -> Token | None:
        """The resolved token (its ``repr`` is redacted)."""
        return self._token

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> HuggingFaceDriver:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def cache(self) -> Cache | None:
        """The response cache, if one was given."""
        return self._cache.cache if self._cache is not None else None

    async def aclose(self) -> None:
        """Close open streams, the cache and the driver's own session (never a caller's session)."""
        for stream in list(self._streams):
            await stream.aclose()
        task, self._prices_task = self._prices_task, None
        if task is not None and not task.done():
            task.cancel()
        try:
            if self._cache is not None:
                await self._cache.cache.aclose()
        finally:
            await self._http.aclose()

    # ------------------------------------------------------------------ requests
    def _encode(self, request: GenerateRequest, *, stream: bool) -> tuple[bytes, dict[str, Any]]:
        if not isinstance(request, GenerateRequest):
            raise HuggingFaceError(
                HuggingFaceErrorKind.INVALID_REQUEST,
                f"expected a GenerateRequest, got {type(request).__name__}; build one with GenerateRequest.builder()",
            )
        payload = to_payload(request, model=self.model, routing=self.routing, stream=stream)
        if self._providers_by_model is not None:
            self._check_route(payload["model"])
        try:
            return _encode_json(payload).encode(), payload
        except (TypeError, ValueError) as exc:
            check_text(payload)  # a lone surrogate: name its field
            raise HuggingFaceError(
                HuggingFaceErrorKind.INVALID_REQUEST,
                f"extra: a value cannot be sent as JSON ({exc}); use str, numbers, lists and dicts",
            ) from None

    def use_catalogue(self, models: Sequence[RouterModel]) -> None:
        """Know which providers serve which models, to warn about unlisted provider routes."""
        self._providers_by_model = {m.id: frozenset(p.provider for p in m.providers) for m in models}
        book = PriceBook.from_models(models)
        if len(book):
            self._prices = book

    # ------------------------------------------------------------------ costs
    def _start_prices(self) -> asyncio.Task[PriceBook | None] | None:
        """Begin fetching prices (once), so they arrive while the first request runs."""
        if self._prices is not None or not self._costs:
            return None
        task = self._prices_task
        if task is None:
            task = self._prices_task = asyncio.get_running_loop().create_task(
                router_price_book(self.base_url, token=self._token or NO_TOKEN, session=self._http.session)
            )
        return task

    async def price(self, response: GenerateResponse, model: str) -> GenerateResponse:
        """``response`` with its :class:`~hfdriver.dto.response.Cost`, when prices are known."""
        if response.cost is not None or response.usage is None:
            return response
        book = self._prices
        if book is None:
            task = self._start_prices()
            if task is None:
                return response
            try:
                # Fetched in parallel with the request, so normally already here; a slow
                # catalogue leaves this answer's cost unknown rather than delaying it.
                book = await asyncio.wait_for(asyncio.shield(task), _PRICE_WAIT)
            except asyncio.CancelledError:
                raise
            except Exception:  # a price must never fail an answer (TimeoutError included)
                logger.debug("hfdriver: price lookup failed", exc_info=True)
                return response
            if book is None:
                return response
            self._prices = book
        try:
            cost = book.cost(model, response.provider, response.usage)
        except Exception:  # a price must never fail an answer
            logger.warning("hfdriver: could not price an answer of %s", model, exc_info=True)
            return response
        return attrs.evolve(response, cost=cost) if cost is not None else response

    def _check_route(self, model: str) -> None:
        bare, _, route = model.partition(":")
        if not route or route in ("fastest", "cheapest", "preferred") or model in self._warned_routes:
            return
        listed = (self._providers_by_model or {}).get(bare)
        if listed is not None and route not in listed:
            self._warned_routes.add(model)
            logger.warning(
                "hfdriver: provider %r is not listed by the router for %s (listed: %s); sending anyway",
                route,
                bare,
                ", ".join(sorted(listed)) or "none",
            )

    async def validate_token(self, *, endpoint: str | None = None) -> WhoAmI:
        """Check the token with the Hub (``/api/whoami-v2``) and return who it belongs to.

        Raises ``AUTHENTICATION`` for a bad token, ``CONFIG`` for none, and ``PERMISSION``
        when this driver targets the router and a fine-grained token lacks
        "Make calls to Inference Providers".
        """
        from hfdriver.hub import HubClient

        hub = HubClient(self._token or NO_TOKEN, endpoint=endpoint, session=self._http.session)
        who = await hub.whoami()
        if self._token_required and not who.can_call_inference_providers:
            raise HuggingFaceError(
                HuggingFaceErrorKind.PERMISSION,
                f"the token {who.token_name or ''!s} of {who.name} cannot call Inference Providers: edit it at "
                "https://huggingface.co/settings/tokens and tick 'Make calls to Inference Providers'",
            )
        return who

    def _check_token(self) -> None:
        if self._token is None and self._token_required:
            raise HuggingFaceError(HuggingFaceErrorKind.CONFIG, missing_token_message())

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        """Send ``request`` and return the whole answer (retried per the :class:`RetryPolicy`;
        then, with ``fallbacks``, on the next route)."""
        call = (
            start_chat(request, model=self._model_of(request), base_url=self.base_url) if enabled() else None
        )
        fallback = self._fallback
        if fallback is not None:
            return await traced(call, lambda: fallback.generate(request))
        if call is None:  # the hot path: no span, no extra frame
            return await self._generate_route(request)
        return await traced(call, lambda: self._generate_route(request))

    def _model_of(self, request: GenerateRequest) -> str:
        """The model string the request is sent with (for the span's name)."""
        try:
            return resolve_model(
                getattr(request, "model", None) or self.model,
                getattr(request, "routing", None) or self.routing,
            )
        except HuggingFaceError:
            return "unknown"  # no model: the call itself raises INVALID_REQUEST

    async def _generate_route(self, request: GenerateRequest) -> GenerateResponse:
        body, payload = self._encode(request, stream=False)
        self._check_token()
        if self._cache is not None:
            key = CacheLayer.key(self.base_url, payload)
            return await self._cache.generate(key, lambda: self._generate(body, payload["model"]))
        return await self._generate(body, payload["model"])

    async def _generate(self, body: bytes, model: str) -> GenerateResponse:
        if self._costs and self._prices is None:
            self._start_prices()
        response = await call_with_retries(self.retry, "generate", lambda: self._generate_once(body))
        if self._costs or self._prices is not None:
            response = await self.price(response, model)
        return response

    async def _generate_once(self, body: bytes) -> GenerateResponse:
        reply = await self._http.fetch(
            "POST", self._url, data=body, timeout=self._unary_timeout, max_bytes=self.max_body_bytes
        )
        headers = reply.headers
        request_id = scrub(headers.get("x-request-id"), self._token)
        provider = scrub(headers.get("x-inference-provider"), self._token)
        try:
            data = json.loads(reply.body)
        except (ValueError, RecursionError):
            snippet = redact(reply.body[:120].decode("utf-8", "replace"), self._token)
            raise HuggingFaceError(
                HuggingFaceErrorKind.DECODE,
                f"the server answered 200 with a body that is not JSON ({snippet!r}); "
                "check that base_url is an OpenAI-compatible /v1",
                request_id=request_id,
                provider=provider,
            ) from None
        return parse_response(data, provider=provider, request_id=request_id, token=self._token)

    def generate_stream(
        self, request: GenerateRequest
    ) -> HuggingFaceStream | CachedStream | FallbackStream | InstrumentedStream:
        """Stream the answer. Use ``async with driver.generate_stream(req) as stream:`` and
        ``async for chunk in stream``; a bare ``async for`` works too. With a cache, a cached
        answer is replayed as a stream (``stream.cached`` is True); with ``fallbacks``, the next
        route is tried while nothing has been delivered."""
        stream = (
            self._fallback.generate_stream(request)
            if self._fallback is not None
            else self._stream_route(request)
        )
        call = (
            start_chat(request, model=self._model_of(request), base_url=self.base_url, stream=True)
            if enabled()
            else None
        )
        return stream if call is None else InstrumentedStream(stream, call)

    def _stream_route(self, request: GenerateRequest) -> HuggingFaceStream | CachedStream:
        body, payload = self._encode(request, stream=True)
        self._check_token()
        if self._cache is not None:
            key = CacheLayer.key(self.base_url, payload)
            return self._cache.stream(key, lambda: self._open_stream(body, payload["model"]))
        return self._open_stream(body, payload["model"])

    def _open_stream(self, body: bytes, model: str) -> HuggingFaceStream:
        priced = self._costs or self._prices is not None
        if self._costs and self._prices is None:
            with contextlib.suppress(RuntimeError):  # no running loop yet: fetched at collect()
                self._start_prices()
        stream = HuggingFaceStream(
            self._http,
            self._url,
            body,
            headers=self._stream_headers,
            timeout=self._stream_timeout,
            retry=self.retry,
            max_event_bytes=self.max_event_bytes,
            max_body_bytes=self.max_body_bytes,
            pricer=(lambda response: self.price(response, model)) if priced else None,
        )
        self._streams.add(stream)
        return stream


class _Routes:
    """The fallback routes' driver: this driver's own calls, with no span and no fallback (each
    :class:`Route` gives the model)."""

    def __init__(self, driver: HuggingFaceDriver) -> None:
        self._driver = driver

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        return await self._driver._generate_route(request)

    def generate_stream(self, request: GenerateRequest) -> HuggingFaceStream | CachedStream:
        return self._driver._stream_route(request)

    async def aclose(self) -> None:
        return None  # the driver closes itself

    async def __aenter__(self) -> _Routes:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None
