"""Requests out: a :class:`GenerateRequest` as OpenAI chat-completions JSON (cattrs).

``to_payload`` goes through the wire DTOs of :mod:`hfdriver.openai.wire` and a cattrs converter
that omits unset fields. An input the wire cannot carry raises ``INVALID_REQUEST``, never drops.
"""

from __future__ import annotations

from typing import Any

import cattrs

from hfdriver.dto.request import (
    GenerateRequest,
    Image,
    Message,
    Role,
    Text,
    ToolCall,
    ToolResult,
)
from hfdriver.errors import invalid_request
from hfdriver.openai.wire import (
    WireChatRequest,
    WireContentPart,
    WireFunction,
    WireFunctionCall,
    WireImageUrl,
    WireJsonSchema,
    WireMessage,
    WireResponseFormat,
    WireStreamOptions,
    WireTool,
    WireToolCall,
)

__all__ = ["check_text", "converter", "resolve_model", "to_payload", "to_wire", "unencodable_text"]

converter = cattrs.Converter(omit_if_default=True)

_HUB_PREFIX = "huggingface/"


def resolve_model(model: str | None, routing: str | None) -> str:
    """The model string to send: ``huggingface/`` prefix stripped, routing suffix appended."""
    if not model:
        raise invalid_request(
            "model",
            "no model given: set it on the request or the driver, e.g. 'meta-llama/Llama-3.2-1B-Instruct'",
        )
    if model.startswith(_HUB_PREFIX) and model.count("/") == 2:
        model = model[len(_HUB_PREFIX) :]
    if routing and ":" not in model:
        model = f"{model}:{routing}"
    return model


def _wire_content(msg: Message) -> str | list[WireContentPart] | None:
    content = msg.content
    if msg.role is Role.ASSISTANT:
        texts = [c.text for c in content if isinstance(c, Text)]
        return "".join(texts) if texts else None
    if len(content) == 1 and isinstance(content[0], Text):
        return content[0].text
    parts: list[WireContentPart] = []
    for item in content:
        if isinstance(item, Text):
            parts.append(WireContentPart("text", text=item.text))
        elif isinstance(item, Image):
            parts.append(WireContentPart("image_url", image_url=WireImageUrl(item.as_url(), item.detail)))
        else:  # pragma: no cover - Message validation forbids it
            raise invalid_request(
                "messages", f"{type(item).__name__} cannot be sent in a {msg.role.value} message"
            )
    return parts


def _wire_message(msg: Message) -> WireMessage:
    if msg.role is Role.TOOL:
        result = msg.content[0]
        assert isinstance(result, ToolResult)
        return WireMessage("tool", result.content, name=result.name, tool_call_id=result.tool_call_id)
    calls = [
        WireToolCall(c.id, "function", WireFunctionCall(c.name, c.arguments))
        for c in msg.content
        if isinstance(c, ToolCall)
    ]
    return WireMessage(msg.role.value, _wire_content(msg), name=msg.name, tool_calls=calls or None)


def to_wire(
    request: GenerateRequest,
    *,
    model: str | None = None,
    routing: str | None = None,
    stream: bool = False,
) -> WireChatRequest:
    """The wire DTO for ``request``; ``model`` / ``routing`` are the driver's defaults."""
    fmt = request.response_format
    wire_fmt = None
    if fmt is not None:
        schema = WireJsonSchema(fmt.name, dict(fmt.schema), fmt.strict) if fmt.schema is not None else None
        wire_fmt = WireResponseFormat(fmt.type, schema)
    tool_choice: str | dict[str, Any] | None = request.tool_choice
    if tool_choice is not None and tool_choice not in ("auto", "none", "required"):
        tool_choice = {"type": "function", "function": {"name": tool_choice}}
    return WireChatRequest(
        model=resolve_model(request.model or model, request.routing or routing),
        messages=[_wire_message(m) for m in request.messages],
        max_tokens=request.max_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        stop=list(request.stop) or None,
        seed=request.seed,
        frequency_penalty=request.frequency_penalty,
        presence_penalty=request.presence_penalty,
        tools=[
            WireTool("function", WireFunction(t.name, t.description, dict(t.parameters), t.strict))
            for t in request.tools
        ]
        or None,
        tool_choice=tool_choice,
        response_format=wire_fmt,
        stream=True if stream else None,
        stream_options=WireStreamOptions(True) if stream and request.stream_usage else None,
    )


def to_payload(
    request: GenerateRequest,
    *,
    model: str | None = None,
    routing: str | None = None,
    stream: bool = False,
) -> dict[str, Any]:
    """Chat-completions JSON (a dict) for ``request``; unset fields are omitted."""
    payload: dict[str, Any] = converter.unstructure(
        to_wire(request, model=model, routing=routing, stream=stream)
    )
    if request.extra:
        payload.update(request.extra)
    return payload


def unencodable_text(value: Any, path: str = "") -> tuple[str, str] | None:
    """``(path, character)`` of the first string in a JSON value that UTF-8 cannot carry (a lone
    surrogate such as ``"\\udcff"``, left by decoding bytes with ``surrogateescape``), e.g.
    ``("messages[1].content", "\\udcff")``; ``None`` when every string can be sent."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return path or "body", value[exc.start]
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = unencodable_text(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = unencodable_text(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def check_text(payload: Any) -> None:
    """``INVALID_REQUEST`` naming the field of a string that cannot be sent as UTF-8 text."""
    found = unencodable_text(payload)
    if found is not None:
        where, char = found
        raise invalid_request(
            where,
            f"holds {char!r}, a lone surrogate that is not Unicode text (text decoded with "
            "errors='surrogateescape'?); decode it with errors='replace', or fix its source",
        )
