"""``HuggingFaceDriver``: chat completions over the router or any OpenAI-compatible server."""

from __future__ import annotations

import json
import logging
import weakref
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from hfdriver.auth import Token, missing_token_message, resolve_token
from hfdriver.dto.request import GenerateRequest, validate_model, validate_routing
from hfdriver.dto.response import GenerateResponse
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind, redact, scrub
from hfdriver.hub import ROUTER_URL
from hfdriver.huggingface._stream import HuggingFaceStream
from hfdriver.openai import DEFAULT_MAX_EVENT_BYTES, parse_response, to_payload
from hfdriver.transport import (
    DEFAULT_MAX_BODY_BYTES,
    ClientSession,
    HttpClient,
    RetryPolicy,
    Timeouts,
    call_with_retries,
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
    return base_url.rstrip("/").startswith("https://router.huggingface.co")


class HuggingFaceDriver:
    """Chat completions over the Hugging Face router, or any OpenAI-compatible ``/v1``.

    Args:
        token: a Hugging Face token; defaults to ``HF_TOKEN`` & co., then the token file.
            Required for the router; optional for other base URLs.
        model: the default model (``org/name``, optionally ``:fastest``/``:cheapest``/``:provider``).
        base_url: the router by default; a dedicated Inference Endpoint, TGI, vLLM, llama.cpp
            server or any OpenAI-compatible ``.../v1`` URL works unchanged.
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

    >>> async def main():  # doctest: +SKIP
    ...     async with HuggingFaceDriver(model="meta-llama/Llama-3.2-1B-Instruct") as driver:
    ...         print((await driver.generate(request)).text)
    """

    def __init__(
        self,
        token: str | Token | None = None,
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
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise HuggingFaceError(
                HuggingFaceErrorKind.CONFIG, f"base_url {base_url!r} must be an http(s):// URL"
            )
        base_url = base_url.rstrip("/")
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
        self._token_required = _is_router(base_url)
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

    async def aclose(self) -> None:
        """Close open streams and the driver's own session (never a caller's session)."""
        for stream in list(self._streams):
            await stream.aclose()
        await self._http.aclose()

    # ------------------------------------------------------------------ requests
    def _encode(self, request: GenerateRequest, *, stream: bool) -> bytes:
        if not isinstance(request, GenerateRequest):
            raise HuggingFaceError(
                HuggingFaceErrorKind.INVALID_REQUEST,
                f"expected a GenerateRequest, got {type(request).__name__}; build one with GenerateRequest.builder()",
            )
        payload = to_payload(request, model=self.model, routing=self.routing, stream=stream)
        if self._providers_by_model is not None:
            self._check_route(payload["model"])
        try:
            return _encode_json(payload).encode()
        except (TypeError, ValueError) as exc:
            raise HuggingFaceError(
                HuggingFaceErrorKind.INVALID_REQUEST,
                f"extra: a value cannot be sent as JSON ({exc}); use str, numbers, lists and dicts",
            ) from None

    def use_catalogue(self, models: Sequence[RouterModel]) -> None:
        """Know which providers serve which models, to warn about unlisted provider routes."""
        self._providers_by_model = {m.id: frozenset(p.provider for p in m.providers) for m in models}

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

        hub = HubClient(self._token, endpoint=endpoint, session=self._http.session)
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
        body = self._encode(request, stream=False)
        self._check_token()
        return await call_with_retries(self.retry, "generate", lambda: self._generate_once(body))

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
        body = self._encode(request, stream=True)
        self._check_token()
        stream = HuggingFaceStream(
            self._http,
            self._url,
            body,
            headers=self._stream_headers,
            timeout=self._stream_timeout,
            retry=self.retry,
            max_event_bytes=self.max_event_bytes,
            max_body_bytes=self.max_body_bytes,
        )
        self._streams.add(stream)
        return stream
