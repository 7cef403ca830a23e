"""The operations a batch runs, as a table: how each request type is sent, estimated in tokens
and written to the OpenAI Batch output. A new operation adds its row here (and its URLs in
:data:`~hfdriver.batch._input.BATCH_URLS`)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs

from hfdriver._wrapper import embed_with
from hfdriver.driver import Driver
from hfdriver.dto.embed import EmbedRequest, EmbedResponse
from hfdriver.dto.message import Text
from hfdriver.dto.request import GenerateRequest
from hfdriver.dto.response import GenerateResponse
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.openai.embeddings import embeddings_object
from hfdriver.openai.inbound import response_payload

__all__ = ["OPERATIONS", "BatchOperation", "estimate_tokens", "operation_of", "output_body"]


def estimate_tokens(request: GenerateRequest, default_max_tokens: int = 256) -> int:
    """A cheap upper-ish estimate of the tokens a request spends (about 4 characters a token)."""
    chars = sum(len(part.text) for m in request.messages for part in m.content if isinstance(part, Text))
    return chars // 4 + 1 + (request.max_tokens or default_max_tokens)


def _estimate_embed(request: EmbedRequest) -> int:
    return sum(len(text) // 4 + 1 for text in request.inputs)


async def _chat(driver: Driver, request: GenerateRequest) -> GenerateResponse:
    return await driver.generate(request)


def _chat_body(response: GenerateResponse, model: str, _encoding: str | None) -> Mapping[str, Any]:
    return response_payload(
        response,
        id=response.id or f"chatcmpl-{secrets.token_hex(8)}",
        created=response.created or 0,
        model=response.model or model,
    )


def _embed_body(response: EmbedResponse, model: str, encoding: str | None) -> Mapping[str, Any]:
    return embeddings_object(response, model=model, encoding_format=encoding or "float")


@attrs.frozen(slots=True)
class BatchOperation:
    """One operation of a batch (``gen_ai.operation.name``)."""

    name: str
    call: Callable[[Driver, Any], Awaitable[Any]]
    estimate: Callable[[Any], int]
    """Tokens a request may spend (for a ``tpm`` budget), corrected by the answer's usage."""
    body: Callable[[Any, str, str | None], Mapping[str, Any]]
    """The answer as the output line's ``response.body`` (answer, model, encoding)."""
    response_type: type


OPERATIONS: dict[type, BatchOperation] = {
    GenerateRequest: BatchOperation("chat", _chat, estimate_tokens, _chat_body, GenerateResponse),
    EmbedRequest: BatchOperation("embeddings", embed_with, _estimate_embed, _embed_body, EmbedResponse),
}
"""Request type -> its :class:`BatchOperation`."""
_BY_RESPONSE = {operation.response_type: operation for operation in OPERATIONS.values()}


def operation_of(request: object) -> BatchOperation:
    """The operation of ``request``; ``INVALID_REQUEST`` for anything a batch cannot run."""
    found = OPERATIONS.get(type(request))
    if found is None:
        names = ", ".join(t.__name__ for t in OPERATIONS)
        raise HuggingFaceError(
            HuggingFaceErrorKind.INVALID_REQUEST,
            f"a batch row's request must be one of {names}, got {type(request).__name__}",
        )
    return found


def output_body(response: Any, model: str, encoding: str | None = None) -> Mapping[str, Any]:
    """``response`` as its output line's body."""
    return _BY_RESPONSE[type(response)].body(response, model, encoding)
