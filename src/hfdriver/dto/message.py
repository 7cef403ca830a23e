"""Messages and what they hold: text, images, tool calls and tool results, and their builder.

Every instance is valid: the constructor, :func:`attrs.evolve` and the builder all run the
same checks and raise ``HuggingFaceError(kind=INVALID_REQUEST)`` naming the field.
"""

from __future__ import annotations

import base64
import enum
import json
from collections.abc import Iterable
from typing import Any, TypeAlias

import attrs

from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind, invalid_request

__all__ = ["Image", "Input", "Message", "MessageBuilder", "Role", "Text", "ToolCall", "ToolResult"]


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
        """A mutable builder whose ``build()`` returns a validated message."""
        return MessageBuilder(role)


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
