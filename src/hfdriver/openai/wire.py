"""Wire DTOs for the OpenAI-compatible chat-completions request, as the router expects it.

Only the request side has wire classes: responses are parsed straight into the generic DTOs by
tolerant structure hooks (see :mod:`hfdriver.dto.convert`), which is both faster and more
forgiving than a strict wire model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

__all__ = [
    "WireChatRequest",
    "WireContentPart",
    "WireFunction",
    "WireFunctionCall",
    "WireImageUrl",
    "WireJsonSchema",
    "WireMessage",
    "WireResponseFormat",
    "WireStreamOptions",
    "WireTool",
    "WireToolCall",
]


@attrs.define(slots=True)
class WireImageUrl:
    url: str
    detail: str | None = None


@attrs.define(slots=True)
class WireContentPart:
    type: str
    text: str | None = None
    image_url: WireImageUrl | None = None


@attrs.define(slots=True)
class WireFunctionCall:
    name: str
    arguments: str


@attrs.define(slots=True)
class WireToolCall:
    # No defaults: cattrs omits default values, and servers require "type": "function".
    id: str
    type: str
    function: WireFunctionCall


@attrs.define(slots=True)
class WireMessage:
    role: str
    content: str | list[WireContentPart] | None
    name: str | None = None
    tool_calls: list[WireToolCall] | None = None
    tool_call_id: str | None = None


@attrs.define(slots=True)
class WireFunction:
    name: str
    description: str | None = None
    parameters: Mapping[str, Any] | None = None
    strict: bool | None = None


@attrs.define(slots=True)
class WireTool:
    type: str
    function: WireFunction


@attrs.define(slots=True)
class WireJsonSchema:
    name: str
    schema: Mapping[str, Any]
    strict: bool | None = None


@attrs.define(slots=True)
class WireResponseFormat:
    type: str
    json_schema: WireJsonSchema | None = None


@attrs.define(slots=True)
class WireStreamOptions:
    include_usage: bool


@attrs.define(slots=True)
class WireChatRequest:
    model: str
    messages: list[WireMessage]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    tools: list[WireTool] | None = None
    tool_choice: str | Mapping[str, Any] | None = None
    response_format: WireResponseFormat | None = None
    stream: bool | None = None
    stream_options: WireStreamOptions | None = None
