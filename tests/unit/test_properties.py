"""Hypothesis properties over requests, conversions and parsers."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from hfdriver import GenerateRequest, HuggingFaceError, Image, Message, ResponseFormat, ToolSpec
from hfdriver.openai import parse_chunk, parse_response, to_payload

text = st.text(min_size=1, max_size=40)
tool_names = st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True)
images = st.one_of(
    st.builds(Image.from_url, st.sampled_from(["https://x.test/a.png", "http://h/b.jpg"])),
    st.builds(
        Image.from_bytes, st.binary(min_size=1, max_size=30), st.sampled_from(["image/png", "image/jpeg"])
    ),
)
user_messages = st.one_of(
    st.builds(Message.user, text),
    st.builds(lambda t, i: Message.user(t, i), text, images),
)
messages = st.lists(
    st.one_of(user_messages, st.builds(Message.system, text), st.builds(Message.assistant, text)),
    min_size=1,
    max_size=5,
)


@st.composite
def requests(draw: st.DrawFn) -> GenerateRequest:
    tools = draw(
        st.lists(st.builds(ToolSpec, tool_names, st.none() | text), max_size=3, unique_by=lambda t: t.name)
    )
    return GenerateRequest(
        messages=tuple(draw(messages)),
        model=draw(st.from_regex(r"[a-z]{1,8}/[A-Za-z0-9.-]{1,12}", fullmatch=True)),
        max_tokens=draw(st.none() | st.integers(1, 4096)),
        temperature=draw(st.none() | st.floats(0, 2)),
        top_p=draw(st.none() | st.floats(0.01, 1)),
        stop=tuple(draw(st.lists(text, max_size=4))),
        seed=draw(st.none() | st.integers(-(2**31), 2**31)),
        tools=tuple(tools),
        tool_choice=draw(st.sampled_from([None, "auto", "none", "required"])) if tools else None,
        response_format=draw(
            st.sampled_from(
                [None, ResponseFormat.json_object(), ResponseFormat.json_schema({"type": "object"})]
            )
        ),
        routing=draw(st.sampled_from([None, "fastest", "cheapest", "preferred", "together"])),
        stream_usage=draw(st.booleans()),
    )


@given(requests(), st.booleans())
def test_any_valid_request_converts_to_json_that_round_trips(request: GenerateRequest, stream: bool) -> None:
    payload = to_payload(request, stream=stream)
    assert json.loads(json.dumps(payload)) == payload
    assert len(payload["messages"]) == len(request.messages)
    assert payload["model"].startswith(request.model or "")
    assert ("stream" in payload) is stream
    for key in ("max_tokens", "temperature", "top_p", "seed"):
        assert (key in payload) is (getattr(request, key) is not None)


@given(requests(), st.floats(0, 2), st.integers(1, 100))
def test_builder_dto_evolve(request: GenerateRequest, temperature: float, max_tokens: int) -> None:
    rebuilt = GenerateRequest.builder().messages(request.messages).tools(request.tools).build()
    assert rebuilt.messages == request.messages
    changed = attrs.evolve(request, temperature=temperature, max_tokens=max_tokens)
    assert changed.temperature == temperature and changed.max_tokens == max_tokens
    assert attrs.evolve(changed, temperature=request.temperature, max_tokens=request.max_tokens) == request


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "choices",
                    "message",
                    "delta",
                    "content",
                    "tool_calls",
                    "function",
                    "arguments",
                    "name",
                    "id",
                    "index",
                    "usage",
                    "finish_reason",
                    "reasoning",
                    "error",
                    "x",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=400)
@given(json_values)
def test_parsers_raise_nothing_but_huggingface_error(data: Any) -> None:
    for parse in (parse_response, parse_chunk):
        with contextlib.suppress(HuggingFaceError):
            parse(data)
