"""Large embeddings answers read as they arrive, straight into one float32 buffer.

``json.loads`` of 100,000 vectors of 384 numbers builds 38 million Python floats (about 1.2 GB)
before they can be packed; the body itself is 200 MB in base64 or 770 MB as JSON numbers. A
:class:`VectorScanner` is fed the body chunk by chunk instead: each vector is decoded where it
stands and copied into a buffer allocated once for all of them, and only the rest of the JSON
(indexes, model, usage: a few dozen bytes a vector) is kept to be parsed at the end. Peak memory
is the vectors' float32 size plus a chunk.

Both answer shapes are read: OpenAI's ``{"data": [{"embedding": [...] | "base64", "index"}...]}``
and hf-inference's bare arrays (``[[...], ...]``; a token-level array is refused as
:func:`~hfdriver.huggingface._embed.parse_nested` refuses it). The results equal those of the
whole-body parsers, errors included (the same kinds and messages).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from array import array
from typing import Any

from hfdriver.dto.embed import Vectors
from hfdriver.dto.response import Usage
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

__all__ = ["VectorScanner", "base64_row", "decode_error", "token_level", "usage_of"]

K = HuggingFaceErrorKind
_KEY = re.compile(rb'"embedding"\s*:\s*')
_WS = b" \t\r\n"
_KEEP = 64  # bytes kept back at a chunk's end, where a key may be cut in two
_COMPACT = 1 << 16
_MAX_WIDTH = 1 << 16  # values in one vector: the widest embedding models make 4096 to 8192


def decode_error(what: str) -> HuggingFaceError:
    return HuggingFaceError(K.DECODE, f"the embeddings answer {what}")


def _numbers(raw: bytes | bytearray, index: int) -> array[float]:
    text = bytes(raw).strip()
    if not text:
        return array("f")
    try:
        return array("f", [float(part) for part in text.split(b",")])
    except (ValueError, OverflowError):
        raise decode_error(f"holds vector {index} as something else than a list of numbers") from None


def base64_row(raw: str | bytes | bytearray, index: int) -> array[float]:
    """A base64 little-endian float32 vector (OpenAI's ``encoding_format=\"base64\"``)."""
    try:
        data = base64.b64decode(raw if isinstance(raw, str) else bytes(raw), validate=True)
    except (binascii.Error, ValueError):
        raise decode_error(f"holds vector {index} as a string that is not base64") from None
    if len(data) % 4:
        raise decode_error(f"holds vector {index} as {len(data)} bytes, not float32 values")
    return Vectors.from_bytes(data, 1, len(data) // 4)._data


def token_level(model: str) -> HuggingFaceError:
    """A model that answered arrays per token (no pooling): refused, never returned as vectors."""
    return HuggingFaceError(
        K.MODEL_NOT_SUPPORTED,
        f"{model} answered token-level vectors (an array 3 or more deep), not one vector per input: it "
        "has no pooling. Use a sentence-embedding model (sentence-transformers, e.g. "
        "BAAI/bge-small-en-v1.5), or TaskClient.feature_extraction for the raw arrays",
    )


def usage_of(answer: Any) -> Usage | None:
    """The input tokens an OpenAI embeddings answer counted (``usage``), if it did."""
    usage = answer.get("usage") if isinstance(answer, dict) else None
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    if not isinstance(tokens, int) or isinstance(tokens, bool):
        return None
    total = usage.get("total_tokens", tokens) if isinstance(usage, dict) else None
    return Usage(
        prompt_tokens=tokens, completion_tokens=0, total_tokens=total if isinstance(total, int) else tokens
    )


class VectorScanner:
    """Feed an embeddings answer with :meth:`feed`, then :meth:`finish` for the vectors, usage and
    model. ``nested``: hf-inference's bare arrays; else OpenAI's ``data`` list."""

    def __init__(self, expected: int, *, nested: bool, model: str) -> None:
        self.expected = expected
        self.nested = nested
        self.model = model
        self._buf = bytearray()
        self._pos = 0
        self._skeleton = bytearray()  # the answer without its vectors (OpenAI shape)
        self._data: array[float] | None = None
        self._width = 0
        self._rows = 0
        self._started = False  # nested: the opening bracket was read
        self._single = False  # nested: one bare vector
        self._ended = False

    # ------------------------------------------------------------------ rows
    def _add(self, row: array[float]) -> None:
        if self._data is None:
            if len(row) > _MAX_WIDTH:
                raise decode_error(
                    f"holds a vector of {len(row):,} values, more than any embedding model makes"
                )
            self._width = len(row)
            self._data = array("f", [0.0]) * (self._width * max(self.expected, 1))  # one allocation
        if len(row) != self._width:
            raise decode_error(f"has vectors of {self._width} and {len(row)} values (vector {self._rows})")
        start = self._rows * self._width
        if self._rows < self.expected:
            self._data[start : start + self._width] = row
        self._rows += 1

    def _compact(self) -> None:
        if self._pos > _COMPACT:
            del self._buf[: self._pos]
            self._pos = 0

    # ------------------------------------------------------------------ feeding
    def feed(self, chunk: bytes) -> None:
        self._buf += chunk
        if self.nested:
            self._scan_nested()
        else:
            self._scan_openai()
        self._compact()

    def _scan_openai(self) -> None:
        buf = self._buf
        while True:
            found = _KEY.search(buf, self._pos)
            if found is None:
                keep = max(self._pos, len(buf) - _KEEP)
                self._skeleton += buf[self._pos : keep]
                self._pos = keep
                return
            start = found.end()
            if start >= len(buf):
                return  # the value has not arrived yet
            opener = buf[start]
            if opener == 0x22:  # "
                end = buf.find(b'"', start + 1)
                if end < 0:
                    return
                row = base64_row(buf[start + 1 : end], self._rows)
            elif opener == 0x5B:  # [
                end = buf.find(b"]", start + 1)
                if end < 0:
                    return
                row = _numbers(buf[start + 1 : end], self._rows)
            else:
                raise decode_error(f"holds vector {self._rows} as something else than a list of numbers")
            self._skeleton += buf[self._pos : start] + b"null"
            self._add(row)
            self._pos = end + 1

    def _skip(self, chars: bytes) -> int:
        buf, pos = self._buf, self._pos
        while pos < len(buf) and buf[pos] in chars:
            pos += 1
        self._pos = pos
        return pos

    def _scan_nested(self) -> None:
        buf = self._buf
        if not self._started:
            pos = self._skip(_WS)
            if pos >= len(buf):
                return
            if buf[pos] != 0x5B:
                raise decode_error("is not an array of vectors")
            self._started = True
            self._pos = pos + 1
        while not self._ended:
            pos = self._skip(_WS + b",")
            if pos >= len(buf):
                return
            head = buf[pos]
            if head == 0x5D:  # ] : the end
                self._ended = True
                self._pos = pos + 1
                return
            if head == 0x5B:  # a row
                end = buf.find(b"]", pos + 1)
                if end < 0:
                    return
                inner = buf[pos + 1 : end]
                if b"[" in inner:
                    raise token_level(self.model)
                self._add(_numbers(inner, self._rows))
                self._pos = end + 1
                continue
            # One bare vector: numbers up to the closing bracket.
            end = buf.find(b"]", pos)
            if end < 0:
                return
            self._single = True
            self._add(_numbers(buf[pos:end], 0))
            self._ended = True
            self._pos = end + 1

    # ------------------------------------------------------------------ the end
    def _vectors(self, order: list[int] | None = None) -> Vectors:
        if self._rows != self.expected:
            raise decode_error(f"has {self._rows} vectors for {self.expected} inputs")
        data = self._data if self._data is not None else array("f")
        if order is not None and order != list(range(len(order))):
            width = self._width
            ordered: array[float] = array("f", [0.0]) * len(data)
            for position, index in enumerate(order):
                ordered[index * width : (index + 1) * width] = data[position * width : (position + 1) * width]
            data = ordered
        return Vectors(data, self._rows, self._width)

    def finish(self) -> tuple[Vectors, Usage | None, str | None]:
        """The vectors in input order, the usage and the model the answer names."""
        if self.nested:
            if not self._ended or self._buf[self._pos :].strip():
                raise decode_error("is not an array of vectors (it ends early, or goes on after)")
            if self._single and self.expected != 1:
                raise decode_error(f"has 1 vectors for {self.expected} inputs")
            return self._vectors(), None, None
        self._skeleton += self._buf[self._pos :]
        try:
            skeleton: Any = json.loads(self._skeleton)
        except (ValueError, RecursionError):
            raise decode_error("is not valid JSON") from None
        items = skeleton.get("data") if isinstance(skeleton, dict) else None
        if not isinstance(items, list):
            raise decode_error('has no "data" list; check that the server speaks the OpenAI embeddings API')
        order = []
        for position, item in enumerate(items):
            if not isinstance(item, dict) or "embedding" not in item:
                raise decode_error(f'holds data[{position}] without an "embedding"')
            index = item.get("index", position)
            order.append(index if isinstance(index, int) and not isinstance(index, bool) else position)
        if len(order) != self._rows:
            raise decode_error(f'holds data[{len(order)}] without an "embedding"')
        if sorted(order) != list(range(len(order))):
            raise decode_error("numbers its vectors with repeated or missing indexes")
        vectors = self._vectors(order)
        answered = skeleton.get("model")
        return vectors, usage_of(skeleton), answered if isinstance(answered, str) else None
