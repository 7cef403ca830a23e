"""Smoke tests against the real Hugging Face router. Run with `just test-api` (`pytest -m api`).

Each call asks for at most 10 tokens.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from hfdriver import GenerateRequest, HuggingFaceDriver, HuggingFaceError, HuggingFaceErrorKind
from tests.api.conftest import API_TOKEN

pytestmark = pytest.mark.api

CHAT_MODEL = os.environ.get("HFDRIVER_API_MODEL", "meta-llama/Llama-3.2-1B-Instruct")


@pytest.fixture
async def driver() -> AsyncIterator[HuggingFaceDriver]:
    async with HuggingFaceDriver(token=API_TOKEN, model=CHAT_MODEL) as d:
        yield d


def short(prompt: str, **kw: object) -> GenerateRequest:
    return GenerateRequest.builder().user(prompt).max_tokens(10).temperature(0).build()


async def test_generate(driver: HuggingFaceDriver) -> None:
    response = await driver.generate(short("Say hello in one word."))
    assert response.text.strip()
    assert response.usage is None or response.usage.completion_tokens <= 10
    assert response.provider


async def test_stream(driver: HuggingFaceDriver) -> None:
    async with driver.generate_stream(short("Count: one, two,")) as stream:
        response = await stream.collect()
    assert response.text.strip()
    assert response.finish_reason is not None


async def test_base_model_is_model_not_supported(driver: HuggingFaceDriver) -> None:
    request = GenerateRequest.builder().model("openai-community/gpt2").user("Hello").max_tokens(5).build()
    with pytest.raises(HuggingFaceError) as info:
        await driver.generate(request)
    assert info.value.kind in (HuggingFaceErrorKind.MODEL_NOT_SUPPORTED, HuggingFaceErrorKind.NOT_FOUND), (
        info.value
    )


async def test_bad_token_is_authentication() -> None:
    async with HuggingFaceDriver(token="hf_" + "x" * 34, model=CHAT_MODEL) as driver:
        with pytest.raises(HuggingFaceError) as info:
            await driver.generate(short("hi"))
    assert info.value.kind is HuggingFaceErrorKind.AUTHENTICATION
