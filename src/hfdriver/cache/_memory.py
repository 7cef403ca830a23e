"""``MemoryCache``: an in-process LRU cache with a TTL and a size cap."""

from __future__ import annotations

import time
from collections import OrderedDict

from hfdriver.cache._protocol import CacheStats
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

__all__ = ["MemoryCache", "check_limits"]


def check_limits(ttl: float | None, max_bytes: int | None, max_entries: int | None = None) -> None:
    """``CONFIG`` for a negative or non-numeric TTL or size cap."""
    for name, value in (("ttl", ttl), ("max_bytes", max_bytes), ("max_entries", max_entries)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise HuggingFaceError(
                HuggingFaceErrorKind.CONFIG, f"cache {name} must be a number > 0 (or unset), got {value!r}"
            )


class MemoryCache:
    """Answers kept in this process, least recently used evicted first.

    Args:
        ttl: seconds an answer stays valid (``None``: until evicted).
        max_bytes: the most value bytes kept (64 MiB by default).
        max_entries: the most answers kept.
    """

    def __init__(
        self,
        *,
        ttl: float | None = None,
        max_bytes: int | None = 64 * 1024 * 1024,
        max_entries: int | None = None,
    ) -> None:
        check_limits(ttl, max_bytes, max_entries)
        self.ttl = ttl
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self._hits = self._misses = self._stores = self._evictions = self._expired = 0

    def __repr__(self) -> str:
        return f"MemoryCache(entries={len(self._data)}, bytes={self._bytes}, ttl={self.ttl})"

    # The synchronous operations: the async protocol below, and SQLiteCache's in-memory front
    # (which calls them from its worker thread and the event loop under its own lock).
    def lookup(self, key: str) -> bytes | None:
        """The value of ``key`` if present and fresh (an entry stored "in the future" is stale)."""
        item = self._data.get(key)
        if item is None:
            self._misses += 1
            return None
        stored, value = item
        if self.ttl is not None and not 0.0 <= time.monotonic() - stored <= self.ttl:
            self._drop(key)
            self._expired += 1
            self._misses += 1
            return None
        self._data.move_to_end(key)
        self._hits += 1
        return value

    def store(self, key: str, value: bytes, *, age: float = 0.0) -> None:
        """Keep ``value``, already ``age`` seconds old (it counts against the TTL)."""
        if self.max_bytes is not None and len(value) > self.max_bytes:
            return  # larger than the whole cache: never stored
        self._drop(key)
        self._data[key] = (time.monotonic() - age, value)
        self._bytes += len(value)
        self._stores += 1
        while (self.max_bytes is not None and self._bytes > self.max_bytes) or (
            self.max_entries is not None and len(self._data) > self.max_entries
        ):
            oldest = next(iter(self._data))
            self._drop(oldest)
            self._evictions += 1

    def discard(self, key: str | None = None) -> None:
        """Forget ``key``, or everything."""
        if key is None:
            self._data.clear()
            self._bytes = 0
        else:
            self._drop(key)

    def _drop(self, key: str) -> None:
        item = self._data.pop(key, None)
        if item is not None:
            self._bytes -= len(item[1])

    async def get(self, key: str) -> bytes | None:
        return self.lookup(key)

    async def set(self, key: str, value: bytes) -> None:
        self.store(key, value)

    async def delete(self, key: str) -> None:
        self._drop(key)

    async def clear(self) -> None:
        self.discard()

    async def stats(self) -> CacheStats:
        return CacheStats(
            hits=self._hits,
            misses=self._misses,
            stores=self._stores,
            evictions=self._evictions,
            expired=self._expired,
            entries=len(self._data),
            bytes=self._bytes,
        )

    async def aclose(self) -> None:
        return None
