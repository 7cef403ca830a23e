"""Responses API requests in: ``input`` items, tools, ``text.format`` and the rest, read and checked,
then turned into a :class:`GenerateRequest` once the history of a ``previous_response_id`` is known."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from hfdriver.dto.request import (
    GenerateRequest,
    Input,
    Message,
    ResponseFormat,
    Role,
    Text,
    ToolCall,
    ToolResult,
    ToolSpec,
)
from hfdriver.errors import HuggingFaceErrorKind, invalid_request
from hfdriver.openai.inbound import image_input
from hfdriver.openai.responses._output import dumps, new_id

__all__ = ["ResponsesCall", "items_to_messages", "normalise_input", "read_responses"]

# Accepted and not forwarded: client bookkeeping, or settings a chat model has no use for.
_IGNORED = frozenset(
    {"include", "truncation", "prompt_cache_key", "prompt_cache_retention", "safety_identifier",
     "service_tier", "stream_options", "top_logprobs", "max_tool_calls", "client_metadata", "user",
     "metadata", "parallel_tool_calls", "store", "background", "stream", "model"}
)  # fmt: skip
_READ = frozenset(
    {"input", "instructions", "tools", "tool_choice", "text", "max_output_tokens", "temperature",
     "top_p", "reasoning", "previous_response_id", "conversation", "prompt"}
)  # fmt: skip
_ROLES = {"system": Role.SYSTEM, "developer": Role.SYSTEM, "user": Role.USER, "assistant": Role.ASSISTANT}
_TOOL_CHOICES = ("auto", "none", "required")


@attrs.frozen(slots=True, kw_only=True)
class ResponsesCall:
    """A Responses request, read and checked.

    ``input_items`` are the request's own items as stored and listed (each with an ``id``);
    ``echo`` holds what the response object repeats back (``instructions``, ``tools``, ``text``,
    ``metadata``...); ``dropped_tools`` names the hosted tool types left out.
    """

    stream: bool
    store: bool
    model: str | None
    previous_response_id: str | None
    instructions: str | None
    input_items: tuple[Mapping[str, Any], ...]
    options: Mapping[str, Any]
    echo: Mapping[str, Any]
    dropped_tools: tuple[str, ...] = ()
    ignored_fields: tuple[str, ...] = ()

    def generate_request(
        self, history: Sequence[Mapping[str, Any]] = (), model: str | None = None
    ) -> GenerateRequest:
        """The chat request: ``instructions`` as the system message, then ``history`` (the items of
        the conversation a ``previous_response_id`` continues), then this request's input.

        The system and developer messages that open the conversation (Codex sends its instructions
        and then a developer message) become one system message: many chat templates take one."""
        messages = items_to_messages((*history, *self.input_items))
        opening = [self.instructions] if self.instructions else []
        while messages and messages[0].role is Role.SYSTEM:
            opening.append(messages.pop(0).text)
        if not messages:
            raise invalid_request("input", "is empty: give a message (a string, or a list of input items)")
        if opening:
            messages.insert(0, Message(Role.SYSTEM, (Text("\n\n".join(opening)),)))
        return GenerateRequest(messages=tuple(messages), model=model, **self.options)


def read_responses(payload: Any) -> ResponsesCall:
    """A Responses API request as a :class:`ResponsesCall`; every shape a client can get wrong is
    ``INVALID_REQUEST`` naming the field, never a raw exception."""
    try:
        return _read(payload)
    except (AttributeError, KeyError, TypeError, ValueError, OverflowError) as exc:
        if getattr(exc, "kind", None) is HuggingFaceErrorKind.INVALID_REQUEST:
            raise
        raise invalid_request(
            "body", f"a field has the wrong type ({type(exc).__name__}: {exc}); see the OpenAI Responses API"
        ) from None


def _read(payload: Any) -> ResponsesCall:
    if not isinstance(payload, dict):
        raise invalid_request("body", "must be a JSON object")
    if payload.get("background"):
        raise invalid_request(
            "background", "background responses are not supported by hfdriver serve; leave it out or false"
        )
    if payload.get("conversation") is not None:
        raise invalid_request(
            "conversation", "conversation objects are not supported; continue with previous_response_id"
        )
    if payload.get("prompt") is not None:
        raise invalid_request(
            "prompt", "stored prompt templates are not supported; send input and instructions"
        )
    model = payload.get("model") or None
    if model is not None and not isinstance(model, str):
        raise invalid_request("model", "must be a string")
    previous = payload.get("previous_response_id")
    if previous is not None and (not isinstance(previous, str) or not previous):
        raise invalid_request("previous_response_id", "must be the id of an earlier response")
    instructions = payload.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise invalid_request("instructions", "must be a string")
    items = normalise_input(payload.get("input"))
    items_to_messages(items)  # every item must convert: a bad one is refused now, not when continued
    tools, dropped = _tools(payload.get("tools"))
    choice, tools = _tool_choice(payload.get("tool_choice"), tools)
    text = payload.get("text")
    if text is not None and not isinstance(text, dict):
        raise invalid_request("text", "must be an object such as {'format': {'type': 'text'}}")
    fmt = _format((text or {}).get("format"))
    reasoning = payload.get("reasoning")
    if reasoning is not None and not isinstance(reasoning, dict):
        raise invalid_request("reasoning", "must be an object such as {'effort': 'low'}")
    effort = (reasoning or {}).get("effort")
    if effort is not None and not isinstance(effort, str):
        raise invalid_request("reasoning.effort", "must be a string such as 'low', 'medium' or 'high'")
    max_tokens = payload.get("max_output_tokens")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise invalid_request("max_output_tokens", "must be a whole number of at least 1")
    metadata = payload.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise invalid_request("metadata", "must be an object of string keys and values")
    options: dict[str, Any] = {
        "max_tokens": max_tokens,
        "temperature": payload.get("temperature"),
        "top_p": payload.get("top_p"),
        "tools": tools,
        "tool_choice": choice if tools or choice == "none" else None,
        "response_format": fmt,
        "stream_usage": True,
        "extra": {"reasoning_effort": effort} if effort else {},
    }
    store = payload.get("store", True) is not False
    echo: dict[str, Any] = {
        "instructions": instructions,
        "metadata": metadata or {},
        "tools": [_tool_payload(t) for t in tools],
        "tool_choice": payload.get("tool_choice") or "auto",
        "parallel_tool_calls": payload.get("parallel_tool_calls", True) is not False,
        "text": {"format": (text or {}).get("format") or {"type": "text"}},
        "temperature": payload.get("temperature"),
        "top_p": payload.get("top_p"),
        "max_output_tokens": max_tokens,
        "reasoning": {"effort": effort, "summary": None},
        "previous_response_id": previous,
        "store": store,
        "user": payload.get("user"),
        "truncation": "disabled",
        "background": False,
    }
    ignored = tuple(sorted(k for k in payload if k not in _IGNORED and k not in _READ))
    return ResponsesCall(
        stream=bool(payload.get("stream")),
        store=store,
        model=model,
        previous_response_id=previous,
        instructions=instructions,
        input_items=tuple(items),
        options=options,
        echo=echo,
        dropped_tools=dropped,
        ignored_fields=ignored,
    )


def normalise_input(raw: Any) -> list[dict[str, Any]]:
    """``input`` as a list of items in their full form, each with an ``id``: a string becomes one
    user message; a message's string content becomes one ``input_text`` (``output_text`` for the
    assistant) part."""
    if raw is None:
        raise invalid_request("input", "is required: a string, or a list of input items")
    if isinstance(raw, str):
        raw = [{"type": "message", "role": "user", "content": raw}]
    if not isinstance(raw, list):
        raise invalid_request("input", "must be a string or a list of input items")
    items = []
    for index, item in enumerate(raw):
        field = f"input[{index}]"
        if not isinstance(item, dict):
            raise invalid_request(field, "must be an object such as {'role': 'user', 'content': '...'}")
        kind = item.get("type", "message")
        if kind == "message":
            items.append(_message_item(item, field))
        elif kind == "function_call":
            for key in ("call_id", "name"):
                if not isinstance(item.get(key), str) or not item[key]:
                    raise invalid_request(f"{field}.{key}", "a function_call item needs it (a string)")
            arguments = item.get("arguments", "{}")
            if not isinstance(arguments, str):
                arguments = dumps(arguments)
            items.append(
                {"type": "function_call", "id": item.get("id") or new_id("fc"), "call_id": item["call_id"],
                 "name": item["name"], "arguments": arguments, "status": "completed"}
            )  # fmt: skip
        elif kind == "function_call_output":
            if not isinstance(item.get("call_id"), str) or not item["call_id"]:
                raise invalid_request(
                    f"{field}.call_id", "a function_call_output needs the call_id it answers"
                )
            items.append(
                {"type": "function_call_output", "id": item.get("id") or new_id("fco"),
                 "call_id": item["call_id"], "output": _tool_output(item.get("output"), f"{field}.output"),
                 "status": "completed"}
            )  # fmt: skip
        elif kind == "reasoning":
            items.append({**item, "id": item.get("id") or new_id("rs")})  # kept for the record, not sent
        else:
            raise invalid_request(
                f"{field}.type",
                f"{kind!r} items are not supported; use message, function_call, function_call_output or reasoning",
            )
    return items


def _message_item(item: Mapping[str, Any], field: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in _ROLES:
        raise invalid_request(f"{field}.role", f"{role!r}: use user, assistant, system or developer")
    content = item.get("content")
    text_part = "output_text" if role == "assistant" else "input_text"
    if isinstance(content, str):
        parts: list[dict[str, Any]] = [_text_part(text_part, content)]
    elif isinstance(content, list):
        parts = []
        for n, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            where = f"{field}.content[{n}]"
            if kind in ("input_text", "output_text", "text"):
                if not isinstance(part.get("text"), str):
                    raise invalid_request(f"{where}.text", "must be a string")
                parts.append(_text_part(text_part, part["text"]))
            elif kind == "refusal":
                parts.append(_text_part(text_part, str(part.get("refusal") or "")))
            elif kind == "input_image" and role != "assistant":
                url = part.get("image_url")
                if not isinstance(url, str):
                    raise invalid_request(
                        f"{where}.image_url",
                        "give the image as an http(s) or data: URL (file ids are not supported)",
                    )
                image_input(url, part.get("detail"), where)
                parts.append(
                    {"type": "input_image", "image_url": url, "detail": part.get("detail") or "auto"}
                )
            else:
                raise invalid_request(
                    f"{where}.type",
                    f"{kind!r} parts are not supported in a {role} message; use input_text or input_image"
                    if role != "assistant"
                    else f"{kind!r} parts are not supported in an assistant message; use output_text",
                )
    else:
        raise invalid_request(f"{field}.content", "must be a string or a list of content parts")
    out = {"type": "message", "id": item.get("id") or new_id("msg"), "role": role, "content": parts}
    out["status"] = "completed"
    return out


def _text_part(kind: str, text: str) -> dict[str, Any]:
    return (
        {"type": kind, "text": text, "annotations": []}
        if kind == "output_text"
        else {"type": kind, "text": text}
    )


def _tool_output(value: Any, field: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for n, part in enumerate(value):
            if not isinstance(part, dict) or part.get("type") not in ("input_text", "output_text", "text"):
                raise invalid_request(f"{field}[{n}]", "only text parts can be sent back as a tool's output")
            texts.append(str(part.get("text") or ""))
        return "".join(texts)
    if value is None:
        return ""
    return dumps(value)


def items_to_messages(items: Iterable[Mapping[str, Any]]) -> list[Message]:
    """Normalised input items (and stored output items) as chat messages: a function call joins the
    assistant message before it, as chat carries calls; reasoning items are not sent."""
    messages: list[Message] = []
    for item in items:
        kind = item.get("type")
        if kind == "message":
            role = _ROLES[item["role"]]
            inputs: list[Input] = []
            for part in item["content"]:
                if part["type"] == "input_image":
                    inputs.append(image_input(part["image_url"], part.get("detail"), "input_image"))
                else:
                    inputs.append(Text(part["text"]))
            if role is Role.SYSTEM:
                inputs = [Text("".join(i.text for i in inputs if isinstance(i, Text)))]
            messages.append(Message(role, tuple(inputs)))
        elif kind == "function_call":
            call = ToolCall(item["call_id"], item["name"], item["arguments"])
            last = messages[-1] if messages else None
            if last is not None and last.role is Role.ASSISTANT:
                messages[-1] = Message(Role.ASSISTANT, (*last.content, call))
            else:
                messages.append(Message(Role.ASSISTANT, (call,)))
        elif kind == "function_call_output":
            messages.append(Message(Role.TOOL, (ToolResult(item["call_id"], item["output"]),)))
    return messages


def _tools(raw: Any) -> tuple[tuple[ToolSpec, ...], tuple[str, ...]]:
    if raw is None:
        return (), ()
    if not isinstance(raw, list):
        raise invalid_request("tools", "must be a list of tools")
    tools: list[ToolSpec] = []
    dropped: list[str] = []
    for index, tool in enumerate(raw):
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise invalid_request(f"tools[{index}]", "must be an object with a 'type'")
        if tool["type"] != "function":
            if tool["type"] not in dropped:
                dropped.append(tool["type"])
            continue
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise invalid_request(f"tools[{index}].name", "a function tool needs a name (a string)")
        parameters = tool.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise invalid_request(f"tools[{index}].parameters", "must be a JSON Schema object")
        description = tool.get("description")
        if description is not None and not isinstance(description, str):
            raise invalid_request(f"tools[{index}].description", "must be a string")
        if tool.get("strict") is not None and not isinstance(tool.get("strict"), bool):
            raise invalid_request(f"tools[{index}].strict", "must be true or false")
        tools.append(
            ToolSpec(
                name,
                description,
                parameters or {"type": "object", "properties": {}},
                strict=tool.get("strict"),
            )
        )
    return tuple(tools), tuple(dropped)


def _tool_payload(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": dict(tool.parameters or {}),
        "strict": tool.strict,
    }


def _tool_choice(raw: Any, tools: tuple[ToolSpec, ...]) -> tuple[str | None, tuple[ToolSpec, ...]]:
    if raw is None or raw in _TOOL_CHOICES:
        return raw, tools
    if isinstance(raw, str):
        raise invalid_request(
            "tool_choice", f"{raw!r}: use 'auto', 'none', 'required' or {{'type': 'function', 'name': ...}}"
        )
    if not isinstance(raw, dict):
        raise invalid_request("tool_choice", "must be a string or an object")
    kind = raw.get("type")
    if kind == "function":
        name = raw.get("name")
        if not isinstance(name, str) or not any(t.name == name for t in tools):
            raise invalid_request("tool_choice.name", f"{name!r} is not one of the function tools sent")
        return name, tools
    if kind == "allowed_tools":
        allowed = {
            t.get("name")
            for t in raw.get("tools") or ()
            if isinstance(t, dict) and t.get("type") == "function"
        }
        mode = raw.get("mode", "auto")
        if mode not in ("auto", "required"):
            raise invalid_request("tool_choice.mode", "use 'auto' or 'required'")
        return mode, tuple(t for t in tools if t.name in allowed)
    raise invalid_request(
        "tool_choice",
        f"forces the hosted tool {kind!r}, which hfdriver serve does not run; "
        "force a function tool, or use 'auto', 'none' or 'required'",
    )


def _format(raw: Any) -> ResponseFormat | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise invalid_request("text.format", "must be an object such as {'type': 'json_object'}")
    kind = raw.get("type")
    if kind == "json_schema":
        schema = raw.get("schema")
        if not isinstance(schema, dict):
            raise invalid_request("text.format.schema", "must be a JSON Schema object")
        name = raw.get("name") or "response"
        if not isinstance(name, str):
            raise invalid_request("text.format.name", "must be a string")
        return ResponseFormat.json_schema(schema, name=name, strict=raw.get("strict"))
    if kind == "json_object":
        return ResponseFormat("json_object")
    if kind == "text":
        return None
    raise invalid_request("text.format.type", f"{kind!r}: use 'text', 'json_object' or 'json_schema'")
