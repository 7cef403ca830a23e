"""Which files a :class:`~hfdriver.cache.SQLiteCache` may open, create, convert or delete: its own.

A cache path comes from a configuration file or a command line, and a typo there must never cost
the user another file. So before SQLite touches a path (SQLite would happily turn any database
into WAL mode and add tables to it, and ``clear`` remakes a damaged file), it is classified:

- ``new``: nothing there; the file is created ``0600`` in a folder created ``0700`` (answers
  are as private as the token file);
- ``empty``: a regular file of 0 bytes;
- ``ours``: a SQLite file whose header carries hfdriver's application id;
- ``legacy``: a SQLite file without an application id whose only tables are the cache's
  (a cache written before ids were set; it gets the id on first use).

Anything else — a directory, a symbolic link, a FIFO, a device (``/dev/null``), a socket, text,
a JSONL dataset, another application's SQLite database, a path with a NUL in it — is a ``CONFIG``
error naming the path; nothing is opened for writing.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from pathlib import Path
from typing import Literal

from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

__all__ = [
    "APPLICATION_ID",
    "CACHE_COLUMNS",
    "PathKind",
    "classify",
    "create_private",
    "make_private",
    "remove_cache_files",
]

APPLICATION_ID = 0x68664463
"""``PRAGMA application_id`` of hfdriver's cache files (the bytes ``hfDc`` at offset 68 of the header)."""
CACHE_COLUMNS = {
    "entries": frozenset({"key", "value", "digest", "created", "accessed", "size"}),
    "counters": frozenset({"name", "value"}),
}
"""The cache's tables and the columns each must have."""
_HEADER = b"SQLite format 3\x00"
_SIDE_FILES = ("-wal", "-shm", "-journal")

PathKind = Literal["new", "empty", "ours", "legacy"]


def _refuse(path: object, problem: str) -> HuggingFaceError:
    return HuggingFaceError(
        HuggingFaceErrorKind.CONFIG,
        f"cache path {path}: {problem}; hfdriver keeps its cache only in a file of its own "
        "(set [llm.cache] path, or --path, to a new file such as ~/.cache/huggingface/hfdriver/cache.sqlite)",
    )


def classify(path: Path) -> PathKind:
    """What is at ``path``, as far as the cache is concerned; ``CONFIG`` for anything it must not touch."""
    where = os.fspath(path)
    if "\x00" in where:
        raise _refuse(repr(where), "the path holds a NUL character")
    try:
        info = os.lstat(where)
    except FileNotFoundError:
        return "new"
    except OSError as exc:
        raise _refuse(where, f"cannot be looked at ({exc.strerror or exc})") from None
    mode = info.st_mode
    if stat.S_ISLNK(mode):
        raise _refuse(where, "is a symbolic link (give the path of the file itself)")
    if stat.S_ISDIR(mode):
        raise _refuse(where, "is a directory, not a file")
    if not stat.S_ISREG(mode):
        raise _refuse(where, "is not a regular file (a device, a FIFO or a socket)")
    if info.st_size == 0:
        return "empty"
    try:
        fd = os.open(where, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        try:
            header = os.read(fd, 100)
        finally:
            os.close(fd)
    except OSError as exc:
        raise _refuse(where, f"cannot be read ({exc.strerror or exc})") from None
    if not header.startswith(_HEADER):
        raise _refuse(where, "holds something else (it is not a SQLite database)")
    application_id = int.from_bytes(header[68:72], "big") if len(header) >= 72 else 0
    if application_id == APPLICATION_ID:
        return "ours"
    if application_id != 0:
        raise _refuse(where, f"is another application's SQLite database (application id {application_id:#x})")
    tables = _tables(where)
    if tables is None:
        raise _refuse(where, "is a SQLite database hfdriver cannot read, and not one it made")
    foreign = sorted(
        name for name, columns in tables.items() if not columns >= CACHE_COLUMNS.get(name, frozenset({""}))
    )
    if foreign:
        raise _refuse(where, f"is another program's SQLite database (tables: {', '.join(foreign[:5])})")
    return "legacy"


def _tables(where: str) -> dict[str, frozenset[str]] | None:
    """The tables of a SQLite file and their columns, read without writing anything (None if
    unreadable)."""
    uri = "file:" + where.replace("%", "%25").replace("?", "%3f").replace("#", "%23") + "?mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error:
        return None
    try:
        names = [str(name) for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            name: frozenset(
                str(row[1]) for row in conn.execute("SELECT * FROM pragma_table_info(?)", (name,))
            )
            for name in names
        }
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def create_private(path: Path) -> None:
    """Create ``path`` empty, readable by its owner only, in a folder created ``0700``."""
    parent = path.parent
    if not parent.exists():
        parent.mkdir(parents=True, mode=0o700, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # another process just made it: classify() decides
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600))


def make_private(path: Path) -> None:
    """An existing cache file (and SQLite's files beside it) readable by its owner only, when the
    owner is this user (a cache written by an earlier hfdriver was 0644)."""
    for name in (os.fspath(path), *(os.fspath(path) + suffix for suffix in _SIDE_FILES)):
        with contextlib.suppress(OSError):
            info = os.lstat(name)
            if stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid() and info.st_mode & 0o077:
                os.chmod(name, stat.S_IMODE(info.st_mode) & 0o700)


def remove_cache_files(path: Path) -> None:
    """Delete the cache file and SQLite's files beside it (only ever called for a file of ours)."""
    for suffix in ("", *_SIDE_FILES):
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.fspath(path) + suffix)
