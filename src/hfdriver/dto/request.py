"""Provider-neutral request DTOs: frozen, slotted attrs classes validated on creation.

Every instance is valid: the constructor, :func:`attrs.evolve` and the builders all run the
same checks and raise ``HuggingFaceError(kind=INVALID_REQUEST)`` naming the field.
"""

from __future__ import annotations

import base64
import enum
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs

from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind, invalid_request

if TYPE_CHECKING:
    from hfdriver.dto.builders import GenerateRequestBuilder, MessageBuilder, ToolSpecBuilder

__all__ = [
    "GenerateRequest",
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
    "validate_routing",
]

MAX_STOP_SEQUENCES = 4
ROUTING_POLICIES = ("fastest", "cheapest", "preferred")
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
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


class Role(str, enum.Enum):
    """Who speaks a message."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"

    def __str__(self) -> str:
        return self.value


@attrs.frozen(slots=True)
class Text:
    """A piece of text."""

    text: str = attrs.field(validator=attrs.validators.instance_of(str))


def _check_image(inst: Image, _a: attrs.Attribute[Any], _v: Any) -> None:
    if (inst.url is None) == (inst.data is None):
        raise invalid_request("Image", "give exactly one of url= or data= (bytes)")
    if inst.url is not None:
        if not isinstance(inst.url, str) or not inst.url.startswith(("http://", "https://", "data:")):
            raise invalid_request("Image.url", "must be an http(s):// or data: URL")
    else:
        if not isinstance(inst.data, bytes) or not inst.data:
            raise invalid_request("Image.data", "must be non-empty bytes")
        if not inst.mime_type or not inst.mime_type.startswith("image/"):
            raise invalid_request("Image.mime_type", "bytes need an image MIME type such as 'image/png'")
    if inst.detail not in (None, "auto", "low", "high"):
        raise invalid_request("Image.detail", "must be 'auto', 'low' or 'high'")


@attrs.frozen(slots=True)
class Image:
    """An image: a URL, or bytes plus a MIME type (sent as a ``data:`` URL)."""

    url: str | None = attrs.field(default=None, kw_only=True)
    data: bytes | None = attrs.field(
        default=None, kw_only=True, repr=lambda d: f"<{len(d)} bytes>" if d else "None"
    )
    mime_type: str | None = attrs.field(default=None, kw_only=True)
    detail: str | None = attrs.field(default=None, kw_only=True, validator=_check_image)

    @classmethod
    def from_url(cls, url: str, *, detail: str | None = None) -> Image:
        return cls(url=url, detail=detail)

    @classmethod
    def from_bytes(cls, data: bytes, mime_type: str, *, detail: str | None = None) -> Image:
        return cls(data=data, mime_type=mime_type, detail=detail)

    def as_url(self) -> str:
        """The URL to send: the URL itself, or a base64 ``data:`` URL for bytes."""
        if self.url is not None:
            return self.url
        assert self.data is not None
        return f"data:{self.mime_type};base64,{base64.b64encode(self.data).decode('ascii')}"


@attrs.frozen(slots=True)
class ToolCall:
    """A function call the assistant asked for. ``arguments`` is the JSON text of the arguments."""

    id: str = attrs.field(validator=attrs.validators.instance_of(str))
    name: str = attrs.field(validator=attrs.validators.instance_of(str))
    arguments: str = attrs.field(default="{}", validator=attrs.validators.instance_of(str))

    def parsed_arguments(self) -> Any:
        """The arguments as Python values; ``DECODE`` if the model produced invalid JSON."""
        try:
            return json.loads(self.arguments) if self.arguments.strip() else {}
        except ValueError as exc:
            raise HuggingFaceError(
                HuggingFaceErrorKind.DECODE,
                f"tool call {self.name!r} has arguments that are not valid JSON ({exc}): "
                f"{self.arguments[:200]!r}",
            ) from None


@attrs.frozen(slots=True)
class ToolResult:
    """The result of a tool call, sent back in a ``tool`` message."""

    tool_call_id: str = attrs.field(validator=attrs.validators.instance_of(str))
    content: str = attrs.field(validator=attrs.validators.instance_of(str))
    name: str | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if not self.tool_call_id:
            raise invalid_request(
                "ToolResult.tool_call_id", "is empty; pass the id of the ToolCall it answers"
            )


Input: TypeAlias = "Text | Image | ToolCall | ToolResult"
_INPUT_TYPES = (Text, Image, ToolCall, ToolResult)
_ALLOWED: dict[Role, tuple[type, ...]] = {
    Role.SYSTEM: (Text,),
    Role.USER: (Text, Image),
    Role.ASSISTANT: (Text, ToolCall),
    Role.TOOL: (ToolResult,),
}


def _to_inputs(value: str | Input | Iterable[str | Input]) -> tuple[Input, ...]:
    if isinstance(value, str):
        return (Text(value),)
    if isinstance(value, _INPUT_TYPES):
        return (value,)
    return tuple(Text(v) if isinstance(v, str) else v for v in value)


@attrs.frozen(slots=True)
class Message:
    """One turn of a conversation: a role and a tuple of inputs.

    >>> Message.user("Hello").text
    'Hello'
    """

    role: Role = attrs.field(converter=Role)
    content: tuple[Input, ...] = attrs.field(converter=_to_inputs)
    name: str | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        allowed = _ALLOWED[self.role]
        for item in self.content:
            if not isinstance(item, allowed):
                what = type(item).__name__
                raise invalid_request(
                    f"Message({self.role.value}).content",
                    f"a {self.role.value} message cannot carry {what}; allowed: "
                    + ", ".join(t.__name__ for t in allowed),
                )
        if self.role is Role.TOOL:
            if len(self.content) != 1:
                raise invalid_request(
                    "Message(tool).content",
                    "a tool message carries exactly one ToolResult; use Message.tool(tool_call_id, content)",
                )
        elif self.role is not Role.ASSISTANT and not self.content:
            raise invalid_request(f"Message({self.role.value}).content", "is empty")

    @classmethod
    def system(cls, text: str) -> Message:
        return cls(Role.SYSTEM, text)

    @classmethod
    def user(cls, *content: str | Text | Image) -> Message:
        return cls(Role.USER, content)

    @classmethod
    def assistant(cls, text: str | None = None, *, tool_calls: Iterable[ToolCall] = ()) -> Message:
        inputs: list[Input] = [Text(text)] if text else []
        inputs.extend(tool_calls)
        return cls(Role.ASSISTANT, inputs)

    @classmethod
    def tool(cls, tool_call_id: str, content: str, *, name: str | None = None) -> Message:
        return cls(Role.TOOL, (ToolResult(tool_call_id, content, name=name),))

    @property
    def text(self) -> str:
        """The text inputs joined (what most people mean by "the message")."""
        return "".join(i.text for i in self.content if isinstance(i, Text))

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(i for i in self.content if isinstance(i, ToolCall))

    @staticmethod
    def builder(role: Role | str = Role.USER) -> MessageBuilder:
        from hfdriver.dto.builders import MessageBuilder

        return MessageBuilder(role)


def _freeze_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return {} if value is None else dict(value)


@attrs.frozen(slots=True)
class ToolSpec:
    """A function the model may call: name, description, JSON-schema parameters."""

    name: str
    description: str | None = None
    parameters: Mapping[str, Any] = attrs.field(
        factory=lambda: {"type": "object", "properties": {}}, converter=_freeze_mapping
    )
    strict: bool | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str) or not _TOOL_NAME.match(self.name):
            raise invalid_request(
                "ToolSpec.name",
                f"{self.name!r} is not a valid tool name: use 1-64 letters, digits, '_' or '-'",
            )
        if self.parameters.get("type", "object") != "object":
            raise invalid_request("ToolSpec.parameters", "must be a JSON schema of type 'object'")

    @staticmethod
    def builder(name: str) -> ToolSpecBuilder:
        from hfdriver.dto.builders import ToolSpecBuilder

        return ToolSpecBuilder(name)


@attrs.frozen(slots=True)
class ResponseFormat:
    """What shape the answer must take: ``text``, ``json_object`` or ``json_schema``."""

    type: str = "text"
    schema: Mapping[str, Any] | None = attrs.field(default=None, kw_only=True)
    name: str = attrs.field(default="response", kw_only=True)
    strict: bool | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if self.type not in ("text", "json_object", "json_schema"):
            raise invalid_request(
                "response_format.type", f"{self.type!r}: use 'text', 'json_object' or 'json_schema'"
            )
        if self.type == "json_schema" and not isinstance(self.schema, Mapping):
            raise invalid_request("response_format.schema", "json_schema needs a schema (a dict)")
        if self.type != "json_schema" and self.schema is not None:
            raise invalid_request(
                "response_format.schema", f"only json_schema takes a schema, not {self.type}"
            )
        if not _TOOL_NAME.match(self.name):
            raise invalid_request("response_format.name", "use 1-64 letters, digits, '_' or '-'")

    @classmethod
    def text(cls) -> ResponseFormat:
        return cls("text")

    @classmethod
    def json_object(cls) -> ResponseFormat:
        return cls("json_object")

    @classmethod
    def json_schema(
        cls, schema: Mapping[str, Any], *, name: str = "response", strict: bool | None = None
    ) -> ResponseFormat:
        return cls("json_schema", schema=dict(schema), name=name, strict=strict)


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
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze_mapping)

    def __attrs_post_init__(self) -> None:
        self._validate_messages()
        if self.model is not None and (
            not isinstance(self.model, str) or not self.model.strip() or any(c.isspace() for c in self.model)
        ):
            raise invalid_request(
                "model",
                f"{self.model!r} is not a model id; use 'org/name', e.g. 'meta-llama/Llama-3.2-1B-Instruct'",
            )
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
        from hfdriver.dto.builders import GenerateRequestBuilder

        return GenerateRequestBuilder()
