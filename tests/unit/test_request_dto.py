from __future__ import annotations

import attrs
import pytest

from hfdriver import (
    GenerateRequest,
    HuggingFaceError,
    HuggingFaceErrorKind,
    Image,
    Message,
    ResponseFormat,
    Role,
    Text,
    ToolCall,
    ToolResult,
    ToolSpec,
)


def invalid(match: str) -> pytest.RaisesExc[HuggingFaceError]:
    return pytest.raises(HuggingFaceError, match=match)


def base() -> GenerateRequest:
    return GenerateRequest.builder().model("org/model").user("Hello").build()


def test_builder_produces_the_same_value_as_the_constructor() -> None:
    built = (
        GenerateRequest.builder()
        .model("meta-llama/Llama-3.2-1B-Instruct")
        .system("Be brief.")
        .user("Hello")
        .max_tokens(32)
        .temperature(0.5)
        .top_p(0.9)
        .stop("END")
        .seed(7)
        .build()
    )
    direct = GenerateRequest(
        messages=(Message.system("Be brief."), Message.user("Hello")),
        model="meta-llama/Llama-3.2-1B-Instruct",
        max_tokens=32,
        temperature=0.5,
        top_p=0.9,
        stop=("END",),
        seed=7,
    )
    assert built == direct
    assert [m.role for m in built.messages] == [Role.SYSTEM, Role.USER]


def test_dtos_are_frozen_and_slotted() -> None:
    req = base()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        req.max_tokens = 3  # type: ignore[misc]
    assert not hasattr(req, "__dict__")
    assert not hasattr(Message.user("x"), "__dict__")


def test_evolve_revalidates() -> None:
    req = base()
    assert attrs.evolve(req, temperature=1.0).temperature == 1.0
    with invalid("temperature"):
        attrs.evolve(req, temperature=2.5)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("temperature", -0.1, "temperature: -0.1 is outside"),
        ("temperature", 2.01, "temperature"),
        ("temperature", float("nan"), "temperature: must be a number"),
        ("top_p", 0.0, r"top_p: 0.0 is outside \(0, 1\]"),
        ("top_p", 1.5, "top_p"),
        ("max_tokens", 0, "max_tokens: must be an integer >= 1"),
        ("max_tokens", 2.5, "max_tokens"),
        ("max_tokens", True, "max_tokens"),
        ("stop", ("a", "b", "c", "d", "e"), "stop: at most 4"),
        ("stop", ("",), "stop: stop sequences must be non-empty"),
        ("seed", "1", "seed"),
        ("frequency_penalty", 3.0, "frequency_penalty"),
        ("model", "has space/in it", "model"),
        ("model", "", "model"),
        ("routing", "Not A Provider!", "routing"),
        ("extra", {"model": "x"}, "extra"),
        ("tool_choice", "auto", "tool_choice: set without any tools"),
    ],
)
def test_invalid_fields_raise_invalid_request_naming_the_field(field: str, value: object, match: str) -> None:
    with pytest.raises(HuggingFaceError, match=match) as info:
        attrs.evolve(base(), **{field: value})
    assert info.value.kind is HuggingFaceErrorKind.INVALID_REQUEST
    assert not info.value.retryable


def test_no_messages() -> None:
    with invalid("messages: is empty"):
        GenerateRequest.builder().model("m/x").build()


def test_routing_conflicting_with_model_suffix() -> None:
    with invalid("routing"):
        GenerateRequest(messages=(Message.user("x"),), model="org/m:together", routing="fastest")
    same = GenerateRequest(messages=(Message.user("x"),), model="org/m:together", routing="together")
    assert same.routing == "together"


@pytest.mark.parametrize("name", ["bad name", "", "x" * 65, "dots.not.allowed"])
def test_invalid_tool_names(name: str) -> None:
    with invalid("ToolSpec.name"):
        ToolSpec(name)


def test_duplicate_tools_and_unknown_tool_choice() -> None:
    tool = ToolSpec("get_weather")
    with invalid("appears twice"):
        attrs.evolve(base(), tools=(tool, tool))
    with invalid("tool_choice"):
        attrs.evolve(base(), tools=(tool,), tool_choice="other")
    ok = attrs.evolve(base(), tools=(tool,), tool_choice="get_weather")
    assert ok.tool_choice == "get_weather"


def test_tool_spec_parameters_must_be_an_object_schema() -> None:
    with invalid("ToolSpec.parameters"):
        ToolSpec("f", parameters={"type": "array"})


def test_tool_spec_builder() -> None:
    spec = (
        ToolSpec.builder("get_weather")
        .description("Weather for a city")
        .param("city", "string", "City name", required=True)
        .param("unit", enum=["c", "f"])
        .build()
    )
    assert spec.parameters == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name"},
            "unit": {"type": "string", "enum": ["c", "f"]},
        },
        "required": ["city"],
    }


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one of url= or data="),
        ({"url": "https://x/a.png", "data": b"x", "mime_type": "image/png"}, "exactly one"),
        ({"url": "ftp://x/a.png"}, "Image.url"),
        ({"data": b"\x89PNG"}, "Image.mime_type"),
        ({"data": b"\x89PNG", "mime_type": "text/plain"}, "Image.mime_type"),
        ({"url": "https://x/a.png", "detail": "ultra"}, "Image.detail"),
    ],
)
def test_invalid_images(kwargs: dict[str, object], match: str) -> None:
    with invalid(match):
        Image(**kwargs)  # type: ignore[arg-type]


def test_image_bytes_become_a_data_url() -> None:
    img = Image.from_bytes(b"\x89PNG", "image/png")
    assert img.as_url() == "data:image/png;base64,iVBORw=="
    assert "bytes" in repr(img) and "PNG" not in repr(img)


def test_message_constructors_and_role_rules() -> None:
    assert Message.user("hi").content == (Text("hi"),)
    assert Message.user("look", Image.from_url("https://x/y.png")).content[1] == Image(url="https://x/y.png")
    call = ToolCall("call_1", "f", '{"a": 1}')
    assistant = Message.assistant(tool_calls=[call])
    assert assistant.tool_calls == (call,) and assistant.text == ""
    tool = Message.tool("call_1", "42")
    assert tool.content == (ToolResult("call_1", "42"),)
    with invalid("system message cannot carry Image"):
        Message(Role.SYSTEM, (Image.from_url("https://x/y.png"),))
    with invalid("user message cannot carry ToolCall"):
        Message(Role.USER, (call,))
    with invalid("Message\\(user\\).content"):
        Message.user()
    with invalid("tool_call_id"):
        Message.tool("", "x")
    with invalid("exactly one ToolResult"):
        Message(Role.TOOL, (ToolResult("a", "1"), ToolResult("b", "2")))


def test_tool_result_must_answer_an_earlier_tool_call() -> None:
    with invalid("answers no earlier assistant tool call"):
        GenerateRequest(messages=(Message.user("q"), Message.tool("call_9", "42")), model="m/x")
    ok = GenerateRequest(
        messages=(
            Message.user("q"),
            Message.assistant(tool_calls=[ToolCall("call_9", "f")]),
            Message.tool("call_9", "42"),
        ),
        model="m/x",
    )
    assert len(ok.messages) == 3


def test_message_builder() -> None:
    msg = Message.builder("user").text("what is this").image_url("https://x/y.png", detail="low").build()
    assert msg.role is Role.USER and len(msg.content) == 2


def test_response_format_constructors() -> None:
    assert ResponseFormat.json_object().type == "json_object"
    schema = ResponseFormat.json_schema({"type": "object"}, name="answer", strict=True)
    assert schema.schema == {"type": "object"} and schema.name == "answer"
    with invalid("response_format.type"):
        ResponseFormat("yaml")
    with invalid("needs a schema"):
        ResponseFormat("json_schema")


def test_tool_call_parsed_arguments() -> None:
    assert ToolCall("1", "f", '{"x": [1, 2]}').parsed_arguments() == {"x": [1, 2]}
    with pytest.raises(HuggingFaceError) as info:
        ToolCall("1", "f", '{"x": ').parsed_arguments()
    assert info.value.kind is HuggingFaceErrorKind.DECODE
