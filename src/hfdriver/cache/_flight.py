"""Single-flight: identical requests in flight at once make one upstream call.

The first caller of a key leads; the others follow and get its answer (or its error). A follower
never waits without bound: when the leader gives up (cancelled, its stream abandoned) the
follower calls upstream itself, and when the leader stalls — a stream whose reader stopped
reading, no chunk for the caller's ``Timeouts.read``; a unary call past ``Timeouts.total`` —
the follower stops waiting and calls upstream itself too.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

__all__ = ["STALLED", "Flight", "SingleFlight"]

logger = logging.getLogger("hfdriver")


class _Stalled:
    def __repr__(self) -> str:
        return "STALLED"


STALLED: Final = _Stalled()
"""What :meth:`SingleFlight.follow` returns when the leader made no progress for too long."""


class Flight:
    """One call in flight: its future answer (``None`` when the leader gave up) and when it last
    made progress (a chunk read)."""

    __slots__ = ("future", "progressed", "streaming")

    def __init__(self, loop: asyncio.AbstractEventLoop, *, streaming: bool) -> None:
        self.future: asyncio.Future[Any] = loop.create_future()
        self.streaming = streaming
        self.progressed = loop.time()

    def touch(self) -> None:
        """The leader made progress (it read a chunk): followers keep waiting."""
        self.progressed = self.future.get_loop().time()


class SingleFlight:
    """The table of calls in flight, by cache key (one per cache layer)."""

    __slots__ = ("_flights", "_read", "_total")

    def __init__(self, *, read: float = 60.0, total: float = 300.0) -> None:
        """``read`` / ``total``: the caller's ``Timeouts`` (silence in a stream, a unary call)."""
        self._flights: dict[str, Flight] = {}
        self._read = read
        self._total = total

    def get(self, key: str) -> Flight | None:
        return self._flights.get(key)

    def lead(self, key: str, *, streaming: bool) -> Flight:
        flight = Flight(asyncio.get_running_loop(), streaming=streaming)
        self._flights[key] = flight
        return flight

    def land(
        self,
        key: str,
        flight: Flight,
        result: Any = None,
        error: BaseException | None = None,
    ) -> None:
        """The leader is done: with an answer, an error, or neither (it gave up)."""
        if self._flights.get(key) is flight:
            del self._flights[key]
        future = flight.future
        if future.done():
            return
        if error is not None and isinstance(error, Exception):
            future.set_exception(error)
            future.exception()  # retrieved: no "never retrieved" log when no one follows
        else:
            future.set_result(result)

    async def follow(self, flight: Flight) -> Any:
        """The leader's answer (its error is raised); ``None`` when it gave up; :data:`STALLED`
        when it made no progress for the caller's own time limit."""
        loop = asyncio.get_running_loop()
        while True:
            idle = self._read if flight.streaming else self._total
            wait = flight.progressed + idle - loop.time()
            if wait <= 0:
                logger.debug("hfdriver: an identical call in flight stalled; calling upstream")
                return STALLED
            try:
                return await asyncio.wait_for(asyncio.shield(flight.future), wait)
            except asyncio.TimeoutError:
                continue  # it may have made progress meanwhile: look again
