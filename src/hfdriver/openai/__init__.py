"""The OpenAI chat-completions wire protocol, both ways.

- :mod:`~hfdriver.openai.wire`: the request's wire DTOs (attrs);
- :mod:`~hfdriver.openai.payload`: ``GenerateRequest`` -> request JSON (cattrs);
- :mod:`~hfdriver.openai.parse`: response JSON and stream events -> DTOs, and the one rule for
  error reports;
- :mod:`~hfdriver.openai.sse`: the incremental Server-Sent Events decoder;
- :mod:`~hfdriver.openai.inbound`: the server side, for ``hfdriver serve``.

Everything here is pure: no I/O, no aiohttp. ``hfdriver.dto`` holds the provider-neutral
values this package converts to and from.
"""

from hfdriver.openai.inbound import chunk_payload, request_from_payload, response_payload, usage_payload
from hfdriver.openai.parse import (
    ParsedChunk,
    error_payload,
    parse_chunk,
    parse_event,
    parse_response,
    structure_chunk,
)
from hfdriver.openai.payload import check_text, converter, resolve_model, to_payload, to_wire
from hfdriver.openai.sse import DEFAULT_MAX_EVENT_BYTES, SseDecoder, SseEvent

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "ParsedChunk",
    "SseDecoder",
    "SseEvent",
    "check_text",
    "chunk_payload",
    "converter",
    "error_payload",
    "parse_chunk",
    "parse_event",
    "parse_response",
    "request_from_payload",
    "resolve_model",
    "response_payload",
    "structure_chunk",
    "to_payload",
    "to_wire",
    "usage_payload",
]
