"""Tool specifications and response formats offered to the model, and the tool builder."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from hfdriver.errors import invalid_request

__all__ = ["ResponseFormat", "ToolSpec", "ToolSpecBuilder", "freeze_mapping"]

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def freeze_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return {} if value is None else dict(value)


@attrs.frozen(slots=True)
class ToolSpec:
    """A function the model may call: name, description, JSON-schema parameters."""

    name: str
    description: str | None = None
    parameters: Mapping[str, Any] = attrs.field(
        factory=lambda: {"type": "object", "properties": {}}, converter=freeze_mapping
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
        """A mutable builder whose ``build()`` returns a validated tool spec."""
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
