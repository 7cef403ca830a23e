"""Embeddings for the fakes: deterministic vectors, and the answers of each route's shape."""

from __future__ import annotations

import base64
import hashlib
import math
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["DEFAULT_MAPPINGS", "embedding_vector", "hf_embeddings_body", "openai_embeddings_body"]

DEFAULT_DIMENSIONS = 384

DEFAULT_MAPPINGS: Mapping[str, Sequence[Mapping[str, Any]]] = {
    # What the Hub's inferenceProviderMapping says of a few models (the shape it sends today).
    "BAAI/bge-small-en-v1.5": (
        {"provider": "hf-inference", "providerId": "BAAI/bge-small-en-v1.5", "status": "live", "task": "feature-extraction"},
    ),
    "sentence-transformers/all-MiniLM-L6-v2": (
        {"provider": "hf-inference", "providerId": "sentence-transformers/all-MiniLM-L6-v2", "status": "live", "task": "sentence-similarity"},
    ),
    "intfloat/e5-mistral-7b-instruct": (
        {"provider": "sambanova", "providerId": "E5-Mistral-7B-Instruct", "status": "live", "task": "feature-extraction"},
    ),
    "Qwen/Qwen3-Embedding-8B": (
        {"provider": "some-new-provider", "providerId": "qwen3-embed", "status": "live", "task": "feature-extraction"},
        {"provider": "nebius", "providerId": "Qwen/Qwen3-Embedding-8B-fast", "status": "staging", "task": "feature-extraction"},
        {"provider": "scaleway", "providerId": "qwen3-embedding-8b", "status": "live", "task": "feature-extraction"},
    ),
    "meta-llama/Llama-3.2-1B-Instruct": (
        {"provider": "novita", "providerId": "meta-llama/llama-3.2-1b-instruct", "status": "live", "task": "conversational"},
        {"provider": "together", "providerId": "meta-llama/Llama-3.2-1B-Instruct-Turbo", "status": "live", "task": "conversational"},
    ),
}  # fmt: skip
"""Models of :class:`FakeHub`'s provider mapping (``GET /api/models/{id}?expand[]=inferenceProviderMapping``)."""


def embedding_vector(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """A unit vector that depends only on ``text`` (the same text, the same vector)."""
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.blake2b(
            f"{counter}:{text}".encode("utf-8", "surrogatepass"), digest_size=64
        ).digest()
        values.extend((b - 127.5) / 127.5 for b in digest)
        counter += 1
    values = values[:dimensions]
    norm = math.sqrt(math.fsum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def _inputs(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    return None


def _dimensions(body: Mapping[str, Any]) -> int:
    wanted = body.get("dimensions")
    return (
        wanted
        if isinstance(wanted, int) and not isinstance(wanted, bool) and wanted > 0
        else DEFAULT_DIMENSIONS
    )


def openai_embeddings_body(body: Any, model: str = "fake/embedder") -> tuple[int, dict[str, Any]]:
    """``(status, JSON)`` of an OpenAI ``/v1/embeddings`` answer to ``body``."""
    texts = _inputs(body.get("input")) if isinstance(body, dict) else None
    if texts is None:
        return 422, {
            "error": {
                "message": "input must be a string or a list of strings",
                "type": "invalid_request_error",
            }
        }
    dims = _dimensions(body)
    base64_wanted = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(texts):
        vector = embedding_vector(text, dims)
        embedding: Any = base64.b64encode(array("f", vector).tobytes()).decode() if base64_wanted else vector
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(max(1, len(t.split())) for t in texts)
    answer = {
        "object": "list",
        "data": data,
        "model": str(body.get("model") or model),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return 200, answer


def hf_embeddings_body(body: Any) -> tuple[int, Any]:
    """``(status, JSON)`` of hf-inference's feature-extraction answer: one vector for a string,
    a list of vectors for a list."""
    raw = body.get("inputs") if isinstance(body, dict) else None
    texts = _inputs(raw)
    if texts is None:
        return 400, {"error": ["Error in `inputs`: value is not a valid string or list of strings"]}
    dims = _dimensions(body)
    vectors = [embedding_vector(text, dims) for text in texts]
    return 200, vectors[0] if isinstance(raw, str) else vectors
