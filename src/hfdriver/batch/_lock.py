"""One run at a time per output: a lock file beside it, held (``flock``) for the whole run.

Two runs on one output would both send the missing rows (paying twice) and one's rewrite would
send the other's later rows to an unlinked file. The lock is an advisory ``flock`` on a small
file of its own (the output itself is replaced by atomic rewrites, so its inode cannot carry a
lock), released by the kernel when the process ends, even by SIGKILL: a stale lock file never
blocks the next run.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from types import TracebackType

from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

__all__ = ["OutputLock", "lock_path"]


def lock_path(output: Path) -> Path:
    """``dir/.name.hfdriver-lock`` for a file; ``dir/.hfdriver-lock`` inside a directory output."""
    if output.is_dir():
        return output / ".hfdriver-lock"
    return output.with_name(f".{output.name}.hfdriver-lock")


if sys.platform == "win32":  # pragma: no cover - Windows
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


class OutputLock:
    """``with OutputLock(output):`` — or ``acquire()`` / ``release()``. A second holder is refused
    with one line (``CONFIG``) that names the output and the process holding it."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.path = lock_path(output)
        self._fd: int | None = None

    def acquire(self) -> OutputLock:
        path = self.path
        for _ in range(10):  # the file may be unlinked between our open and our lock: try again
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
            except OSError as exc:
                raise HuggingFaceError(
                    HuggingFaceErrorKind.CONFIG,
                    f"cannot lock the batch output {self.output} ({path}: {exc.strerror or exc})",
                ) from None
            if not _try_lock(fd):
                holder = _holder(fd)
                os.close(fd)
                raise HuggingFaceError(
                    HuggingFaceErrorKind.CONFIG,
                    f"another hfdriver batch{holder} is writing {self.output}: wait for it to finish "
                    "(or stop it), then run this again to resume",
                )
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self._fd = fd
                return self
            os.close(fd)  # locked a file its last holder had just removed
        raise HuggingFaceError(HuggingFaceErrorKind.CONFIG, f"cannot lock the batch output {self.output}")

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # still held: no one else can have locked this file meanwhile
        os.close(fd)

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 32, 0).decode("ascii").strip()
        if text.isdigit():
            return f" (process {text})"
    return ""
