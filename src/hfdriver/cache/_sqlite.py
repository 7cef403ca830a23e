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

import asyncio
import contextlib
import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from hfdriver.cache._file import (
    APPLICATION_ID,
    PathKind,
    classify,
    create_private,
    make_private,
    remove_cache_files,
)
from hfdriver.cache._memory import check_limits
from hfdriver.cache._protocol import CacheStats
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

__all__ = ["DEFAULT_CACHE_PATH", "SQLiteCache", "default_cache_path"]

logger = logging.getLogger("hfdriver")

T = TypeVar("T")

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
# Answers this process read or wrote lately, kept in memory too: a repeated hit skips the
# thread hop and the SELECT. Another process's later write of the same key is not seen until
# the entry leaves this front (same request, another valid answer: never a wrong one).
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


class _Broken(Exception):
    """The file cannot be used as a cache at all."""


class SQLiteCache:
    """Answers in a SQLite file (WAL), safe for several processes at once.

    Args:
        path: the file (created with its folders); defaults to :func:`default_cache_path`.
        ttl: seconds an answer stays valid (``None``: until evicted).
        max_bytes: the most value bytes kept (1 GiB); least recently used answers go first.
        busy_timeout: seconds to wait for another process's write lock before skipping.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        ttl: float | None = None,
        max_bytes: int | None = 1024 * 1024 * 1024,
        busy_timeout: float = 1.0,
    ) -> None:
        check_limits(ttl, max_bytes)
        self.path = Path(path).expanduser() if path is not None else default_cache_path()
        self.ttl = ttl
        self.max_bytes = max_bytes
        self.busy_timeout = busy_timeout
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._broken = False
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        self._touches: dict[str, float] = {}
        self._front: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._front_bytes = 0
        self._counts = dict.fromkeys(_COUNTERS, 0)  # this process, not flushed yet
        self._session = dict.fromkeys(_COUNTERS, 0)  # this process, in all
        self._errors = 0
        self._bytes: int | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"SQLiteCache(path={str(self.path)!r}, ttl={self.ttl}, max_bytes={self.max_bytes})"

    # ------------------------------------------------------------------ plumbing (worker thread)
    async def _run(self, fn: Callable[[], T], default: T) -> T:
        if self._broken or self._closed:
            return default
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hfdriver-cache")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._guarded, fn, default)

    def _guarded(self, fn: Callable[[], T], default: T) -> T:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            self._errors += 1
            if "locked" in text or "busy" in text:
                self._warn_once(
                    "locked",
                    "hfdriver: the cache file %s is locked by another process; skipping it for this call (%s)",
                    exc,
                )
                return default
            self._disable(exc)
            return default
        except (sqlite3.DatabaseError, _Broken, OSError, HuggingFaceError) as exc:
            self._errors += 1
            self._disable(exc)
            return default

    def _warn_once(self, what: str, message: str, exc: object) -> None:
        if what not in self._warned:
            self._warned.add(what)
            logger.warning(message, self.path, exc)

    def _disable(self, exc: BaseException) -> None:
        self._broken = True
        if isinstance(exc, HuggingFaceError):  # a path that is not (and may not become) a cache
            if "refused" not in self._warned:
                self._warned.add("refused")
                logger.warning("hfdriver: answers are not cached: %s", exc.message)
        else:
            self._warn_once(
                "broken",
                "hfdriver: the cache file %s cannot be used (%s); answers are not cached. "
                "Run `hfdriver cache clear` or delete the file",
                exc,
            )
        self._close_conn()

    def _close_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def _db(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is not None:
            return conn
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
                raise _Broken(f"journal mode is {mode!r}, not WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            if kind != "ours":
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            for statement in _SCHEMA:
                conn.execute(statement)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(entries)")}
            if not {"key", "value", "digest", "created", "accessed", "size"} <= columns:
                raise _Broken("the file holds another program's table named 'entries'")
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _flush(self, conn: sqlite3.Connection) -> None:
        with self._lock:  # the event loop adds touches and counts for front hits
            touches, self._touches = self._touches, {}
            counts = {k: v for k, v in self._counts.items() if v}
            self._counts = dict.fromkeys(_COUNTERS, 0)
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

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n
            self._session[name] += n

    # ------------------------------------------------------------------ the in-memory front
    def _remember(self, key: str, created: float, value: bytes) -> None:
        with self._lock:
            old = self._front.pop(key, None)
            if old is not None:
                self._front_bytes -= len(old[1])
            if len(value) > _FRONT_BYTES // 8:
                return
            self._front[key] = (created, value)
            self._front_bytes += len(value)
            while len(self._front) > _FRONT_ENTRIES or self._front_bytes > _FRONT_BYTES:
                _, (_, dropped) = self._front.popitem(last=False)
                self._front_bytes -= len(dropped)

    def _forget(self, key: str | None = None) -> None:
        with self._lock:
            if key is None:
                self._front.clear()
                self._front_bytes = 0
                return
            old = self._front.pop(key, None)
            if old is not None:
                self._front_bytes -= len(old[1])

    def _front_get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._front.get(key)
            if item is None:
                return None
            created, value = item
            if self.ttl is not None and not 0.0 <= time.time() - created <= self.ttl:
                return None  # the SELECT path expires it and counts it
            self._front.move_to_end(key)
            self._touches[key] = time.time()
            self._counts["hits"] += 1
            self._session["hits"] += 1
            pending = len(self._touches) + sum(self._counts.values())
        if pending >= _FLUSH_EVERY and self._executor is not None and not self._broken:
            self._executor.submit(self._guarded, self._flush_now, None)
        return value

    def _flush_now(self) -> None:
        if self._conn is not None:
            self._flush(self._conn)

    def _maybe_flush(self, conn: sqlite3.Connection) -> None:
        if len(self._touches) + sum(self._counts.values()) >= _FLUSH_EVERY:
            self._flush(conn)

    # ------------------------------------------------------------------ operations (worker thread)
    def _get(self, key: str) -> bytes | None:
        conn = self._db()
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
            self._warn_once("damaged", "hfdriver: a damaged entry in the cache file %s was dropped (%s)", key)
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
        conn = self._db()
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
        conn = self._db()
        self._flush(conn)
        entries, size = conn.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries").fetchone()
        totals = dict(conn.execute("SELECT name, value FROM counters").fetchall())
        return CacheStats(
            **{name: int(totals.get(name, 0)) for name in _COUNTERS},
            entries=int(entries),
            bytes=int(size),
            errors=self._errors,
            path=str(self.path),
        )

    def _clear(self) -> None:
        conn = self._db()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM entries")
        conn.execute("DELETE FROM counters")
        conn.execute("COMMIT")
        self._forget()
        with self._lock:
            self._touches.clear()
            self._counts = dict.fromkeys(_COUNTERS, 0)
        self._bytes = 0
        with contextlib.suppress(sqlite3.Error):
            conn.execute("VACUUM")

    # ------------------------------------------------------------------ the Cache protocol
    async def get(self, key: str) -> bytes | None:
        if not self._broken and not self._closed:
            value = self._front_get(key)
            if value is not None:
                return value
        return await self._run(lambda: self._get(key), None)

    async def set(self, key: str, value: bytes) -> None:
        await self._run(lambda: self._set(key, value), None)

    def _delete(self, key: str) -> None:
        self._forget(key)
        with self._lock:
            self._touches.pop(key, None)
        self._db().execute("DELETE FROM entries WHERE key = ?", (key,))
        self._bytes = None

    async def delete(self, key: str) -> None:
        await self._run(lambda: self._delete(key), None)

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
        if not self._broken:
            await self._run(self._clear, None)
        if self._broken and not self._closed:
            if classify(self.path) not in ("ours", "legacy", "empty"):  # pragma: no cover - raised above
                return
            self._close_conn()
            remove_cache_files(self.path)
            self._broken = False
            self._warned.discard("broken")
            await self._run(self._clear, None)
            if self._broken:
                raise HuggingFaceError(
                    HuggingFaceErrorKind.CONFIG, f"could not make the cache file {self.path} anew"
                )

    async def stats(self) -> CacheStats:
        """Lifetime totals of the file (all processes), its size now, and this process's errors.

        When the file cannot be read: this process's counters, with ``errors`` > 0."""
        found: CacheStats | None = await self._run(self._stats, None)
        return found if found is not None else self.session_stats()

    def session_stats(self) -> CacheStats:
        """This process's hits, misses, stores... (no file access)."""
        return CacheStats(**self._session, errors=self._errors, path=str(self.path))

    async def aclose(self) -> None:
        if self._closed:
            return
        executor = self._executor
        if executor is not None and not self._broken:

            def close() -> None:
                with contextlib.suppress(sqlite3.Error):
                    if self._conn is not None:
                        self._flush(self._conn)
                self._close_conn()

            await asyncio.get_running_loop().run_in_executor(executor, close)
        self._closed = True
        self._executor = None
        if executor is not None:
            executor.shutdown(wait=False)
