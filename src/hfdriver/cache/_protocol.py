"""The :class:`Cache` protocol every response cache implements, and its statistics."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import attrs

__all__ = ["Cache", "CacheStats"]


@attrs.frozen(slots=True, kw_only=True)
class CacheStats:
    """Counters of one cache.

    ``hits`` / ``misses`` / ``stores`` / ``evictions`` count this process's use (a SQLite file also
    keeps lifetime totals across processes: ``SQLiteCache.stats()`` reports those). ``entries``
    and ``bytes`` describe what is stored now; ``errors`` counts operations that were bypassed
    because the backing store failed.
    """

    hits: int = 0
    misses: int = 0
    stores: int = 0
    evictions: int = 0
    expired: int = 0
    entries: int = 0
    bytes: int = 0
    errors: int = 0
    path: str | None = None

    @property
    def hit_rate(self) -> float:
        """Hits over lookups (0.0 before the first lookup)."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0


@runtime_checkable
class Cache(Protocol):
    """A key -> bytes store for complete, successful answers.

    Implementations never raise for a failing backing store: a lookup that cannot be answered is
    a miss, a store that cannot be written is skipped (with one WARNING).
    """

    async def get(self, key: str) -> bytes | None:
        """The value stored for ``key``, or ``None`` (missing, expired or unreadable)."""
        ...

    async def set(self, key: str, value: bytes) -> None:
        """Store ``value`` for ``key`` (evicting the least recently used past the size cap)."""
        ...

    async def delete(self, key: str) -> None:
        """Forget ``key`` (a no-op when absent)."""
        ...

    async def clear(self) -> None:
        """Forget everything."""
        ...

    async def stats(self) -> CacheStats:
        """Counters and sizes."""
        ...

    async def aclose(self) -> None:
        """Release the store (files, threads). Safe to call twice."""
        ...
