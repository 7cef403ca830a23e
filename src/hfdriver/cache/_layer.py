"""How a cache sits in front of a driver: look-ups, single-flight, stream replay and recording.

:class:`CacheLayer` is shared by ``HuggingFaceDriver(cache=...)`` and :class:`CachedDriver`
(any :class:`Driver`). Identical requests in flight at once make one upstream call: the others
wait for it and get its answer (or its error). A streamed request is answered from the cache as
a replayed stream; a stream read to its finish is stored, one cut short or failed is not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any

import attrs

from hfdriver._defaults import DriverWrapper
from hfdriver.cache._codec import cache_key, decode_response, encode_response, is_complete
from hfdriver.cache._protocol import Cache, CacheStats
from hfdriver.driver import Driver, ResponseStream
from hfdriver.dto.request import GenerateRequest
from hfdriver.dto.response import Cost, GenerateResponse
from hfdriver.dto.stream import ChunkCollector, StreamChunk
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.openai.payload import to_payload

__all__ = ["CacheLayer", "CachedDriver", "CachedStream", "replay_chunks"]

logger = logging.getLogger("hfdriver")


def _shared(response: GenerateResponse) -> GenerateResponse:
    return attrs.evolve(response, cached=True, cost=Cost.zero())


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
    """A :class:`Cache` plus the in-flight table; one per driver."""

    def __init__(self, cache: Cache) -> None:
        self.cache = _checked(cache)
        # key -> the answer of the call in flight; its result is None when the leader gave up
        # (cancelled, stream abandoned): a follower then calls upstream itself.
        self._flights: dict[str, asyncio.Future[GenerateResponse | None]] = {}

    @staticmethod
    def key(namespace: str, payload: Mapping[str, Any]) -> str:
        return cache_key(namespace, payload)

    async def lookup(self, key: str) -> GenerateResponse | None:
        value = await self.cache.get(key)
        if value is None:
            return None
        response = decode_response(value)
        if response is None:
            logger.warning("hfdriver: an unreadable cache entry was dropped")
            await self.cache.delete(key)
        return response

    async def store(self, key: str, response: GenerateResponse) -> None:
        if is_complete(response) and not response.cached:
            await self.cache.set(key, encode_response(response))

    def lead(self, key: str) -> asyncio.Future[GenerateResponse | None]:
        future: asyncio.Future[GenerateResponse | None] = asyncio.get_running_loop().create_future()
        self._flights[key] = future
        return future

    def land(
        self,
        key: str,
        future: asyncio.Future[GenerateResponse | None],
        result: GenerateResponse | None = None,
        error: BaseException | None = None,
    ) -> None:
        if self._flights.get(key) is future:
            del self._flights[key]
        if future.done():
            return
        if error is not None and isinstance(error, Exception):
            future.set_exception(error)
            future.exception()  # retrieved: no "never retrieved" log when no one follows
        else:
            future.set_result(result)

    def flight(self, key: str) -> asyncio.Future[GenerateResponse | None] | None:
        return self._flights.get(key)

    async def generate(self, key: str, call: Callable[[], Awaitable[GenerateResponse]]) -> GenerateResponse:
        """The cached answer, a concurrent identical call's answer, or ``call()``'s (then stored)."""
        while True:
            hit = await self.lookup(key)
            if hit is not None:
                return hit
            flight = self._flights.get(key)
            if flight is None:
                break
            shared = await asyncio.shield(flight)
            if shared is not None:
                return _shared(shared)
        future = self.lead(key)
        try:
            response = await call()
        except BaseException as exc:
            self.land(key, future, error=exc)
            raise
        self.land(key, future, response)
        await self.store(key, response)
        return response

    def stream(self, key: str, open_stream: Callable[[], ResponseStream]) -> CachedStream:
        return CachedStream(self, key, open_stream)

    async def stats(self) -> CacheStats:
        return await self.cache.stats()


class CachedStream:
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
        self._future: asyncio.Future[GenerateResponse | None] | None = None
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
        return int(getattr(self._inner, "pending", 0))

    @property
    def provider(self) -> str | None:
        if self._replayed is not None:
            return self._replayed.provider
        return getattr(self._inner, "provider", None)

    @property
    def request_id(self) -> str | None:
        if self._replayed is not None:
            return self._replayed.request_id
        return getattr(self._inner, "request_id", None)

    async def _start(self) -> None:
        self._started = True
        layer, key = self._layer, self._key
        while True:
            hit = await layer.lookup(key)
            if hit is None:
                flight = layer.flight(key)
                if flight is not None:
                    shared = await asyncio.shield(flight)
                    if shared is None:
                        continue
                    hit = _shared(shared)
            if hit is not None:
                self._replayed = hit
                self._replay = replay_chunks(hit)
                return
            break
        self._future = layer.lead(key)
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
        future, self._future = self._future, None
        if future is not None:
            self._layer.land(self._key, future, result, error)

    def __aiter__(self) -> CachedStream:
        return self

    async def __anext__(self) -> StreamChunk:
        if not self._started:
            await self._start()
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
        return chunk

    async def __aenter__(self) -> CachedStream:
        if not self._started:
            await self._start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._future is not None:
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

    def __del__(self) -> None:
        future = getattr(self, "_future", None)
        if future is not None and not future.done():
            self._finish()


def _identity(driver: Driver) -> str:
    cls = type(driver)
    parts = [f"{cls.__module__}.{cls.__qualname__}"]
    for name in ("base_url", "model", "model_path"):
        value = getattr(driver, name, None)
        if isinstance(value, str):
            parts.append(f"{name}={value}")
    return " ".join(parts)


class CachedDriver(DriverWrapper):
    """Any :class:`Driver` behind a response cache.

    Args:
        inner: the driver that answers misses.
        cache: a :class:`Cache` (``SQLiteCache(path)``, ``MemoryCache()``...).
        namespace: what separates this driver's answers from others' in a shared cache; by default
            the driver's class, base URL and model.

    Every other attribute passes through to ``inner``. Closing the driver closes the cache.
    """

    def __init__(self, inner: Driver, cache: Cache, *, namespace: str | None = None) -> None:
        super().__init__(inner)
        self._layer = CacheLayer(cache)
        self.namespace = namespace if namespace is not None else _identity(inner)
        model = getattr(inner, "model", None)
        self._default_model = model if isinstance(model, str) else None

    @property
    def cache(self) -> Cache:
        return self._layer.cache

    def _key(self, request: GenerateRequest) -> str:
        # A driver with a model of its own (local) may take requests that name none.
        return cache_key(self.namespace, to_payload(request, model=self._default_model or "-"))

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        return await self._layer.generate(self._key(request), lambda: self.inner.generate(request))

    def generate_stream(self, request: GenerateRequest) -> CachedStream:
        return self._layer.stream(self._key(request), lambda: self.inner.generate_stream(request))

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            await self._layer.cache.aclose()
