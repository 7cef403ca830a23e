"""Costs of answers and embeddings from the router catalogue's prices: fetched once per driver (in
parallel with its first request), never failing or delaying an answer for long."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import attrs

from hfdriver.dto.embed import EmbedResponse
from hfdriver.dto.response import GenerateResponse
from hfdriver.hub import PriceBook

__all__ = ["Pricer"]

logger = logging.getLogger("hfdriver")

# Seconds an answer waits for the price list after it arrived.
_PRICE_WAIT = 5.0

Priced = TypeVar("Priced", GenerateResponse, EmbedResponse)


class Pricer:
    """Prices answers once a :class:`PriceBook` is known: given (a catalogue), or fetched by
    ``fetch`` when ``enabled``."""

    def __init__(self, fetch: Callable[[], Coroutine[Any, Any, PriceBook | None]], *, enabled: bool) -> None:
        self._fetch = fetch
        self.enabled = enabled
        self.book: PriceBook | None = None
        self._task: asyncio.Task[PriceBook | None] | None = None

    @property
    def active(self) -> bool:
        """Whether answers are priced (prices known, or to be fetched)."""
        return self.enabled or self.book is not None

    def start(self) -> asyncio.Task[PriceBook | None] | None:
        """Begin fetching prices (once), so they arrive while the first request runs; outside a
        running loop, later."""
        if self.book is not None or not self.enabled:
            return None
        task = self._task
        if task is None:
            with contextlib.suppress(RuntimeError):  # no running loop yet
                task = self._task = asyncio.get_running_loop().create_task(self._fetch())
        return task

    def cancel(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()

    async def price(self, response: Priced, model: str) -> Priced:
        """``response`` with its :class:`~hfdriver.dto.response.Cost`, when prices are known."""
        if response.cost is not None or response.usage is None:
            return response
        book = self.book
        if book is None:
            task = self.start()
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
            self.book = book
        try:
            cost = book.cost(model, response.provider, response.usage)
        except Exception:  # a price must never fail an answer
            logger.warning("hfdriver: could not price an answer of %s", model, exc_info=True)
            return response
        return attrs.evolve(response, cost=cost) if cost is not None else response
