"""``HubClient``: token validation, model search, the router catalogue and GGUF listings."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from hfdriver._closing import Closing
from hfdriver.auth import NoToken, Token, missing_token_message, resolve_token
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind, strip_url_credentials
from hfdriver.hub._catalogue import merge_catalogue
from hfdriver.hub._models import (
    GgufFile,
    ModelInfo,
    ProviderMapping,
    RouterModel,
    WhoAmI,
    parse_model_info,
    parse_provider_mapping,
    parse_quantization,
    parse_router_model,
    parse_whoami,
)
from hfdriver.transport import (
    ClientSession,
    HttpClient,
    RequestTimeout,
    RetryPolicy,
    Timeouts,
    call_with_retries,
    request_timeout,
)

__all__ = ["HUB_ENDPOINT", "ROUTER_ROOT", "ROUTER_URL", "HubClient", "hub_offline", "router_root"]

logger = logging.getLogger("hfdriver")

HUB_ENDPOINT = "https://huggingface.co"
ROUTER_ROOT = "https://router.huggingface.co"
"""The Inference Providers router's root: chat under ``/v1``, each provider under ``/{provider}``."""
ROUTER_URL = f"{ROUTER_ROOT}/v1"
"""The Inference Providers router (OpenAI-compatible ``/v1``): the default base URL of drivers."""


def router_root(router_url: str | None = None) -> str:
    """The router's root: ``router_url``, else ``$HF_ROUTER_URL``, else :data:`ROUTER_ROOT` (a
    trailing ``/v1`` is dropped, so either form works)."""
    url = (router_url or os.environ.get("HF_ROUTER_URL", "").strip() or ROUTER_ROOT).rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


_PAGE_MAX = 100
# The Hub asks for a minute-long pause when rate limited: tell the caller instead of sleeping.
_HUB_RETRY = RetryPolicy(attempts=3, deadline=30.0, max_retry_after=10.0)
_EXPAND = (
    "author", "downloads", "likes", "tags", "pipeline_tag", "library_name", "gated",
    "createdAt", "lastModified", "inferenceProviderMapping",
)  # fmt: skip


def hub_offline(env: Mapping[str, str] | None = None) -> bool:
    """Whether ``HF_HUB_OFFLINE`` asks for no network access."""
    value = (os.environ if env is None else env).get("HF_HUB_OFFLINE", "")
    return value.strip().lower() in ("1", "true", "yes", "on")


class HubClient(Closing):
    """An async client for the Hub API and the router's model catalogue.

    Args:
        token: defaults to ``HF_TOKEN`` & co., then the token file (optional for public data).
        endpoint: the Hub; defaults to ``$HF_ENDPOINT`` or ``https://huggingface.co``.
        router_url: the router (its root or its ``/v1``); defaults to ``$HF_ROUTER_URL``, else
            ``https://router.huggingface.co``.
        session: an ``aiohttp.ClientSession`` to use (never closed by the client).

    >>> async def main():  # doctest: +SKIP
    ...     async with HubClient() as hub:
    ...         print((await hub.whoami()).name)
    ...         async for model in hub.search_models("llama", limit=5):
    ...             print(model.id, model.live_providers)
    """

    def __init__(
        self,
        token: str | Token | NoToken | None = None,
        *,
        endpoint: str | None = None,
        router_url: str | None = None,
        session: ClientSession | None = None,
        timeouts: Timeouts = Timeouts(connect=10, read=30, total=30),  # noqa: B008 - frozen value
        retry: RetryPolicy = _HUB_RETRY,
    ) -> None:
        self._token = resolve_token(token)
        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT", "").strip() or HUB_ENDPOINT).rstrip("/")
        self.router_url = f"{router_root(router_url)}/v1"
        self.retry = retry
        self._timeout = request_timeout(total=timeouts.total, connect=timeouts.connect, read=timeouts.read)
        headers = {"Accept": "application/json"}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.reveal()}"
        self._http = HttpClient(
            session=session,
            headers=headers,
            secret=self._token,
            service="the Hub",
            hint="check HF_ENDPOINT and your network",
            owner="HubClient",
        )

    def __repr__(self) -> str:
        token = self._token.masked if self._token else None
        endpoint, router_url = strip_url_credentials(self.endpoint), strip_url_credentials(self.router_url)
        return f"HubClient(endpoint={endpoint!r}, router_url={router_url!r}, token={token!r})"

    async def aclose(self) -> None:
        """Close the client's own session (never a caller's)."""
        await self._http.aclose()

    # ------------------------------------------------------------------ transport
    async def _get(
        self,
        url: str,
        params: Sequence[tuple[str, str]] | None = None,
        *,
        timeout: RequestTimeout | None = None,
        router: bool = False,
    ) -> tuple[Any, str | None]:
        """GET JSON with retries; returns the body and the ``Link: rel="next"`` URL.

        ``router``: the URL is the router's (its catalogue), so failures name the router."""
        if hub_offline():
            raise HuggingFaceError(
                HuggingFaceErrorKind.CONFIG,
                f"offline mode: HF_HUB_OFFLINE is set, so hfdriver will not contact {url.split('?')[0]}; unset it to go online",
            )

        async def attempt() -> tuple[Any, str | None]:
            reply = await self._http.fetch(
                "GET",
                url,
                params=params,
                timeout=timeout or self._timeout,
                service="the router" if router else None,
                hint="check your network (and router_url, if you set it)" if router else None,
            )
            try:
                return json.loads(reply.body), reply.link("next")
            except (ValueError, RecursionError):
                raise HuggingFaceError(
                    HuggingFaceErrorKind.DECODE,
                    f"the Hub answered {url.split('?')[0]} with a body that is not JSON; check HF_ENDPOINT",
                ) from None

        return await call_with_retries(self.retry, "hub request", attempt)

    @staticmethod
    def _decode(what: str, exc: Exception) -> HuggingFaceError:
        return HuggingFaceError(
            HuggingFaceErrorKind.DECODE, f"the Hub's {what} answer has an unexpected shape ({exc})"
        )

    # ------------------------------------------------------------------ whoami
    async def whoami(self) -> WhoAmI:
        """Who the token belongs to, its role and fine-grained scopes.

        Raises ``CONFIG`` without a token and ``AUTHENTICATION`` for a bad one.
        """
        if self._token is None:
            raise HuggingFaceError(HuggingFaceErrorKind.CONFIG, missing_token_message())
        data, _ = await self._get(f"{self.endpoint}/api/whoami-v2")
        try:
            return parse_whoami(data)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise self._decode("whoami", exc) from None

    # ------------------------------------------------------------------ search
    async def search_models(
        self,
        query: str | None = None,
        *,
        author: str | None = None,
        pipeline_tag: str | None = "text-generation",
        inference_provider: str | None = None,
        sort: str = "downloads",
        limit: int | None = 20,
        gguf: bool | None = None,
    ) -> AsyncIterator[ModelInfo]:
        """Models on the Hub, most relevant first (an async iterator).

        Pages are fetched lazily, when the caller needs more items; ``limit`` bounds the total
        (``None``: everything). ``inference_provider="all"`` keeps models some provider serves.
        ``gguf=True`` keeps repositories with GGUF files, ``gguf=False`` drops them.
        """
        if limit is not None and limit < 1:
            raise HuggingFaceError(
                HuggingFaceErrorKind.INVALID_REQUEST, f"limit: must be >= 1 or None, got {limit}"
            )
        params: list[tuple[str, str]] = [("sort", sort), ("direction", "-1")]
        if query:
            params.append(("search", query))
        if author:
            params.append(("author", author))
        if pipeline_tag:
            params.append(("pipeline_tag", pipeline_tag))
        if inference_provider:
            params.append(("inference_provider", inference_provider))
        if gguf:
            params.append(("filter", "gguf"))
        params.append(("limit", str(min(limit, _PAGE_MAX) if limit else _PAGE_MAX)))
        params.extend(("expand[]", field) for field in _EXPAND)

        url: str | None = f"{self.endpoint}/api/models"
        page_params: list[tuple[str, str]] | None = params
        yielded = 0
        while url is not None:
            data, url = await self._get(url, page_params)
            page_params = None  # the Link URL carries the query and the cursor
            if not isinstance(data, list):
                raise self._decode("model search", TypeError("not a list"))
            for entry in data:
                try:
                    info = parse_model_info(entry)
                except (AttributeError, KeyError, TypeError, ValueError) as exc:
                    raise self._decode("model search", exc) from None
                if gguf is False and info.has_gguf:
                    continue
                yield info
                yielded += 1
                if limit is not None and yielded >= limit:
                    return

    # ------------------------------------------------------------------ router catalogue
    async def router_models(self, *, fallback: bool = True, timeout: float = 10.0) -> list[RouterModel]:
        """The router's catalogue (``GET {router_url}/models``): models, providers, prices.

        With ``fallback`` (the default), a network error or a ``timeout`` returns the built-in
        catalogue instead, with a WARNING log; live data is merged with it otherwise.
        """
        limit = request_timeout(total=timeout, connect=min(timeout, 10.0))
        if fallback and hub_offline():
            logger.warning("hfdriver: offline mode (HF_HUB_OFFLINE is set): using the built-in catalogue")
            return merge_catalogue(None)
        try:
            data, _ = await self._get(f"{self.router_url}/models", timeout=limit, router=True)
            entries = data["data"] if isinstance(data, dict) else data
            live = [parse_router_model(m) for m in entries if isinstance(m, dict) and m.get("id")]
        except HuggingFaceError as exc:
            transient = (
                exc.kind in (HuggingFaceErrorKind.CONNECTION, HuggingFaceErrorKind.TIMEOUT) or exc.retryable
            )
            if not fallback or not transient:
                raise
            logger.warning(
                "hfdriver: the router's model list is unavailable (%s); using the built-in catalogue", exc
            )
            return merge_catalogue(None)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise self._decode("router model list", exc) from None
        return merge_catalogue(live)

    # ------------------------------------------------------------------ provider mapping
    async def provider_mapping(self, model: str) -> tuple[ProviderMapping, ...]:
        """Who serves ``model`` through the router, per task, in the order of the token owner's
        provider preferences (``GET /api/models/{id}?expand[]=inferenceProviderMapping``).

        ``NOT_FOUND`` for an unknown model; an empty tuple when no provider serves it."""
        if not model or model.count("/") > 1 or not model.isprintable() or " " in model:
            # (a legacy canonical id such as 'gpt2' has no org)
            raise HuggingFaceError(
                HuggingFaceErrorKind.INVALID_REQUEST, f"model: {model!r} is not 'org/name'"
            )
        data, _ = await self._get(
            f"{self.endpoint}/api/models/{quote(model, safe='/')}", [("expand[]", "inferenceProviderMapping")]
        )
        if not isinstance(data, dict):
            raise self._decode("model", TypeError(f"a {type(data).__name__}, not an object"))
        return parse_provider_mapping(data.get("inferenceProviderMapping"))

    # ------------------------------------------------------------------ GGUF files
    async def list_gguf_files(self, repo_id: str, revision: str = "main") -> list[GgufFile]:
        """The ``.gguf`` files of a model repository, with sizes, sha256 and quantization."""
        if not repo_id or repo_id.count("/") != 1:
            raise HuggingFaceError(
                HuggingFaceErrorKind.INVALID_REQUEST, f"repo_id: {repo_id!r} is not 'org/name'"
            )
        url: str | None = f"{self.endpoint}/api/models/{repo_id}/tree/{quote(revision, safe='')}"
        params: list[tuple[str, str]] | None = [("recursive", "true")]
        files: list[GgufFile] = []
        while url is not None:
            data, url = await self._get(url, params)
            params = None
            if not isinstance(data, list):
                raise self._decode("file listing", TypeError("not a list"))
            for entry in data:
                if not isinstance(entry, dict) or entry.get("type") != "file":
                    continue
                path = str(entry.get("path") or "")
                if not path.lower().endswith(".gguf"):
                    continue
                raw_lfs = entry.get("lfs")
                lfs: dict[str, Any] = raw_lfs if isinstance(raw_lfs, dict) else {}
                size = entry.get("size") or lfs.get("size") or 0
                files.append(
                    GgufFile(
                        path=path,
                        size=int(size),
                        quantization=parse_quantization(path),
                        sha256=lfs.get("oid") or lfs.get("sha256"),
                    )
                )
        return files
