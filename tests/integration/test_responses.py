"""`hfdriver serve` speaks the OpenAI Responses API: tested with the openai SDK's own
`client.responses` over the FakeRouter (and raw HTTP where a client would hide what is sent)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from hfdriver import HuggingFaceDriver, RetryPolicy
from hfdriver.server import MemoryResponseStore, OpenAIServer
from hfdriver.testing import FakeResponse, FakeRouter
from hfdriver.testing._responses import completion_body, stream_events
from tests.integration.conftest import TOKEN

openai = pytest.importorskip(
    "openai", reason="the dev extra installs openai to test serve with a real client"
)

KEY = "sk-responses-test"
MODEL = "meta-llama/Llama-3.2-1B-Instruct"
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
async def server(router: FakeRouter) -> AsyncIterator[OpenAIServer]:  # router: conftest's FakeRouter
    driver = HuggingFaceDriver(TOKEN, base_url=router.base_url, model=MODEL, retry=RetryPolicy.disabled())
    async with OpenAIServer(
        driver, port=0, api_key=KEY, grace=0.3, response_store=MemoryResponseStore()
    ) as srv:
        yield srv
    await driver.aclose()


@pytest.fixture
async def client(server: OpenAIServer) -> AsyncIterator[Any]:
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key=KEY, max_retries=0) as c:
        yield c


def tool_call_answer(*calls: tuple[str, str, dict[str, Any]]) -> FakeResponse:
    return FakeResponse(
        json=completion_body(
            "",
            finish_reason="tool_calls",
            tool_calls=[
                {"id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
                for cid, name, args in calls
            ],
        )
    )


def tool_call_stream(call_id: str, name: str, arguments: str) -> FakeResponse:
    base = {"id": "chatcmpl-t", "object": "chat.completion.chunk", "created": 1, "model": MODEL}
    half = len(arguments) // 2

    def delta(**d: Any) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]}

    return FakeResponse(
        events=[
            delta(role="assistant", content="Let me check."),
            delta(tool_calls=[{"index": 0, "id": call_id, "type": "function", "function": {"name": name}}]),
            delta(tool_calls=[{"index": 0, "function": {"arguments": arguments[:half]}}]),
            delta(tool_calls=[{"index": 0, "function": {"arguments": arguments[half:]}}]),
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        ]
    )


async def post(server: OpenAIServer, path: str, body: Any, **headers: str) -> tuple[int, Any, str]:
    sent = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json", **headers}
    url = server.base_url.removesuffix("/v1") + path
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=json.dumps(body).encode(), headers=sent) as resp,
    ):
        text = await resp.text()
        try:
            return resp.status, json.loads(text), text
        except ValueError:
            return resp.status, None, text


# ---------------------------------------------------------------------------- openai-python
async def test_plain_input_and_instructions(client: Any, router: FakeRouter) -> None:
    response = await client.responses.create(
        model=MODEL, input="Hello server", instructions="Be brief.", max_output_tokens=20, temperature=0.3
    )
    assert response.output_text == "echo: Hello server"
    assert response.status == "completed" and response.object == "response"
    assert response.id.startswith("resp_") and response.output[0].id.startswith("msg_")
    assert response.instructions == "Be brief." and response.max_output_tokens == 20
    assert response.usage is not None and response.usage.total_tokens == (
        response.usage.input_tokens + response.usage.output_tokens
    )
    sent = router.requests[0].json
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello server"},
    ]
    assert (sent["max_tokens"], sent["temperature"], sent["model"]) == (20, 0.3, MODEL)


async def test_opening_system_and_developer_messages_become_one_system_message(
    client: Any, router: FakeRouter
) -> None:
    await client.responses.create(
        model=MODEL,
        instructions="You are a coding agent.",
        input=[
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": "Sandbox: none."}],
            },
            {"role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
            {"role": "developer", "content": "Later note."},
        ],
    )
    assert router.requests[0].json["messages"] == [
        {"role": "system", "content": "You are a coding agent.\n\nSandbox: none."},
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": "Later note."},  # later ones stay where they are
    ]
    with pytest.raises(openai.BadRequestError) as empty:
        await client.responses.create(model=MODEL, input=[{"role": "system", "content": "only this"}])
    assert empty.value.body["param"] == "input"


async def test_images_reach_the_model_as_image_parts(client: Any, router: FakeRouter) -> None:
    png = "data:image/png;base64,iVBORw0KGgo="
    await client.responses.create(
        model=MODEL,
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": png, "detail": "low"},
                    {"type": "input_image", "image_url": "https://example.com/cat.jpg"},
                ],
            }
        ],
    )
    content = router.requests[0].json["messages"][0]["content"]
    assert [c["type"] for c in content] == ["text", "image_url", "image_url"]
    assert content[1]["image_url"] == {"url": png, "detail": "low"}
    assert content[2]["image_url"]["url"] == "https://example.com/cat.jpg"


async def test_a_json_schema_text_format_becomes_response_format(client: Any, router: FakeRouter) -> None:
    router.enqueue(FakeResponse(json=completion_body('{"city": "Paris", "country": "France"}')))
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"],
        "additionalProperties": False,
    }
    response = await client.responses.create(
        model=MODEL,
        input="Where is the Eiffel tower?",
        text={"format": {"type": "json_schema", "name": "place", "schema": schema, "strict": True}},
    )
    assert json.loads(response.output_text) == {"city": "Paris", "country": "France"}
    assert router.requests[0].json["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "place", "schema": schema, "strict": True},
    }
    assert response.text.format.type == "json_schema"


async def test_streaming_sends_the_events_in_order(client: Any, router: FakeRouter) -> None:
    router.enqueue(FakeResponse(events=stream_events(["The", " capital", " is", " Paris."])))
    stream = await client.responses.create(model=MODEL, input="Capital of France?", stream=True)
    events = [event async for event in stream]
    kinds = [e.type for e in events]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 4,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    item_id = events[2].item.id
    assert {(e.item_id, e.output_index, e.content_index) for e in deltas} == {(item_id, 0, 0)}
    assert "".join(e.delta for e in deltas) == "The capital is Paris."
    assert events[-4].text == "The capital is Paris." == events[-1].response.output_text
    assert events[0].response.status == "in_progress" and events[-1].response.status == "completed"
    assert events[-1].response.usage.output_tokens > 0


async def test_a_two_turn_function_calling_loop(client: Any, router: FakeRouter) -> None:
    router.enqueue(tool_call_answer(("call_1", "get_weather", {"city": "Paris"})))
    router.enqueue(FakeResponse(json=completion_body("It is sunny in Paris.")))
    first = await client.responses.create(
        model=MODEL, input="Weather in Paris?", tools=[WEATHER_TOOL], tool_choice="auto", store=False
    )
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert (call.call_id, call.name, json.loads(call.arguments)) == (
        "call_1",
        "get_weather",
        {"city": "Paris"},
    )
    assert router.requests[0].json["tools"] == [
        {
            "type": "function",
            "function": {k: WEATHER_TOOL[k] for k in ("name", "description", "parameters")},
        }
    ]
    history = [{"role": "user", "content": "Weather in Paris?"}, *[i.model_dump() for i in first.output]]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 24 C"})
    second = await client.responses.create(model=MODEL, input=history, tools=[WEATHER_TOOL])
    assert second.output_text == "It is sunny in Paris."
    sent = router.requests[1].json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert (
        sent[1]["tool_calls"][0]["id"] == "call_1"
        and sent[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    )
    assert sent[2] == {"role": "tool", "content": "sunny, 24 C", "tool_call_id": "call_1"}


async def test_a_streamed_function_call(client: Any, router: FakeRouter) -> None:
    router.enqueue(tool_call_stream("call_9", "get_weather", '{"city": "Lyon"}'))
    stream = await client.responses.create(model=MODEL, input="Lyon?", tools=[WEATHER_TOOL], stream=True)
    events = [e async for e in stream]
    kinds = [e.type for e in events]
    assert kinds[kinds.index("response.output_item.done") + 1 :] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert done.arguments == '{"city": "Lyon"}' and done.output_index == 1
    final = events[-1].response
    assert [o.type for o in final.output] == ["message", "function_call"]
    assert final.output[1].call_id == "call_9" and final.output_text == "Let me check."


async def test_previous_response_id_continues_and_the_store_answers(client: Any, router: FakeRouter) -> None:
    first = await client.responses.create(model=MODEL, input="My name is Ada.", instructions="Be kind.")
    second = await client.responses.create(
        model=MODEL, input="What is my name?", previous_response_id=first.id, instructions="Be brief."
    )
    sent = router.requests[1].json["messages"]
    assert sent == [
        {"role": "system", "content": "Be brief."},  # instructions are not carried over, as OpenAI
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "echo: My name is Ada."},
        {"role": "user", "content": "What is my name?"},
    ]
    third = await client.responses.create(model=MODEL, input="And again?", previous_response_id=second.id)
    assert len(router.requests[2].json["messages"]) == 5
    fetched = await client.responses.retrieve(second.id)
    assert fetched.output_text == second.output_text and fetched.previous_response_id == first.id
    items = await client.responses.input_items.list(third.id)
    assert [(i.type, i.content[0].text) for i in items.data] == [("message", "And again?")]
    await client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError) as missing:
        await client.responses.create(model=MODEL, input="x", previous_response_id=first.id)
    assert "previous_response_id" in str(missing.value)
    assert len(router.requests) == 3  # the unknown id was refused before any upstream call
    # A streamed response is stored before its last event: fetchable at once.
    stream = await client.responses.create(model=MODEL, input="streamed", stream=True)
    final = [e async for e in stream][-1].response
    assert (await client.responses.retrieve(final.id)).output_text == "echo: streamed"


async def test_store_false_is_not_kept_and_unknown_ids_are_404(client: Any, server: OpenAIServer) -> None:
    response = await client.responses.create(model=MODEL, input="forget me", store=False)
    assert response.store is False
    for call in (
        client.responses.retrieve(response.id),
        client.responses.delete("resp_nope"),
        client.responses.input_items.list("resp_nope"),
    ):
        with pytest.raises(openai.NotFoundError) as caught:
            await call
        assert caught.value.body["code"] == "not_found"


async def test_input_items_pages(client: Any) -> None:
    items = [{"role": "user", "content": f"part {n}"} for n in range(5)]
    response = await client.responses.create(model=MODEL, input=items)
    newest_first = await client.responses.input_items.list(response.id, limit=2)
    assert [i.content[0].text for i in newest_first.data] == ["part 4", "part 3"] and newest_first.has_more
    rest = await client.responses.input_items.list(response.id, order="asc", after=newest_first.data[0].id)
    assert rest.data == [] and not rest.has_more
    oldest = await client.responses.input_items.list(response.id, order="asc", limit=100)
    assert [i.content[0].text for i in oldest.data] == [f"part {n}" for n in range(5)]


# ---------------------------------------------------------------------------- outcomes
async def test_an_answer_cut_by_the_token_limit_is_incomplete(client: Any) -> None:
    response = await client.responses.create(
        model=MODEL, input="one two three four five", max_output_tokens=2
    )
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"
    stream = await client.responses.create(
        model=MODEL, input="one two three four five", max_output_tokens=2, stream=True
    )
    events = [e async for e in stream]
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"
    assert events[-2].item.status == "incomplete"


async def test_reasoning_is_an_output_item_and_effort_reaches_the_driver(
    client: Any, router: FakeRouter
) -> None:
    router.enqueue(FakeResponse(json=completion_body("42", reasoning="six times seven")))
    response = await client.responses.create(model=MODEL, input="6*7?", reasoning={"effort": "low"})
    assert router.requests[0].json["reasoning_effort"] == "low"
    assert [o.type for o in response.output] == ["reasoning", "message"]
    assert response.output[0].content[0].text == "six times seven" and response.output_text == "42"
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": MODEL}
    router.enqueue(
        FakeResponse(
            events=[
                {**base, "choices": [{"index": 0, "delta": {"reasoning_content": "thinking"}}]},
                {**base, "choices": [{"index": 0, "delta": {"content": "42"}, "finish_reason": "stop"}]},
            ]
        )
    )
    stream = await client.responses.create(model=MODEL, input="6*7?", stream=True)
    events = [e async for e in stream]
    kinds = [e.type for e in events]
    assert "response.reasoning_text.delta" in kinds
    assert kinds.index("response.reasoning_text.done") < kinds.index("response.output_text.delta")
    assert [o.type for o in events[-1].response.output] == ["reasoning", "message"]


async def test_an_upstream_error_keeps_its_status(client: Any, router: FakeRouter) -> None:
    router.enqueue(FakeResponse.error(402, "credits exhausted"))
    with pytest.raises(openai.APIStatusError) as paid:
        await client.responses.create(model=MODEL, input="hi")
    assert paid.value.status_code == 402 and "credits exhausted" in str(paid.value)
    router.enqueue(FakeResponse.error(402, "credits exhausted"))
    with pytest.raises(openai.APIStatusError) as streamed:
        await client.responses.create(model=MODEL, input="hi", stream=True)
    assert streamed.value.status_code == 402


async def test_a_failure_mid_stream_ends_with_response_failed(client: Any, router: FakeRouter) -> None:
    router.enqueue(
        FakeResponse(
            events=[
                {"choices": [{"index": 0, "delta": {"content": "partial"}}]},
                {"error": "boom", "error_type": "generation"},
            ]
        )
    )
    stream = await client.responses.create(model=MODEL, input="hi", stream=True)
    events = [e async for e in stream]
    assert events[-1].type == "response.failed"
    assert events[-1].response.status == "failed" and "boom" in events[-1].response.error.message
    assert events[-1].response.output[0].content[0].text == "partial"
    failed = await client.responses.retrieve(events[-1].response.id)
    assert failed.status == "failed"


# ---------------------------------------------------------------------------- refusals and tools
async def test_hosted_tools_are_left_out_with_one_warning_per_type(
    client: Any, router: FakeRouter, caplog: pytest.LogCaptureFixture
) -> None:
    tools = [
        {"type": "web_search"},
        WEATHER_TOOL,
        {"type": "code_interpreter", "container": {"type": "auto"}},
    ]
    with caplog.at_level(logging.WARNING, logger="hfdriver"):
        for _ in range(3):
            await client.responses.create(model=MODEL, input="hi", tools=tools)
    assert [t["function"]["name"] for t in router.requests[0].json["tools"]] == ["get_weather"]
    warned = [r.getMessage() for r in caplog.records if "hosted tools" in r.getMessage()]
    assert len(warned) == 2 and "'web_search'" in warned[0] and "'code_interpreter'" in warned[1]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input": "hi", "background": True}, "background"),
        (
            {"input": "hi", "tools": [{"type": "web_search"}], "tool_choice": {"type": "web_search"}},
            "tool_choice",
        ),
        (
            {"input": [{"role": "user", "content": "hi"}, {"type": "computer_call", "id": "x"}]},
            "input[1].type",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0].type",
        ),
        ({"input": [{"role": "robot", "content": "hi"}]}, "input[0].role"),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
        ({}, "input"),
        ({"input": "hi", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
        ({"input": "hi", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
        ({"input": "hi", "previous_response_id": 7}, "previous_response_id"),
        ({"input": "hi", "conversation": "conv_1"}, "conversation"),
        ([1, 2], "body"),
    ],
)
async def test_bad_requests_are_400_naming_the_field(
    server: OpenAIServer, router: FakeRouter, body: Any, field: str
) -> None:
    status, answer, _ = await post(server, "/v1/responses", body)
    assert status == 400, answer
    assert answer["error"]["param"] == field and answer["error"]["message"].startswith(field)
    assert router.requests == []


async def test_the_alias_path_has_the_same_guards(server: OpenAIServer, router: FakeRouter) -> None:
    body = {"model": MODEL, "input": "hi"}
    for path in ("/v1/responses", "/responses"):
        status, answer, _ = await post(server, path, body)
        assert status == 200 and answer["output"][0]["content"][0]["text"] == "echo: hi"
        assert (await post(server, path, body, Authorization="Bearer wrong"))[0] == 401
        assert (await post(server, path, body, Origin="https://evil.example"))[0] == 403
        assert (await post(server, path, body, Host="evil.example"))[0] == 403
        assert (await post(server, path, body, **{"Content-Type": "text/plain"}))[0] == 400
        stored = answer["id"]
        async with aiohttp.ClientSession() as session:
            url = server.base_url.removesuffix("/v1") + f"{path}/{stored}"
            async with session.get(url) as resp:
                assert resp.status == 401  # reading a stored response needs the key too
            async with session.get(url, headers={"Authorization": f"Bearer {KEY}"}) as resp:
                assert resp.status == 200 and (await resp.json())["id"] == stored
    assert len(router.requests) == 2


async def test_a_client_that_leaves_a_stream_cancels_the_upstream_call(
    server: OpenAIServer, router: FakeRouter
) -> None:
    # 64-byte writes 50 ms apart: twenty seconds of answer unless serve hangs up on the router.
    router.enqueue(FakeResponse(events=stream_events([" word"] * 200), delay=0.05, chunk_size=64))
    body = json.dumps({"model": MODEL, "input": "hi", "stream": True}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {KEY}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    seen = b""
    while b"response.output_text.delta" not in seen:
        seen += await asyncio.wait_for(reader.read(4096), timeout=5)
    assert router.open_connections == 1
    writer.close()
    for _ in range(60):
        if router.open_connections == 0:
            break
        await asyncio.sleep(0.05)
    assert router.open_connections == 0  # serve closed its upstream stream
