"""``HuggingFaceDriver``: chat completions over the router or any OpenAI-compatible server."""

from __future__ import annotations

import json
import logging
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hfdriver._closing import Closing
from hfdriver.auth import NO_TOKEN, NoToken, Token, missing_token_message, resolve_token
from hfdriver.driver import DriverInfo
from hfdriver.dto.embed import EmbedRequest, EmbedResponse
from hfdriver.dto.request import GenerateRequest, validate_model, validate_routing
from hfdriver.dto.response import GenerateResponse
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind, redact, scrub
from hfdriver.hub import ROUTER_ROOT, PriceBook, ProviderMapping, router_price_book, router_root
from hfdriver.huggingface._costs import Priced, Pricer
from hfdriver.huggingface._embed import (
    EMBED_ROUTES,
    EMBED_TASK,
    ENDPOINT_FLOAT_ROUTE,
    ENDPOINT_ROUTE,
    EmbedCall,
    encode_body,
    fetch_embeddings,
    refuses_base64,
)
from hfdriver.huggingface._mapping import ProviderResolver, split_model
from hfdriver.huggingface._stream import HuggingFaceStream
from hfdriver.openai import DEFAULT_MAX_EVENT_BYTES, check_text, parse_response, to_payload
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


def _is_router(base_url: str) -> bool:
    return base_url.rstrip("/").startswith(ROUTER_ROOT)


class HuggingFaceDriver(Closing):
    """Chat completions over the Hugging Face router, or any OpenAI-compatible ``/v1``.

    Args:
        token: a Hugging Face token; defaults to ``HF_TOKEN`` & co., then the token file.
            Required for the router; optional for other base URLs. ``NO_TOKEN`` sends none and
            looks nowhere (a server that takes no token).
        model: the default model (``org/name``, optionally ``:fastest``/``:cheapest``/``:provider``).
        embedding_model: the default model of :meth:`embed` (``model`` when unset).
        base_url: the router by default; a dedicated Inference Endpoint, TGI, vLLM, llama.cpp
            server or any OpenAI-compatible ``.../v1`` URL works unchanged. A ``user:password@``
            in it is sent as Basic auth (and never shown); the token found in the environment
            is then not sent, and a ``token=`` given as well is refused.
        router_url: the router's root (``$HF_ROUTER_URL``, else ``https://router.huggingface.co``):
            chat goes to ``{router_url}/v1/chat/completions`` and embeddings to
            ``{router_url}/{provider}/...``, so one setting points everything at another router
            (a fake one in tests). Used when ``base_url`` is not given (or is that router's ``/v1``).
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
        costs: fill ``response.cost`` from the router catalogue's prices (fetched once per process
            and hour, in parallel with the first request). On by default for the router, off for
            other base URLs; prices in ``catalogue`` are always used.

    A core driver: it encodes, sends, parses and prices. A response cache, fallbacks, request
    defaults and OpenTelemetry spans are wrappers around it: :func:`hfdriver.compose` (which
    ``create_driver`` uses) puts them in place.

    >>> async def main():  # doctest: +SKIP
    ...     async with HuggingFaceDriver(model="meta-llama/Llama-3.2-1B-Instruct") as driver:
    ...         print((await driver.generate(request)).text)
    """

    def __init__(
        self,
        token: str | Token | NoToken | None = None,
        *,
        model: str | None = None,
        embedding_model: str | None = None,
        base_url: str | None = None,
        router_url: str | None = None,
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
        costs: bool | None = None,
    ) -> None:
        for name, url in (("router_url", router_url), ("base_url", base_url)):
            if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
                raise HuggingFaceError(
                    HuggingFaceErrorKind.CONFIG, f"{name} {url!r} must be an http(s):// URL"
                )
        self.router_url = router_root(router_url)
        if base_url is None:
            base_url = f"{self.router_url}/v1"
        base_url, basic_auth = split_credentials(base_url.rstrip("/"))
        if base_url.endswith("/chat/completions"):
            base_url = base_url[: -len("/chat/completions")]
        self._router = base_url == f"{self.router_url}/v1" or _is_router(base_url)
        if self._router and base_url != f"{self.router_url}/v1":
            self.router_url = base_url[: -len("/v1")] if base_url.endswith("/v1") else ROUTER_ROOT
        if routing is not None:
            validate_routing(routing)
        for name, value in (("model", model), ("embedding_model", embedding_model)):
            if value is not None:
                validate_model(value, name)
        self.base_url = base_url
        self.model = model
        self.embedding_model = embedding_model
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
        self._token_required = self._router and basic_auth is None
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
        self._pricer = Pricer(
            lambda: router_price_book(
                self.base_url, token=self._token or NO_TOKEN, session=self._http.session
            ),
            enabled=self._router if costs is None else bool(costs),
        )
        if catalogue is not None:
            self.use_catalogue(catalogue)
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
        self._providers = ProviderResolver(self._provider_mapping)
        self._endpoint_route = ENDPOINT_ROUTE

    def __repr__(self) -> str:
        token = self._token.masked if self._token else None
        return f"HuggingFaceDriver(base_url={self.base_url!r}, model={self.model!r}, token={token!r})"

    def describe(self) -> DriverInfo:
        """What telemetry, batches and ``serve`` need to know of this driver."""
        return DriverInfo(
            name="HuggingFaceDriver",
            system="huggingface",
            model=self.model,
            routing=self.routing,
            base_url=self.base_url,
            gate_aware=True,
            max_retry_after=self.retry.max_retry_after,
            read_timeout=self.timeouts.read,
            total_timeout=self.timeouts.total,
        )

    def cache_identity(self) -> str:
        """The server answers come from, for a response cache (the model is in each request)."""
        return f"base_url={self.base_url}"

    @property
    def token(self) -> Token | None:
        """The resolved token (its ``repr`` is redacted)."""
        return self._token

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Close open streams and the driver's own session (never a caller's session). Safe to
        call twice."""
        for stream in list(self._streams):
            await stream.aclose()
        self._pricer.cancel()
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
            self._pricer.book = book

    async def price(self, response: Priced, model: str) -> Priced:
        """``response`` (an answer or embeddings) with its :class:`~hfdriver.dto.response.Cost`,
        when prices are known."""
        return await self._pricer.price(response, model)

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
        """Send ``request`` and return the whole answer (retried per the :class:`RetryPolicy`)."""
        body, payload = self._encode(request, stream=False)
        self._check_token()
        return await self._generate(body, payload["model"])

    async def _generate(self, body: bytes, model: str) -> GenerateResponse:
        self._pricer.start()
        response = await call_with_retries(self.retry, "generate", lambda: self._generate_once(body))
        if self._pricer.active:
            response = await self._pricer.price(response, model)
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

    def generate_stream(self, request: GenerateRequest) -> HuggingFaceStream:
        """Stream the answer. Use ``async with driver.generate_stream(req) as stream:`` and
        ``async for chunk in stream``; a bare ``async for`` works too."""
        body, payload = self._encode(request, stream=True)
        self._check_token()
        return self._open_stream(body, payload["model"])

    def _open_stream(self, body: bytes, model: str) -> HuggingFaceStream:
        priced = self._pricer.active
        self._pricer.start()  # without a running loop yet: fetched at collect()
        stream = HuggingFaceStream(
            self._http,
            self._url,
            body,
            headers=self._stream_headers,
            timeout=self._stream_timeout,
            retry=self.retry,
            max_event_bytes=self.max_event_bytes,
            max_body_bytes=self.max_body_bytes,
            pricer=(lambda response: self._pricer.price(response, model)) if priced else None,
        )
        self._streams.add(stream)
        return stream

    # ------------------------------------------------------------------ embeddings
    async def _provider_mapping(self, model: str) -> tuple[ProviderMapping, ...]:
        from hfdriver.hub import HubClient

        hub = HubClient(self._token or NO_TOKEN, session=self._http.session)
        return await hub.provider_mapping(model)

    async def _plan_embed(self, request: EmbedRequest) -> EmbedCall:
        if not isinstance(request, EmbedRequest):
            raise HuggingFaceError(
                HuggingFaceErrorKind.INVALID_REQUEST,
                f"expected an EmbedRequest, got {type(request).__name__}; build one with EmbedRequest.builder()",
            )
        named = request.model or self.embedding_model or self.model
        if not self._router:  # an OpenAI-compatible server: its own /embeddings, the model as named
            route = self._endpoint_route
            body = encode_body(route.payload(request, named))
            return EmbedCall(f"{self.base_url}{route.path}", body, route, named, None, request)
        if named is None:
            raise HuggingFaceError(
                HuggingFaceErrorKind.INVALID_REQUEST,
                "model: no model to embed with; give EmbedRequest(model='org/name') (e.g. "
                "'BAAI/bge-small-en-v1.5') or HuggingFaceDriver(model=...)",
            )
        model, suffix = split_model(named)
        chosen = await self._providers.resolve(
            model, suffix or request.routing or self.routing, EMBED_TASK, EMBED_ROUTES
        )
        route = EMBED_ROUTES[chosen.provider]
        url = f"{self.router_url}/{chosen.provider}{route.path.format(model=chosen.provider_model)}"
        body = encode_body(route.payload(request, chosen.provider_model))
        return EmbedCall(url, body, route, model, chosen.provider, request)

    async def embed(self, request: EmbedRequest) -> EmbedResponse:
        """One vector per input, in input order (retried per the :class:`RetryPolicy`).

        On the router, the provider is the model's ``:provider`` suffix (or ``routing``), else the
        first live provider of the Hub's mapping for ``feature-extraction`` that hfdriver knows;
        elsewhere, the server's OpenAI-compatible ``{base_url}/embeddings``."""
        self._check_token()
        call = await self._plan_embed(request)
        self._pricer.start()
        try:
            response = await call_with_retries(self.retry, "embed", lambda: self._embed_once(call))
        except HuggingFaceError as exc:
            if call.route is not ENDPOINT_ROUTE or not refuses_base64(exc):
                raise
            # A server that refuses base64 vectors: JSON numbers from now on (this driver remembers).
            self._endpoint_route = ENDPOINT_FLOAT_ROUTE
            call = await self._plan_embed(request)
            response = await call_with_retries(self.retry, "embed", lambda: self._embed_once(call))
        if call.model is not None and self._pricer.active:
            response = await self._pricer.price(response, call.model)
        return response

    async def _embed_once(self, call: EmbedCall) -> EmbedResponse:
        return await fetch_embeddings(
            self._http,
            call,
            timeout=self._unary_timeout,
            max_body_bytes=self.max_body_bytes,
            secret=self._token,
        )
