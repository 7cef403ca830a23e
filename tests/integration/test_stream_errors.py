"""Errors and usage inside 200 streams, shaped as real providers send them (issue 10, group 2)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest

from hfdriver import GenerateRequest, HuggingFaceDriver, HuggingFaceError, HuggingFaceErrorKind, RetryPolicy
from hfdriver.server import OpenAIServer
from hfdriver.testing import FakeResponse, FakeRouter

K = HuggingFaceErrorKind
REQUEST = GenerateRequest.builder().model("m/x").user("hi").build()
TOOL_USE_FAILED = {
    "error": {
        "message": "Failed to call a function. Please adjust your prompt.",
        "type": "invalid_request_error",
        "code": "tool_use_failed",
        "status_code": 400,
    }
}


def chunk(content: str | None = "", finish: str | None = None, **extra: object) -> dict[str, object]:
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": "m/x",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}],
        **extra,
    }


@pytest.fixture
async def router() -> AsyncIterator[FakeRouter]:
    async with FakeRouter() as fake:
        yield fake


@pytest.fixture
async def driver(router: FakeRouter) -> AsyncIterator[HuggingFaceDriver]:
    async with HuggingFaceDriver(base_url=router.base_url, model="m/x", retry=RetryPolicy.disabled()) as d:
        yield d


async def test_an_error_event_with_status_code_maps_by_status_and_type(
    router: FakeRouter, driver: HuggingFaceDriver
) -> None:
    router.enqueue(
        FakeResponse(events=[b"event: error\ndata: " + _json(TOOL_USE_FAILED) + b"\n\n"], done=False)
    )
    with pytest.raises(HuggingFaceError) as info:
        async with driver.generate_stream(REQUEST) as stream:
            await stream.collect()
    error = info.value
    assert (error.kind, error.status, error.retryable) == (K.BAD_REQUEST, 400, False)
    assert "Failed to call a function" in error.message


async def test_serve_answers_that_error_as_a_400_not_a_server_error(router: FakeRouter) -> None:
    router.enqueue(
        FakeResponse(events=[b"event: error\ndata: " + _json(TOOL_USE_FAILED) + b"\n\n"], done=False)
    )
    async with (
        HuggingFaceDriver(base_url=router.base_url, model="m/x", retry=RetryPolicy.disabled()) as driver,
        OpenAIServer(driver, port=0) as server,
        openai.AsyncOpenAI(base_url=server.base_url, api_key="none", max_retries=0) as client,
    ):
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(
                model="m/x", messages=[{"role": "user", "content": "hi"}], stream=True
            )
    assert info.value.status_code == 400 and "Failed to call a function" in str(info.value)


async def test_an_error_beside_choices_is_raised_after_that_content(
    router: FakeRouter, driver: HuggingFaceDriver
) -> None:
    router.enqueue(
        FakeResponse(
            events=[
                chunk("Hello"),
                chunk(" world", error={"message": "upstream overloaded", "type": "overloaded"}),
            ],
            done=False,
        )
    )
    texts: list[str] = []
    with pytest.raises(HuggingFaceError) as info:
        async with driver.generate_stream(REQUEST) as stream:
            async for c in stream:
                texts.append(c.text)
    assert texts == ["Hello", " world"] and info.value.kind is K.OVERLOADED


async def test_a_unary_answer_carrying_an_error_raises(router: FakeRouter, driver: HuggingFaceDriver) -> None:
    body = {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "partial"}}],
        "error": "cut off",
    }
    router.enqueue(FakeResponse(json=body))
    with pytest.raises(HuggingFaceError, match="cut off"):
        await driver.generate(REQUEST)


TRAILING_USAGE = [
    chunk("Par"),
    chunk("is"),
    chunk("", "stop"),
    # usage on a chunk whose choices are not empty: one empty delta, no finish reason
    chunk("", None, usage={"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}),
]


async def test_usage_on_a_trailing_chunk_with_an_empty_delta_reaches_the_last_chunk(
    router: FakeRouter, driver: HuggingFaceDriver
) -> None:
    router.enqueue(FakeResponse(events=TRAILING_USAGE))
    async with driver.generate_stream(REQUEST) as stream:
        chunks = [c async for c in stream]
    assert "".join(c.text for c in chunks) == "Paris"
    last = chunks[-1]
    assert last.finish_reason == "stop" and last.usage is not None and last.usage.total_tokens == 9


async def test_serve_sends_that_usage_to_clients_that_asked(router: FakeRouter) -> None:
    router.enqueue(FakeResponse(events=TRAILING_USAGE))
    async with (
        HuggingFaceDriver(base_url=router.base_url, model="m/x", retry=RetryPolicy.disabled()) as driver,
        OpenAIServer(driver, port=0) as server,
        openai.AsyncOpenAI(base_url=server.base_url, api_key="none", max_retries=0) as client,
    ):
        stream = await client.chat.completions.create(
            model="m/x",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        usages = [c.usage for c in [c async for c in stream] if c.usage is not None]
    assert [u.total_tokens for u in usages] == [9]


def _json(value: object) -> bytes:
    import json

    return json.dumps(value).encode()
