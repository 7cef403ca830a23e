from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from hfdriver import GenerateRequest, HuggingFaceDriver, RetryPolicy
from hfdriver.testing import FakeRouter, instant_retries

TOKEN = "hf_testtoken_abcdefghijklmnop"


@pytest.fixture(autouse=True)
def _instant_retries() -> Iterator[None]:
    with instant_retries():
        yield


@pytest.fixture
async def router() -> AsyncIterator[FakeRouter]:
    async with FakeRouter(token=TOKEN) as fake:
        yield fake


@pytest.fixture
async def driver(router: FakeRouter) -> AsyncIterator[HuggingFaceDriver]:
    async with HuggingFaceDriver(
        token=TOKEN,
        base_url=router.base_url,
        model="meta-llama/Llama-3.2-1B-Instruct",
        retry=RetryPolicy(attempts=3),
    ) as d:
        yield d


@pytest.fixture
def request_() -> GenerateRequest:
    return GenerateRequest.builder().user("Hello there").max_tokens(10).build()
