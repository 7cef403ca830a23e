"""Conversions between the generic DTOs and the chat-completions wire format (cattrs).

``to_payload`` turns a :class:`GenerateRequest` into router JSON through the wire DTOs and a
cattrs converter that omits unset fields. ``parse_response`` / ``parse_chunk`` turn server JSON
into generic DTOs through structure hooks registered on the same converter; they accept every
shape recorded in the conformance corpus and raise nothing but ``HuggingFaceError(DECODE)``
(or the mapped kind, for an ``{"error": ...}`` body).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import attrs
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
from hfdriver.dto.response import GenerateResponse, Output, Usage, finish_reason_of
from hfdriver.dto.stream import ChunkDelta, ToolCallDelta
from hfdriver.dto.wire import (
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
from hfdriver.errors._error import HuggingFaceError, HuggingFaceErrorKind, invalid_request

__all__ = [
    "ParsedChunk",
    "converter",
    "parse_chunk",
    "parse_response",
    "resolve_model",
    "structure_chunk",
    "to_payload",
    "to_wire",
]

converter = cattrs.Converter(omit_if_default=True)

_HUB_PREFIX = "huggingface/"


# --------------------------------------------------------------------------- request -> wire


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


# --------------------------------------------------------------------------- wire -> response


def _decode_error(what: str, detail: str) -> HuggingFaceError:
    return HuggingFaceError(
        HuggingFaceErrorKind.DECODE,
        f"the server's {what} is not a chat completion ({detail}); check that base_url points at an "
        "OpenAI-compatible /v1 endpoint",
    )


def _opt_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"expected a string, got {type(value).__name__}")


def _text_of(content: Any) -> str:
    if type(content) is str:
        return content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    raise TypeError(f"content is a {type(content).__name__}")


def _arguments(function: dict[str, Any]) -> str:
    args = function.get("arguments")
    if args is None:
        args = function.get("parameters")  # TGI 1.4.5 named them "parameters"
    if args is None:
        return ""
    if isinstance(args, str):
        return args
    return json.dumps(args, ensure_ascii=False)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):  # TGI 1.x/2.x send a single object instead of a list
        return [value]
    raise TypeError(f"tool_calls is a {type(value).__name__}")


def _tool_calls(value: Any) -> tuple[ToolCall, ...]:
    calls = []
    for i, raw in enumerate(_as_list(value)):
        function = raw.get("function") or {}
        calls.append(
            ToolCall(
                _opt_str(raw.get("id")) or f"call_{i}",
                function.get("name") or "",
                _arguments(function),
            )
        )
    return tuple(calls)


def _usage(value: Any) -> Usage | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError("usage is not an object")
    prompt = int(value.get("prompt_tokens") or 0)
    completion = int(value.get("completion_tokens") or 0)
    total = int(value.get("total_tokens") or (prompt + completion))
    return Usage(prompt, completion, total)


def _reasoning(message: dict[str, Any]) -> str:
    value = message.get("reasoning_content")
    if value is None:
        value = message.get("reasoning")
    return _text_of(value) if value is not None else ""


def _raise_embedded_error(data: dict[str, Any]) -> None:
    if "error" in data and data["error"] and "choices" not in data:
        from hfdriver.errors._mapping import error_from_stream_event

        raise error_from_stream_event(data)


def _structure_response(data: Any, _cls: type[GenerateResponse]) -> GenerateResponse:
    if not isinstance(data, dict):
        raise _decode_error("answer", f"a JSON {type(data).__name__}, not an object")
    _raise_embedded_error(data)
    choices = data.get("choices")
    if not isinstance(choices, list):
        raise _decode_error("answer", "no 'choices' list")
    try:
        outputs = []
        for position, choice in enumerate(choices):
            message = choice.get("message")
            if message is None:
                message = choice.get("delta")
            if not isinstance(message, dict):
                what = (
                    "a text completion (/v1/completions)"
                    if "text" in choice
                    else "a choice without a message"
                )
                raise TypeError(f"{what}, not a chat completion")
            index = choice.get("index")
            reasoning = _reasoning(message)
            outputs.append(
                Output(
                    index=index if isinstance(index, int) else position,
                    text=_text_of(message.get("content")),
                    reasoning=reasoning or None,
                    tool_calls=_tool_calls(message.get("tool_calls")),
                    finish_reason=finish_reason_of(choice.get("finish_reason")),
                )
            )
        created = data.get("created")
        return GenerateResponse(
            outputs=tuple(outputs),
            usage=_usage(data.get("usage")),
            model=_opt_str(data.get("model")),
            id=_opt_str(data.get("id")),
            created=created if isinstance(created, int) and not isinstance(created, bool) else None,
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise _decode_error("answer", str(exc) or type(exc).__name__) from None


converter.register_structure_hook(GenerateResponse, _structure_response)


def parse_response(
    data: Any, *, provider: str | None = None, request_id: str | None = None
) -> GenerateResponse:
    """A chat-completion JSON object as a :class:`GenerateResponse`."""
    response = converter.structure(data, GenerateResponse)
    if provider is not None or request_id is not None:
        response = attrs.evolve(response, provider=provider, request_id=request_id)
    return response


class ParsedChunk(NamedTuple):
    """One ``chat.completion.chunk`` event, parsed (a NamedTuple: one is made per chunk)."""

    deltas: tuple[ChunkDelta, ...]
    usage: Usage | None = None
    model: str | None = None
    id: str | None = None


def _tool_call_deltas(value: Any) -> tuple[ToolCallDelta, ...]:
    out = []
    for position, raw in enumerate(_as_list(value)):
        function = raw.get("function") or {}
        index = raw.get("index")
        out.append(
            ToolCallDelta(
                index if isinstance(index, int) and not isinstance(index, bool) else position,
                _opt_str(raw.get("id")),
                function.get("name") or None,
                _arguments(function),
            )
        )
    return tuple(out)


def _chunk_delta(position: int, choice: dict[str, Any]) -> ChunkDelta:
    delta = choice.get("delta")
    if delta is None:
        delta = choice.get("message") or {}
    content = delta.get("content")
    text = content if type(content) is str else _text_of(content)
    reasoning = delta.get("reasoning_content")
    if reasoning is None:
        reasoning = delta.get("reasoning")
    calls = delta.get("tool_calls")
    index = choice.get("index")
    finish = choice.get("finish_reason")
    return ChunkDelta(
        index if type(index) is int else position,
        text,
        "" if reasoning is None else _text_of(reasoning),
        _tool_call_deltas(calls) if calls else (),
        None if finish is None else finish_reason_of(finish),
    )


def structure_chunk(data: dict[str, Any]) -> ParsedChunk:
    """The hot path for one stream event already known to be a JSON object without ``error``."""
    try:
        choices = data.get("choices")
        if choices:
            deltas = tuple([_chunk_delta(i, c) for i, c in enumerate(choices)])
        elif choices is None and "usage" not in data:
            raise TypeError("no 'choices' in the event")
        else:
            deltas = ()
        usage = data.get("usage")
        model = data.get("model")
        id_ = data.get("id")
        return ParsedChunk(
            deltas,
            None if usage is None else _usage(usage),
            model if type(model) is str and model else _opt_str(model),
            id_ if type(id_) is str and id_ else _opt_str(id_),
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise _decode_error("stream event", str(exc) or type(exc).__name__) from None


def _structure_chunk(data: Any, _cls: type[ParsedChunk]) -> ParsedChunk:
    if not isinstance(data, dict):
        raise _decode_error("stream event", f"a JSON {type(data).__name__}, not an object")
    _raise_embedded_error(data)
    return structure_chunk(data)


converter.register_structure_hook(ParsedChunk, _structure_chunk)


def parse_chunk(data: Any) -> ParsedChunk:
    """A ``chat.completion.chunk`` JSON object as a :class:`ParsedChunk`."""
    return converter.structure(data, ParsedChunk)
