"""Cache keys and stored values.

The key is a SHA-256 of a namespace (the base URL, or a wrapped driver's identity) and the
canonical request payload (sorted keys, no ``stream`` fields): the same question to the same
server, streamed or not, is one entry. The token is never part of it. A value is the answer in
JSON, written by its type's :class:`Codec` (a chat answer: an OpenAI ``chat.completion`` body
plus what the headers said) and tagged with its kind.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Protocol

import attrs

from hfdriver.dto.embed import EmbedRequest, EmbedResponse, Vectors
from hfdriver.dto.response import Cost, GenerateResponse, Usage
from hfdriver.errors import HuggingFaceError
from hfdriver.openai.inbound import response_payload
from hfdriver.openai.parse import parse_response

__all__ = [
    "CODECS",
    "Codec",
    "cache_key",
    "decode_response",
    "embed_payload",
    "encode_response",
    "is_complete",
    "register_codec",
]

_VERSION = 1
_STREAM_FIELDS = ("stream", "stream_options")
_canonical = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str).encode


def cache_key(namespace: str, payload: Mapping[str, Any]) -> str:
    """The key of ``payload`` sent to ``namespace``; stream flags do not change it."""
    if any(field in payload for field in _STREAM_FIELDS):
        payload = {k: v for k, v in payload.items() if k not in _STREAM_FIELDS}
    text = _canonical(payload)
    return hashlib.sha256(f"v{_VERSION}\n{namespace}\n{text}".encode()).hexdigest()


class Codec(Protocol):
    """How one operation's answers are kept: ``kind`` tags the stored value."""

    kind: str

    def complete(self, response: Any) -> bool:
        """Whether ``response`` may be stored (a stream cut short never is)."""
        ...

    def encode(self, response: Any) -> dict[str, Any]:
        """The answer as JSON-able values."""
        ...

    def decode(self, stored: dict[str, Any]) -> Any:
        """The answer back (raises on anything it cannot read)."""
        ...


class _ChatCodec:
    """A chat answer as an OpenAI ``chat.completion`` body plus what the headers said."""

    kind = "chat"

    def complete(self, response: GenerateResponse) -> bool:
        return bool(response.outputs) and all(out.finish_reason is not None for out in response.outputs)

    def encode(self, response: GenerateResponse) -> dict[str, Any]:
        body = response_payload(
            response, id=response.id or "", created=response.created or 0, model=response.model or ""
        )
        return {
            "body": body,
            "id": response.id,
            "created": response.created,
            "model": response.model,
            "provider": response.provider,
            "request_id": response.request_id,
        }

    def decode(self, stored: dict[str, Any]) -> GenerateResponse:
        response = parse_response(
            stored["body"], provider=stored.get("provider"), request_id=stored.get("request_id")
        )
        return attrs.evolve(
            response, id=stored.get("id"), created=stored.get("created"), model=stored.get("model")
        )


class _EmbedCodec:
    """Embeddings as their float32 bytes (base64) with their shape, and what the server said."""

    kind = "embeddings"

    def complete(self, response: EmbedResponse) -> bool:
        return response.vectors.rows > 0

    def encode(self, response: EmbedResponse) -> dict[str, Any]:
        vectors = response.vectors
        usage = response.usage
        return {
            "vectors": base64.b64encode(vectors.tobytes()).decode("ascii"),
            "rows": vectors.rows,
            "dimensions": vectors.dimensions,
            "model": response.model,
            "usage": None if usage is None else [usage.prompt_tokens, usage.total_tokens],
            "provider": response.provider,
            "request_id": response.request_id,
        }

    def decode(self, stored: dict[str, Any]) -> EmbedResponse:
        raw = base64.b64decode(stored["vectors"], validate=True)
        usage = stored.get("usage")
        return EmbedResponse(
            vectors=Vectors.from_bytes(raw, int(stored["rows"]), int(stored["dimensions"])),
            model=stored.get("model"),
            usage=None
            if usage is None
            else Usage(prompt_tokens=usage[0], completion_tokens=0, total_tokens=usage[1]),
            provider=stored.get("provider"),
            request_id=stored.get("request_id"),
        )


def embed_payload(request: EmbedRequest, default_model: str | None) -> dict[str, Any]:
    """What identifies an embeddings request in a cache key (never confused with a chat one)."""
    return {
        "operation": "embeddings",
        "model": request.model or default_model or "-",
        "inputs": list(request.inputs),
        "dimensions": request.dimensions,
        "normalize": request.normalize,
        "truncate": request.truncate,
        "prompt_name": request.prompt_name,
        "routing": request.routing,
        "extra": dict(request.extra),
    }


CODECS: dict[type, Codec] = {GenerateResponse: _ChatCodec(), EmbedResponse: _EmbedCodec()}
"""The codec of each answer type; a new operation registers its own."""
_BY_KIND: dict[str, Codec] = {codec.kind: codec for codec in CODECS.values()}


def register_codec(response_type: type, codec: Codec) -> None:
    """Keep answers of ``response_type`` with ``codec``."""
    CODECS[response_type] = codec
    _BY_KIND[codec.kind] = codec


def is_complete(response: Any) -> bool:
    """Whether every output finished (a stream cut short is never stored)."""
    codec = CODECS.get(type(response))
    return codec is not None and codec.complete(response)


def encode_response(response: Any) -> bytes:
    codec = CODECS[type(response)]
    stored = {"v": _VERSION, "kind": codec.kind, **codec.encode(response)}
    return json.dumps(stored, ensure_ascii=False, separators=(",", ":")).encode()


def decode_response(value: bytes) -> Any:
    """The stored answer, marked ``cached`` with a zero cost; ``None`` for a value it cannot read."""
    try:
        stored = json.loads(value)
        if not isinstance(stored, dict) or stored.get("v") != _VERSION:
            return None
        codec = _BY_KIND.get(stored.get("kind", "chat"))
        if codec is None:
            return None
        return attrs.evolve(codec.decode(stored), cost=Cost.zero(), cached=True)
    except (HuggingFaceError, ValueError, TypeError, KeyError, RecursionError):
        return None
