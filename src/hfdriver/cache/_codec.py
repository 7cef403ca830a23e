"""Cache keys and stored values.

The key is a SHA-256 of a namespace (the base URL, or a wrapped driver's identity) and the
canonical chat-completions payload (sorted keys, no ``stream`` fields): the same question to the
same server, streamed or not, is one entry. The token is never part of it. A value is the answer
as an OpenAI ``chat.completion`` body plus what the headers said, in JSON.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import attrs

from hfdriver.dto.response import Cost, GenerateResponse
from hfdriver.errors import HuggingFaceError
from hfdriver.openai.inbound import response_payload
from hfdriver.openai.parse import parse_response

__all__ = ["cache_key", "decode_response", "encode_response", "is_complete"]

_VERSION = 1
_STREAM_FIELDS = ("stream", "stream_options")
_canonical = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str).encode


def cache_key(namespace: str, payload: Mapping[str, Any]) -> str:
    """The key of ``payload`` sent to ``namespace``; stream flags do not change it."""
    if any(field in payload for field in _STREAM_FIELDS):
        payload = {k: v for k, v in payload.items() if k not in _STREAM_FIELDS}
    text = _canonical(payload)
    return hashlib.sha256(f"v{_VERSION}\n{namespace}\n{text}".encode()).hexdigest()


def is_complete(response: GenerateResponse) -> bool:
    """Whether every output finished (a stream cut short is never stored)."""
    return bool(response.outputs) and all(out.finish_reason is not None for out in response.outputs)


def encode_response(response: GenerateResponse) -> bytes:
    body = response_payload(
        response, id=response.id or "", created=response.created or 0, model=response.model or ""
    )
    stored = {
        "v": _VERSION,
        "body": body,
        "id": response.id,
        "created": response.created,
        "model": response.model,
        "provider": response.provider,
        "request_id": response.request_id,
    }
    return json.dumps(stored, ensure_ascii=False, separators=(",", ":")).encode()


def decode_response(value: bytes) -> GenerateResponse | None:
    """The stored answer, marked ``cached`` with a zero cost; ``None`` for a value it cannot read."""
    try:
        stored = json.loads(value)
        if not isinstance(stored, dict) or stored.get("v") != _VERSION:
            return None
        response = parse_response(
            stored["body"], provider=stored.get("provider"), request_id=stored.get("request_id")
        )
        return attrs.evolve(
            response,
            id=stored.get("id"),
            created=stored.get("created"),
            model=stored.get("model"),
            cost=Cost.zero(),
            cached=True,
        )
    except (HuggingFaceError, ValueError, TypeError, KeyError, RecursionError):
        return None
