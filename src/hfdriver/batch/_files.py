"""Batch files: OpenAI Batch API JSONL in, OpenAI Batch output JSONL out, resumable.

Input lines are either the OpenAI Batch format::

    {"custom_id": "q1", "method": "POST", "url": "/v1/chat/completions", "body": {"model": ..., "messages": [...]}}

or a short form: ``{"custom_id": "q1", "prompt": "..."}`` (``"system"`` optional) or
``{"custom_id": "q1", "messages": [...]}``, with any chat-completions field beside them
(``model``, ``max_tokens``, ``temperature``...). A line that cannot be used becomes an error row
naming its line number; it never stops the run.

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

import bisect
import functools
import hashlib
import heapq
import json
import os
import secrets
import tempfile
from array import array
from collections.abc import Callable, Container, Iterable, Iterator
from pathlib import Path
from typing import Any

from hfdriver.batch._lock import OutputLock
from hfdriver.batch._run import BatchItem, BatchResult
from hfdriver.errors import KINDS, HuggingFaceError, HuggingFaceErrorKind
from hfdriver.openai.inbound import request_from_payload, response_payload

__all__ = [
    "IdSet",
    "OutputFile",
    "check_input",
    "check_output_file",
    "same_file",
    "compact_outputs",
    "merge_outputs",
    "parse_line",
    "parse_row",
    "read_input",
    "row_ids",
    "written_ids",
    "result_line",
]

_CHAT_URLS = ("/v1/chat/completions", "/chat/completions")
_SHORT_KEYS = ("custom_id", "prompt", "system")


def _id_hash(custom_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(custom_id.encode(), digest_size=8).digest(), "little")


_CHUNK = 65_536


class IdSet:
    """A set of ``custom_id`` values held as sorted 64-bit digests: 8 bytes a row, so checking a
    file of millions of rows for duplicates, or resuming one, keeps memory nearly flat.

    (Two different ids share a digest with odds of about n²/2⁶⁵: one in 10⁸ for a million rows.)
    """

    __slots__ = ("_repeated", "_sorted")

    def __init__(self, ids: Iterable[str] = ()) -> None:
        # Sorted in chunks and merged, so building it never holds more than one chunk as objects.
        chunks: list[array[int]] = []
        buffer: list[int] = []
        for custom_id in ids:
            buffer.append(_id_hash(custom_id))
            if len(buffer) >= _CHUNK:
                buffer.sort()
                chunks.append(array("Q", buffer))
                buffer = []
        if buffer:
            buffer.sort()
            chunks.append(array("Q", buffer))
        self._sorted: array[int] = array("Q")
        self._repeated: set[int] = set()
        previous = None
        for digest in heapq.merge(*chunks):
            if digest == previous:
                self._repeated.add(digest)
            else:
                self._sorted.append(digest)
                previous = digest

    def __contains__(self, custom_id: object) -> bool:
        if not isinstance(custom_id, str):
            return False
        digest = _id_hash(custom_id)
        index = bisect.bisect_left(self._sorted, digest)
        return index < len(self._sorted) and self._sorted[index] == digest

    def __len__(self) -> int:
        return len(self._sorted)

    def repeated(self) -> set[int]:
        """Digests that were given more than once (candidates for duplicate ids)."""
        return self._repeated


def _bad(line: int | None, custom_id: str | None, problem: str, text: str = "") -> BatchItem:
    if line is None:  # a row of a distributed dataset: no line number, name it by its content
        where = f"input row {text[:60]!r}"
        fallback = f"row-{hashlib.blake2b(text.encode(), digest_size=6).hexdigest()}"
    else:
        where, fallback = f"input line {line}", f"line-{line}"
    return BatchItem(
        custom_id=custom_id if custom_id else fallback,
        error=HuggingFaceError(HuggingFaceErrorKind.INVALID_REQUEST, f"{where}: {problem}"),
        line=line,
    )


def _custom_id(raw: Any) -> str | None:
    if isinstance(raw, str) and raw.strip():
        return raw
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    return None


def parse_line(text: str, line: int | None) -> BatchItem | None:
    """One input line as a :class:`BatchItem` (``None`` for a blank line); ``line`` is its number
    in the file (``None`` for a row of a distributed dataset)."""
    if not text.strip():
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return _bad(line, None, f"not valid JSON ({exc}); each line must be one JSON object", text)
    return parse_row(data, line, text)


def parse_row(data: Any, line: int | None, text: str = "") -> BatchItem:
    """One decoded input row (a JSON object) as a :class:`BatchItem`."""
    if not isinstance(data, dict):
        return _bad(line, None, f"must be a JSON object, got {type(data).__name__}", text)
    custom_id = _custom_id(data.get("custom_id"))
    if custom_id is None:
        return _bad(
            line, None, 'has no "custom_id" (a non-empty string that names the row in the output)', text
        )
    if "body" in data or "url" in data or "method" in data:
        method = data.get("method", "POST")
        url = data.get("url", "/v1/chat/completions")
        if not isinstance(method, str) or method.upper() != "POST":
            return _bad(line, custom_id, f'method {method!r} is not supported: use "POST"')
        if not isinstance(url, str) or not url.rstrip("/").endswith(_CHAT_URLS):
            return _bad(line, custom_id, f'url {url!r} is not supported: use "/v1/chat/completions"')
        body = data.get("body")
        if not isinstance(body, dict):
            return _bad(line, custom_id, '"body" must be a chat-completions request object')
    else:
        body = {k: v for k, v in data.items() if k not in _SHORT_KEYS}
        prompt = data.get("prompt")
        if prompt is not None:
            if not isinstance(prompt, str) or "messages" in data:
                return _bad(line, custom_id, '"prompt" must be a string, and not given with "messages"')
            system = data.get("system")
            if system is not None and not isinstance(system, str):
                return _bad(line, custom_id, '"system" must be a string')
            body["messages"] = [
                *([{"role": "system", "content": system}] if system else []),
                {"role": "user", "content": prompt},
            ]
        elif "messages" not in data:
            return _bad(line, custom_id, 'needs "body" (OpenAI Batch format), "prompt" or "messages"')
    try:
        request, _ = request_from_payload(body)
    except HuggingFaceError as exc:
        return _bad(line, custom_id, exc.message)
    return BatchItem(custom_id=custom_id, request=request, line=line)


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "\x00not utf-8"


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]  # a byte-order mark some editors write
                yield number, _text(raw)
    except OSError as exc:
        raise HuggingFaceError(
            HuggingFaceErrorKind.CONFIG, f"cannot read the batch input {path}: {exc.strerror or exc}"
        ) from None


def _input_ids(path: Path) -> Iterator[tuple[int, str]]:
    for number, text in _lines(path):
        if not text.strip():
            continue
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            continue  # reported as an error row when it is read
        custom_id = _custom_id(data.get("custom_id")) if isinstance(data, dict) else None
        if custom_id is not None:
            yield number, custom_id


def row_ids(path: Path) -> Iterator[tuple[int, str, str]]:
    """``(line number, custom_id, text)`` of every non-blank input line; a line without a usable
    ``custom_id`` (not JSON, none given) has the id its error row is written under (``line-N``)."""
    for number, text in _lines(path):
        if not text.strip():
            continue
        custom_id = None
        if not text.startswith("\x00"):
            try:
                data = json.loads(text)
            except (ValueError, RecursionError):
                data = None
            custom_id = _custom_id(data.get("custom_id")) if isinstance(data, dict) else None
        yield number, custom_id or f"line-{number}", text


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


def check_input(path: Path, done: Container[str] = frozenset()) -> tuple[int, int]:
    """``(rows, rows already in done)``; refuses duplicate ``custom_id`` values before anything is sent.

    Memory stays nearly flat in the number of rows (see :class:`IdSet`)."""
    rows = sum(1 for _, text in _lines(path) if text.strip())
    already = 0

    def ids() -> Iterator[str]:
        nonlocal already
        for _, custom_id in _input_ids(path):
            already += custom_id in done
            yield custom_id

    repeated = IdSet(ids()).repeated()
    if repeated:
        first: dict[str, int] = {}
        for number, custom_id in _input_ids(path):
            if _id_hash(custom_id) not in repeated:
                continue
            seen = first.setdefault(custom_id, number)
            if seen != number:
                raise HuggingFaceError(
                    HuggingFaceErrorKind.INVALID_REQUEST,
                    f"{path}: custom_id {custom_id!r} is on lines {seen} and {number}; "
                    "every row needs its own custom_id (nothing was sent)",
                )
    return rows, already


def read_input(path: Path, *, skip: Container[str] = frozenset()) -> Iterator[BatchItem]:
    """The rows of ``path``, lazily, leaving out those whose ``custom_id`` is in ``skip``."""
    for number, text in _lines(path):
        if text.startswith("\x00"):
            item: BatchItem | None = _bad(number, None, "is not UTF-8 text")
        else:
            item = parse_line(text, number)
        if item is not None and item.custom_id not in skip:
            yield item


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
        body = response_payload(
            response,
            id=response.id or f"chatcmpl-{secrets.token_hex(8)}",
            created=response.created or 0,
            model=response.model or model,
        )
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
            if _id_hash(custom_id) not in self._repeated:
                return True
            if custom_id in self._kept_repeats:
                return False
            self._kept_repeats.add(custom_id)
            return True
        if not self._keep_failed or custom_id in self.done:
            return False
        digest = _id_hash(custom_id)
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
