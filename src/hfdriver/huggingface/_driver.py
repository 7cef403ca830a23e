"""``HuggingFaceDriver``: chat completions over the router or any OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import json
import logging
import platform
import weakref
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

import aiohttp

from hfdriver._version import __version__
from hfdriver.auth import Token, missing_token_message, resolve_token
from hfdriver.dto.convert import parse_response, to_payload
from hfdriver.dto.request import GenerateRequest, validate_routing
from hfdriver.dto.response import GenerateResponse
from hfdriver.errors import (
    HuggingFaceError,
    HuggingFaceErrorKind,
    error_from_exception,
    error_from_response,
)
from hfdriver.huggingface._config import ROUTER_URL, RetryPolicy, Timeouts
from hfdriver.huggingface._retry import call_with_retries
from hfdriver.huggingface._stream import HuggingFaceStream

if TYPE_CHECKING:
    from hfdriver.hub import RouterModel, WhoAmI

__all__ = ["HuggingFaceDriver", "USER_AGENT"]

logger = logging.getLogger("hfdriver")

USER_AGENT = f"hfdriver/{__version__} aiohttp/{aiohttp.__version__} python/{platform.python_version()}"

_TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


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

    >>> async def main():  # doctest: +SKIP
    ...     async with HuggingFaceDriver(model="meta-llama/Llama-3.2-1B-Instruct") as driver:
    ...         print((await driver.generate(request)).text)
    """

    def __init__(
        self,
        token: str | Token | None = None,
        model: str | None = None,
        base_url: str = ROUTER_URL,
        routing: str | None = None,
        bill_to: str | None = None,
        timeouts: Timeouts = Timeouts(),  # noqa: B008 - frozen value
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen value
        session: aiohttp.ClientSession | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        connection_limit: int = 100,
        connection_limit_per_host: int = 0,
        catalogue: Sequence[RouterModel] | None = None,
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
        self.base_url = base_url
        self.model = model
        self.routing = routing
        self.bill_to = bill_to
        self.timeouts = timeouts
        self.retry = retry
        self._token = resolve_token(token)
        self._token_required = _is_router(base_url)
        self._url = f"{base_url}/chat/completions"
        self._session = session
        self._owns_session = session is None
        self._closed = False
        self._limit = connection_limit
        self._limit_per_host = connection_limit_per_host
        self._streams: weakref.WeakSet[HuggingFaceStream] = weakref.WeakSet()
        self._providers_by_model: dict[str, frozenset[str]] | None = None
        self._warned_routes: set[str] = set()
        if catalogue is not None:
            self.use_catalogue(catalogue)
        # A unary answer arrives only once it is fully generated, so silence before it is normal:
        # `total` bounds unary calls, `read` (silence between bytes) bounds streams.
        self._unary_timeout = aiohttp.ClientTimeout(total=timeouts.total, connect=timeouts.connect)
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None, connect=timeouts.connect, sock_read=timeouts.read
        )
        base_headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json"}
        if bill_to:
            base_headers["X-HF-Bill-To"] = bill_to
        if headers:
            base_headers.update(headers)
        if self._token is not None:
            base_headers["Authorization"] = f"Bearer {self._token.reveal()}"
        self._headers = base_headers
        self._stream_headers = {**base_headers, "Accept": "text/event-stream"}

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
        self._closed = True
        for stream in list(self._streams):
            await stream.aclose()
        session, self._session = self._session, None
        if session is not None and self._owns_session and not session.closed:
            await session.close()

    def _get_session(self) -> aiohttp.ClientSession:
        session = self._session
        if session is not None:
            return session
        if self._closed:
            raise HuggingFaceError(
                HuggingFaceErrorKind.CONFIG,
                "this driver was closed; create a new HuggingFaceDriver",
            )
        connector = aiohttp.TCPConnector(
            limit=self._limit, limit_per_host=self._limit_per_host, ttl_dns_cache=300
        )
        self._session = aiohttp.ClientSession(connector=connector, raise_for_status=False)
        return self._session

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
            return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
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

        session = self._get_session()
        hub = HubClient(token=self._token, endpoint=endpoint, session=session)
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

    @property
    def _secret(self) -> str | None:
        return self._token.reveal() if self._token is not None else None

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        """Send ``request`` and return the whole answer (retried per the :class:`RetryPolicy`)."""
        body = self._encode(request, stream=False)
        self._check_token()
        return await call_with_retries(self.retry, "generate", lambda: self._generate_once(body))

    async def _generate_once(self, body: bytes) -> GenerateResponse:
        session = self._get_session()
        try:
            async with session.post(
                self._url, data=body, headers=self._headers, timeout=self._unary_timeout
            ) as resp:
                raw = await resp.read()
                status = resp.status
                headers = resp.headers
        except _TRANSPORT_ERRORS as exc:
            raise error_from_exception(exc, phase="request", token=self._secret) from exc
        if status >= 300:
            raise error_from_response(status, headers, raw, token=self._secret)
        try:
            data = json.loads(raw)
        except ValueError:
            raise HuggingFaceError(
                HuggingFaceErrorKind.DECODE,
                "the server answered 200 with a body that is not JSON "
                f"({raw[:120].decode('utf-8', 'replace')!r}); check that base_url is an OpenAI-compatible /v1",
                request_id=headers.get("x-request-id"),
                provider=headers.get("x-inference-provider"),
            ) from None
        return parse_response(
            data,
            provider=headers.get("x-inference-provider"),
            request_id=headers.get("x-request-id"),
        )

    def generate_stream(self, request: GenerateRequest) -> HuggingFaceStream:
        """Stream the answer. Use ``async with driver.generate_stream(req) as stream:`` and
        ``async for chunk in stream``; a bare ``async for`` works too."""
        body = self._encode(request, stream=True)
        self._check_token()
        stream = HuggingFaceStream(self, body, self._stream_headers)
        self._streams.add(stream)
        return stream

    # ------------------------------------------------------------------ transport helpers (streams)
    async def _post(self, body: bytes, headers: dict[str, str]) -> aiohttp.ClientResponse:
        """POST and return a response with status < 300 (an error status raises, mapped)."""
        session = self._get_session()
        try:
            resp = await session.post(self._url, data=body, headers=headers, timeout=self._stream_timeout)
        except _TRANSPORT_ERRORS as exc:
            raise error_from_exception(exc, phase="request", token=self._secret) from exc
        if resp.status >= 300:
            try:
                raw = await resp.read()
            except _TRANSPORT_ERRORS:
                raw = b""
            finally:
                resp.release()
            raise error_from_response(resp.status, resp.headers, raw, token=self._secret)
        return resp

    async def _read(self, resp: aiohttp.ClientResponse, *, phase: str) -> bytes:
        try:
            return await resp.read()
        except _TRANSPORT_ERRORS as exc:
            raise error_from_exception(exc, phase=phase, token=self._secret) from exc

    async def _read_chunk(self, resp: aiohttp.ClientResponse, *, phase: str) -> bytes:
        try:
            return await resp.content.readany()
        except _TRANSPORT_ERRORS as exc:
            raise error_from_exception(exc, phase=phase, token=self._secret) from exc
