"""Embeddings over the router and endpoints: recorded real answers replayed through FakeRouter,
the Hub's provider mapping through FakeHub, and every layer around ``embed`` (cache, fallback,
cost, validation)."""

from __future__ import annotations

import asyncio
import base64
import logging
import math
from array import array
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hfdriver import (
    EmbedRequest,
    EmbedResponse,
    HuggingFaceDriver,
    HuggingFaceError,
    HuggingFaceErrorKind,
    RetryPolicy,
    compose,
)
from hfdriver.cache import MemoryCache
from hfdriver.testing import FakeHub, FakeResponse, FakeRouter, embedding_vector
from tests.task_corpus import answered_steps, params, served

K = HuggingFaceErrorKind
TOKEN = "hf_embedtoken_abcdefghijklmnop"
BGE = "BAAI/bge-small-en-v1.5"


@pytest.fixture
async def fakes_once(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[FakeRouter, FakeHub]]:
    async with FakeRouter(token=TOKEN) as router, FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.delenv("HF_ROUTER_URL", raising=False)
        yield router, hub


@pytest.fixture(params=["whole", "scanned"])
async def fakes(
    request: pytest.FixtureRequest, fakes_once: tuple[FakeRouter, FakeHub], monkeypatch: pytest.MonkeyPatch
) -> tuple[FakeRouter, FakeHub]:
    """The fakes, with answers parsed whole (small, known length) or read as they arrive."""
    if request.param == "scanned":
        monkeypatch.setattr("hfdriver.huggingface._embed.SCAN_ABOVE", -1)
    return fakes_once


def driver_for(router: FakeRouter, **options: Any) -> HuggingFaceDriver:
    options.setdefault("retry", RetryPolicy.disabled())
    options.setdefault("costs", False)  # no price list requests in the way of the recorded ones
    return HuggingFaceDriver(TOKEN, router_url=router.url, **options)


def close_to(values: Any, expected: list[float]) -> bool:
    return all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-7) for a, b in zip(values, expected, strict=False))


# ---------------------------------------------------------------------------- recorded answers
def _inputs(case: dict[str, Any]) -> str | list[str]:
    sent = answered_steps(case)[0]["request"].get("json") or {}
    value = sent.get("inputs", sent.get("input"))
    assert isinstance(value, (str, list)), case["source"]
    return value


@pytest.mark.parametrize("case", params("feature-extraction"))
async def test_recorded_feature_extraction(
    case: dict[str, Any], fakes: tuple[FakeRouter, FakeHub], caplog: pytest.LogCaptureFixture
) -> None:
    router, hub = fakes
    model, provider = case["model"], case["provider"]
    if provider != "hf-inference":
        hub.provider_mappings[model] = [
            {
                "provider": provider,
                "providerId": case["provider_model_id"],
                "status": "live",
                "task": "feature-extraction",
            }
        ]
    for step in answered_steps(case):
        router.enqueue(served(step["response"]))
    expect = case["expect"]
    final = expect.get("final", expect)
    retry = RetryPolicy(attempts=3) if expect["kind"] == "retry-then-success" else RetryPolicy.disabled()
    request = EmbedRequest(inputs=_inputs(case), model=f"{model}:{provider}")
    async with driver_for(router, retry=retry) as driver:
        if final["kind"] == "error":
            with pytest.raises(HuggingFaceError) as caught:
                await driver.embed(request)
            assert caught.value.status == final["status"]
            assert final["message"] in caught.value.message
            if final["status"] == 503:
                assert caught.value.kind is K.MODEL_LOADING
            return
        assert final["kind"] == "embeddings"
        if "token-level" in final.get("granularity", ""):
            # Arrays per token (no pooling) are never returned as if they were one vector per input.
            with pytest.raises(HuggingFaceError) as caught:
                await driver.embed(request)
            assert caught.value.kind is K.MODEL_NOT_SUPPORTED
            assert model in caught.value.message and "pooling" in caught.value.message
        else:
            response = await driver.embed(request)
            shape = final["shape"]
            rows, dims = (1, shape[0]) if len(shape) == 1 else shape
            assert (len(response.vectors), response.dimensions) == (rows, dims)
            assert close_to(response.vectors[0][:3], final["first_values"])
            assert response.model == model
    sent = [r for r in router.requests if r.method == "POST"]
    assert len(sent) == len(answered_steps(case))  # retried exactly as recorded
    path = sent[0].path
    if provider == "hf-inference":
        assert path == f"/hf-inference/models/{model}/pipeline/feature-extraction"
    else:
        assert path == f"/{provider}/v1/embeddings"
        assert sent[0].json["model"] == case["provider_model_id"]  # the provider's own name


# ---------------------------------------------------------------------------- shapes and routes
async def test_openai_answers_in_any_order_and_base64(fakes: tuple[FakeRouter, FakeHub]) -> None:
    router, _ = fakes
    vectors = [[1.0, 0.0, 0.5], [0.25, -2.0, 3.5], [9.0, 8.0, 7.0]]
    as_b64 = base64.b64encode(array("f", vectors[1]).tobytes()).decode()
    data = [
        {"object": "embedding", "index": 2, "embedding": vectors[2]},
        {"object": "embedding", "index": 0, "embedding": vectors[0]},
        {"object": "embedding", "index": 1, "embedding": as_b64},
    ]
    router.enqueue(
        FakeResponse(json={"data": data, "model": "m", "usage": {"prompt_tokens": 7, "total_tokens": 7}})
    )
    async with driver_for(router) as driver:
        response = await driver.embed(
            EmbedRequest(inputs=["a", "b", "c"], model="intfloat/e5-mistral-7b-instruct")
        )
    assert response.vectors.tolist() == vectors
    assert response.usage is not None and response.usage.prompt_tokens == 7
    assert (
        response.provider == "fake-provider"
        and response.request_id
        and response.request_id.startswith("fake-")
    )


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"data": [{"embedding": [1.0]}]}, "1 vectors for 2 inputs"),
        (
            {"data": [{"embedding": [1.0], "index": 0}, {"embedding": [1.0, 2.0], "index": 1}]},
            "vectors of 1 and 2",
        ),
        ({"data": [{"embedding": "%%%", "index": 0}, {"embedding": [1.0], "index": 1}]}, "not base64"),
        (
            {"data": [{"embedding": [1.0], "index": 0}, {"embedding": [2.0], "index": 0}]},
            "repeated or missing",
        ),
        ({"data": [{"embedding": ["x"], "index": 0}, {"embedding": [1.0], "index": 1}]}, "list of numbers"),
        ({"object": "list"}, 'no "data" list'),
    ],
)
async def test_malformed_openai_answers_are_decode_errors(
    fakes: tuple[FakeRouter, FakeHub], body: Any, words: str
) -> None:
    router, _ = fakes
    router.enqueue(FakeResponse(json=body))
    async with driver_for(router) as driver:
        with pytest.raises(HuggingFaceError) as caught:
            await driver.embed(EmbedRequest(inputs=["a", "b"], model="intfloat/e5-mistral-7b-instruct"))
    assert caught.value.kind is K.DECODE and words in caught.value.message


async def test_hf_inference_list_answer_and_its_parameters(fakes: tuple[FakeRouter, FakeHub]) -> None:
    router, _ = fakes
    request = (
        EmbedRequest.builder()
        .inputs(["one", "two"])
        .model(BGE)
        .normalize()
        .truncate()
        .prompt_name("query")
        .build()
    )
    async with driver_for(router) as driver:
        response = await driver.embed(request)
    assert response.vectors.rows == 2 and response.dimensions == 384
    assert close_to(response.vectors[1], embedding_vector("two"))
    sent = router.requests[-1]
    assert sent.path == f"/hf-inference/models/{BGE}/pipeline/feature-extraction"
    assert sent.json == {
        "inputs": ["one", "two"],
        "normalize": True,
        "truncate": True,
        "prompt_name": "query",
    }


async def test_dimensions_are_sent_and_a_longer_answer_is_cut_and_renormalised(
    fakes: tuple[FakeRouter, FakeHub],
) -> None:
    router, _ = fakes
    full = embedding_vector("x", 8)
    router.enqueue(FakeResponse(json=[full]))  # a server that ignored `dimensions`
    async with driver_for(router) as driver:
        response = await driver.embed(EmbedRequest(inputs="x", model=BGE, dimensions=4))
    assert router.requests[-1].json["dimensions"] == 4
    assert response.dimensions == 4
    row = response.vectors[0].tolist()
    assert math.isclose(math.fsum(v * v for v in row), 1.0, rel_tol=1e-5)
    norm = math.sqrt(math.fsum(v * v for v in full[:4]))
    assert close_to(row, [v / norm for v in full[:4]])


async def test_an_endpoint_embeds_at_base_url_embeddings(fakes: tuple[FakeRouter, FakeHub]) -> None:
    router, hub = fakes
    async with HuggingFaceDriver(TOKEN, base_url=router.base_url, retry=RetryPolicy.disabled()) as driver:
        response = await driver.embed(EmbedRequest(inputs=["a", "b"], model="any/model:together"))
        bare = await driver.embed(EmbedRequest(inputs="c"))  # no model: the server's own
    assert router.requests[0].path == "/v1/embeddings"
    assert router.requests[0].json == {  # sent as named; vectors asked as base64, as the openai SDK does
        "input": ["a", "b"],
        "model": "any/model:together",
        "encoding_format": "base64",
    }
    assert "model" not in router.requests[1].json
    assert response.vectors.tolist()[0] == pytest.approx(embedding_vector("a"), rel=1e-6)
    assert bare.vectors.rows == 1 and hub.requests == []  # no Hub look-up for an endpoint


async def test_an_endpoint_that_refuses_base64_gets_floats_from_then_on(
    fakes: tuple[FakeRouter, FakeHub],
) -> None:
    router, _ = fakes
    router.enqueue(
        FakeResponse(
            status=422,
            json={
                "detail": [
                    {
                        "loc": ["body", "encoding_format"],
                        "msg": "Input should be 'float'",
                        "type": "literal_error",
                    }
                ]
            },
        )
    )
    async with HuggingFaceDriver(TOKEN, base_url=router.base_url, retry=RetryPolicy.disabled()) as driver:
        first = await driver.embed(EmbedRequest(inputs="a"))
        second = await driver.embed(EmbedRequest(inputs="b"))
        router.enqueue(FakeResponse(status=422, json={"error": "input: too long"}))
        with pytest.raises(HuggingFaceError) as caught:  # another 422 is the caller's, not retried
            await driver.embed(EmbedRequest(inputs="c"))
    assert caught.value.kind is K.VALIDATION
    formats = [r.json.get("encoding_format") for r in router.requests]
    assert formats == ["base64", None, None, None]
    assert close_to(first.vectors[0], embedding_vector("a")) and close_to(
        second.vectors[0], embedding_vector("b")
    )


async def test_hf_router_url_points_chat_and_embeddings_at_one_router(
    fakes: tuple[FakeRouter, FakeHub], monkeypatch: pytest.MonkeyPatch
) -> None:
    router, _ = fakes
    monkeypatch.setenv("HF_ROUTER_URL", router.url)
    async with HuggingFaceDriver(TOKEN, retry=RetryPolicy.disabled(), costs=False) as driver:
        assert driver.base_url == f"{router.url}/v1" and driver.router_url == router.url
        await driver.embed(EmbedRequest(inputs="hi", model=f"{BGE}:hf-inference"))
    assert router.requests[-1].path.startswith("/hf-inference/")


# ---------------------------------------------------------------------------- provider mapping
async def test_mapping_picks_the_first_live_known_provider_once_per_driver(
    fakes: tuple[FakeRouter, FakeHub], caplog: pytest.LogCaptureFixture
) -> None:
    router, hub = fakes
    model = "Qwen/Qwen3-Embedding-8B"  # unknown provider first, then a staging one, then live scaleway
    async with driver_for(router) as driver:
        results = await asyncio.gather(
            *(driver.embed(EmbedRequest(inputs=f"t{i}", model=model)) for i in range(5))
        )
        assert all(r.vectors.rows == 1 for r in results)
    assert {r.path for r in router.requests} == {"/scaleway/v1/embeddings"}
    assert {r.json["model"] for r in router.requests} == {"qwen3-embedding-8b"}
    assert len(hub.requests_to(f"/api/models/{model}")) == 1  # one look-up, shared by concurrent calls
    assert "expand[]=inferenceProviderMapping" in hub.requests_to(f"/api/models/{model}")[0].path.replace(
        "%5B%5D", "[]"
    )
    async with driver_for(router) as fresh:  # a new driver looks again
        await fresh.embed(EmbedRequest(inputs="again", model=model))
    assert len(hub.requests_to(f"/api/models/{model}")) == 2


async def test_a_named_staging_provider_is_used_with_a_warning(
    fakes: tuple[FakeRouter, FakeHub], caplog: pytest.LogCaptureFixture
) -> None:
    router, _ = fakes
    with caplog.at_level(logging.WARNING, logger="hfdriver"):
        async with driver_for(router) as driver:
            await driver.embed(EmbedRequest(inputs="x", model="Qwen/Qwen3-Embedding-8B:nebius"))
            await driver.embed(EmbedRequest(inputs="y", model="Qwen/Qwen3-Embedding-8B", routing="nebius"))
    assert [r.path for r in router.requests] == ["/nebius/v1/embeddings"] * 2
    assert router.requests[0].json["model"] == "Qwen/Qwen3-Embedding-8B-fast"
    assert sum("staging" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize(
    ("model", "mapping", "words"),
    [
        (
            "org/chat-only",
            [{"provider": "together", "status": "live", "task": "conversational"}],
            "together (live, conversational)",
        ),
        (
            "org/staging-only",
            [{"provider": "nebius", "status": "staging", "task": "feature-extraction"}],
            "nebius (staging",
        ),
        (
            "org/unknown-only",
            [{"provider": "brand-new", "status": "live", "task": "feature-extraction"}],
            "brand-new (live",
        ),
        ("org/no-mapping", [], "lists no provider"),
    ],
)
async def test_no_usable_provider_names_the_model_and_the_task(
    fakes: tuple[FakeRouter, FakeHub], model: str, mapping: list[dict[str, Any]], words: str
) -> None:
    router, hub = fakes
    hub.provider_mappings[model] = mapping
    async with driver_for(router) as driver:
        with pytest.raises(HuggingFaceError) as caught:
            await driver.embed(EmbedRequest(inputs="x", model=model))
    error = caught.value
    assert error.kind is K.MODEL_NOT_SUPPORTED
    assert model in error.message and "feature-extraction" in error.message and words in error.message
    assert not [r for r in router.requests if r.method == "POST"]  # nothing sent to a provider


async def test_named_providers_that_cannot_embed_the_model(fakes: tuple[FakeRouter, FakeHub]) -> None:
    router, _ = fakes
    async with driver_for(router) as driver:
        for model, words in (
            ("Qwen/Qwen3-Embedding-8B:fal-ai", "'fal-ai' is not one hfdriver knows"),
            ("Qwen/Qwen3-Embedding-8B:together", "together does not serve it"),
            (f"{BGE}:sambanova", "sambanova does not serve it"),
            ("meta-llama/Llama-3.2-1B-Instruct:novita", "'novita' is not one"),
        ):
            with pytest.raises(HuggingFaceError) as caught:
                await driver.embed(EmbedRequest(inputs="x", model=model))
            assert caught.value.kind is K.MODEL_NOT_SUPPORTED and words in caught.value.message, model
    assert not [r for r in router.requests if r.method == "POST"]


async def test_an_unknown_model_is_not_found_naming_it(fakes: tuple[FakeRouter, FakeHub]) -> None:
    router, _ = fakes
    async with driver_for(router) as driver:
        with pytest.raises(HuggingFaceError) as caught:
            await driver.embed(EmbedRequest(inputs="x", model="nobody/nothing"))
    assert caught.value.kind is K.NOT_FOUND and "nobody/nothing" in caught.value.message
    assert "feature-extraction" in caught.value.message


async def test_the_old_mapping_shape_works_too(fakes: tuple[FakeRouter, FakeHub]) -> None:
    router, hub = fakes
    hub.enqueue(
        "/api/models/org/old-shape",
        FakeResponse(json={"id": "org/old-shape", "inferenceProviderMapping": {
            "sambanova": {"status": "live", "providerId": "old-shape-v1", "task": "feature-extraction"}
        }}),
    )  # fmt: skip
    async with driver_for(router) as driver:
        await driver.embed(EmbedRequest(inputs="x", model="org/old-shape"))
    assert router.requests[-1].path == "/sambanova/v1/embeddings"
    assert router.requests[-1].json["model"] == "old-shape-v1"


# ---------------------------------------------------------------------------- validation, errors
@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: EmbedRequest(inputs=[]), "inputs"),
        (lambda: EmbedRequest(inputs=["a", ""]), "inputs[1]"),
        (lambda: EmbedRequest(inputs=["a", 3]), "inputs[1]"),  # type: ignore[list-item]
        (lambda: EmbedRequest(inputs=b"bytes"), "inputs"),  # type: ignore[arg-type]
        (lambda: EmbedRequest(inputs="a", dimensions=0), "dimensions"),
        (lambda: EmbedRequest(inputs="a", dimensions=True), "dimensions"),  # type: ignore[arg-type]
        (lambda: EmbedRequest(inputs="a", model="no-slash model"), "model"),
        (lambda: EmbedRequest.builder().build(), "inputs"),
    ],
)
def test_bad_requests_are_refused_before_sending(build: Any, field: str) -> None:
    with pytest.raises(HuggingFaceError) as caught:
        build()
    assert caught.value.kind is K.INVALID_REQUEST and caught.value.message.startswith(field)


async def test_lone_surrogates_and_missing_model_are_named(fakes: tuple[FakeRouter, FakeHub]) -> None:
    router, _ = fakes
    async with driver_for(router) as driver:
        with pytest.raises(HuggingFaceError) as caught:
            await driver.embed(EmbedRequest(inputs=["ok", "bad \udcff"], model=f"{BGE}:hf-inference"))
        assert caught.value.kind is K.INVALID_REQUEST and caught.value.message.startswith("inputs[1]")
        with pytest.raises(HuggingFaceError) as caught:
            await driver.embed(EmbedRequest(inputs="x"))
        assert caught.value.kind is K.INVALID_REQUEST and "model" in caught.value.message
        with pytest.raises(HuggingFaceError) as caught:
            await driver.embed("just text")  # type: ignore[arg-type]
        assert caught.value.kind is K.INVALID_REQUEST and "EmbedRequest" in caught.value.message
    assert not [r for r in router.requests if r.method == "POST"]


async def test_errors_are_typed_retried_and_redacted(fakes: tuple[FakeRouter, FakeHub]) -> None:
    router, _ = fakes
    router.enqueue(
        FakeResponse.error(429, "slow down", headers={"Retry-After": "0"}),
        FakeResponse.error(401, f"bad token {TOKEN}"),
    )
    async with driver_for(router, retry=RetryPolicy(attempts=2)) as driver:
        with pytest.raises(HuggingFaceError) as caught:
            await driver.embed(EmbedRequest(inputs="x", model=f"{BGE}:hf-inference"))
    assert caught.value.kind is K.AUTHENTICATION and len(router.requests) == 2
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)


async def test_no_token_for_the_router_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_API_TOKEN", "HF_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_TOKEN_PATH", "/nonexistent/token")
    monkeypatch.setenv("HF_HOME", "/nonexistent")
    async with HuggingFaceDriver(router_url="http://127.0.0.1:9") as driver:
        with pytest.raises(HuggingFaceError) as caught:
            await driver.embed(EmbedRequest(inputs="x", model=BGE))
    assert caught.value.kind is K.CONFIG


# ---------------------------------------------------------------------------- the layers around it
async def test_embeddings_are_cached_and_shared(fakes: tuple[FakeRouter, FakeHub]) -> None:
    router, _ = fakes
    async with compose(driver_for(router), cache=MemoryCache()) as driver:
        request = EmbedRequest(inputs=["a", "b"], model=f"{BGE}:hf-inference")
        first, second = await asyncio.gather(driver.embed(request), driver.embed(request))
        third = await driver.embed(request)
        other = await driver.embed(EmbedRequest(inputs=["a", "b"], model=f"{BGE}:hf-inference", dimensions=8))
    assert len([r for r in router.requests if r.method == "POST"]) == 2  # one per distinct request
    assert not first.cached and second.cached and third.cached and not other.cached
    assert third.vectors == first.vectors and third.cost is not None and third.cost.total == 0
    assert other.dimensions == 8


async def test_a_fallback_route_embeds_when_the_first_fails(fakes: tuple[FakeRouter, FakeHub]) -> None:
    router, _ = fakes
    router.enqueue(FakeResponse.error(503, "Service Unavailable"))
    async with compose(
        driver_for(router, model=f"{BGE}:hf-inference"), fallbacks=["intfloat/e5-mistral-7b-instruct"]
    ) as driver:
        response = await driver.embed(EmbedRequest(inputs="x"))
    assert [r.path for r in router.requests if r.method == "POST"] == [
        f"/hf-inference/models/{BGE}/pipeline/feature-extraction",
        "/sambanova/v1/embeddings",
    ]
    assert response.model == "intfloat/e5-mistral-7b-instruct"


async def test_embeddings_are_priced_from_the_catalogue(fakes: tuple[FakeRouter, FakeHub]) -> None:
    router, _ = fakes
    router.models.append(
        {"id": "intfloat/e5-mistral-7b-instruct", "object": "model", "providers": [
            {"provider": "fake-provider", "status": "live", "pricing": {"input": 0.1, "output": 0}}
        ]}
    )  # fmt: skip
    async with driver_for(router, costs=True) as driver:
        response = await driver.embed(
            EmbedRequest(inputs=["one two three", "four"], model="intfloat/e5-mistral-7b-instruct")
        )
    assert response.usage is not None and response.usage.prompt_tokens == 4
    assert response.cost is not None and response.cost.total == pytest.approx(4 * 0.1 / 1e6)


def test_vectors_are_compact_float32() -> None:
    vectors = EmbedResponse(vectors=__import__("hfdriver").Vectors.from_rows([[0.5] * 384] * 1000)).vectors
    assert vectors.nbytes == 1000 * 384 * 4 and len(vectors.tobytes()) == vectors.nbytes
    assert vectors[999].tolist() == [0.5] * 384 and vectors[-1].tolist() == [0.5] * 384
    numpy = pytest.importorskip("numpy", reason="to_numpy needs numpy")
    array_ = vectors.to_numpy()
    assert array_.shape == (1000, 384) and array_.dtype == numpy.float32


# ---------------------------------------------------------------------------- batch
async def test_a_batch_mixes_chat_and_embeddings_lines(tmp_path: Any) -> None:
    import json
    import os
    import sys

    async with FakeRouter() as router:
        source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
        lines = [
            {"custom_id": "c1", "method": "POST", "url": "/v1/chat/completions",
             "body": {"messages": [{"role": "user", "content": "hi"}]}},
            {"custom_id": "e1", "method": "POST", "url": "/v1/embeddings", "body": {"input": ["a", "b"]}},
            {"custom_id": "e2", "method": "POST", "url": "/v1/embeddings",
             "body": {"input": "c", "encoding_format": "base64", "dimensions": 8}},
            {"custom_id": "e3", "method": "POST", "url": "/v1/embeddings", "body": {"input": [[1, 2]]}},
        ]  # fmt: skip
        source.write_text("".join(json.dumps(line) + "\n" for line in lines))
        config = tmp_path / "hfdriver.toml"
        config.write_text(
            f'[llm]\nprovider = "huggingface-endpoint"\nbase_url = "{router.base_url}"\nmodel = "org/m"\n'
        )
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
        environ.update(HF_HOME=str(tmp_path / "hf_home"), HFDRIVER_CONFIG=str(config))

        async def run() -> tuple[int | None, str]:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "hfdriver.cli", "batch", str(source), "-o", str(out), "--quiet",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environ, cwd=str(tmp_path),
            )  # fmt: skip
            _, err = await asyncio.wait_for(proc.communicate(), timeout=120)
            return proc.returncode, err.decode()

        code, err = await run()
        assert code == 1, err  # e3 (token ids) failed
        rows = {row["custom_id"]: row for row in map(json.loads, out.read_text().splitlines())}
        assert rows["c1"]["response"]["body"]["object"] == "chat.completion"
        e1 = rows["e1"]["response"]["body"]
        assert e1["object"] == "list" and [d["index"] for d in e1["data"]] == [0, 1]
        assert close_to(e1["data"][1]["embedding"], embedding_vector("b"))
        e2 = rows["e2"]["response"]["body"]["data"][0]["embedding"]
        decoded = array("f")
        decoded.frombytes(base64.b64decode(e2))
        assert len(decoded) == 8  # base64, as the line asked, and 8 dimensions
        assert (
            rows["e3"]["error"]["code"] == "invalid_request" and "token ids" in rows["e3"]["error"]["message"]
        )
        assert "4 rows" in err and "3 answered, 1 failed" in err
        sent = len(router.requests)
        code, err = await run()  # resume: only the failed row again (refused before sending)
        assert len(router.requests) == sent and "3 already answered" in err


async def test_run_batch_takes_embed_requests(fakes: tuple[FakeRouter, FakeHub]) -> None:
    from hfdriver.batch import run_batch

    router, _ = fakes
    rows = [(f"r{i}", EmbedRequest(inputs=f"text {i}", model=f"{BGE}:hf-inference")) for i in range(20)]
    async with driver_for(router) as driver:
        results = [r async for r in run_batch(driver, rows, concurrency=4)]
    assert sorted(r.custom_id for r in results) == sorted(r for r, _ in rows)
    assert all(r.ok and isinstance(r.response, EmbedResponse) for r in results)
    by_id = {r.custom_id: r for r in results}
    assert close_to(by_id["r7"].response.vectors[0], embedding_vector("text 7"))  # type: ignore[union-attr]


# ---------------------------------------------------------------------------- the CLI
async def _embed_cli(
    tmp_path: Any, router: FakeRouter, hub: FakeHub, *args: str, stdin: bytes | None = None
) -> tuple[int | None, str, str]:
    import os
    import sys

    config = tmp_path / "hfdriver.toml"
    config.write_text(
        f'[llm]\nmodel = "meta-llama/Llama-3.2-1B-Instruct"\nembedding_model = "{BGE}"\ncosts = false\n'
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    environ.update(
        HF_HOME=str(tmp_path / "hf_home"), HFDRIVER_CONFIG=str(config), HF_TOKEN=TOKEN,
        HF_ROUTER_URL=router.url, HF_ENDPOINT=hub.url,
    )  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hfdriver.cli", "embed", *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environ, cwd=str(tmp_path),
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=120)
    return proc.returncode, out.decode(), err.decode()


async def test_cli_embed_prints_vectors_and_json(
    fakes_once: tuple[FakeRouter, FakeHub], tmp_path: Any
) -> None:
    import json

    router, hub = fakes_once
    code, out, err = await _embed_cli(tmp_path, router, hub, "hello", "world")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("'hello': 384 dims [") and lines[0].endswith("...]")
    assert f"{embedding_vector('hello')[0]:+.4f}" in lines[0]
    assert BGE in err and "fake-provider" in err
    code, out, err = await _embed_cli(
        tmp_path, router, hub, "--json", "--dimensions", "8", stdin=b"one\n\ntwo\n"
    )
    assert code == 0, err
    body = json.loads(out)
    assert [len(d["embedding"]) for d in body["data"]] == [8, 8] and body["model"] == BGE
    code, out, err = await _embed_cli(
        tmp_path, router, hub, "--model", "intfloat/e5-mistral-7b-instruct", "x"
    )
    assert code == 0 and router.requests[-1].path == "/sambanova/v1/embeddings"


async def test_cli_embed_errors_say_what_to_do(fakes_once: tuple[FakeRouter, FakeHub], tmp_path: Any) -> None:
    router, hub = fakes_once
    code, _, err = await _embed_cli(tmp_path, router, hub, "--model", "meta-llama/Llama-3.2-1B-Instruct", "x")
    assert code == 1 and "feature-extraction" in err and "Traceback" not in err
    code, _, err = await _embed_cli(tmp_path, router, hub, stdin=b"\n \n")
    assert code == 2 and "nothing to embed" in err
    code, _, err = await _embed_cli(tmp_path, router, hub, "--dimensions", "0", "x")
    assert code != 0 and "dimensions" in err and "Traceback" not in err
