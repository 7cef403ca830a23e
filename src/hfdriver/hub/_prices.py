"""What an answer cost: the router catalogue's per-provider prices multiplied by usage.

A :class:`PriceBook` is built from :meth:`HubClient.router_models` and answers
``cost(model, provider, usage)`` with a :class:`~hfdriver.dto.response.Cost`, or ``None`` when
the model, the provider or either of its prices is unknown (never a guess).
:func:`router_price_book` fetches the catalogue once per router URL and process and keeps it for
an hour; a catalogue that cannot be fetched is retried after a minute.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping

from hfdriver.auth import NoToken, Token
from hfdriver.dto.response import Cost, Usage
from hfdriver.errors import HuggingFaceError
from hfdriver.hub._models import Pricing, RouterModel
from hfdriver.transport import ClientSession

__all__ = ["PRICE_TTL", "PriceBook", "clear_price_cache", "router_price_book"]

logger = logging.getLogger("hfdriver")

PRICE_TTL = 3600.0
"""Seconds a fetched catalogue's prices are reused (the router changes prices rarely)."""
_FAILURE_TTL = 60.0
_ROUTING_POLICIES = frozenset({"fastest", "cheapest", "preferred"})


class PriceBook:
    """Prices per (model, provider), in US dollars per million tokens."""

    __slots__ = ("_prices",)

    def __init__(self, prices: Mapping[tuple[str, str], Pricing]) -> None:
        self._prices = dict(prices)

    @classmethod
    def from_models(cls, models: Iterable[RouterModel]) -> PriceBook:
        """The prices every provider of every model lists (unpriced offers are left out)."""
        prices: dict[tuple[str, str], Pricing] = {}
        for model in models:
            for offer in model.providers:
                pricing = offer.pricing
                if pricing is not None and pricing.input is not None and pricing.output is not None:
                    prices[(model.id, offer.provider)] = pricing
        return cls(prices)

    def __len__(self) -> int:
        return len(self._prices)

    def __repr__(self) -> str:
        return f"PriceBook({len(self._prices)} priced routes)"

    def pricing(self, model: str, provider: str | None) -> Pricing | None:
        """The price of ``model`` (a routing suffix is ignored) at ``provider``, if listed.

        With no ``provider`` (a server that does not say who answered), a ``:<provider>`` suffix
        on the model names it; a policy (``:fastest``...) names no one, so the price is unknown.
        """
        bare, _, route = model.partition(":")
        if provider is None and route and route not in _ROUTING_POLICIES:
            provider = route
        if provider is None:
            return None
        return self._prices.get((bare, provider))

    def cost(self, model: str | None, provider: str | None, usage: Usage | None) -> Cost | None:
        """``usage`` priced for ``model`` at ``provider``; ``None`` when anything is unknown."""
        if model is None or usage is None:
            return None
        pricing = self.pricing(model, provider)
        if pricing is None or pricing.input is None or pricing.output is None:
            return None
        try:
            return Cost.of(usage, input_per_million=pricing.input, output_per_million=pricing.output)
        except ValueError as exc:  # a price too large to multiply (1e308...): unknown, never a failure
            key = (model, str(provider))
            if key not in _warned:
                _warned.add(key)
                logger.warning("hfdriver: no cost for %s at %s: %s", model, provider, exc)
            return None


_warned: set[tuple[str, str]] = set()

# router URL -> (expires at, book or None when the fetch failed)
_cache: dict[str, tuple[float, PriceBook | None]] = {}


def clear_price_cache() -> None:
    """Forget every fetched catalogue (tests; or after the router changed its prices)."""
    _cache.clear()


async def router_price_book(
    router_url: str,
    *,
    token: str | Token | NoToken | None = None,
    session: ClientSession | None = None,
    timeout: float = 5.0,
) -> PriceBook | None:
    """The prices of the router at ``router_url`` (its ``GET /models``), shared by the process.

    ``None`` when they cannot be had (offline, unreachable, not a router): costs are then unknown.
    Never raises for a network or server failure: a missing price must not fail an answer.
    """
    now = time.monotonic()
    hit = _cache.get(router_url)
    if hit is not None and hit[0] > now:
        return hit[1]
    from hfdriver.hub._client import HubClient, hub_offline

    book: PriceBook | None = None
    if not hub_offline():
        hub = HubClient(token, router_url=router_url, session=session)
        try:
            models = await hub.router_models(fallback=False, timeout=timeout)
            book = PriceBook.from_models(models)
        except HuggingFaceError as exc:
            logger.info("hfdriver: prices unavailable from %s (%s); costs are unknown", router_url, exc)
        finally:
            await hub.aclose()
    _cache[router_url] = (now + (PRICE_TTL if book is not None else _FAILURE_TTL), book)
    return book
