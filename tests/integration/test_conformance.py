"""Replay every chat recording in ../shared/conformance through FakeRouter.

Each 200 body is served as recorded (headers too, minus framing ones); each SSE stream is cut
into random network chunks (seeded) so lines, CRLFs and UTF-8 characters split anywhere.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from hfdriver import GenerateRequest, HuggingFaceDriver, HuggingFaceError, HuggingFaceErrorKind, RetryPolicy
from hfdriver.testing import FakeResponse, FakeRouter
from tests.corpus import (
    Recording,
    chat_json_200,
    chat_sse_200,
    error_bodies,
    params,
    recordings,
    sse_expected_text,
)
from tests.unit.test_corpus_bodies import expected_kind, server_words

K = HuggingFaceErrorKind
REQUEST = GenerateRequest.builder().model("org/model").user("Hello").build()


@pytest.fixture
async def replay() -> AsyncIterator[tuple[FakeRouter, HuggingFaceDriver]]:
    async with (
        FakeRouter() as router,
        HuggingFaceDriver(base_url=router.base_url, retry=RetryPolicy.disabled()) as driver,
    ):
        yield router, driver


def served(rec: Recording, **options: object) -> FakeResponse:
    headers = {k: v for k, v in rec.response_headers().items() if k.lower() != "content-type"}
    content_type = (
        "text/event-stream"
        if rec.is_sse
        else ("application/json" if rec.body_file.endswith(".json") else "text/plain")
    )
    if rec.is_sse:
        return FakeResponse(
            status=rec.status, sse=rec.body, headers=headers, content_type=content_type, **options
        )  # type: ignore[arg-type]
    return FakeResponse(
        status=rec.status, body=rec.body, headers=headers, content_type=content_type, **options
    )  # type: ignore[arg-type]


@pytest.mark.parametrize("rec", params(chat_json_200()))
async def test_unary_replay(rec: Recording, replay: tuple[FakeRouter, HuggingFaceDriver]) -> None:
    router, driver = replay
    router.enqueue(served(rec))
    response = await driver.generate(REQUEST)
    message = json.loads(rec.body)["choices"][0]["message"]
    assert response.text == (message.get("content") or "")


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("rec", params(chat_sse_200()))
async def test_stream_replay_split_into_random_chunks(
    rec: Recording, seed: int, replay: tuple[FakeRouter, HuggingFaceDriver]
) -> None:
    router, driver = replay
    router.enqueue(served(rec, split_seed=seed))
    async with driver.generate_stream(REQUEST) as stream:
        texts = [chunk.text async for chunk in stream]
        response = stream.response()
    assert "".join(texts) == sse_expected_text(rec.body)
    assert response.finish_reason is not None  # ended cleanly, with or without [DONE]


@pytest.mark.parametrize("rec", params(error_bodies()))
async def test_error_replay(rec: Recording, replay: tuple[FakeRouter, HuggingFaceDriver]) -> None:
    router, driver = replay
    router.enqueue(served(rec))
    with pytest.raises(HuggingFaceError) as info:
        await driver.generate(REQUEST)
    assert info.value.kind is expected_kind(rec.id, rec.status)
    assert server_words(rec.body) in info.value.message


IN_STREAM_ERRORS = tuple(r for r in recordings() if "in-stream-error" in r.quirks)


@pytest.mark.parametrize("rec", params(IN_STREAM_ERRORS))
async def test_in_stream_error_replay(rec: Recording, replay: tuple[FakeRouter, HuggingFaceDriver]) -> None:
    router, driver = replay
    router.enqueue(served(rec, split_seed=7))
    with pytest.raises(HuggingFaceError) as info:
        async for _ in driver.generate_stream(REQUEST):
            pass
    assert info.value.kind is K.VALIDATION  # both recordings carry error_type "validation"
    assert "Input validation error" in info.value.message


OTHER_SSE = tuple(
    r
    for r in recordings()
    if r.is_sse and r.status == 200 and not r.is_chat and "in-stream-error" not in r.quirks
)


@pytest.mark.parametrize("rec", params(OTHER_SSE))
async def test_non_chat_streams_fail_only_with_huggingface_error(
    rec: Recording, replay: tuple[FakeRouter, HuggingFaceDriver]
) -> None:
    router, driver = replay
    router.enqueue(served(rec, split_seed=11))
    with pytest.raises(HuggingFaceError) as info:
        async for _ in driver.generate_stream(REQUEST):
            pass
    assert info.value.kind in (K.DECODE, K.STREAM)
