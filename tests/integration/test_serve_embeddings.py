"""`hfdriver serve`'s POST /v1/embeddings with real clients: openai-python (base64 by default, and
floats) and LangChain's OpenAIEmbeddings, over the router (FakeRouter + FakeHub)."""

from __future__ import annotations

import base64
import math
from array import array
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from hfdriver import HuggingFaceDriver, RetryPolicy
from hfdriver.server import OpenAIServer
from hfdriver.testing import FakeHub, FakeResponse, FakeRouter, embedding_vector

openai = pytest.importorskip(
    "openai", reason="the dev extra installs openai to test the server with a real client"
)

KEY = "sk-local-embed-key"
TOKEN = "hf_serveembed_abcdefghijklmnop"
BGE = "BAAI/bge-small-en-v1.5"


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[OpenAIServer, FakeRouter]]:
    async with FakeRouter(token=TOKEN) as router, FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        driver = HuggingFaceDriver(
            TOKEN, router_url=router.url, model=BGE, retry=RetryPolicy.disabled(), costs=False
        )
        async with OpenAIServer(driver, port=0, api_key=KEY, grace=0.3) as srv:
            yield srv, router
        await driver.aclose()


@pytest.fixture
async def client(server: tuple[OpenAIServer, FakeRouter]) -> AsyncIterator[Any]:
    async with openai.AsyncOpenAI(base_url=server[0].base_url, api_key=KEY, max_retries=0) as c:
        yield c


def close(a: Any, b: Any) -> bool:
    return len(a) == len(b) and all(
        math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-7) for x, y in zip(a, b, strict=True)
    )


async def test_openai_default_is_base64_and_decodes(
    client: Any, server: tuple[OpenAIServer, FakeRouter]
) -> None:
    texts = ["first text", "second text", "third"]
    result = await client.embeddings.create(model=BGE, input=texts)
    assert [item.index for item in result.data] == [0, 1, 2]
    for item, text in zip(result.data, texts, strict=True):
        assert close(item.embedding, embedding_vector(text))  # the SDK decoded our base64
    assert result.model == BGE and result.usage.prompt_tokens == 0  # hf-inference does not count tokens
    sent = server[1].requests[-1]
    assert sent.path == f"/hf-inference/models/{BGE}/pipeline/feature-extraction"


async def test_openai_floats_and_dimensions(client: Any) -> None:
    result = await client.embeddings.create(model=BGE, input="hello", encoding_format="float", dimensions=16)
    assert len(result.data) == 1 and len(result.data[0].embedding) == 16
    assert math.isclose(math.fsum(v * v for v in result.data[0].embedding), 1.0, rel_tol=1e-5)


async def test_the_raw_wire_for_both_encodings(server: tuple[OpenAIServer, FakeRouter]) -> None:
    url = f"{server[0].base_url}/embeddings"
    headers = {"Authorization": f"Bearer {KEY}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(url, json={"input": ["a", "b"], "encoding_format": "base64"}) as resp:
            body = await resp.json()
        assert resp.status == 200 and body["object"] == "list"
        row = array("f")
        row.frombytes(base64.b64decode(body["data"][1]["embedding"]))  # little-endian float32
        assert close(row.tolist(), embedding_vector("b"))
        assert body["usage"] == {"prompt_tokens": 0, "total_tokens": 0}  # hf-inference counts none
        counted = {"input": ["one two", "three"], "model": "intfloat/e5-mistral-7b-instruct"}
        async with session.post(url, json=counted) as resp:
            body = await resp.json()
        assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}  # sambanova's count, passed on
        assert body["model"] == "intfloat/e5-mistral-7b-instruct"
        async with session.post(url, json={"input": "a"}) as resp:
            floats = await resp.json()
        assert floats["data"][0]["object"] == "embedding" and close(
            floats["data"][0]["embedding"], embedding_vector("a")
        )


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"input": [[1, 2, 3]]}, "input", "token ids are not accepted"),
        ({"input": [1, 2, 3]}, "input", "check_embedding_ctx_length=False"),
        ({"input": []}, "input", "non-empty list"),
        ({"input": ["a", ""]}, "input[1]", "empty string"),
        ({"input": ["a", {"x": 1}]}, "input[1]", "must be a string"),
        ({}, "input", "is required"),
        ({"input": "a", "encoding_format": "int8"}, "encoding_format", "'float' or 'base64'"),
        ({"input": "a", "dimensions": 0}, "dimensions", ">= 1"),
        ([1, 2], "body", "JSON object"),
    ],
)
async def test_bad_requests_are_openai_400s(
    server: tuple[OpenAIServer, FakeRouter], body: Any, param: str, words: str
) -> None:
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}"}) as session,
        session.post(f"{server[0].base_url}/embeddings", json=body) as resp,
    ):
        answer = await resp.json()
    assert resp.status == 400, answer
    error = answer["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and words in error["message"]
    assert not [r for r in server[1].requests if r.method == "POST"]


async def test_the_guards_apply(server: tuple[OpenAIServer, FakeRouter]) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server[0].base_url}/embeddings", json={"input": "a"}) as resp:
            assert resp.status == 401  # no API key
        async with session.post(
            f"{server[0].base_url}/embeddings",
            json={"input": "a"},
            headers={"Authorization": f"Bearer {KEY}", "Host": "evil.example"},
        ) as resp:
            assert resp.status == 403  # DNS rebinding guard


async def test_upstream_errors_are_openai_errors(
    client: Any, server: tuple[OpenAIServer, FakeRouter]
) -> None:
    server[1].enqueue(
        FakeResponse.error(503, "Model BAAI/bge-small-en-v1.5 is currently loading", estimated_time=20)
    )
    with pytest.raises(openai.APIStatusError) as caught:
        await client.embeddings.create(model=BGE, input="x")
    assert caught.value.status_code == 503 and "currently loading" in str(caught.value)
    with pytest.raises(openai.APIStatusError) as unknown:
        await client.embeddings.create(model="meta-llama/Llama-3.2-1B-Instruct", input="x")
    assert "feature-extraction" in str(unknown.value)


async def test_langchain_openai_embeddings(server: tuple[OpenAIServer, FakeRouter]) -> None:
    langchain_openai = pytest.importorskip(
        "langchain_openai", reason="the dev extra installs langchain-openai to test the server with it"
    )
    import httpx

    async with httpx.AsyncClient() as http:  # ours, so its connections are closed at the end
        options: dict[str, Any] = {
            "model": BGE,
            "base_url": server[0].base_url,
            "api_key": KEY,
            "check_embedding_ctx_length": False,  # send text, not tiktoken ids
            "max_retries": 0,
            "http_async_client": http,
        }
        embeddings = langchain_openai.OpenAIEmbeddings(**options)
        documents = await embeddings.aembed_documents(["alpha", "beta", "gamma"])
        query = await embeddings.aembed_query("alpha")
        assert len(documents) == 3 and all(len(v) == 384 for v in documents)
        assert close(documents[1], embedding_vector("beta")) and close(query, documents[0])
        shorter = langchain_openai.OpenAIEmbeddings(**options, dimensions=32)
        assert len(await shorter.aembed_query("x")) == 32
