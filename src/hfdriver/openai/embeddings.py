"""The OpenAI embeddings protocol on the server side (``hfdriver serve``'s ``POST /v1/embeddings``).

- :func:`embed_request_from_payload`: a request body as an :class:`EmbedRequest` and the encoding
  the client asked for. ``input`` is a string or a list of strings; token arrays (lists of
  integers) are refused with a 400 that says what to send instead: token ids only mean something
  to the tokenizer that made them, and hfdriver serves models with other tokenizers.
- :func:`embeddings_body`: an :class:`EmbedResponse` as OpenAI's answer: ``encoding_format``
  ``float`` (JSON numbers) or ``base64`` (little-endian float32, what the openai SDK asks for by
  default), with ``usage``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hfdriver.dto.embed import EmbedRequest, EmbedResponse
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind, invalid_request

__all__ = ["ENCODINGS", "embed_request_from_payload", "embeddings_body", "embeddings_object"]

ENCODINGS = ("float", "base64")

_PASSED = ("normalize", "truncate", "prompt_name")  # TEI's and hf-inference's own fields
_DROPPED = ("user",)  # OpenAI's end-user id: nothing to do with it here
_TOKENS_HINT = (
    "token ids are not accepted: send text (a string or a list of strings). Token ids only mean "
    "something to the tokenizer that made them (LangChain's OpenAIEmbeddings sends them unless "
    "created with check_embedding_ctx_length=False)"
)
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _inputs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        raise invalid_request("input", "must be a string or a non-empty list of strings")
    for index, item in enumerate(value):
        if isinstance(item, str):
            continue
        if isinstance(item, (int, list)) and not isinstance(item, bool):
            raise invalid_request("input", _TOKENS_HINT)
        raise invalid_request(f"input[{index}]", f"must be a string, got {type(item).__name__}")
    return value


def embed_request_from_payload(payload: Any) -> tuple[EmbedRequest, str]:
    """``(EmbedRequest, encoding_format)`` from an OpenAI embeddings request body; anything a
    client can get wrong is ``INVALID_REQUEST`` naming the field."""
    if not isinstance(payload, dict):
        raise invalid_request("body", "must be a JSON object")
    if "input" not in payload:
        raise invalid_request("input", "is required: a string or a list of strings to embed")
    inputs = _inputs(payload["input"])
    encoding = payload.get("encoding_format")
    if encoding is None:
        encoding = "float"
    if encoding not in ENCODINGS:
        raise invalid_request("encoding_format", f"{encoding!r}: use 'float' or 'base64'")
    model = payload.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise invalid_request("model", "must be a model name")
    known = {"input", "encoding_format", "model", "dimensions", *_PASSED, *_DROPPED}
    fields = {name: payload[name] for name in _PASSED if payload.get(name) is not None}
    try:
        request = EmbedRequest(
            inputs=tuple(inputs),
            model=model,
            dimensions=payload.get("dimensions"),
            extra={k: v for k, v in payload.items() if k not in known},
            **fields,
        )
    except HuggingFaceError as exc:
        # EmbedRequest names its own field (`inputs[2]`); the wire's is `input`.
        message = (
            exc.message.replace("inputs", "input", 1) if exc.message.startswith("inputs") else exc.message
        )
        raise HuggingFaceError(HuggingFaceErrorKind.INVALID_REQUEST, message) from None
    return request, encoding


def _base64_row(row: memoryview) -> str:
    return '"' + base64.b64encode(row).decode("ascii") + '"'


def _float_row(row: memoryview) -> str:
    return _dumps(row.tolist())


def embeddings_body(response: EmbedResponse, *, model: str, encoding_format: str = "float") -> bytes:
    """The OpenAI ``list`` of ``embedding`` objects, in input order, as JSON bytes."""
    encode = _base64_row if encoding_format == "base64" else _float_row
    vectors = response.vectors
    items = ",".join(
        f'{{"object":"embedding","index":{index},"embedding":{encode(vectors[index])}}}'
        for index in range(len(vectors))
    )
    usage = response.usage
    tokens = usage.prompt_tokens if usage is not None and usage.prompt_tokens is not None else 0
    total = usage.total_tokens if usage is not None and usage.total_tokens is not None else tokens
    tail = _dumps(
        {"model": response.model or model, "usage": {"prompt_tokens": tokens, "total_tokens": total}}
    )
    return f'{{"object":"list","data":[{items}],{tail[1:]}'.encode()


def embeddings_object(
    response: EmbedResponse, *, model: str, encoding_format: str = "float"
) -> dict[str, Any]:
    """:func:`embeddings_body` as a JSON-able dict (for a batch output line)."""
    vectors = response.vectors
    encode: Any = (
        (lambda row: base64.b64encode(row).decode("ascii"))
        if encoding_format == "base64"
        else memoryview.tolist
    )
    usage = response.usage
    tokens = usage.prompt_tokens if usage is not None and usage.prompt_tokens is not None else 0
    total = usage.total_tokens if usage is not None and usage.total_tokens is not None else tokens
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": encode(vectors[index])}
            for index in range(len(vectors))
        ],
        "model": response.model or model,
        "usage": {"prompt_tokens": tokens, "total_tokens": total},
    }
