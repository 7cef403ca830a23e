"""HuggingFaceDriver against mocked HTTP (aioresponses): wire details without a server."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator

import pytest
from aioresponses import aioresponses

from hfdriver import GenerateRequest, HuggingFaceDriver, HuggingFaceError, HuggingFaceErrorKind
from hfdriver.hub import ROUTER_URL
from hfdriver.testing import completion_body
from hfdriver.transport import instant_retries

URL = f"{ROUTER_URL}/chat/completions"
TOKEN = "hf_mockedtoken_1234567890"
REQUEST = GenerateRequest.builder().model("meta-llama/Llama-3.2-1B-Instruct").user("Hi").max_tokens(5).build()


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as m, instant_retries():
        yield m


@pytest.fixture
async def driver() -> AsyncIterator[HuggingFaceDriver]:
    async with HuggingFaceDriver(token=TOKEN, routing="fastest", bill_to="acme") as d:
        yield d


async def test_router_request_on_the_wire(mocked: aioresponses, driver: HuggingFaceDriver) -> None:
    mocked.post(
        URL,
        payload=completion_body("Hello!"),
        headers={"x-inference-provider": "novita", "x-request-id": "abc"},
    )
    response = await driver.generate(REQUEST)
    assert (response.text, response.provider, response.request_id) == ("Hello!", "novita", "abc")
    ((method, url), calls) = next(iter(mocked.requests.items()))
    assert method == "POST" and str(url) == URL
    call = calls[0]
    body = json.loads(call.kwargs["data"])
    assert body == {
        "model": "meta-llama/Llama-3.2-1B-Instruct:fastest",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 5,
    }
    headers = call.kwargs["headers"]
    assert headers["Authorization"] == f"Bearer {TOKEN}" and headers["X-HF-Bill-To"] == "acme"
    assert headers["Content-Type"] == "application/json"


async def test_503_loading_is_retried_then_succeeds(mocked: aioresponses, driver: HuggingFaceDriver) -> None:
    mocked.post(URL, status=503, payload={"error": "Model is currently loading", "estimated_time": 3.0})
    mocked.post(URL, payload=completion_body("ready"))
    assert (await driver.generate(REQUEST)).text == "ready"


async def test_402_is_not_retried_and_says_what_to_do(
    mocked: aioresponses, driver: HuggingFaceDriver
) -> None:
    mocked.post(
        URL,
        status=402,
        payload={"error": "You have exceeded your monthly included credits for Inference Providers."},
    )
    mocked.post(URL, payload=completion_body("never"))
    with pytest.raises(HuggingFaceError) as info:
        await driver.generate(REQUEST)
    assert info.value.kind is HuggingFaceErrorKind.PAYMENT_REQUIRED
    assert "billing" in info.value.message and "bill_to" in info.value.message
    assert len(next(iter(mocked.requests.values()))) == 1


async def test_connection_errors_are_typed(mocked: aioresponses, driver: HuggingFaceDriver) -> None:
    mocked.post(re.compile(".*"), exception=ConnectionResetError("reset by peer"), repeat=True)
    with pytest.raises(HuggingFaceError) as info:
        await driver.generate(REQUEST)
    assert info.value.kind is HuggingFaceErrorKind.CONNECTION and "reset by peer" in info.value.message
    assert len(next(iter(mocked.requests.values()))) == 4  # the default RetryPolicy(attempts=4)
