"""Where ``hfdriver serve`` keeps the Responses API's responses (``store``, the default).

A stored response can be fetched (``GET /v1/responses/{id}``), deleted, listed for its input items,
and continued with ``previous_response_id``: so each entry keeps the response object, its own input
items, and the whole conversation up to and including its output (the history a continuation
sends to the model). Entries are bounded by total size and by age; the oldest go first, with one
WARNING the first time, since a client that continues an evicted response gets a 404.

- :class:`SQLiteResponseStore`: a file beside the cache (``$HF_HOME/hfdriver/responses.sqlite``),
  kept across restarts and shared by several ``serve`` processes;
- :class:`MemoryResponseStore`: this process only (``hfdriver serve --no-store``, and tests).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import attrs

__all__ = [
    "DEFAULT_MAX_AGE",
    "DEFAULT_MAX_BYTES",
    "MemoryResponseStore",
    "ResponseStore",
    "SQLiteResponseStore",
    "StoredResponse",
    "default_store_path",
]

logger = logging.getLogger("hfdriver")

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_AGE = 30 * 24 * 3600.0
"""Thirty days, OpenAI's retention for stored responses."""

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def default_store_path() -> Path:
    """``$HF_HOME/hfdriver/responses.sqlite``, beside the cache."""
    from hfdriver.cache import default_cache_path

    return default_cache_path().with_name("responses.sqlite")


@attrs.frozen(slots=True)
class StoredResponse:
    """One stored response: the object, its input items, and the conversation it ends."""

    id: str
    response: Mapping[str, Any]
    input_items: tuple[Mapping[str, Any], ...]
    conversation: tuple[Mapping[str, Any], ...]
    created: float = attrs.field(factory=time.time)

    def encode(self) -> bytes:
        return _dumps(
            {"response": self.response, "input_items": self.input_items, "conversation": self.conversation}
        ).encode()

    @classmethod
    def decode(cls, response_id: str, blob: bytes, created: float) -> StoredResponse:
        data = json.loads(blob)
        return cls(
            response_id, data["response"], tuple(data["input_items"]), tuple(data["conversation"]), created
        )


class ResponseStore(Protocol):
    """What ``serve`` needs from a store; every method is safe to call from the event loop."""

    async def get(self, response_id: str) -> StoredResponse | None: ...

    async def put(self, stored: StoredResponse) -> None: ...

    async def delete(self, response_id: str) -> bool: ...

    async def aclose(self) -> None: ...


class _Limits:
    """Size and age limits, and the one WARNING when they first cost an entry."""

    def __init__(self, max_bytes: int, max_age: float, where: str) -> None:
        if max_bytes < 1 or max_age <= 0:
            raise ValueError("max_bytes and max_age must be positive")
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.where = where
        self.warned = False

    def evicted(self, count: int, why: str) -> None:
        if count <= 0:
            return
        if not self.warned:
            self.warned = True
            logger.warning(
                "hfdriver serve: the response store %s is %s: dropped the %d oldest responses "
                "(a previous_response_id naming one now gets a 404; later evictions are logged at DEBUG)",
                self.where,
                why,
                count,
            )
        else:
            logger.debug("hfdriver serve: response store %s: dropped %d (%s)", self.where, count, why)


class MemoryResponseStore:
    """Responses in this process's memory, oldest evicted first past ``max_bytes`` or ``max_age``."""

    def __init__(self, *, max_bytes: int = 64 * 1024 * 1024, max_age: float = DEFAULT_MAX_AGE) -> None:
        self._limits = _Limits(max_bytes, max_age, "in memory")
        self._entries: OrderedDict[str, tuple[StoredResponse, int]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, response_id: str) -> StoredResponse | None:
        self._expire()
        entry = self._entries.get(response_id)
        return entry[0] if entry is not None else None

    async def put(self, stored: StoredResponse) -> None:
        size = len(stored.encode())
        old = self._entries.pop(stored.id, None)
        if old is not None:
            self._bytes -= old[1]
        self._entries[stored.id] = (stored, size)
        self._bytes += size
        self._expire()
        dropped = 0
        while self._bytes > self._limits.max_bytes and len(self._entries) > 1:
            _, (_, gone) = self._entries.popitem(last=False)
            self._bytes -= gone
            dropped += 1
        self._limits.evicted(dropped, f"full ({self._limits.max_bytes} bytes)")

    async def delete(self, response_id: str) -> bool:
        entry = self._entries.pop(response_id, None)
        if entry is None:
            return False
        self._bytes -= entry[1]
        return True

    def _expire(self) -> None:
        cutoff = time.time() - self._limits.max_age
        dropped = 0
        while self._entries:
            first_id, (first, size) = next(iter(self._entries.items()))
            if first.created >= cutoff:
                break
            del self._entries[first_id]
            self._bytes -= size
            dropped += 1
        self._limits.evicted(dropped, f"past its age limit ({self._limits.max_age:g} s)")

    async def aclose(self) -> None:
        self._entries.clear()
        self._bytes = 0


_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    size INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_created ON responses (created);
"""


class SQLiteResponseStore:
    """Responses in a SQLite file (WAL; several processes may share it), bounded by size and age.

    Each call runs on a worker thread, so the event loop never waits on the disk.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_age: float = DEFAULT_MAX_AGE,
    ) -> None:
        self.path = Path(path).expanduser() if path is not None else default_store_path()
        self._limits = _Limits(max_bytes, max_age, str(self.path))
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    async def _run(self, fn: Any, *args: Any) -> Any:
        def locked() -> Any:
            with self._lock:
                return fn(self._connect(), *args)

        return await asyncio.to_thread(locked)

    async def get(self, response_id: str) -> StoredResponse | None:
        row = await self._run(_get, response_id, time.time() - self._limits.max_age)
        return StoredResponse.decode(response_id, row[1], row[0]) if row is not None else None

    async def put(self, stored: StoredResponse) -> None:
        expired, full = await self._run(
            _put, stored.id, stored.created, stored.encode(), self._limits.max_bytes, self._limits.max_age
        )
        self._limits.evicted(expired, f"past its age limit ({self._limits.max_age:g} s)")
        self._limits.evicted(full, f"full ({self._limits.max_bytes} bytes)")

    async def delete(self, response_id: str) -> bool:
        return bool(await self._run(_delete, response_id))

    async def aclose(self) -> None:
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            db.close()


def _get(db: sqlite3.Connection, response_id: str, cutoff: float) -> tuple[float, bytes] | None:
    row = db.execute(
        "SELECT created, body FROM responses WHERE id = ? AND created >= ?", (response_id, cutoff)
    )
    found = row.fetchone()
    return (float(found[0]), bytes(found[1])) if found is not None else None


def _put(
    db: sqlite3.Connection, response_id: str, created: float, body: bytes, max_bytes: int, max_age: float
) -> tuple[int, int]:
    with db:  # one transaction: the insert and the evictions it causes
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT OR REPLACE INTO responses (id, created, size, body) VALUES (?, ?, ?, ?)",
            (response_id, created, len(body), body),
        )
        expired = db.execute("DELETE FROM responses WHERE created < ?", (time.time() - max_age,)).rowcount
        total = db.execute("SELECT COALESCE(SUM(size), 0) FROM responses").fetchone()[0]
        full = 0
        if total > max_bytes:
            # Drop the oldest until the rest fits in 90% of the limit (so not every put evicts).
            rows = db.execute("SELECT id, size FROM responses ORDER BY created").fetchall()
            doomed = []
            for rid, size in rows:
                if total <= max_bytes * 0.9 or rid == response_id:
                    break
                doomed.append((rid,))
                total -= size
            db.executemany("DELETE FROM responses WHERE id = ?", doomed)
            full = len(doomed)
    return max(0, expired), full


def _delete(db: sqlite3.Connection, response_id: str) -> int:
    return db.execute("DELETE FROM responses WHERE id = ?", (response_id,)).rowcount
