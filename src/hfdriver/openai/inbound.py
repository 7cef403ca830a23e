"""The server side of the chat-completions wire: OpenAI requests in, OpenAI answers out.

Used by ``hfdriver serve``: :func:`request_from_payload` turns a client's JSON into a
:class:`GenerateRequest` (``INVALID_REQUEST`` naming the field when it cannot);
:func:`response_payload` and :func:`chunk_payload` write OpenAI's shapes back.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from hfdriver.dto.request import (
    GenerateRequest,
    Image,
    Input,
    Message,
    ResponseFormat,
    Role,
    Text,
    ToolCall,
    ToolResult,
    ToolSpec,
)
from hfdriver.dto.response import GenerateResponse, Usage
from hfdriver.dto.stream import StreamChunk
from hfdriver.errors import invalid_request

__all__ = ["chunk_payload", "image_input", "request_from_payload", "response_payload", "usage_payload"]

# Accepted and ignored: they change nothing a driver does, or are client bookkeeping.
_IGNORED = frozenset(
    {"user", "logprobs", "top_logprobs", "parallel_tool_calls", "store", "metadata", "service_tier"}
)
_KNOWN = frozenset(
    {"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "seed",
     "frequency_penalty", "presence_penalty", "tools", "tool_choice", "response_format", "stream", "stream_options"}
)  # fmt: skip


def _content(role: Role, value: Any, index: int) -> list[Input]:
    field = f"messages[{index}].content"
    if value is None:
        return []
    if isinstance(value, str):
        return [Text(value)] if value or role is not Role.ASSISTANT else []
    if not isinstance(value, list):
        raise invalid_request(field, "must be a string or a list of content parts")
    inputs: list[Input] = []
    for part in value:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            inputs.append(Text(str(part.get("text", ""))))
        elif kind == "image_url":
            url = part.get("image_url")
            url = url.get("url") if isinstance(url, dict) else url
            detail = part["image_url"].get("detail") if isinstance(part.get("image_url"), dict) else None
            if not isinstance(url, str):
                raise invalid_request(field, "an image_url part needs a url")
            inputs.append(image_input(url, detail))
        else:
            raise invalid_request(field, f"unsupported content part {kind!r}; use 'text' or 'image_url'")
    return inputs


def image_input(url: str, detail: str | None, field: str = "image_url") -> Image:
    """An image part's URL (``data:`` URLs decoded) as an :class:`Image`; ``field`` names it in errors."""
    if url.startswith("data:") and ";base64," in url:
        head, _, data = url.partition(";base64,")
        try:
            return Image.from_bytes(base64.b64decode(data, validate=True), head[5:], detail=detail)
        except ValueError:
            raise invalid_request(field, "the data: URL is not valid base64") from None
    if not url.startswith(("http://", "https://", "data:")):
        raise invalid_request(field, "must be an http(s):// or data: URL")
    return Image.from_url(url, detail=detail)


def _arguments(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value if value is not None else {})


def _message(raw: Any, index: int) -> Message:
    if not isinstance(raw, dict):
        raise invalid_request(f"messages[{index}]", "must be an object with role and content")
    try:
        role = Role(raw.get("role"))
    except ValueError:
        if raw.get("role") == "developer":  # OpenAI's newer name for the system role
            role = Role.SYSTEM
        else:
            raise invalid_request(
                f"messages[{index}].role", f"{raw.get('role')!r}: use system, user, assistant or tool"
            ) from None
    if role is Role.TOOL:
        call_id = raw.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise invalid_request(
                f"messages[{index}].tool_call_id", "a tool message needs the id of the call it answers"
            )
        text = "".join(i.text for i in _content(role, raw.get("content"), index) if isinstance(i, Text))
        return Message(Role.TOOL, (ToolResult(call_id, text, name=raw.get("name")),))
    inputs = _content(role, raw.get("content"), index)
    if role is Role.ASSISTANT:
        calls = raw.get("tool_calls") or []
        if not isinstance(calls, list):
            raise invalid_request(f"messages[{index}].tool_calls", "must be a list of tool calls")
        for n, call in enumerate(calls):
            if not isinstance(call, dict) or not isinstance(call.get("function") or {}, dict):
                raise invalid_request(
                    f"messages[{index}].tool_calls[{n}]",
                    "must be {'id': ..., 'function': {'name', 'arguments'}}",
                )
            fn = call.get("function") or {}
            inputs.append(
                ToolCall(
                    str(call.get("id") or f"call_{n}"),
                    str(fn.get("name") or ""),
                    _arguments(fn.get("arguments")),
                )
            )
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        raise invalid_request(f"messages[{index}].name", "must be a string")
    return Message(role, tuple(inputs), name=name)


def _tool(raw: Any, index: int) -> ToolSpec:
    fn = raw.get("function") if isinstance(raw, dict) else None
    if not isinstance(fn, dict) or raw.get("type", "function") != "function":
        raise invalid_request(f"tools[{index}]", "must be {'type': 'function', 'function': {...}}")
    if not isinstance(fn.get("name"), str):
        raise invalid_request(f"tools[{index}].function.name", "must be a string")
    if fn.get("parameters") is not None and not isinstance(fn.get("parameters"), dict):
        raise invalid_request(f"tools[{index}].function.parameters", "must be a JSON Schema object")
    if fn.get("description") is not None and not isinstance(fn.get("description"), str):
        raise invalid_request(f"tools[{index}].function.description", "must be a string")
    return ToolSpec(
        str(fn.get("name")),
        fn.get("description"),
        fn.get("parameters") or {"type": "object", "properties": {}},
        strict=fn.get("strict"),
    )


def _response_format(raw: Any) -> ResponseFormat | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise invalid_request("response_format", "must be an object such as {'type': 'json_object'}")
    kind = raw.get("type")
    if kind == "json_schema":
        spec = raw.get("json_schema") or {}
        if not isinstance(spec, dict) or not isinstance(spec.get("schema") or {}, dict):
            raise invalid_request(
                "response_format.json_schema", "must be {'name': ..., 'schema': {...JSON Schema...}}"
            )
        return ResponseFormat.json_schema(
            spec.get("schema") or {}, name=spec.get("name", "response"), strict=spec.get("strict")
        )
    if kind in ("text", "json_object"):
        return ResponseFormat(kind)
    raise invalid_request("response_format.type", f"{kind!r}: use 'text', 'json_object' or 'json_schema'")


def request_from_payload(payload: Any) -> tuple[GenerateRequest, bool]:
    """An OpenAI chat-completions request as ``(GenerateRequest, stream)``.

    Anything a client can get wrong is ``INVALID_REQUEST`` naming the field; a shape no check
    foresaw is still ``INVALID_REQUEST`` (naming the body), never a raw exception.
    """
    try:
        return _request_from_payload(payload)
    except (AttributeError, KeyError, TypeError, ValueError, OverflowError) as exc:
        raise invalid_request(
            "body",
            f"a field has the wrong type ({type(exc).__name__}: {exc}); see the OpenAI chat-completions API",
        ) from None


def _request_from_payload(payload: Any) -> tuple[GenerateRequest, bool]:
    if not isinstance(payload, dict):
        raise invalid_request("body", "must be a JSON object")
    messages = payload.get("messages")
    if not isinstance(messages, list):
        raise invalid_request("messages", "must be a list of messages")
    choice = payload.get("tool_choice")
    if isinstance(choice, dict):
        function = choice.get("function")
        choice = function.get("name") if isinstance(function, dict) else None
        if not isinstance(choice, str):
            raise invalid_request(
                "tool_choice",
                "must be 'auto', 'none', 'required' or {'type': 'function', 'function': {'name': ...}}",
            )
    elif choice is not None and not isinstance(choice, str):
        raise invalid_request("tool_choice", "must be a string or an object")
    stop = payload.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
        raise invalid_request("stop", "must be a string or a list of strings")
    tools = payload.get("tools") or []
    if not isinstance(tools, list):
        raise invalid_request("tools", "must be a list of tools")
    options = payload.get("stream_options") or {}
    extra = {k: v for k, v in payload.items() if k not in _KNOWN and k not in _IGNORED}
    request = GenerateRequest(
        messages=tuple(_message(m, i) for i, m in enumerate(messages)),
        model=payload.get("model") or None,
        max_tokens=payload.get("max_tokens", payload.get("max_completion_tokens")),
        temperature=payload.get("temperature"),
        top_p=payload.get("top_p"),
        stop=(stop,) if isinstance(stop, str) else tuple(stop or ()),
        seed=payload.get("seed"),
        frequency_penalty=payload.get("frequency_penalty"),
        presence_penalty=payload.get("presence_penalty"),
        tools=tuple(_tool(t, i) for i, t in enumerate(tools)),
        tool_choice=choice,
        response_format=_response_format(payload.get("response_format")),
        stream_usage=bool(options.get("include_usage", False)) if isinstance(options, Mapping) else False,
        extra=extra,
    )
    return request, bool(payload.get("stream"))


def usage_payload(usage: Usage | None) -> dict[str, int] | None:
    if usage is None:
        return None
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def _calls(calls: tuple[ToolCall, ...]) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in calls
    ]


def response_payload(response: GenerateResponse, *, id: str, created: int, model: str) -> dict[str, Any]:
    """A ``chat.completion`` object for ``response``."""
    choices = []
    for out in response.outputs:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": out.text if out.text or not out.tool_calls else None,
        }
        if out.tool_calls:
            message["tool_calls"] = _calls(out.tool_calls)
        if out.reasoning:
            message["reasoning_content"] = out.reasoning
        finish = (
            str(out.finish_reason)
            if out.finish_reason is not None
            else ("tool_calls" if out.tool_calls else "stop")
        )
        choices.append({"index": out.index, "message": message, "logprobs": None, "finish_reason": finish})
    body: dict[str, Any] = {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": response.model or model,
        "choices": choices,
    }
    usage = usage_payload(response.usage)
    if usage is not None:
        body["usage"] = usage
    return body


def chunk_payload(
    chunk: StreamChunk | None,
    *,
    id: str,
    created: int,
    model: str,
    first: bool = False,
    usage: Usage | None = None,
) -> dict[str, Any]:
    """A ``chat.completion.chunk`` object; ``chunk=None`` with ``usage`` is the final usage chunk."""
    base: dict[str, Any] = {"id": id, "object": "chat.completion.chunk", "created": created, "model": model}
    if chunk is None:
        return {**base, "choices": [], "usage": usage_payload(usage)}
    delta: dict[str, Any] = {}
    if first:
        delta["role"] = "assistant"
    if chunk.text or first:
        delta["content"] = chunk.text
    if chunk.reasoning:
        delta["reasoning_content"] = chunk.reasoning
    if chunk.tool_calls:
        delta["tool_calls"] = [{"index": i, **c} for i, c in enumerate(_calls(chunk.tool_calls))]
    finish = str(chunk.finish_reason) if chunk.finish_reason is not None else None
    return {
        **base,
        "choices": [{"index": chunk.index, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
