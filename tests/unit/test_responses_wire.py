"""The Responses translation on its own: any JSON a client sends is either read or refused as
INVALID_REQUEST naming a field (never a raw exception), and answers keep OpenAI's shapes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hfdriver import HuggingFaceError, HuggingFaceErrorKind, Usage
from hfdriver.dto.response import FinishReason, GenerateResponse, Output
from hfdriver.dto.stream import StreamChunk
from hfdriver.openai.responses import ResponseEvents, ResponseShell, read_responses

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
part = st.fixed_dictionaries(
    {"type": st.sampled_from(["input_text", "output_text", "input_image", "refusal", "input_file", "x"])},
    optional={
        "text": json_values,
        "image_url": st.sampled_from(["https://x/y.png", "data:image/png;base64,AA==", "ftp://x", 3]),
    },
)
item = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(
            ["message", "function_call", "function_call_output", "reasoning", "web_search_call"]
        ),
        "role": st.sampled_from(["user", "assistant", "system", "developer", "tool", 3]),
        "content": st.one_of(st.text(max_size=5), st.lists(part | json_values, max_size=3), json_values),
        "call_id": st.one_of(st.just("call_1"), json_values),
        "name": st.one_of(st.just("f"), json_values),
        "arguments": json_values,
        "output": json_values,
    },
)
payloads = st.fixed_dictionaries(
    {},
    optional={
        "input": st.one_of(st.text(max_size=5), st.lists(item | json_values, max_size=4), json_values),
        "instructions": json_values,
        "tools": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {"type": st.sampled_from(["function", "web_search", 1])},
                    optional={"name": json_values, "parameters": json_values, "strict": json_values},
                ),
                max_size=2,
            ),
            json_values,
        ),
        "tool_choice": st.one_of(st.sampled_from(["auto", "none", "required", "bogus"]), json_values),
        "text": json_values,
        "reasoning": json_values,
        "max_output_tokens": json_values,
        "temperature": json_values,
        "top_p": json_values,
        "previous_response_id": json_values,
        "metadata": json_values,
        "stream": json_values,
        "store": json_values,
        "background": json_values,
    },
)


@settings(max_examples=400, deadline=None)
@given(payloads)
def test_any_payload_is_read_or_refused_naming_a_field(payload: dict[str, Any]) -> None:
    refused: HuggingFaceError | None = None
    try:
        read_responses(payload).generate_request()
    except HuggingFaceError as exc:
        refused = exc
    if refused is not None:
        assert refused.kind is HuggingFaceErrorKind.INVALID_REQUEST
        assert ":" in refused.message  # "field: what to do"


def test_an_answer_with_reasoning_text_and_calls_keeps_openai_shapes() -> None:
    from hfdriver import ToolCall

    shell = ResponseShell("resp_1", "m", {"instructions": None}, 1)
    body = shell.completed(
        GenerateResponse(
            outputs=(
                Output(
                    text="hi",
                    reasoning="why",
                    tool_calls=(ToolCall("c1", "f", "{}"),),
                    finish_reason=FinishReason.LENGTH,
                ),
            ),
            usage=Usage(3, 4, 7),
        )
    )
    assert [o["type"] for o in body["output"]] == ["reasoning", "message", "function_call"]
    assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["usage"]["total_tokens"] == 7 and body["output"][2]["call_id"] == "c1"


def test_events_switch_items_when_reasoning_follows_text() -> None:
    events = ResponseEvents(ResponseShell("resp_1", "m", {}, 1))
    wire = events.start()
    for chunk in (StreamChunk(text="a"), StreamChunk(reasoning="r"), StreamChunk(text="b")):
        wire += events.chunk(chunk)
    wire += events.finish(FinishReason.STOP, None, None)
    parsed = [json.loads(line[6:]) for line in wire.decode().splitlines() if line.startswith("data: ")]
    assert [p["sequence_number"] for p in parsed] == list(range(len(parsed)))
    final = parsed[-1]["response"]
    assert [o["type"] for o in final["output"]] == ["message", "reasoning", "message"]
    assert [o["id"] for o in final["output"]] == [
        p["item"]["id"] for p in parsed if p["type"] == "response.output_item.done"
    ]
    deltas = [p for p in parsed if p["type"].endswith(".delta")]
    assert [(d["output_index"], d["delta"]) for d in deltas] == [(0, "a"), (1, "r"), (2, "b")]
