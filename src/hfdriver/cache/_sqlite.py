"""``SQLiteCache``: a persistent response cache in one SQLite file, shared by processes.

SQLite runs on one worker thread of the cache's own, never on the event loop. The file is in
WAL mode, so several processes (a batch, a notebook, ``hfdriver serve``) read and write it at
once. Every value is stored with a digest of its key and bytes and checked when read: a damaged
row is a miss, never a wrong answer. A file that is not a usable database (corrupt, unreadable,
read-only) is bypassed with one WARNING; a file locked by another process past the busy timeout
skips that one operation (one WARNING). Nothing in the cache ever fails a call.

Only a file of its own is ever opened for writing, converted or deleted (see
:mod:`hfdriver.cache._file`): a path that holds anything else is bypassed with a WARNING, and
``check()`` / ``clear()`` / ``hfdriver cache`` say what is there instead. The file is created
``0600`` in a folder created ``0700``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

from hfdriver.cache._file import (
    APPLICATION_ID,
    PathKind,
    classify,
    create_private,
    make_private,
    remove_cache_files,
)
from hfdriver.cache._memory import MemoryCache, check_limits
from hfdriver.cache._protocol import CacheStats
from hfdriver.cache._thread import Broken, SQLiteThread
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

__all__ = ["DEFAULT_CACHE_PATH", "SQLiteCache", "default_cache_path"]

logger = logging.getLogger("hfdriver")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS entries ("
    " key TEXT PRIMARY KEY, value BLOB NOT NULL, digest BLOB NOT NULL,"
    " created REAL NOT NULL, accessed REAL NOT NULL, size INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS entries_accessed ON entries(accessed)",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)
_COUNTERS = ("hits", "misses", "stores", "evictions", "expired")
# Touches (LRU order) and counters are written in batches: a hit costs one SELECT, not a write.
_FLUSH_EVERY = 256
# Answers this process read or wrote lately are kept in memory too (a MemoryCache, the "front"):
# a repeated hit skips the thread hop and the SELECT. Another process's later write of the same
# key is not seen until the entry leaves the front (same request, another valid answer: never a
# wrong one).
_FRONT_ENTRIES = 1024
_FRONT_BYTES = 16 * 1024 * 1024


def default_cache_path() -> Path:
    """``$HF_HOME/hfdriver/cache.sqlite`` (``~/.cache/huggingface/hfdriver/cache.sqlite``)."""
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface"
    )
    return Path(home) / "hfdriver" / "cache.sqlite"


DEFAULT_CACHE_PATH = "~/.cache/huggingface/hfdriver/cache.sqlite"


def _digest(key: str, value: bytes) -> bytes:
    return hashlib.blake2b(key.encode() + b"\0" + value, digest_size=16).digest()


class _Counters:
    """Hits, misses... of this process: all of them, and those not yet written to the file."""

    __slots__ = ("pending", "session")

    def __init__(self) -> None:
        self.pending = dict.fromkeys(_COUNTERS, 0)
        self.session = dict.fromkeys(_COUNTERS, 0)

    def count(self, name: str, n: int = 1) -> None:
        self.pending[name] += n
        self.session[name] += n

    def take(self) -> dict[str, int]:
        """The pending counts (to write), now forgotten."""
        found = {k: v for k, v in self.pending.items() if v}
        self.pending = dict.fromkeys(_COUNTERS, 0)
        return found

    def waiting(self) -> int:
        return sum(self.pending.values())


class SQLiteCache:
    """Answers in a SQLite file (WAL), safe for several processes at once.

    Args:
        path: the file (created with its folders); defaults to :func:`default_cache_path`.
        ttl: seconds an answer stays valid (``None``: until evicted).
        max_bytes: the most value bytes kept (1 GiB); least recently used answers go first.
        busy_timeout: seconds to wait for another process's write lock before skipping.
        front: the in-memory cache of recent answers (default: 1,024 answers, 16 MiB);
            ``MemoryCache(max_entries=1)`` all but turns it off.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        ttl: float | None = None,
        max_bytes: int | None = 1024 * 1024 * 1024,
        busy_timeout: float = 1.0,
        front: MemoryCache | None = None,
    ) -> None:
        check_limits(ttl, max_bytes)
        self.path = Path(path).expanduser() if path is not None else default_cache_path()
        self.ttl = ttl
        self.max_bytes = max_bytes
        self.busy_timeout = busy_timeout
        self._thread = SQLiteThread(self.path, self._open)
        self._lock = threading.Lock()  # the front, touches and counters: the loop and the thread
        self._front = (
            front if front is not None else MemoryCache(max_bytes=_FRONT_BYTES, max_entries=_FRONT_ENTRIES)
        )
        if ttl is not None and (self._front.ttl is None or self._front.ttl > ttl):
            self._front.ttl = ttl  # the front never serves an answer the file would call expired
        self._front_limit = (self._front.max_bytes or _FRONT_BYTES) // 8  # a huge answer skips it
        self._touches: dict[str, float] = {}
        self._counts = _Counters()
        self._bytes: int | None = None

    def __repr__(self) -> str:
        return f"SQLiteCache(path={str(self.path)!r}, ttl={self.ttl}, max_bytes={self.max_bytes})"

    # ------------------------------------------------------------------ the file (worker thread)
    def _open(self) -> sqlite3.Connection:
        kind: PathKind = classify(self.path)  # CONFIG for anything that is not this cache's file
        if kind == "new":
            create_private(self.path)
        else:
            make_private(self.path)
        conn = sqlite3.connect(
            str(self.path), timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()
            if not mode or str(mode[0]).lower() != "wal":
                raise Broken(f"journal mode is {mode!r}, not WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            if kind != "ours":
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            for statement in _SCHEMA:
                conn.execute(statement)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(entries)")}
            if not {"key", "value", "digest", "created", "accessed", "size"} <= columns:
                raise Broken("the file holds another program's table named 'entries'")
        except BaseException:
            conn.close()
            raise
        return conn

    def _flush(self, conn: sqlite3.Connection) -> None:
        """Write the batched LRU touches and counters (a hit costs one SELECT, not a write)."""
        with self._lock:
            touches, self._touches = self._touches, {}
            counts = self._counts.take()
        if not touches and not counts:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "UPDATE entries SET accessed = ? WHERE key = ?", [(t, k) for k, t in touches.items()]
            )
            conn.executemany(
                "INSERT INTO counters(name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                list(counts.items()),
            )
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def _flush_now(self) -> None:
        conn = self._thread.connected
        if conn is not None:
            self._flush(conn)

    def _maybe_flush(self, conn: sqlite3.Connection) -> None:
        if len(self._touches) + self._counts.waiting() >= _FLUSH_EVERY:
            self._flush(conn)

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts.count(name, n)

    # ------------------------------------------------------------------ the in-memory front
    def _remember(self, key: str, created: float, value: bytes) -> None:
        with self._lock:
            if len(value) > self._front_limit:
                self._front.discard(key)
            else:
                self._front.store(key, value, age=time.time() - created)

    def _forget(self, key: str | None = None) -> None:
        with self._lock:
            self._front.discard(key)

    def _front_get(self, key: str) -> bytes | None:
        with self._lock:
            value = self._front.lookup(key)  # expired entries go (the SELECT path counts them)
            if value is None:
                return None
            self._touches[key] = time.time()
            self._counts.count("hits")
            pending = len(self._touches) + self._counts.waiting()
        if pending >= _FLUSH_EVERY:
            self._thread.submit(self._flush_now)
        return value

    # ------------------------------------------------------------------ operations (worker thread)
    def _get(self, key: str) -> bytes | None:
        conn = self._thread.db()
        row = conn.execute("SELECT value, digest, created FROM entries WHERE key = ?", (key,)).fetchone()
        now = time.time()
        if row is None:
            self._forget(key)
            self._count("misses")
            self._maybe_flush(conn)
            return None
        value, digest, created = row
        if not isinstance(value, bytes) or _digest(key, value) != digest:
            conn.execute("DELETE FROM entries WHERE key = ?", (key,))
            self._thread.warn_once(
                "damaged", "hfdriver: a damaged entry in the cache file %s was dropped (%s)", key
            )
            self._count("misses")
            return None
        # Stored "in the future" (the clock was ahead, then corrected): its age is unknown, so
        # it is as good as expired.
        if self.ttl is not None and not 0.0 <= now - created <= self.ttl:
            conn.execute("DELETE FROM entries WHERE key = ?", (key,))
            self._forget(key)
            self._count("expired")
            self._count("misses")
            return None
        with self._lock:
            self._touches[key] = now
        self._count("hits")
        self._remember(key, created, value)
        self._maybe_flush(conn)
        return value

    def _set(self, key: str, value: bytes) -> None:
        size = len(value)
        if self.max_bytes is not None and size > self.max_bytes:
            return
        conn = self._thread.db()
        now = time.time()
        with self._lock:
            self._touches.pop(key, None)
        conn.execute(
            "INSERT OR REPLACE INTO entries(key, value, digest, created, accessed, size) VALUES (?, ?, ?, ?, ?, ?)",
            (key, value, _digest(key, value), now, now, size),
        )
        self._count("stores")
        self._remember(key, now, value)
        if self._bytes is None:
            self._bytes = int(conn.execute("SELECT COALESCE(SUM(size), 0) FROM entries").fetchone()[0])
        else:
            self._bytes += size
        if self.max_bytes is not None and self._bytes > self.max_bytes:
            self._evict(conn)
        self._maybe_flush(conn)

    def _evict(self, conn: sqlite3.Connection) -> None:
        """Drop expired answers, then the least recently used, down to 90% of the cap."""
        assert self.max_bytes is not None
        self._flush(conn)  # recent hits must count as recent
        if self.ttl is not None:
            now = time.time()
            gone = conn.execute(
                "DELETE FROM entries WHERE created < ? OR created > ?", (now - self.ttl, now)
            ).rowcount
            self._count("expired", max(gone, 0))
        total = int(conn.execute("SELECT COALESCE(SUM(size), 0) FROM entries").fetchone()[0])
        target = int(self.max_bytes * 0.9)
        if total > self.max_bytes:
            victims: list[tuple[str]] = []
            for key, size in conn.execute("SELECT key, size FROM entries ORDER BY accessed"):
                if total <= target:
                    break
                victims.append((key,))
                total -= size
            conn.executemany("DELETE FROM entries WHERE key = ?", victims)
            for (victim,) in victims:
                self._forget(victim)
            self._count("evictions", len(victims))
        self._bytes = total

    def _stats(self) -> CacheStats:
        conn = self._thread.db()
        self._flush(conn)
        entries, size = conn.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries").fetchone()
        totals = dict(conn.execute("SELECT name, value FROM counters").fetchall())
        return CacheStats(
            **{name: int(totals.get(name, 0)) for name in _COUNTERS},
            entries=int(entries),
            bytes=int(size),
            errors=self._thread.errors,
            path=str(self.path),
        )

    def _clear(self) -> None:
        conn = self._thread.db()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM entries")
        conn.execute("DELETE FROM counters")
        conn.execute("COMMIT")
        self._forget()
        with self._lock:
            self._touches.clear()
            self._counts.take()
        self._bytes = 0
        with contextlib.suppress(sqlite3.Error):
            conn.execute("VACUUM")

    def _delete(self, key: str) -> None:
        self._forget(key)
        with self._lock:
            self._touches.pop(key, None)
        self._thread.db().execute("DELETE FROM entries WHERE key = ?", (key,))
        self._bytes = None

    # ------------------------------------------------------------------ the Cache protocol
    async def get(self, key: str) -> bytes | None:
        thread = self._thread
        if not thread.broken and not thread.closed:
            value = self._front_get(key)
            if value is not None:
                return value
        return await thread.run(lambda: self._get(key), None)

    async def set(self, key: str, value: bytes) -> None:
        await self._thread.run(lambda: self._set(key, value), None)

    async def delete(self, key: str) -> None:
        await self._thread.run(lambda: self._delete(key), None)

    def check(self) -> None:
        """``CONFIG`` naming the path, and what is there, when it is not (and may not become)
        this cache's file: a directory, a device, a FIFO, a symbolic link, another program's file."""
        classify(self.path)

    async def clear(self) -> None:
        """Forget everything. A damaged file of this cache's own is deleted and made anew; a path
        that holds anything else is ``CONFIG`` (nothing there is touched)."""
        kind = classify(self.path)
        if kind == "new":
            return  # nothing stored: nothing to clear, and no file to create
        thread = self._thread
        if not thread.broken:
            await thread.run(self._clear, None)
        if thread.broken and not thread.closed:
            thread.close_connection()
            remove_cache_files(self.path)  # classify() said: a file of ours
            thread.revive()
            await thread.run(self._clear, None)
            if thread.broken:
                raise HuggingFaceError(
                    HuggingFaceErrorKind.CONFIG, f"could not make the cache file {self.path} anew"
                )

    async def stats(self) -> CacheStats:
        """Lifetime totals of the file (all processes), its size now, and this process's errors.

        When the file cannot be read: this process's counters, with ``errors`` > 0."""
        found: CacheStats | None = await self._thread.run(self._stats, None)
        return found if found is not None else self.session_stats()

    def session_stats(self) -> CacheStats:
        """This process's hits, misses, stores... (no file access)."""
        return CacheStats(**self._counts.session, errors=self._thread.errors, path=str(self.path))

    async def aclose(self) -> None:
        await self._thread.close(self._flush_now)
