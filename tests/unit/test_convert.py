from __future__ import annotations

import json
from typing import Any

import pytest

from hfdriver import (
    FinishReason,
    GenerateRequest,
    HuggingFaceError,
    HuggingFaceErrorKind,
    Image,
    Message,
    ResponseFormat,
    ToolCall,
    ToolSpec,
    Usage,
)
from hfdriver.openai import parse_chunk, parse_response, resolve_model, to_payload


def req(**kwargs: Any) -> GenerateRequest:
    kwargs.setdefault("messages", (Message.user("Hello"),))
    return GenerateRequest(**kwargs)


def test_minimal_payload_omits_unset_fields() -> None:
    assert to_payload(req(model="org/m")) == {
        "model": "org/m",
        "messages": [{"role": "user", "content": "Hello"}],
    }


def test_full_payload() -> None:
    tool = ToolSpec("get_weather", "Weather", {"type": "object", "properties": {"city": {"type": "string"}}})
    request = req(
        model="org/m",
        max_tokens=16,
        temperature=0.0,
        top_p=0.5,
        stop=("\n\n",),
        seed=3,
        tools=(tool,),
        tool_choice="get_weather",
        response_format=ResponseFormat.json_schema({"type": "object"}, name="out", strict=True),
        extra={"top_k": 5},
    )
    payload = to_payload(request, stream=True)
    assert payload["temperature"] == 0.0  # a zero is set, not omitted
    assert payload["stop"] == ["\n\n"]
    assert payload["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    assert payload["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert payload["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True},
    }
    assert payload["stream"] is True
    assert payload["stream_options"] == {"include_usage": True}
    assert payload["top_k"] == 5
    json.dumps(payload)


def test_stream_usage_off_and_tool_choice_keywords() -> None:
    payload = to_payload(
        req(model="m/x", stream_usage=False, tools=(ToolSpec("f"),), tool_choice="required"), stream=True
    )
    assert "stream_options" not in payload
    assert payload["tool_choice"] == "required"


def test_multimodal_content_becomes_parts_with_data_urls() -> None:
    msg = Message.user("What is in this image?", Image.from_bytes(b"abc", "image/jpeg", detail="low"))
    payload = to_payload(req(model="m/x", messages=(msg,)))
    assert payload["messages"][0]["content"] == [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,YWJj", "detail": "low"}},
    ]


def test_tool_round_trip_messages() -> None:
    call = ToolCall("call_1", "get_weather", '{"city":"Paris"}')
    messages = (
        Message.user("Weather?"),
        Message.assistant(tool_calls=[call]),
        Message.tool("call_1", "sunny"),
    )
    payload = to_payload(req(model="m/x", messages=messages))
    assert payload["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    }
    assert payload["messages"][2] == {"role": "tool", "content": "sunny", "tool_call_id": "call_1"}


@pytest.mark.parametrize(
    ("model", "routing", "expected"),
    [
        ("org/m", None, "org/m"),
        ("org/m", "fastest", "org/m:fastest"),
        ("org/m", "cheapest", "org/m:cheapest"),
        ("org/m", "preferred", "org/m:preferred"),
        ("org/m", "together", "org/m:together"),
        ("org/m:novita", "fastest", "org/m:novita"),  # an explicit suffix wins over the driver default
        ("huggingface/org/m", None, "org/m"),
        ("huggingface/m", None, "huggingface/m"),
    ],
)
def test_routing_suffixes(model: str, routing: str | None, expected: str) -> None:
    assert resolve_model(model, routing) == expected


def test_request_routing_and_driver_default_model() -> None:
    payload = to_payload(req(routing="cheapest"), model="org/default")
    assert payload["model"] == "org/default:cheapest"
    with pytest.raises(HuggingFaceError, match="no model given") as info:
        to_payload(req())
    assert info.value.kind is HuggingFaceErrorKind.INVALID_REQUEST


def completion(message: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": "x",
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        **extra,
    }


def test_parse_plain_completion() -> None:
    resp = parse_response(
        completion(
            {"role": "assistant", "content": "Hi"},
            usage={"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        ),
        provider="together",
        request_id="r1",
    )
    assert resp.text == "Hi"
    assert resp.finish_reason is FinishReason.STOP
    assert resp.usage == Usage(3, 1, 4)
    assert (resp.provider, resp.request_id, resp.model, resp.id) == ("together", "r1", "m", "x")
    assert resp.message == Message.assistant("Hi")


@pytest.mark.parametrize(
    "tool_calls",
    [
        [{"id": 0, "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}],
        {"id": 0, "type": "function", "function": {"name": "f", "arguments": {"a": 1}}},
        [{"id": "0", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}],
        [
            {
                "id": 0,
                "type": "function",
                "function": {"name": "f", "parameters": {"a": 1}, "description": None},
            }
        ],
    ],
)
def test_tool_call_shapes(tool_calls: Any) -> None:
    resp = parse_response(completion({"role": "assistant", "content": None, "tool_calls": tool_calls}))
    (call,) = resp.tool_calls
    assert call.id == "0" and call.name == "f"
    assert call.parsed_arguments() == {"a": 1}
    assert resp.text == ""


def test_reasoning_is_kept_apart_from_text() -> None:
    for key in ("reasoning", "reasoning_content"):
        resp = parse_response(completion({"role": "assistant", "content": "4", key: "2+2=4"}))
        assert resp.text == "4" and resp.reasoning == "2+2=4"


def test_unknown_finish_reason_is_kept_and_tgi_names_are_normalised() -> None:
    data = completion({"content": "x"})
    data["choices"][0]["finish_reason"] = "weird_reason"
    assert parse_response(data).finish_reason == "weird_reason"
    data["choices"][0]["finish_reason"] = "eos_token"
    assert parse_response(data).finish_reason is FinishReason.STOP


def test_missing_optional_fields_and_extra_fields() -> None:
    resp = parse_response({"choices": [{"message": {"content": "ok"}, "new_field": 1}], "surprise": True})
    assert resp.text == "ok" and resp.usage is None and resp.model is None and resp.finish_reason is None


@pytest.mark.parametrize(
    "data",
    [
        [{"generated_text": "x"}],
        "text",
        3,
        None,
        {"no": "choices"},
        {"choices": "x"},
        {"choices": [1]},
        {"choices": [{"message": {"content": 5}}]},
    ],
)
def test_malformed_answers_are_decode_errors(data: Any) -> None:
    with pytest.raises(HuggingFaceError) as info:
        parse_response(data)
    assert info.value.kind is HuggingFaceErrorKind.DECODE


def test_error_object_in_a_200_body_maps_to_its_kind() -> None:
    with pytest.raises(HuggingFaceError) as info:
        parse_response({"error": "Input validation error: bad", "error_type": "validation"})
    assert info.value.kind is HuggingFaceErrorKind.VALIDATION


def test_parse_chunk_shapes() -> None:
    chunk = parse_chunk(
        {
            "id": 7,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "content": "a",
                        "reasoning_content": "r",
                        "tool_calls": {"index": 0, "id": 3, "function": {"name": "f", "arguments": "{"}},
                    },
                    "finish_reason": None,
                }
            ],
            "usage": None,
        }
    )
    (delta,) = chunk.deltas
    assert (delta.text, delta.reasoning, chunk.id) == ("a", "r", "7")
    assert delta.tool_calls[0].id == "3" and delta.tool_calls[0].arguments == "{"
    usage_only = parse_chunk({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}})
    assert usage_only.deltas == () and usage_only.usage == Usage(1, 2, 3)
    with pytest.raises(HuggingFaceError) as info:
        parse_chunk({"token": {"text": "x"}})
    assert info.value.kind is HuggingFaceErrorKind.DECODE
