"""``SQLiteThread``: SQLite on one worker thread of its own, never on the event loop, and the one
policy for what goes wrong there.

A lock held by another process past the busy timeout skips that one operation (one WARNING); a
file that cannot be used — damaged, unreadable, read-only, not this cache's — disables the
cache for the process (one WARNING naming the file) and every later call is answered by the
caller's default: nothing in a cache ever fails a call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from hfdriver.errors import HuggingFaceError

__all__ = ["Broken", "SQLiteThread"]

logger = logging.getLogger("hfdriver")

T = TypeVar("T")


class Broken(Exception):
    """The file cannot be used as a cache at all."""


class SQLiteThread:
    """The connection to one file, opened by ``opener`` on the worker thread when first needed."""

    def __init__(self, path: Path, opener: Callable[[], sqlite3.Connection]) -> None:
        self.path = path
        self._opener = opener
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._warned: set[str] = set()
        self.broken = False
        self.closed = False
        self.errors = 0

    def db(self) -> sqlite3.Connection:
        """The connection (on the worker thread)."""
        conn = self._conn
        if conn is None:
            conn = self._conn = self._opener()
        return conn

    @property
    def connected(self) -> sqlite3.Connection | None:
        return self._conn

    async def run(self, fn: Callable[[], T], default: T) -> T:
        """``fn()`` on the worker thread; ``default`` when the file is unusable or it fails."""
        if self.broken or self.closed:
            return default
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hfdriver-cache")
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.guarded, fn, default)

    def submit(self, fn: Callable[[], None]) -> None:
        """``fn()`` on the worker thread, not waited for (a batch of counters to write)."""
        if self._executor is not None and not self.broken and not self.closed:
            self._executor.submit(self.guarded, fn, None)

    def guarded(self, fn: Callable[[], T], default: T) -> T:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            self.errors += 1
            if "locked" in text or "busy" in text:
                self.warn_once(
                    "locked",
                    "hfdriver: the cache file %s is locked by another process; skipping it for this call (%s)",
                    exc,
                )
                return default
            self.disable(exc)
            return default
        except (sqlite3.DatabaseError, Broken, OSError, HuggingFaceError) as exc:
            self.errors += 1
            self.disable(exc)
            return default

    def warn_once(self, what: str, message: str, exc: object) -> None:
        if what not in self._warned:
            self._warned.add(what)
            logger.warning(message, self.path, exc)

    def disable(self, exc: BaseException) -> None:
        self.broken = True
        if isinstance(exc, HuggingFaceError):  # a path that is not (and may not become) a cache
            if "refused" not in self._warned:
                self._warned.add("refused")
                logger.warning("hfdriver: answers are not cached: %s", exc.message)
        else:
            self.warn_once(
                "broken",
                "hfdriver: the cache file %s cannot be used (%s); answers are not cached. "
                "Run `hfdriver cache clear` or delete the file",
                exc,
            )
        self.close_connection()

    def revive(self) -> None:
        """Use the file again (it was made anew)."""
        self.broken = False
        self._warned.discard("broken")

    def close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    async def close(self, last: Callable[[], None]) -> None:
        """Run ``last`` (write what is pending) and close the connection and the thread."""
        if self.closed:
            return
        executor = self._executor
        if executor is not None and not self.broken:

            def close() -> None:
                with contextlib.suppress(sqlite3.Error):
                    if self._conn is not None:
                        last()
                self.close_connection()

            await asyncio.get_running_loop().run_in_executor(executor, close)
        self.closed = True
        self._executor = None
        if executor is not None:
            executor.shutdown(wait=False)
