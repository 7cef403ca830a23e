"""`hfdriver serve` tested with real clients: openai and huggingface_hub's InferenceClient."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from hfdriver import HuggingFaceDriver, HuggingFaceErrorKind, RetryPolicy
from hfdriver.server import OpenAIServer, error_status
from hfdriver.testing import FakeResponse, FakeRouter, instant_retries

openai = pytest.importorskip(
    "openai", reason="the dev extra installs openai to test the server with a real client"
)
hub = pytest.importorskip(
    "huggingface_hub", reason="the dev extra installs huggingface_hub to test the server with InferenceClient"
)

K = HuggingFaceErrorKind
KEY = "sk-local-test-key"
MESSAGES = [{"role": "user", "content": "Hello server"}]


@pytest.fixture
async def router() -> AsyncIterator[FakeRouter]:
    async with FakeRouter() as fake:
        yield fake


@pytest.fixture
async def server(router: FakeRouter) -> AsyncIterator[OpenAIServer]:
    with instant_retries():
        driver = HuggingFaceDriver(
            base_url=router.base_url, model="meta-llama/Llama-3.2-1B-Instruct", retry=RetryPolicy.disabled()
        )
        async with OpenAIServer(driver, port=0, api_key=KEY, max_request_bytes=64 * 1024, grace=0.3) as srv:
            yield srv
        await driver.aclose()


@pytest.fixture
async def client(server: OpenAIServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key=KEY, max_retries=0) as c:
        yield c


async def test_health_and_models(server: OpenAIServer, client: openai.AsyncOpenAI) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.base_url.removesuffix("/v1") + "/health") as resp,
    ):
        assert resp.status == 200 and (await resp.json())["status"] == "ok"  # no key needed
    models = await client.models.list()
    assert [m.id for m in models.data] == ["meta-llama/Llama-3.2-1B-Instruct"]


async def test_openai_unary(client: openai.AsyncOpenAI, router: FakeRouter) -> None:
    completion = await client.chat.completions.create(
        model="meta-llama/Llama-3.2-1B-Instruct", messages=MESSAGES, max_tokens=12, temperature=0.2
    )  # type: ignore[arg-type]
    assert completion.choices[0].message.content == "echo: Hello server"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    sent = router.requests[0].json
    assert (sent["model"], sent["max_tokens"], sent["temperature"]) == (
        "meta-llama/Llama-3.2-1B-Instruct",
        12,
        0.2,
    )


async def test_openai_streaming_with_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="x", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )  # type: ignore[arg-type]
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: Hello server"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert (
        chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    )


async def test_openai_tool_calls_unary_and_streamed(client: openai.AsyncOpenAI, router: FakeRouter) -> None:
    call = {
        "id": "call_7",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    router.enqueue(FakeResponse.completion("", tool_calls=[call], finish_reason="tool_calls"))
    completion = await client.chat.completions.create(model="x", messages=MESSAGES, tools=tools)  # type: ignore[arg-type]
    (got,) = completion.choices[0].message.tool_calls or []
    assert (got.id, got.function.name, json.loads(got.function.arguments)) == (
        "call_7",
        "get_weather",
        {"city": "Paris"},
    )
    assert completion.choices[0].finish_reason == "tool_calls"
    assert router.requests[0].json["tools"][0]["function"]["name"] == "get_weather"

    base = {"id": "c", "object": "chat.completion.chunk", "model": "m"}
    router.enqueue(
        FakeResponse(
            events=[
                {
                    **base,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {
                                "tool_calls": [
                                    {
                                        "index": 0,
                                        "id": "call_8",
                                        "function": {"name": "get_weather", "arguments": '{"city":'},
                                    }
                                ]
                            },
                            "finish_reason": None,
                        }
                    ],
                },
                {
                    **base,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ' "Rome"}'}}]},
                            "finish_reason": "tool_calls",
                        }
                    ],
                },
            ]
        )
    )
    stream = await client.chat.completions.create(model="x", messages=MESSAGES, tools=tools, stream=True)  # type: ignore[arg-type]
    deltas = [c async for c in stream]
    streamed = [tc for c in deltas for tc in (c.choices[0].delta.tool_calls or [])]
    assert streamed[0].id == "call_8" and json.loads(streamed[0].function.arguments) == {"city": "Rome"}  # type: ignore[union-attr,arg-type]


async def test_inference_client_unary_and_stream(server: OpenAIServer) -> None:
    client = hub.AsyncInferenceClient(base_url=server.base_url, api_key=KEY)
    try:
        out = await client.chat_completion(messages=MESSAGES, max_tokens=10)
        assert out.choices[0].message.content == "echo: Hello server"
        stream = await client.chat_completion(messages=MESSAGES, max_tokens=10, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == "echo: Hello server"
    finally:
        await client.close()


async def test_errors_are_openai_error_objects(
    client: openai.AsyncOpenAI, router: FakeRouter, server: OpenAIServer
) -> None:
    router.enqueue(FakeResponse.error(429, "slow down", headers={"Retry-After": "7"}))
    with pytest.raises(openai.RateLimitError) as rate:
        await client.chat.completions.create(model="x", messages=MESSAGES)  # type: ignore[arg-type]
    assert rate.value.response.headers["retry-after"] == "7"
    assert rate.value.body["code"] == "rate_limited"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(model="x", messages=MESSAGES, temperature=5)  # type: ignore[arg-type]
    assert "temperature" in bad.value.message and bad.value.body["param"] == "temperature"  # type: ignore[index]
    assert len(router.requests) == 1  # the invalid request never reached the upstream
    router.enqueue(FakeResponse.error(402, "credits exhausted"))
    with pytest.raises(openai.APIStatusError) as paid:
        await client.chat.completions.create(model="x", messages=MESSAGES)  # type: ignore[arg-type]
    assert paid.value.status_code == 402 == error_status(K.PAYMENT_REQUIRED)


async def test_api_key_body_limits_and_bad_json(server: OpenAIServer) -> None:
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="wrong", max_retries=0) as wrong:
        with pytest.raises(openai.AuthenticationError):
            await wrong.models.list()
    url = server.base_url + "/chat/completions"
    headers = {"Authorization": f"Bearer {KEY}"}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=b"{not json", headers=headers) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_request"
        big = json.dumps({"model": "x", "messages": [{"role": "user", "content": "x" * 100_000}]})
        async with session.post(url, data=big, headers=headers) as resp:
            assert resp.status == 413 and "larger than" in (await resp.json())["error"]["message"]
        async with session.get(server.base_url + "/nothing", headers=headers) as resp:
            assert resp.status == 404 and "error" in await resp.json()


async def test_error_mid_stream_becomes_an_error_event(server: OpenAIServer, router: FakeRouter) -> None:
    router.enqueue(
        FakeResponse(
            events=[
                {"choices": [{"index": 0, "delta": {"content": "partial"}}]},
                {"error": "boom", "error_type": "generation"},
            ]
        )
    )
    async with aiohttp.ClientSession() as session:
        body = {"model": "x", "messages": MESSAGES, "stream": True}
        async with session.post(
            server.base_url + "/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}
        ) as resp:
            text = (await resp.read()).decode()
    events = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    assert json.loads(events[0])["choices"][0]["delta"]["content"] == "partial"
    assert json.loads(events[1])["error"]["message"].startswith("boom")
    assert events[-1] == "[DONE]"


async def test_shutdown_ends_in_flight_streams_properly(router: FakeRouter) -> None:
    router.enqueue(FakeResponse.stream(["tick"] * 200, chunk_size=300, delay=0.05))
    driver = HuggingFaceDriver(base_url=router.base_url, model="m/x")
    srv = await OpenAIServer(driver, port=0, grace=0.2).start()
    received: list[str] = []
    async with aiohttp.ClientSession() as session:
        body = {"model": "x", "messages": MESSAGES, "stream": True}
        async with session.post(srv.base_url + "/chat/completions", json=body) as resp:
            closing = None
            async for line in resp.content:
                received.append(line.decode().strip())
                if closing is None and "tick" in received[-1]:
                    closing = asyncio.create_task(srv.close())
            await closing  # type: ignore[misc]
    await driver.aclose()
    data = [line for line in received if line.startswith("data: ")]
    assert "tick" in data[0] and "shutting down" in data[-2] and data[-1] == "data: [DONE]"


def test_exposed_binding_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hfdriver"):
        assert OpenAIServer(
            HuggingFaceDriver(base_url="http://127.0.0.1:1/v1"), host="0.0.0.0"
        ).warn_if_exposed()
        assert not OpenAIServer(
            HuggingFaceDriver(base_url="http://127.0.0.1:1/v1"), host="127.0.0.1"
        ).warn_if_exposed()
        assert not OpenAIServer(
            HuggingFaceDriver(base_url="http://127.0.0.1:1/v1"), host="::1"
        ).warn_if_exposed()
    assert "reachable from other machines" in caplog.text
