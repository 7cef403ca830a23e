"""The request: :class:`GenerateRequest` and its builder, validated on creation.

Every instance is valid: the constructor, :func:`attrs.evolve` and the builders all run the
same checks and raise ``HuggingFaceError(kind=INVALID_REQUEST)`` naming the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from hfdriver.dto.message import Image, Input, Message, Role, Text, ToolCall, ToolResult
from hfdriver.dto.tools import ResponseFormat, ToolSpec, freeze_mapping
from hfdriver.errors import invalid_request

# Message, ToolSpec & co. are re-exported: they live in .message and .tools.
__all__ = [
    "GenerateRequest",
    "GenerateRequestBuilder",
    "Image",
    "Input",
    "Message",
    "ResponseFormat",
    "Role",
    "Text",
    "ToolCall",
    "ToolResult",
    "ToolSpec",
    "ROUTING_POLICIES",
    "validate_model",
    "validate_routing",
]

MAX_STOP_SEQUENCES = 4
ROUTING_POLICIES = ("fastest", "cheapest", "preferred")
_PROVIDER = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_RESERVED_EXTRA = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "tools",
        "tool_choice",
        "response_format",
        "max_tokens",
        "temperature",
        "top_p",
        "stop",
        "seed",
    }
)


def validate_model(model: str, field: str = "model") -> str:
    """Check a model id (``org/name``, a path, any server's name): no spaces or control characters."""
    # isprintable() rejects control characters and every Unicode space but " ", in C.
    if not isinstance(model, str) or not model or not model.isprintable() or " " in model:
        raise invalid_request(
            field, f"{model!r} is not a model id; use 'org/name', e.g. 'meta-llama/Llama-3.2-1B-Instruct'"
        )
    return model


def validate_routing(routing: str, field: str = "routing") -> str:
    """Check a routing policy (``fastest`` / ``cheapest`` / ``preferred``) or provider name."""
    if not isinstance(routing, str) or not (routing in ROUTING_POLICIES or _PROVIDER.match(routing)):
        raise invalid_request(
            field,
            f"{routing!r}: use 'fastest', 'cheapest', 'preferred' or a provider name such as 'together'",
        )
    return routing


def _number(field: str, value: float | None, lo: float, hi: float, *, lo_open: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise invalid_request(field, f"must be a number, got {value!r}")
    if value > hi or value < lo or (lo_open and value == lo):
        bracket = "(" if lo_open else "["
        raise invalid_request(field, f"{value} is outside {bracket}{lo:g}, {hi:g}]")


def _to_messages(value: Iterable[Message]) -> tuple[Message, ...]:
    return tuple(value)


def _to_tuple(value: Iterable[Any] | None) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


@attrs.frozen(slots=True, kw_only=True)
class GenerateRequest:
    """A chat generation request, independent of any provider.

    >>> req = GenerateRequest(messages=(Message.user("Hi"),), model="org/model", max_tokens=8)
    >>> attrs.evolve(req, temperature=0.2).temperature
    0.2
    """

    messages: tuple[Message, ...] = attrs.field(converter=_to_messages)
    model: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = attrs.field(default=(), converter=_to_tuple)
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    tools: tuple[ToolSpec, ...] = attrs.field(default=(), converter=_to_tuple)
    tool_choice: str | None = None
    response_format: ResponseFormat | None = None
    stream_usage: bool = True
    routing: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=freeze_mapping)

    def __attrs_post_init__(self) -> None:
        self._validate_messages()
        if self.model is not None:
            validate_model(self.model)
        if self.max_tokens is not None and (
            isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1
        ):
            raise invalid_request("max_tokens", f"must be an integer >= 1, got {self.max_tokens!r}")
        _number("temperature", self.temperature, 0.0, 2.0)
        _number("top_p", self.top_p, 0.0, 1.0, lo_open=True)
        _number("frequency_penalty", self.frequency_penalty, -2.0, 2.0)
        _number("presence_penalty", self.presence_penalty, -2.0, 2.0)
        if len(self.stop) > MAX_STOP_SEQUENCES:
            raise invalid_request(
                "stop", f"at most {MAX_STOP_SEQUENCES} stop sequences, got {len(self.stop)}"
            )
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise invalid_request("stop", "stop sequences must be non-empty strings")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise invalid_request("seed", f"must be an integer, got {self.seed!r}")
        self._validate_tools()
        if self.response_format is not None and not isinstance(self.response_format, ResponseFormat):
            raise invalid_request(
                "response_format",
                "use ResponseFormat.json_object() or ResponseFormat.json_schema(...)",
            )
        if self.routing is not None:
            validate_routing(self.routing)
            if self.model and ":" in self.model and self.model.rsplit(":", 1)[1] != self.routing:
                raise invalid_request(
                    "routing",
                    f"model {self.model!r} already has a routing suffix; drop one of them",
                )
        clash = _RESERVED_EXTRA.intersection(self.extra)
        if clash:
            raise invalid_request(
                "extra",
                f"{sorted(clash)} have fields of their own on GenerateRequest; set those instead",
            )

    def _validate_messages(self) -> None:
        if not self.messages:
            raise invalid_request("messages", "is empty; add at least one message (e.g. .user('Hello'))")
        seen_calls: set[str] = set()
        for i, msg in enumerate(self.messages):
            if not isinstance(msg, Message):
                raise invalid_request(f"messages[{i}]", f"must be a Message, got {type(msg).__name__}")
            if msg.role is Role.ASSISTANT:
                seen_calls.update(c.id for c in msg.tool_calls)
            elif msg.role is Role.TOOL:
                result = msg.content[0]
                assert isinstance(result, ToolResult)
                if result.tool_call_id not in seen_calls:
                    raise invalid_request(
                        f"messages[{i}]",
                        f"tool result for {result.tool_call_id!r} answers no earlier assistant tool call; "
                        "include the assistant message with that ToolCall before it",
                    )

    def _validate_tools(self) -> None:
        names = set()
        for tool in self.tools:
            if not isinstance(tool, ToolSpec):
                raise invalid_request("tools", f"must be ToolSpec values, got {type(tool).__name__}")
            if tool.name in names:
                raise invalid_request("tools", f"tool name {tool.name!r} appears twice")
            names.add(tool.name)
        if self.tool_choice is not None:
            if not self.tools and self.tool_choice != "none":
                raise invalid_request("tool_choice", "set without any tools; add tools or drop tool_choice")
            if self.tool_choice not in ("auto", "none", "required") and self.tool_choice not in names:
                raise invalid_request(
                    "tool_choice",
                    f"{self.tool_choice!r}: use 'auto', 'none', 'required' or one of the tool names {sorted(names)}",
                )

    @staticmethod
    def builder() -> GenerateRequestBuilder:
        """A mutable builder whose ``build()`` returns a validated request."""
        return GenerateRequestBuilder()


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
