"""The Hub around inference: token check, model search, the router catalogue, GGUF files."""

from hfdriver.hub._catalogue import BUILTIN_CATALOGUE, CatalogueEntry, merge_catalogue
from hfdriver.hub._client import HUB_ENDPOINT, ROUTER_ROOT, ROUTER_URL, HubClient, hub_offline, router_root
from hfdriver.hub._models import (
    GgufFile,
    ModelInfo,
    Pricing,
    ProviderMapping,
    ProviderOffer,
    RouterModel,
    WhoAmI,
    parse_quantization,
)
from hfdriver.hub._prices import PRICE_TTL, PriceBook, clear_price_cache, router_price_book

__all__ = [
    "BUILTIN_CATALOGUE",
    "HUB_ENDPOINT",
    "PRICE_TTL",
    "ROUTER_ROOT",
    "ROUTER_URL",
    "CatalogueEntry",
    "GgufFile",
    "HubClient",
    "ModelInfo",
    "PriceBook",
    "Pricing",
    "ProviderMapping",
    "ProviderOffer",
    "RouterModel",
    "WhoAmI",
    "clear_price_cache",
    "find_model",
    "hub_offline",
    "merge_catalogue",
    "models_with_tools",
    "parse_quantization",
    "router_price_book",
    "router_root",
]


def find_model(models: list[RouterModel], model_id: str) -> RouterModel | None:
    """The catalogue entry for ``model_id`` (a routing suffix is ignored)."""
    bare = model_id.split(":", 1)[0]
    return next((m for m in models if m.id == bare), None)


def models_with_tools(models: list[RouterModel]) -> list[RouterModel]:
    """Models with at least one live provider that supports tool calls."""
    return [m for m in models if m.supports_tools]
