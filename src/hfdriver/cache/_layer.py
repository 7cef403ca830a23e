"""How a cache sits in front of a driver: look-ups, single-flight, stream replay and recording.

:class:`CacheLayer` is shared by ``HuggingFaceDriver(cache=...)`` and :class:`CachedDriver`
(any :class:`Driver`). Identical requests in flight at once make one upstream call: the others
wait for it and get its answer (or its error). A streamed request is answered from the cache as
a replayed stream; a stream read to its finish is stored, one cut short or failed is not.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import attrs

from hfdriver._wrapper import DriverWrapper, embed_with, layers
from hfdriver.cache._codec import cache_key, decode_response, embed_payload, encode_response, is_complete
from hfdriver.cache._flight import STALLED, Flight, SingleFlight
from hfdriver.cache._protocol import Cache, CacheStats
from hfdriver.driver import Driver, ResponseStream, describe, driver_identity
from hfdriver.dto.embed import EmbedRequest, EmbedResponse
from hfdriver.dto.request import GenerateRequest
from hfdriver.dto.response import Cost, GenerateResponse, RouteFailure
from hfdriver.dto.stream import ChunkCollector, StreamChunk
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.openai.payload import to_payload
from hfdriver.stream import BaseStream

__all__ = ["CacheLayer", "CachedDriver", "CachedStream", "cache_of", "replay_chunks"]

logger = logging.getLogger("hfdriver")


R = TypeVar("R")


def _shared(response: R) -> R:
    """An identical call's answer: this caller paid nothing for it."""
    shared: R = attrs.evolve(response, cached=True, cost=Cost.zero())  # type: ignore[misc]
    return shared


def replay_chunks(response: GenerateResponse) -> list[StreamChunk]:
    """A stored answer as the chunks of a stream: one per output, usage on the last."""
    chunks = [
        StreamChunk(
            text=out.text,
            reasoning=out.reasoning or "",
            index=out.index,
            tool_calls=out.tool_calls,
            finish_reason=out.finish_reason,
            model=response.model,
            id=response.id,
        )
        for out in response.outputs
    ]
    if chunks and response.usage is not None:
        chunks[-1] = attrs.evolve(chunks[-1], usage=response.usage)
    return chunks


def _checked(cache: object) -> Cache:
    if not isinstance(cache, Cache):
        raise HuggingFaceError(
            HuggingFaceErrorKind.CONFIG,
            "cache must implement hfdriver.cache.Cache (get/set/delete/clear/stats/aclose), "
            f"got {type(cache).__name__}",
        )
    return cache


class CacheLayer:
    """A :class:`Cache` plus the in-flight table; one per driver.

    ``read`` / ``total``: the driver's ``Timeouts``, which bound how long a call waits for an
    identical one in flight (see :mod:`hfdriver.cache._flight`)."""

    def __init__(self, cache: Cache, *, read: float = 60.0, total: float = 300.0) -> None:
        self.cache = _checked(cache)
        self._flights = SingleFlight(read=read, total=total)

    @staticmethod
    def key(namespace: str, payload: Mapping[str, Any]) -> str:
        return cache_key(namespace, payload)

    async def lookup(self, key: str, expected: type[R]) -> R | None:
        """The answer stored for ``key`` (a miss when it is unreadable or not an ``expected``)."""
        value = await self.cache.get(key)
        if value is None:
            return None
        response = decode_response(value)
        if not isinstance(response, expected):
            logger.warning("hfdriver: an unreadable cache entry was dropped")
            await self.cache.delete(key)
            return None
        return response

    async def store(self, key: str, response: Any) -> None:
        if not response.cached and is_complete(response):
            await self.cache.set(key, encode_response(response))

    async def _shared_or_lead(self, key: str, expected: type[R], *, streaming: bool) -> R | Flight | None:
        """A cached or shared answer; else the :class:`Flight` this caller now leads, or ``None``
        when an identical call stalled (the caller calls upstream on its own, leading nothing)."""
        flights = self._flights
        while True:
            hit = await self.lookup(key, expected)
            if hit is not None:
                return hit
            flight = flights.get(key)
            if flight is None:
                return flights.lead(key, streaming=streaming)
            shared = await flights.follow(flight)
            if shared is STALLED:
                return None
            if isinstance(shared, expected):
                return _shared(shared)
            # the leader gave up: look again, and lead if no one else does

    async def answer(self, key: str, expected: type[R], call: Callable[[], Awaitable[R]]) -> R:
        """The cached answer, a concurrent identical call's answer, or ``call()``'s (then stored)."""
        found = await self._shared_or_lead(key, expected, streaming=False)
        if isinstance(found, expected):
            return found
        flight = found if isinstance(found, Flight) else None
        try:
            response = await call()
        except BaseException as exc:
            if flight is not None:
                self._flights.land(key, flight, error=exc)
            raise
        if flight is not None:
            self._flights.land(key, flight, response)
        await self.store(key, response)
        return response

    async def generate(self, key: str, call: Callable[[], Awaitable[GenerateResponse]]) -> GenerateResponse:
        """:meth:`answer` for a chat answer."""
        return await self.answer(key, GenerateResponse, call)

    def stream(self, key: str, open_stream: Callable[[], ResponseStream]) -> CachedStream:
        return CachedStream(self, key, open_stream)

    async def stats(self) -> CacheStats:
        return await self.cache.stats()


class CachedStream(BaseStream):
    """A stream answered from the cache (replayed), from a concurrent identical stream, or live."""

    def __init__(self, layer: CacheLayer, key: str, open_stream: Callable[[], ResponseStream]) -> None:
        self._layer = layer
        self._key = key
        self._open_stream = open_stream
        self._started = False
        self._replay: list[StreamChunk] | None = None
        self._replayed: GenerateResponse | None = None
        self._inner: ResponseStream | None = None
        self._recorder: ChunkCollector | None = None
        self._flight: Flight | None = None
        self._done = False

    @property
    def cached(self) -> bool:
        """Whether this stream replays a cached (or shared) answer."""
        return self._replayed is not None

    @property
    def pending(self) -> int:
        """Chunks ready now (the next ``__anext__`` does not wait)."""
        if self._replay is not None:
            return len(self._replay)
        return self._inner.pending if self._inner is not None else 0

    @property
    def provider(self) -> str | None:
        if self._replayed is not None:
            return self._replayed.provider
        return self._inner.provider if self._inner is not None else None

    @property
    def request_id(self) -> str | None:
        if self._replayed is not None:
            return self._replayed.request_id
        return self._inner.request_id if self._inner is not None else None

    @property
    def route(self) -> str | None:
        return self._inner.route if self._inner is not None else None

    @property
    def failed_routes(self) -> tuple[RouteFailure, ...]:
        return self._inner.failed_routes if self._inner is not None else ()

    async def _open(self) -> None:
        if self._started:
            return
        self._started = True
        found = await self._layer._shared_or_lead(self._key, GenerateResponse, streaming=True)
        if isinstance(found, GenerateResponse):
            self._replayed = found
            self._replay = replay_chunks(found)
            return
        self._flight = found  # None: an identical stream stalled; this one goes upstream on its own
        self._recorder = ChunkCollector()
        try:
            inner = self._open_stream()
            self._inner = inner
            await inner.__aenter__()
        except BaseException as exc:
            self._finish(error=exc)
            raise

    def _finish(self, result: GenerateResponse | None = None, error: BaseException | None = None) -> None:
        self._done = True
        flight, self._flight = self._flight, None
        if flight is not None:
            self._layer._flights.land(self._key, flight, result, error)

    async def __anext__(self) -> StreamChunk:
        if not self._started:
            await self._open()
        if self._replay is not None:
            if not self._replay:
                raise StopAsyncIteration
            return self._replay.pop(0)
        inner = self._inner
        if inner is None or self._done:
            raise StopAsyncIteration
        try:
            chunk = await inner.__anext__()
        except StopAsyncIteration:
            recorder = self._recorder
            assert recorder is not None
            response = recorder.response(provider=self.provider, request_id=self.request_id)
            self._finish(response)
            await self._layer.store(self._key, response)
            raise
        except BaseException as exc:
            self._finish(error=exc)
            raise
        if self._recorder is not None:
            self._recorder.add(chunk)
        if self._flight is not None:
            self._flight.touch()
        return chunk

    async def aclose(self) -> None:
        if self._flight is not None:
            self._finish()  # abandoned before its end: followers call upstream themselves
        self._done = True
        inner = self._inner
        if inner is not None:
            await inner.aclose()

    async def collect(self) -> GenerateResponse:
        async for _ in self:
            pass
        if self._replayed is not None:
            return self._replayed
        if self._inner is not None:
            return await self._inner.collect()
        raise StopAsyncIteration  # pragma: no cover - a started stream is replayed or live

    def response(self) -> GenerateResponse:
        if self._replayed is not None:
            return self._replayed
        if self._inner is not None:
            return self._inner.response()
        return GenerateResponse(outputs=())

    def _abandon(self) -> None:
        flight = getattr(self, "_flight", None)
        if flight is not None and not flight.future.done():
            self._finish()


class CachedDriver(DriverWrapper):
    """Any :class:`Driver` behind a response cache.

    Args:
        inner: the driver that answers misses.
        cache: a :class:`Cache` (``SQLiteCache(path)``, ``MemoryCache()``...).
        namespace: what separates this driver's answers from others' in a shared cache; by default
            :func:`~hfdriver.driver.driver_identity` (the driver's ``cache_identity()``, or its
            class and settings).

    Closing the driver closes the cache.
    """

    def __init__(self, inner: Driver, cache: Cache, *, namespace: str | None = None) -> None:
        super().__init__(inner)
        # The inner driver's own time limits bound a wait for an identical call in flight.
        info = describe(inner)
        self._layer = CacheLayer(
            cache,
            read=info.read_timeout if info.read_timeout is not None else 60.0,
            total=info.total_timeout if info.total_timeout is not None else 300.0,
        )
        self.namespace = namespace if namespace is not None else driver_identity(inner)
        self._default_model = info.model

    @property
    def cache(self) -> Cache:
        return self._layer.cache

    def cache_identity(self) -> str:
        return self.namespace

    def _key(self, request: GenerateRequest) -> str:
        if not isinstance(request, GenerateRequest):
            raise HuggingFaceError(
                HuggingFaceErrorKind.INVALID_REQUEST,
                f"expected a GenerateRequest, got {type(request).__name__}; build one with GenerateRequest.builder()",
            )
        # A driver with a model of its own may take requests that name none.
        return cache_key(self.namespace, to_payload(request, model=self._default_model or "-"))

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        return await self._layer.generate(self._key(request), lambda: self.inner.generate(request))

    def generate_stream(self, request: GenerateRequest) -> CachedStream:
        return self._layer.stream(self._key(request), lambda: self.inner.generate_stream(request))

    async def embed(self, request: EmbedRequest) -> EmbedResponse:
        if not isinstance(request, EmbedRequest):
            raise HuggingFaceError(
                HuggingFaceErrorKind.INVALID_REQUEST,
                f"expected an EmbedRequest, got {type(request).__name__}; build one with EmbedRequest.builder()",
            )
        key = cache_key(self.namespace, embed_payload(request, self._default_model))
        return await self._layer.answer(key, EmbedResponse, lambda: embed_with(self.inner, request))

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            await self._layer.cache.aclose()


def cache_of(driver: object) -> Cache | None:
    """The response cache of a composition (``create_driver``'s ``[llm.cache]``), if it has one."""
    for layer in layers(driver):
        if isinstance(layer, CachedDriver):
            return layer.cache
    return None
