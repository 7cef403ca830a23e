"""Hub and router-catalogue DTOs (frozen attrs), and their tolerant parsers."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

__all__ = [
    "GgufFile",
    "ModelInfo",
    "Pricing",
    "ProviderMapping",
    "ProviderOffer",
    "RouterModel",
    "WhoAmI",
    "parse_provider_mapping",
    "parse_quantization",
]

INFERENCE_PROVIDERS_PERMISSION = "inference.serverless.write"


@attrs.frozen(slots=True, kw_only=True)
class WhoAmI:
    """Who a token belongs to, and what it may do (``/api/whoami-v2``)."""

    name: str
    type: str = "user"
    fullname: str | None = None
    orgs: tuple[str, ...] = ()
    token_name: str | None = None
    token_role: str | None = None
    """``read``, ``write`` or ``fineGrained``."""
    scopes: tuple[str, ...] = ()
    """Fine-grained permissions, global and scoped together (``inference.serverless.write``...)."""

    @property
    def is_fine_grained(self) -> bool:
        """Whether this is a fine-grained token (whose permissions are listed in ``scopes``)."""
        return self.token_role == "fineGrained"

    @property
    def can_call_inference_providers(self) -> bool:
        """Whether the token may call the router: fine-grained tokens need
        ``inference.serverless.write``; classic read/write tokens may."""
        if self.is_fine_grained:
            return INFERENCE_PROVIDERS_PERMISSION in self.scopes
        return self.token_role in ("read", "write", None)


def parse_whoami(data: Any) -> WhoAmI:
    access = ((data.get("auth") or {}).get("accessToken")) or {}
    fine = access.get("fineGrained") or {}
    scopes: list[str] = list(fine.get("global") or [])
    for scoped in fine.get("scoped") or []:
        scopes.extend(p for p in scoped.get("permissions") or [] if p not in scopes)
    return WhoAmI(
        name=str(data["name"]),
        type=str(data.get("type") or "user"),
        fullname=data.get("fullname"),
        orgs=tuple(str(o["name"]) for o in data.get("orgs") or [] if isinstance(o, dict) and "name" in o),
        token_name=access.get("displayName"),
        token_role=access.get("role"),
        scopes=tuple(dict.fromkeys(scopes)),
    )


@attrs.frozen(slots=True)
class ProviderMapping:
    """A provider that serves a Hub model (``inferenceProviderMapping``)."""

    provider: str
    status: str = "live"
    provider_id: str | None = None
    task: str | None = None


@attrs.frozen(slots=True, kw_only=True)
class ModelInfo:
    """A model found by :meth:`HubClient.search_models`."""

    id: str
    author: str | None = None
    downloads: int = 0
    likes: int = 0
    tags: tuple[str, ...] = ()
    pipeline_tag: str | None = None
    library_name: str | None = None
    gated: bool | str = False
    """False, or the gating mode (``"auto"`` / ``"manual"``)."""
    inference_providers: tuple[ProviderMapping, ...] = ()
    created_at: datetime | None = None
    last_modified: datetime | None = None

    @property
    def has_gguf(self) -> bool:
        """Whether the repository holds GGUF files (tagged ``gguf`` or library ``gguf``)."""
        return "gguf" in self.tags or self.library_name == "gguf"

    @property
    def live_providers(self) -> tuple[str, ...]:
        """Names of the providers serving this model live (not staging)."""
        return tuple(p.provider for p in self.inference_providers if p.status == "live")


def _datetime(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_provider_mapping(value: Any) -> tuple[ProviderMapping, ...]:
    # The Hub has sent both {"together": {"status": ..., "providerId": ...}} and
    # [{"provider": "together", "status": ..., "providerId": ...}].
    items: Iterable[tuple[str, Any]]
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, list):
        items = ((str(v.get("provider")), v) for v in value if isinstance(v, dict) and v.get("provider"))
    else:
        return ()
    return tuple(
        ProviderMapping(name, str(v.get("status") or "live"), v.get("providerId"), v.get("task"))
        for name, v in items
        if isinstance(v, Mapping)
    )


def parse_model_info(data: Any) -> ModelInfo:
    model_id = data.get("id") or data.get("modelId")
    if not isinstance(model_id, str):
        raise TypeError("model entry without an id")
    gated = data.get("gated", False)
    return ModelInfo(
        id=model_id,
        author=data.get("author") or (model_id.split("/", 1)[0] if "/" in model_id else None),
        downloads=int(data.get("downloads") or 0),
        likes=int(data.get("likes") or 0),
        tags=tuple(str(t) for t in data.get("tags") or ()),
        pipeline_tag=data.get("pipeline_tag"),
        library_name=data.get("library_name"),
        gated=gated if isinstance(gated, (bool, str)) else bool(gated),
        inference_providers=parse_provider_mapping(data.get("inferenceProviderMapping")),
        created_at=_datetime(data.get("createdAt")),
        last_modified=_datetime(data.get("lastModified")),
    )


@attrs.frozen(slots=True)
class Pricing:
    """US dollars per million tokens."""

    input: float | None = None
    output: float | None = None


@attrs.frozen(slots=True, kw_only=True)
class ProviderOffer:
    """One provider serving one model through the router."""

    provider: str
    status: str = "live"
    context_length: int | None = None
    pricing: Pricing | None = None
    supports_tools: bool | None = None
    supports_structured_output: bool | None = None
    first_token_latency_ms: float | None = None
    throughput: float | None = None
    """Tokens per second, when the router reports it."""

    @property
    def is_live(self) -> bool:
        """Whether the provider serves the model now (status ``live``)."""
        return self.status == "live"


@attrs.frozen(slots=True, kw_only=True)
class RouterModel:
    """A model in the router's catalogue (``GET /v1/models``), with its providers."""

    id: str
    owned_by: str | None = None
    created: int | None = None
    input_modalities: tuple[str, ...] = ("text",)
    output_modalities: tuple[str, ...] = ("text",)
    providers: tuple[ProviderOffer, ...] = ()
    context_window: int | None = None
    max_output_tokens: int | None = None
    source: str = "live"
    """``live`` (router), ``catalogue`` (built-in, the router was unreachable) or ``live+catalogue``."""

    @property
    def live_providers(self) -> tuple[ProviderOffer, ...]:
        """Offers with status ``live``, in the router's order."""
        return tuple(p for p in self.providers if p.is_live)

    @property
    def supports_tools(self) -> bool:
        """Whether some live provider supports tool calls for this model."""
        return any(p.supports_tools for p in self.live_providers)

    def cheapest(self) -> ProviderOffer | None:
        """The live provider with the lowest output price (then input price), if any is priced."""
        priced = [p for p in self.live_providers if p.pricing is not None and p.pricing.output is not None]
        if not priced:
            return None
        return min(priced, key=lambda p: (p.pricing.output, p.pricing.input or 0.0))  # type: ignore[union-attr]

    def fastest(self) -> ProviderOffer | None:
        """The live provider with the highest throughput, else the lowest first-token latency."""
        live = self.live_providers
        by_throughput = [p for p in live if p.throughput is not None]
        if by_throughput:
            return max(by_throughput, key=lambda p: p.throughput or 0.0)
        by_latency = [p for p in live if p.first_token_latency_ms is not None]
        if by_latency:
            return min(by_latency, key=lambda p: p.first_token_latency_ms or 0.0)
        return None

    def offer(self, provider: str) -> ProviderOffer | None:
        """This model's offer from ``provider``, if the router lists one."""
        return next((p for p in self.providers if p.provider == provider), None)


def _opt_float(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _opt_int(value: Any) -> int | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    return None


def _opt_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


_warned_prices: set[tuple[str, str, str]] = set()


def _price(value: Any, provider: str, side: str) -> float | None:
    """A price per million tokens: a finite number >= 0, else unknown (one WARNING per bad
    value): a catalogue's mistake must never fail an answer or make up a cost."""
    number = _opt_float(value)
    if number is None or (math.isfinite(number) and number >= 0):
        return number
    key = (provider, side, repr(value))
    if key not in _warned_prices and len(_warned_prices) < 1024:
        _warned_prices.add(key)
        logging.getLogger("hfdriver").warning(
            "hfdriver: the router lists %r as the %s price of %s; treating it as unknown",
            value,
            side,
            provider,
        )
    return None


def parse_offer(data: Any) -> ProviderOffer:
    pricing = data.get("pricing")
    price = None
    provider = str(data["provider"])
    if isinstance(pricing, Mapping):
        price = Pricing(
            _price(pricing.get("input"), provider, "input"), _price(pricing.get("output"), provider, "output")
        )
    return ProviderOffer(
        provider=provider,
        status=str(data.get("status") or "live"),
        context_length=_opt_int(data.get("context_length")),
        pricing=price,
        supports_tools=_opt_bool(data.get("supports_tools")),
        supports_structured_output=_opt_bool(data.get("supports_structured_output")),
        first_token_latency_ms=_opt_float(data.get("first_token_latency_ms") or data.get("latency")),
        throughput=_opt_float(data.get("throughput")),
    )


def parse_router_model(data: Any) -> RouterModel:
    arch = data.get("architecture") or {}
    offers = tuple(
        parse_offer(p) for p in data.get("providers") or () if isinstance(p, Mapping) and p.get("provider")
    )
    contexts = [p.context_length for p in offers if p.context_length]
    return RouterModel(
        id=str(data["id"]),
        owned_by=data.get("owned_by"),
        created=_opt_int(data.get("created")),
        input_modalities=tuple(arch.get("input_modalities") or ("text",)),
        output_modalities=tuple(arch.get("output_modalities") or ("text",)),
        providers=offers,
        context_window=max(contexts) if contexts else None,
    )


@attrs.frozen(slots=True, kw_only=True)
class GgufFile:
    """A GGUF file in a Hub repository."""

    path: str
    size: int
    quantization: str | None
    sha256: str | None = None

    @property
    def name(self) -> str:
        """The file name without its folder."""
        return self.path.rsplit("/", 1)[-1]


_QUANT = re.compile(
    r"(?:^|[-_.])((?:UD-)?(?:I?Q\d+(?:_[A-Z0-9]+)*|TQ\d_\d|MXFP4(?:_MOE)?|BF16|FP16|FP32|F16|F32))(?=[-_.])",
    re.IGNORECASE,
)


def parse_quantization(filename: str) -> str | None:
    """The quantization named in a GGUF file name, upper-cased.

    >>> parse_quantization("Llama-3.2-1B-Instruct-Q4_K_M.gguf")
    'Q4_K_M'
    >>> parse_quantization("model-iq2_xs-00001-of-00002.gguf")
    'IQ2_XS'
    """
    name = filename.rsplit("/", 1)[-1]
    matches = _QUANT.findall(name)
    return matches[-1].upper() if matches else None
