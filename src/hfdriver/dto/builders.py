"""Builders: the only mutable objects. Chain setters, then ``build()`` a validated DTO."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
    ToolSpec,
)

__all__ = ["GenerateRequestBuilder", "MessageBuilder", "ToolSpecBuilder"]


class MessageBuilder:
    """Build a :class:`Message` piece by piece (text, images, tool calls)."""

    __slots__ = ("_content", "_name", "_role")

    def __init__(self, role: Role | str = Role.USER) -> None:
        self._role = Role(role)
        self._content: list[Input] = []
        self._name: str | None = None

    def text(self, text: str) -> MessageBuilder:
        self._content.append(Text(text))
        return self

    def image_url(self, url: str, *, detail: str | None = None) -> MessageBuilder:
        self._content.append(Image.from_url(url, detail=detail))
        return self

    def image_bytes(self, data: bytes, mime_type: str, *, detail: str | None = None) -> MessageBuilder:
        self._content.append(Image.from_bytes(data, mime_type, detail=detail))
        return self

    def tool_call(self, id: str, name: str, arguments: str = "{}") -> MessageBuilder:
        self._content.append(ToolCall(id, name, arguments))
        return self

    def name(self, name: str) -> MessageBuilder:
        self._name = name
        return self

    def build(self) -> Message:
        return Message(self._role, tuple(self._content), name=self._name)


class ToolSpecBuilder:
    """Build a :class:`ToolSpec` parameter by parameter.

    >>> ToolSpec.builder("get_weather").param("city", "string", required=True).build().name
    'get_weather'
    """

    __slots__ = ("_description", "_name", "_properties", "_required", "_strict")

    def __init__(self, name: str) -> None:
        self._name = name
        self._description: str | None = None
        self._properties: dict[str, Any] = {}
        self._required: list[str] = []
        self._strict: bool | None = None

    def description(self, text: str) -> ToolSpecBuilder:
        self._description = text
        return self

    def param(
        self,
        name: str,
        type: str = "string",
        description: str | None = None,
        *,
        required: bool = False,
        enum: Iterable[Any] | None = None,
        schema: Mapping[str, Any] | None = None,
    ) -> ToolSpecBuilder:
        prop: dict[str, Any] = dict(schema) if schema is not None else {"type": type}
        if description:
            prop["description"] = description
        if enum is not None:
            prop["enum"] = list(enum)
        self._properties[name] = prop
        if required and name not in self._required:
            self._required.append(name)
        return self

    def strict(self, strict: bool = True) -> ToolSpecBuilder:
        self._strict = strict
        return self

    def build(self) -> ToolSpec:
        params: dict[str, Any] = {"type": "object", "properties": dict(self._properties)}
        if self._required:
            params["required"] = list(self._required)
        return ToolSpec(self._name, self._description, params, strict=self._strict)


class GenerateRequestBuilder:
    """Build a :class:`GenerateRequest`; ``build()`` validates.

    >>> req = GenerateRequest.builder().model("org/m").system("Be brief.").user("Hi").build()
    >>> [m.role.value for m in req.messages]
    ['system', 'user']
    """

    def __init__(self) -> None:
        self._messages: list[Message] = []
        self._fields: dict[str, Any] = {}
        self._tools: list[ToolSpec] = []
        self._extra: dict[str, Any] = {}

    # -- messages
    def message(self, message: Message) -> GenerateRequestBuilder:
        self._messages.append(message)
        return self

    def messages(self, messages: Iterable[Message]) -> GenerateRequestBuilder:
        self._messages.extend(messages)
        return self

    def system(self, text: str) -> GenerateRequestBuilder:
        return self.message(Message.system(text))

    def user(self, *content: str | Text | Image) -> GenerateRequestBuilder:
        return self.message(Message.user(*content))

    def assistant(
        self, text: str | None = None, *, tool_calls: Iterable[ToolCall] = ()
    ) -> GenerateRequestBuilder:
        return self.message(Message.assistant(text, tool_calls=tool_calls))

    def tool_result(self, tool_call_id: str, content: str) -> GenerateRequestBuilder:
        return self.message(Message.tool(tool_call_id, content))

    # -- sampling
    def model(self, model: str) -> GenerateRequestBuilder:
        return self._set("model", model)

    def max_tokens(self, value: int) -> GenerateRequestBuilder:
        return self._set("max_tokens", value)

    def temperature(self, value: float) -> GenerateRequestBuilder:
        return self._set("temperature", value)

    def top_p(self, value: float) -> GenerateRequestBuilder:
        return self._set("top_p", value)

    def stop(self, *sequences: str) -> GenerateRequestBuilder:
        return self._set("stop", sequences)

    def seed(self, value: int) -> GenerateRequestBuilder:
        return self._set("seed", value)

    def frequency_penalty(self, value: float) -> GenerateRequestBuilder:
        return self._set("frequency_penalty", value)

    def presence_penalty(self, value: float) -> GenerateRequestBuilder:
        return self._set("presence_penalty", value)

    # -- tools and output shape
    def tool(self, tool: ToolSpec) -> GenerateRequestBuilder:
        self._tools.append(tool)
        return self

    def tools(self, tools: Iterable[ToolSpec]) -> GenerateRequestBuilder:
        self._tools.extend(tools)
        return self

    def tool_choice(self, choice: str) -> GenerateRequestBuilder:
        return self._set("tool_choice", choice)

    def response_format(self, fmt: ResponseFormat) -> GenerateRequestBuilder:
        return self._set("response_format", fmt)

    def json_object(self) -> GenerateRequestBuilder:
        return self.response_format(ResponseFormat.json_object())

    def json_schema(
        self, schema: Mapping[str, Any], *, name: str = "response", strict: bool | None = None
    ) -> GenerateRequestBuilder:
        return self.response_format(ResponseFormat.json_schema(schema, name=name, strict=strict))

    # -- routing and escape hatch
    def routing(self, routing: str) -> GenerateRequestBuilder:
        return self._set("routing", routing)

    def stream_usage(self, include: bool = True) -> GenerateRequestBuilder:
        return self._set("stream_usage", include)

    def extra(self, **params: Any) -> GenerateRequestBuilder:
        self._extra.update(params)
        return self

    def _set(self, name: str, value: Any) -> GenerateRequestBuilder:
        self._fields[name] = value
        return self

    def build(self) -> GenerateRequest:
        """Return the validated request; raises ``HuggingFaceError(kind=INVALID_REQUEST)``."""
        return GenerateRequest(
            messages=tuple(self._messages),
            tools=tuple(self._tools),
            extra=dict(self._extra),
            **self._fields,
        )
