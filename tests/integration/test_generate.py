from __future__ import annotations

import aiohttp
import pytest

from hfdriver import GenerateRequest, HuggingFaceDriver, HuggingFaceError, HuggingFaceErrorKind, Timeouts
from hfdriver.testing import FakeResponse, FakeRouter
from hfdriver.transport import USER_AGENT
from tests.integration.conftest import TOKEN

K = HuggingFaceErrorKind


async def test_generate_echo_with_provider_and_request_id(
    driver: HuggingFaceDriver, router: FakeRouter, request_: GenerateRequest
) -> None:
    response = await driver.generate(request_)
    assert response.text == "echo: Hello there"
    assert response.finish_reason == "stop"
    assert response.provider == "fake-provider"
    assert response.request_id == "fake-1"
    assert response.usage is not None and response.usage.total_tokens > 0
    (sent,) = router.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.json["model"] == "meta-llama/Llama-3.2-1B-Instruct"
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["User-Agent"] == USER_AGENT and USER_AGENT.startswith("hfdriver/")


async def test_routing_bill_to_and_custom_headers(router: FakeRouter, request_: GenerateRequest) -> None:
    async with HuggingFaceDriver(
        token=TOKEN,
        base_url=router.base_url + "/",
        model="org/m",
        routing="cheapest",
        bill_to="my-org",
        headers={"X-Trace": "t1"},
    ) as driver:
        await driver.generate(request_)
        await driver.generate(
            GenerateRequest.builder().model("org/other").routing("together").user("x").build()
        )
    first, second = router.requests
    assert first.json["model"] == "org/m:cheapest"
    assert first.headers["X-HF-Bill-To"] == "my-org" and first.headers["X-Trace"] == "t1"
    assert second.json["model"] == "org/other:together"


async def test_non_json_200_and_non_chat_200_are_decode_errors(
    driver: HuggingFaceDriver, router: FakeRouter, request_: GenerateRequest
) -> None:
    router.enqueue(FakeResponse(body=b"<html>hello</html>", content_type="text/html"))
    with pytest.raises(HuggingFaceError) as info:
        await driver.generate(request_)
    assert info.value.kind is K.DECODE and "not JSON" in info.value.message
    router.enqueue(FakeResponse(json=[{"generated_text": "x"}]))
    with pytest.raises(HuggingFaceError) as info:
        await driver.generate(request_)
    assert info.value.kind is K.DECODE


async def test_error_statuses_carry_server_words_and_metadata(
    driver: HuggingFaceDriver, router: FakeRouter, request_: GenerateRequest
) -> None:
    router.enqueue(
        FakeResponse.error(
            400,
            {
                "message": "The requested model 'gpt2' is not a chat model.",
                "type": "invalid_request_error",
                "code": "model_not_supported",
            },
            headers={"x-request-id": "req-77"},
        )
    )
    with pytest.raises(HuggingFaceError) as info:
        await driver.generate(request_)
    error = info.value
    assert error.kind is K.MODEL_NOT_SUPPORTED and "not a chat model" in error.message
    assert (error.status, error.request_id, error.provider) == (400, "req-77", "fake-provider")


async def test_bad_token_is_authentication_and_never_leaks(
    router: FakeRouter, request_: GenerateRequest
) -> None:
    bad = "hf_wrongtoken_zyxwvutsrqpon"
    async with HuggingFaceDriver(token=bad, base_url=router.base_url, model="m/x") as driver:
        with pytest.raises(HuggingFaceError) as info:
            await driver.generate(request_)
        assert bad not in repr(driver)
    assert info.value.kind is K.AUTHENTICATION
    assert bad not in str(info.value) and bad not in repr(info.value) and bad not in (info.value.body or "")


async def test_missing_token_is_config_only_when_calling_the_router(request_: GenerateRequest) -> None:
    driver = HuggingFaceDriver(model="m/x")  # constructing is fine
    with pytest.raises(HuggingFaceError) as info:
        await driver.generate(request_)
    assert info.value.kind is K.CONFIG and "HF_TOKEN" in info.value.message
    with pytest.raises(HuggingFaceError):
        driver.generate_stream(request_)
    await driver.aclose()


async def test_no_token_needed_for_other_base_urls(request_: GenerateRequest) -> None:
    async with (
        FakeRouter() as open_router,
        HuggingFaceDriver(base_url=open_router.base_url, model="m/x") as driver,
    ):
        assert (await driver.generate(request_)).text == "echo: Hello there"
        assert "Authorization" not in open_router.requests[0].headers


async def test_invalid_request_sends_nothing(driver: HuggingFaceDriver, router: FakeRouter) -> None:
    with pytest.raises(HuggingFaceError) as info:
        await driver.generate(GenerateRequest.builder().user("x").extra(obj=object()).build())
    assert info.value.kind is K.INVALID_REQUEST
    with pytest.raises(HuggingFaceError) as info:
        await driver.generate("hello")  # type: ignore[arg-type]
    assert info.value.kind is K.INVALID_REQUEST
    assert router.requests == []


async def test_caller_session_is_used_and_not_closed(router: FakeRouter, request_: GenerateRequest) -> None:
    async with aiohttp.ClientSession() as session:
        driver = HuggingFaceDriver(token=TOKEN, base_url=router.base_url, model="m/x", session=session)
        await driver.generate(request_)
        await driver.aclose()
        assert not session.closed
        async with session.get(router.base_url + "/models") as resp:
            assert resp.status == 200


async def test_closed_driver_refuses_politely(router: FakeRouter, request_: GenerateRequest) -> None:
    driver = HuggingFaceDriver(token=TOKEN, base_url=router.base_url, model="m/x")
    await driver.generate(request_)
    await driver.aclose()
    with pytest.raises(HuggingFaceError, match="closed") as info:
        await driver.generate(request_)
    assert info.value.kind is K.CONFIG


async def test_total_timeout(router: FakeRouter, request_: GenerateRequest) -> None:
    router.enqueue(FakeResponse.completion("slow", delay=1.0))
    async with HuggingFaceDriver(
        token=TOKEN, base_url=router.base_url, model="m/x", timeouts=Timeouts(total=0.2, read=5)
    ) as driver:
        with pytest.raises(HuggingFaceError) as info:
            await driver.generate(request_)
    assert info.value.kind is K.TIMEOUT and "total" in info.value.message
    assert len(router.requests) == 1  # not retried


async def test_unary_silence_is_bounded_by_total_not_read(
    router: FakeRouter, request_: GenerateRequest
) -> None:
    # A unary server is silent until the whole answer is ready: `read` must not cut it short.
    router.enqueue(FakeResponse.completion("slow but fine", delay=0.3))
    timeouts = Timeouts(read=0.1, total=5)
    async with HuggingFaceDriver(
        token=TOKEN, base_url=router.base_url, model="m/x", timeouts=timeouts
    ) as driver:
        assert (await driver.generate(request_)).text == "slow but fine"
    router.enqueue(FakeResponse.completion("never finishes", chunk_size=10, stall_after=1))
    async with HuggingFaceDriver(
        token=TOKEN, base_url=router.base_url, model="m/x", timeouts=Timeouts(total=0.3)
    ) as driver:
        with pytest.raises(HuggingFaceError) as info:
            await driver.generate(request_)
    assert info.value.kind is K.TIMEOUT and "total" in info.value.message


async def test_connect_timeout_waiting_for_a_pooled_connection(
    router: FakeRouter, request_: GenerateRequest
) -> None:
    router.enqueue(FakeResponse.stream(["held"] + ["on"] * 20, chunk_size=1000, stall_after=1))
    async with HuggingFaceDriver(
        token=TOKEN, base_url=router.base_url, model="m/x", timeouts=Timeouts(connect=0.2), connection_limit=1
    ) as driver:
        stream = driver.generate_stream(request_)
        async with stream:  # holds the only connection
            with pytest.raises(HuggingFaceError) as info:
                await driver.generate(request_)
    assert info.value.kind is K.TIMEOUT and "connect" in info.value.message
    assert info.value.retryable


async def test_connection_refused_is_connection_error(request_: GenerateRequest) -> None:
    async with FakeRouter() as fake:
        url = fake.base_url
    async with HuggingFaceDriver(base_url=url, model="m/x") as driver:  # the port is closed now
        with pytest.raises(HuggingFaceError) as info:
            await driver.generate(request_)
    assert info.value.kind is K.CONNECTION and "could not reach" in info.value.message
