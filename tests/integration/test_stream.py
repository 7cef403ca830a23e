from __future__ import annotations

import asyncio

import pytest

from hfdriver import (
    FinishReason,
    GenerateRequest,
    HuggingFaceDriver,
    HuggingFaceError,
    HuggingFaceErrorKind,
    ResponseStream,
    StreamChunk,
    Timeouts,
    Usage,
)
from hfdriver.testing import FakeResponse, FakeRouter, stream_events
from tests.integration.conftest import TOKEN

K = HuggingFaceErrorKind


async def read_all(driver: HuggingFaceDriver, request: GenerateRequest) -> list[StreamChunk]:
    async with driver.generate_stream(request) as stream:
        return [chunk async for chunk in stream]


async def test_stream_echo_with_usage_on_the_final_chunk(
    driver: HuggingFaceDriver, router: FakeRouter, request_: GenerateRequest
) -> None:
    chunks = await read_all(driver, request_)
    assert "".join(c.text for c in chunks) == "echo: Hello there"
    assert [c.finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1].finish_reason is FinishReason.STOP
    assert chunks[-1].usage == Usage(5, 3, 8)
    sent = router.requests[0]
    assert sent.json["stream"] is True and sent.json["stream_options"] == {"include_usage": True}
    assert sent.headers["Accept"] == "text/event-stream"


async def test_stream_protocol_and_bare_async_for(
    driver: HuggingFaceDriver, request_: GenerateRequest
) -> None:
    stream = driver.generate_stream(request_)
    assert isinstance(stream, ResponseStream)
    texts = [chunk.text async for chunk in stream]
    assert "".join(texts) == "echo: Hello there"
    assert stream.provider == "fake-provider" and stream.request_id == "fake-1"


async def test_collect_returns_a_whole_response(driver: HuggingFaceDriver, request_: GenerateRequest) -> None:
    async with driver.generate_stream(request_) as stream:
        first = await stream.__anext__()
        response = await stream.collect()
    assert first.text == "echo:"
    assert response.text == "echo: Hello there"
    assert response.finish_reason is FinishReason.STOP
    assert response.usage == Usage(5, 3, 8)
    assert response.provider == "fake-provider"


async def test_no_done_after_a_finish_reason_ends_cleanly(
    driver: HuggingFaceDriver, router: FakeRouter, request_: GenerateRequest
) -> None:
    router.enqueue(FakeResponse.stream(["a", "b"], usage=False, done=False))
    chunks = await read_all(driver, request_)
    assert "".join(c.text for c in chunks) == "ab"
    assert chunks[-1].finish_reason is FinishReason.STOP


async def test_stream_ending_before_a_finish_reason_raises_after_what_arrived(
    driver: HuggingFaceDriver, router: FakeRouter, request_: GenerateRequest
) -> None:
    events = stream_events(["partial", " answer"])[:-2]  # drop the finish and usage chunks
    router.enqueue(FakeResponse(events=events, done=False))
    got: list[str] = []
    with pytest.raises(HuggingFaceError) as info:
        async with driver.generate_stream(request_) as stream:
            async for chunk in stream:
                got.append(chunk.text)
    assert "".join(got) == "partial answer"
    assert info.value.kind is K.STREAM and "ended early" in info.value.message


async def test_disconnect_mid_stream_is_a_stream_error_and_not_retried(
    driver: HuggingFaceDriver, router: FakeRouter, request_: GenerateRequest
) -> None:
    router.enqueue(
        FakeResponse.stream([f"w{i} " for i in range(50)], chunk_size=300, disconnect_after=3, delay=0.01)
    )
    got: list[str] = []
    with pytest.raises(HuggingFaceError) as info:
        async for chunk in driver.generate_stream(request_):
            got.append(chunk.text)
    assert got and got[0].startswith("w0")
    assert info.value.kind is K.STREAM
    assert len(router.requests) == 1


@pytest.mark.parametrize(
    ("event", "kind", "words"),
    [
        (
            {
                "error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096",
                "error_type": "validation",
            },
            K.VALIDATION,
            "max_new_tokens",
        ),
        (
            {"error": {"message": "Request failed during generation", "http_status_code": 422}},
            K.VALIDATION,
            "during generation",
        ),
        ({"error": "Model is overloaded", "error_type": "overloaded"}, K.OVERLOADED, "overloaded"),
        (
            {"error": {"code": 500, "message": "Context size has been exceeded.", "type": "server_error"}},
            K.SERVER,
            "Context size",
        ),
        ({"error": "something broke"}, K.STREAM, "something broke"),
    ],
)
async def test_error_event_inside_a_200_stream(
    driver: HuggingFaceDriver,
    router: FakeRouter,
    request_: GenerateRequest,
    event: dict[str, object],
    kind: K,
    words: str,
) -> None:
    events = [*stream_events(["ok"])[:2], event]
    router.enqueue(FakeResponse(events=events))
    got: list[str] = []
    with pytest.raises(HuggingFaceError) as info:
        async for chunk in driver.generate_stream(request_):
            got.append(chunk.text)
    assert got == ["ok"]
    assert info.value.kind is kind and words in info.value.message
    assert len(router.requests) == 1


async def test_error_event_named_error(
    driver: HuggingFaceDriver, router: FakeRouter, request_: GenerateRequest
) -> None:
    router.enqueue(
        FakeResponse(events=[b'event: error\ndata: {"message": "upstream failed"}\n\n'], done=False)
    )
    with pytest.raises(HuggingFaceError, match="upstream failed") as info:
        await read_all(driver, request_)
    assert info.value.kind is K.STREAM


async def test_tool_call_deltas_are_assembled(
    driver: HuggingFaceDriver, router: FakeRouter, request_: GenerateRequest
) -> None:
    base = {"id": "c", "object": "chat.completion.chunk", "model": "m"}

    def delta(d: dict[str, object], finish: str | None = None) -> dict[str, object]:
        return {**base, "choices": [{"index": 0, "delta": d, "finish_reason": finish}]}

    events = [
        delta(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ],
            }
        ),
        delta({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
        delta(
            {
                "tool_calls": [
                    {"index": 1, "id": "call_b", "function": {"name": "get_time", "arguments": "{}"}}
                ]
            }
        ),
        delta({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        delta({}, "tool_calls"),
        {**base, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}},
    ]
    router.enqueue(FakeResponse(events=events, split_seed=3))
    async with driver.generate_stream(request_) as stream:
        chunks = [c async for c in stream]
        response = stream.response()
    final = chunks[-1]
    assert final.finish_reason is FinishReason.TOOL_CALLS
    assert [(c.id, c.name, c.parsed_arguments()) for c in final.tool_calls] == [
        ("call_a", "get_weather", {"city": "Paris"}),
        ("call_b", "get_time", {}),
    ]
    assert final.usage == Usage(9, 4, 13)
    assert response.tool_calls == final.tool_calls


async def test_reasoning_deltas_are_separate(
    driver: HuggingFaceDriver, router: FakeRouter, request_: GenerateRequest
) -> None:
    base = {"id": "c", "object": "chat.completion.chunk", "model": "m"}
    events = [
        {**base, "choices": [{"index": 0, "delta": {"reasoning_content": "think "}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"reasoning": "more"}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"content": "answer"}, "finish_reason": "stop"}]},
    ]
    router.enqueue(FakeResponse(events=events))
    async with driver.generate_stream(request_) as stream:
        response = await stream.collect()
    assert response.text == "answer" and response.reasoning == "think more"


async def test_server_ignoring_stream_true_is_replayed_as_chunks(
    driver: HuggingFaceDriver, router: FakeRouter, request_: GenerateRequest
) -> None:
    router.enqueue(FakeResponse.completion("whole answer"))
    chunks = await read_all(driver, request_)
    assert "".join(c.text for c in chunks) == "whole answer"
    assert chunks[-1].finish_reason is FinishReason.STOP and chunks[-1].usage is not None


async def test_non_json_event_is_decode(
    driver: HuggingFaceDriver, router: FakeRouter, request_: GenerateRequest
) -> None:
    router.enqueue(FakeResponse(events=["not json"]))
    with pytest.raises(HuggingFaceError) as info:
        await read_all(driver, request_)
    assert info.value.kind is K.DECODE


async def test_stalled_stream_fails_after_the_read_timeout(
    router: FakeRouter, request_: GenerateRequest
) -> None:
    router.enqueue(FakeResponse.stream(["a"] * 40, chunk_size=700, stall_after=1))
    async with HuggingFaceDriver(
        token=TOKEN, base_url=router.base_url, model="m/x", timeouts=Timeouts(read=0.3)
    ) as driver:
        got = []
        with pytest.raises(HuggingFaceError) as info:
            async for chunk in driver.generate_stream(request_):
                got.append(chunk.text)
    assert got  # the first chunks arrived before the stall
    assert info.value.kind is K.TIMEOUT and "read" in info.value.message


async def test_streams_are_cancellable(
    driver: HuggingFaceDriver, router: FakeRouter, request_: GenerateRequest
) -> None:
    router.enqueue(FakeResponse.stream(["x"] * 100, chunk_size=200, delay=0.05))
    started = asyncio.Event()

    async def consume() -> None:
        async with driver.generate_stream(request_) as stream:
            async for _ in stream:
                started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(50):
        if router.open_connections == 0:
            break
        await asyncio.sleep(0.01)
    assert router.open_connections == 0
