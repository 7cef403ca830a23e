"""Batch input: OpenAI Batch API JSONL (or a short form) read lazily into :class:`BatchItem` rows.

Input lines are either the OpenAI Batch format (chat and embeddings lines may be mixed)::

    {"custom_id": "q1", "method": "POST", "url": "/v1/chat/completions", "body": {"model": ..., "messages": [...]}}
    {"custom_id": "e1", "method": "POST", "url": "/v1/embeddings", "body": {"model": ..., "input": [...]}}

or a short form: ``{"custom_id": "q1", "prompt": "..."}`` (``"system"`` optional) or
``{"custom_id": "q1", "messages": [...]}``, with any chat-completions field beside them
(``model``, ``max_tokens``, ``temperature``...). A line that cannot be used becomes an error row
naming its line number; it never stops the run. Duplicate ``custom_id`` values are refused
before anything is sent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Container, Iterator, Mapping
from pathlib import Path
from typing import Any

from hfdriver.batch._ids import IdSet, id_hash
from hfdriver.batch._run import BatchItem
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.openai.embeddings import embed_request_from_payload
from hfdriver.openai.inbound import request_from_payload

__all__ = ["BATCH_URLS", "check_input", "parse_line", "parse_row", "read_input", "row_ids"]


Reader = Callable[[Mapping[str, Any]], tuple[Any, str | None]]


def _chat_body(body: Mapping[str, Any]) -> tuple[Any, str | None]:
    request, _ = request_from_payload(body)
    return request, None


def _embed_body(body: Mapping[str, Any]) -> tuple[Any, str | None]:
    return embed_request_from_payload(body)


BATCH_URLS: dict[str, tuple[str, Reader]] = {
    "/v1/chat/completions": ("chat", _chat_body),
    "/chat/completions": ("chat", _chat_body),
    "/v1/embeddings": ("embeddings", _embed_body),
    "/embeddings": ("embeddings", _embed_body),
}
"""The ``url`` of an OpenAI Batch line -> (operation, how its body reads: the request and the
answer's encoding). A new operation adds its URLs here (and its row in
:data:`~hfdriver.batch._ops.OPERATIONS`)."""
_SHORT_KEYS = ("custom_id", "prompt", "system")


def _operation_of(url: str) -> tuple[str, Reader] | None:
    url = url.rstrip("/")
    for suffix, entry in BATCH_URLS.items():
        if url.endswith(suffix):
            return entry
    return None


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
    read: Reader = _chat_body
    if "body" in data or "url" in data or "method" in data:
        method = data.get("method", "POST")
        url = data.get("url", "/v1/chat/completions")
        if not isinstance(method, str) or method.upper() != "POST":
            return _bad(line, custom_id, f'method {method!r} is not supported: use "POST"')
        operation = _operation_of(url) if isinstance(url, str) else None
        if operation is None:
            known = ", ".join(f'"{u}"' for u in BATCH_URLS if u.startswith("/v1/"))
            return _bad(line, custom_id, f"url {url!r} is not supported: use one of {known}")
        body = data.get("body")
        if not isinstance(body, dict):
            return _bad(line, custom_id, f'"body" must be a {operation[0]} request object')
        read = operation[1]
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
        request, encoding = read(body)
    except HuggingFaceError as exc:
        return _bad(line, custom_id, exc.message)
    return BatchItem(custom_id=custom_id, request=request, line=line, encoding=encoding)


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
            if id_hash(custom_id) not in repeated:
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
