"""Batch output: OpenAI Batch output JSONL, written row by row, resumable, never a duplicate.

Output lines are the OpenAI Batch output format (``id``, ``custom_id``, ``response:
{status_code, request_id, body}``, ``error``), plus an ``hfdriver`` object (attempts, seconds,
provider, cost, cached). Each line is written whole with one system call as its row finishes,
so a killed run (even SIGKILL) loses at most the rows in flight. Rerunning with the same output
keeps every answered row, drops failed rows and a torn or damaged line (rewriting the file
atomically), and sends only what is missing. The output never holds a duplicate.

An output is locked for its run (:class:`~hfdriver.batch._lock.OutputLock`): a second run on it
is refused. A non-empty file that holds no output row (a dataset, another batch's input) is
never rewritten: the run is refused, naming what the file holds.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from hfdriver.batch._ids import IdSet, id_hash
from hfdriver.batch._lock import OutputLock
from hfdriver.batch._ops import output_body
from hfdriver.batch._run import BatchResult
from hfdriver.errors import KINDS, HuggingFaceError, HuggingFaceErrorKind

__all__ = [
    "OutputFile",
    "check_output_file",
    "compact_outputs",
    "merge_outputs",
    "result_line",
    "same_file",
    "written_ids",
]


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


def _error_object(error: HuggingFaceError) -> dict[str, Any]:
    info = KINDS[error.kind]
    return {"message": error.message, "type": info.openai_type, "code": error.kind.name.lower()}


def result_line(result: BatchResult, *, model: str = "") -> bytes:
    """One output line (with its newline) in the OpenAI Batch output format."""
    record: dict[str, Any] = {"id": f"batch_req_{secrets.token_hex(12)}", "custom_id": result.custom_id}
    extra: dict[str, Any] = {"attempts": result.attempts, "seconds": round(result.elapsed, 3)}
    response, error = result.response, result.error
    if response is not None and error is None:
        body = output_body(response, model, result.encoding)
        record["response"] = {"status_code": 200, "request_id": response.request_id, "body": body}
        record["error"] = None
        extra["provider"] = response.provider
        extra["cached"] = response.cached
        if response.cost is not None:
            extra["cost"] = {
                "input": response.cost.input,
                "output": response.cost.output,
                "total": response.cost.total,
                "currency": response.cost.currency,
            }
    else:
        assert error is not None
        record["response"] = (
            {
                "status_code": error.status,
                "request_id": error.request_id,
                "body": {"error": _error_object(error)},
            }
            if error.status is not None
            else None
        )
        record["error"] = {"code": error.kind.name.lower(), "message": error.message}
        extra["kind"] = error.kind.name
        if result.line is not None:
            extra["line"] = result.line
    record["hfdriver"] = extra
    return (_encode(record) + "\n").encode()


_ANSWERED, _FAILED, _DAMAGED, _FOREIGN = "answered", "failed", "damaged", "foreign"
_OUR_LINE = b'{"id":"batch_req_'  # how every line result_line() writes begins


def _classify(raw: bytes) -> tuple[str, str | None]:
    """``(what, custom_id)`` of an output line: an answered row, a failed row, a torn or damaged
    line (a killed run's last line, a damaged byte), or a line that is no output row at all."""
    if not raw.endswith(b"\n"):
        return _DAMAGED, None  # torn: a killed run's last line
    try:
        data = json.loads(raw.decode("utf-8"))  # strict: a damaged byte is a damaged line
    except (ValueError, RecursionError):
        return _DAMAGED, None
    if not isinstance(data, dict):
        return _FOREIGN, None
    custom_id = data.get("custom_id")
    if "response" not in data or "error" not in data or not isinstance(custom_id, str):
        return _FOREIGN, None
    response = data.get("response")
    if data.get("error") is not None or not isinstance(response, dict) or response.get("status_code") != 200:
        return _FAILED, custom_id
    return _ANSWERED, custom_id


def _answered_lines(path: Path) -> Iterator[tuple[bytes, str | None]]:
    """Each line with the custom_id of an answered row (None for any other line)."""
    with path.open("rb") as current:
        for raw in current:
            what, custom_id = _classify(raw)
            yield raw, custom_id if what is _ANSWERED else None


def _describe(raw: bytes) -> str:
    """What a line that is no output row looks like, for the refusal."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return "text that is not JSON lines"
    if isinstance(data, dict) and ("body" in data or "prompt" in data or "messages" in data):
        return "batch input rows (requests)"
    return "JSON lines that are not batch output"


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths are one file (a hard link, a bind mount, another case on a
    case-insensitive filesystem, a symlink): by device and inode, not by name."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def check_output_file(path: Path) -> None:
    """``CONFIG`` when ``path`` is a non-empty file that holds no batch output row: a dataset,
    another batch's input, a text file. Resuming would rewrite it to nothing. (A file holding
    only the torn first line of a killed run is an output.)"""
    lines = 0
    first: bytes | None = None
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.strip():
                continue
            if _classify(raw)[0] in (_ANSWERED, _FAILED):
                return
            lines += 1
            first = first or raw
    if first is None or (lines == 1 and not first.endswith(b"\n") and first.startswith(_OUR_LINE)):
        return
    raise HuggingFaceError(
        HuggingFaceErrorKind.CONFIG,
        f"{path} holds {lines} line{'s' if lines != 1 else ''} and none is a batch output row "
        f"(it looks like {_describe(first)}); nothing was changed. Give -o a new file, or pass "
        "--restart to overwrite it on purpose",
    )


class _Keeper:
    """Which lines of output files stay: the first answered line of each row; with
    ``keep_failed``, a row with no answer anywhere keeps its first failed line. Torn, damaged and
    foreign lines, repeats and (without ``keep_failed``) failures go."""

    def __init__(self, paths: list[Path], *, keep_failed: bool) -> None:
        # Pass 1 (digests only): which rows are answered somewhere.
        self.done = IdSet(custom_id for path in paths for _, custom_id in _answered_lines(path) if custom_id)
        self._repeated = self.done.repeated()
        self._kept_repeats: set[str] = set()
        self._keep_failed = keep_failed
        self._failed_kept: set[int] = set()

    def keep(self, raw: bytes) -> bool:
        what, custom_id = _classify(raw)
        if custom_id is None:
            return False
        if what is _ANSWERED:
            if id_hash(custom_id) not in self._repeated:
                return True
            if custom_id in self._kept_repeats:
                return False
            self._kept_repeats.add(custom_id)
            return True
        if not self._keep_failed or custom_id in self.done:
            return False
        digest = id_hash(custom_id)
        if digest in self._failed_kept:
            return False
        self._failed_kept.add(digest)
        return True


def _rewrite(path: Path, lines: Iterable[bytes], *, only_if: Callable[[], bool] = lambda: True) -> None:
    """Replace ``path`` by ``lines`` atomically (a temporary file beside it, fsync, rename); the
    rename happens only when ``only_if()`` says so once the lines are written."""
    tmp_fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(tmp_fd, "wb") as tmp:
            for raw in lines:
                tmp.write(raw)
            tmp.flush()
            os.fsync(tmp.fileno())
        if only_if():
            os.replace(tmp_name, path)
            tmp_name = ""
    finally:
        if tmp_name:
            os.unlink(tmp_name)


def _any(count: list[int]) -> bool:
    return count[0] > 0


def _kept_lines(path: Path, keeper: _Keeper, dropped: list[int]) -> Iterator[bytes]:
    with path.open("rb") as handle:
        for raw in handle:
            if keeper.keep(raw):
                yield raw
            else:
                dropped[0] += 1


def compact_outputs(paths: list[Path], *, keep_failed: bool = False) -> tuple[IdSet, int]:
    """Keep only answered rows in output files (the first of any repeat, across all of them; with
    ``keep_failed``, also one failed line for each row answered nowhere); returns the answered
    ids and how many lines were dropped. A file changes only by an atomic rewrite, and only when
    it loses lines. A file that holds no output row at all is refused (``CONFIG``) before
    anything changes. Memory stays flat in the number of rows (digests, streamed lines)."""
    for path in paths:
        check_output_file(path)
    keeper = _Keeper(paths, keep_failed=keep_failed)  # pass 1: which rows are answered
    dropped_in_all = 0
    for path in paths:  # pass 2: keep those lines
        dropped = [0]
        _rewrite(path, _kept_lines(path, keeper, dropped), only_if=functools.partial(_any, dropped))
        dropped_in_all += dropped[0]
    return keeper.done, dropped_in_all


def merge_outputs(paths: list[Path], into: Path) -> IdSet:
    """Write the lines of ``paths`` that :func:`compact_outputs` would keep (failed rows
    answered nowhere included) into ``into``, atomically; returns the answered ids."""
    for path in paths:
        check_output_file(path)
    keeper = _Keeper(paths, keep_failed=True)

    def lines() -> Iterator[bytes]:
        for path in paths:
            with path.open("rb") as handle:
                yield from (raw for raw in handle if keeper.keep(raw))

    into.parent.mkdir(parents=True, exist_ok=True)
    _rewrite(into, lines())
    return keeper.done


class OutputFile:
    """The output JSONL, opened for a resumable run.

    On open, lines of answered rows are kept (their ids are in :attr:`done`); failed rows, torn
    or unreadable lines and repeats are dropped by rewriting the file atomically. Then each
    :meth:`write` appends one whole line with one ``write`` system call.
    """

    def __init__(self, path: Path, *, resume: bool = True) -> None:
        self.path = path
        self.done: IdSet = IdSet()
        self.dropped = 0
        self._fd: int | None = None
        self._resume = resume
        self._lock: OutputLock | None = None

    def open(self) -> OutputFile:
        """Lock the output (a second run is refused), keep its answered rows, open it to append."""
        path = self.path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            regular = path.is_file()  # not a pipe or a device: those are neither locked nor resumed
            if regular or not path.exists():
                self._lock = OutputLock(path).acquire()
            if self._resume and regular:
                self._compact()
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (0 if self._resume else os.O_TRUNC)
            self._fd = os.open(path, flags, 0o644)
        except OSError as exc:
            self._unlock()
            raise HuggingFaceError(
                HuggingFaceErrorKind.CONFIG, f"cannot write the batch output {path}: {exc.strerror or exc}"
            ) from None
        except BaseException:
            self._unlock()
            raise
        return self

    def _unlock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    def _compact(self) -> None:
        self.done, self.dropped = compact_outputs([self.path])

    def write(self, line: bytes) -> None:
        fd = self._fd
        assert fd is not None, "open() the output first"
        view = memoryview(line)
        try:
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError as exc:
            raise HuggingFaceError(
                HuggingFaceErrorKind.CONFIG,
                f"cannot write the batch output {self.path}: {exc.strerror or exc}; the rows written so far "
                "are kept: fix this and rerun to resume",
            ) from None

    def close(self) -> None:
        fd, self._fd = self._fd, None
        try:
            if fd is not None:
                os.close(fd)
        finally:
            self._unlock()

    def __enter__(self) -> OutputFile:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


def written_ids(paths: Iterable[Path]) -> IdSet:
    """The custom_ids of every complete output row (answered or failed) in ``paths``."""
    return IdSet(
        custom_id
        for path in paths
        for what, custom_id in _classified(path)
        if what in (_ANSWERED, _FAILED) and custom_id is not None
    )


def _classified(path: Path) -> Iterator[tuple[str, str | None]]:
    with path.open("rb") as handle:
        for raw in handle:
            yield _classify(raw)
