"""Scripted answers for :class:`FakeRouter`."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

__all__ = ["FakeResponse", "completion_body", "split_bytes", "stream_events"]


def split_bytes(
    data: bytes, *, chunk_size: int | None = None, seed: int | None = None, max_size: int = 64
) -> list[bytes]:
    """Split ``data`` into network chunks: fixed ``chunk_size``, or random sizes from ``seed``
    (1..max_size bytes, so lines, CRLF pairs and UTF-8 characters get cut anywhere)."""
    if chunk_size is None and seed is None:
        return [data]
    if chunk_size is not None:
        return [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(data):
        n = rng.randint(1, max_size)
        out.append(data[i : i + n])
        i += n
    return out


def completion_body(
    text: str,
    *,
    model: str = "fake/model",
    finish_reason: str = "stop",
    prompt_tokens: int = 5,
    tool_calls: Sequence[Mapping[str, Any]] | None = None,
    reasoning: str | None = None,
) -> dict[str, Any]:
    """A chat-completion JSON body as the router sends it."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        message["tool_calls"] = [dict(c) for c in tool_calls]
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    completion_tokens = max(1, len(text.split()))
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def stream_events(
    pieces: Iterable[str],
    *,
    model: str = "fake/model",
    finish_reason: str = "stop",
    usage: bool = True,
    prompt_tokens: int = 5,
) -> list[dict[str, Any]]:
    """Chunk events for ``pieces`` of text, a finishing chunk and a ``choices: []`` usage chunk."""
    base = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
    }
    events: list[dict[str, Any]] = [
        {
            **base,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
        }
    ]
    count = 0
    for piece in pieces:
        count += 1
        events.append({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}]})
    if usage:
        events.append(
            {
                **base,
                "choices": [],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": count,
                    "total_tokens": prompt_tokens + count,
                },
            }
        )
    return events


def _opt_tuple(value: Iterable[Any] | None) -> tuple[Any, ...] | None:
    return None if value is None else tuple(value)


def _freeze(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return dict(value or {})


_TRANSPORT_OPTIONS = frozenset(
    {"status", "content_type", "chunk_size", "split_seed", "delay", "stall_after", "disconnect_after"}
)


@attrs.frozen(slots=True, kw_only=True)
class FakeResponse:
    """One scripted answer.

    - ``json`` / ``body``: a unary body (a JSON value, or raw bytes).
    - ``events``: an SSE stream; each item is a JSON value (sent as ``data: <json>``), a ``str``
      (sent as ``data: <str>``) or raw ``bytes`` (sent as is). ``done`` appends ``data: [DONE]``.
    - ``sse``: a whole raw event-stream body (overrides ``events``), e.g. a recorded one.
    - ``chunk_size`` / ``split_seed``: how the body is cut into network writes.
    - ``delay``: seconds before each write; ``stall_after``: stop writing (but keep the
      connection open) after that many writes; ``disconnect_after``: drop the connection after
      that many writes.
    """

    status: int = 200
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze)
    json: Any = None
    body: bytes | None = None
    events: tuple[Any, ...] | None = attrs.field(default=None, converter=_opt_tuple)
    sse: bytes | None = None
    done: bool = True
    content_type: str | None = None
    chunk_size: int | None = None
    split_seed: int | None = None
    delay: float = 0.0
    stall_after: int | None = None
    disconnect_after: int | None = None

    @property
    def is_stream(self) -> bool:
        return self.events is not None or self.sse is not None

    def payload(self) -> bytes:
        if self.sse is not None:
            return self.sse
        if self.events is not None:
            parts = []
            for item in self.events:
                if isinstance(item, bytes):
                    parts.append(item)
                elif isinstance(item, str):
                    parts.append(f"data: {item}\n\n".encode())
                else:
                    parts.append(b"data: " + json.dumps(item).encode() + b"\n\n")
            if self.done:
                parts.append(b"data: [DONE]\n\n")
            return b"".join(parts)
        if self.body is not None:
            return self.body
        return json.dumps(self.json).encode() if self.json is not None else b""

    def writes(self) -> list[bytes]:
        return split_bytes(self.payload(), chunk_size=self.chunk_size, seed=self.split_seed)

    # ---------------------------------------------------------------- constructors
    @classmethod
    def completion(
        cls, text: str, *, headers: Mapping[str, str] | None = None, **fields: Any
    ) -> FakeResponse:
        """A 200 chat completion answering ``text``; transport options (``delay``, ...) pass through."""
        options = {k: fields.pop(k) for k in list(fields) if k in _TRANSPORT_OPTIONS}
        return cls(json=completion_body(text, **fields), headers=headers, **options)

    @classmethod
    def stream(
        cls,
        pieces: Iterable[str],
        *,
        headers: Mapping[str, str] | None = None,
        finish_reason: str = "stop",
        usage: bool = True,
        done: bool = True,
        **options: Any,
    ) -> FakeResponse:
        """A 200 SSE stream sending ``pieces`` of text, then finish, usage and ``[DONE]``."""
        return cls(
            events=stream_events(pieces, finish_reason=finish_reason, usage=usage),
            headers=headers,
            done=done,
            **options,
        )

    @classmethod
    def error(
        cls,
        status: int,
        message: str | Mapping[str, Any] = "error",
        *,
        headers: Mapping[str, str] | None = None,
        **body_fields: Any,
    ) -> FakeResponse:
        """An error answer with body ``{"error": message, **body_fields}``."""
        return cls(status=status, json={"error": message, **body_fields}, headers=headers)
