"""The output of a batch written by many workers at once: one part file per worker, row by row.

Each worker appends every answered row to its own part file (``hfdriver-part-<id>.jsonl``) with
one ``write`` as the row finishes, so killing the run (even SIGKILL) loses at most the requests in
flight, as in one process. The output is either:

- a **file** (``-o answers.jsonl``: an existing file, or a new path ending in ``.jsonl``): the
  parts live in ``.answers.jsonl.hfdriver-parts/`` beside it and are merged into the file
  atomically when the run ends (and, after a kill, when the next run starts); or
- a **directory**: the part files themselves, deduplicated in place when the run ends.

Only files the engine created (the ``hfdriver-part-*.jsonl`` names) are ever read, rewritten or
deleted; a directory that holds the input is refused, as is a file that holds no output row.
The output is locked for the run (:class:`~hfdriver.batch._lock.OutputLock`), and it never holds
a duplicate: of several lines for one row, the first answered one is kept (a failed one only
when no answer exists, and once).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from hfdriver.batch._files import IdSet, check_output_file, compact_outputs, merge_outputs, same_file
from hfdriver.batch._lock import OutputLock
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

__all__ = ["PART_GLOB", "PartWriter", "PartedOutput"]

PART_GLOB = "hfdriver-part-*.jsonl"


def _inside(path: Path, directory: Path) -> bool:
    try:
        real, root = os.path.realpath(path), os.path.realpath(directory)
    except (OSError, ValueError):
        return False
    return real != root and os.path.commonpath((real, root)) == root


class PartedOutput:
    """Where a distributed batch writes (see the module docstring).

    Args:
        output: the file or directory the user named.
        source: the input file (refused when it is the output or inside the output directory).
        restart: start over: forget the rows of earlier runs (only the engine's own files).
    """

    def __init__(self, output: Path, *, source: Path | None = None, restart: bool = False) -> None:
        self.output = output
        self.source = source
        self.restart = restart
        exists_as_dir = output.is_dir()
        self.mode: Literal["file", "dir"] = (
            "dir" if exists_as_dir or (not output.exists() and output.suffix.lower() != ".jsonl") else "file"
        )
        self.parts_dir = output if self.mode == "dir" else output.with_name(f".{output.name}.hfdriver-parts")
        self._lock: OutputLock | None = None

    def _refuse(self, problem: str) -> HuggingFaceError:
        return HuggingFaceError(HuggingFaceErrorKind.CONFIG, f"batch output {self.output}: {problem}")

    def parts(self) -> list[Path]:
        """The engine's part files, oldest name first (nothing else in the folder is looked at)."""
        if not self.parts_dir.is_dir():
            return []
        return sorted(p for p in self.parts_dir.glob(PART_GLOB) if p.is_file() and not p.is_symlink())

    def open(self) -> IdSet:
        """Check, lock, and gather what earlier runs answered (their failed rows are dropped,
        so they are sent again). Returns the ids not to send."""
        output, source = self.output, self.source
        if self.mode == "file" and output.exists() and not output.is_file():
            raise self._refuse("is neither a regular file nor a directory")
        if source is not None:
            if same_file(output, source):
                raise self._refuse(f"is the input file {source}: give another output")
            if _inside(source, self.parts_dir):
                raise self._refuse(f"holds the input {source}: give a directory of its own, or a .jsonl file")
        try:
            self.parts_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._refuse(f"cannot be created ({exc.strerror or exc})") from None
        self._lock = OutputLock(output).acquire()
        try:
            return self._gather()
        except BaseException:
            self.close()
            raise

    def _gather(self) -> IdSet:
        parts = self.parts()
        if self.mode == "file":
            if self.restart:
                for part in parts:
                    part.unlink()
                if self.output.exists():
                    self.output.write_bytes(b"")
                return IdSet()
            if self.output.exists():
                check_output_file(self.output)
            if parts:  # a killed run's parts: into the file first, then resume from it alone
                merge_outputs([*([self.output] if self.output.exists() else []), *parts], self.output)
                for part in parts:
                    part.unlink()
            if not self.output.exists():
                return IdSet()
            done, _ = compact_outputs([self.output])
            return done
        if self.restart:
            for part in parts:
                part.unlink()
            return IdSet()
        done, _ = compact_outputs(parts) if parts else (IdSet(), 0)
        return done

    def finish(self) -> None:
        """The run is over: merge the parts into the file, or deduplicate the directory's parts."""
        parts = self.parts()
        if self.mode == "dir":
            if parts:
                compact_outputs(parts, keep_failed=True)
            return
        merge_outputs([*([self.output] if self.output.exists() else []), *parts], self.output)
        for part in parts:
            part.unlink()
        with contextlib.suppress(OSError):
            self.parts_dir.rmdir()

    def lines(self) -> Iterator[bytes]:
        """Every line of the output as it stands."""
        for path in [self.output] if self.mode == "file" else self.parts():
            if path.exists():
                with path.open("rb") as handle:
                    yield from handle

    def close(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()


class PartWriter:
    """A worker's part file: created on the first row, one whole line per ``write`` call."""

    def __init__(self, parts_dir: Path) -> None:
        self.parts_dir = parts_dir
        self._fd: int | None = None

    def write(self, line: bytes) -> None:
        fd = self._fd
        if fd is None:
            path = self.parts_dir / f"hfdriver-part-{secrets.token_hex(8)}.jsonl"
            fd = self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view) :]

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
