from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from hfdriver import GenerateRequest, HubClient, HuggingFaceDriver, HuggingFaceError, HuggingFaceErrorKind
from hfdriver.hub import BUILTIN_CATALOGUE, find_model, models_with_tools
from hfdriver.testing import FakeHub, FakeResponse, FakeRouter, whoami_body

K = HuggingFaceErrorKind
ALICE = "hf_alice_token_0123456789"


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    tokens = {
        ALICE: whoami_body("alice"),
        "hf_noinference_0123456789": whoami_body("bob", scopes=("repo.content.read",)),
        "hf_classic_read_0123456789": whoami_body("carol", role="read"),
    }
    async with FakeHub(tokens=tokens) as fake:
        yield fake


@pytest.fixture
async def client(hub: FakeHub) -> AsyncIterator[HubClient]:
    async with HubClient(token=ALICE, endpoint=hub.url, router_url=hub.router_url) as c:
        yield c


# ---------------------------------------------------------------------------- whoami


async def test_whoami_fine_grained(client: HubClient, hub: FakeHub) -> None:
    who = await client.whoami()
    assert (who.name, who.type, who.orgs, who.token_name, who.token_role) == (
        "alice",
        "user",
        ("acme",),
        "alice-token",
        "fineGrained",
    )
    assert "inference.serverless.write" in who.scopes and who.can_call_inference_providers
    assert hub.requests_to("/api/whoami-v2")[0].headers["Authorization"] == f"Bearer {ALICE}"


@pytest.mark.parametrize(
    ("token", "can_call"), [("hf_noinference_0123456789", False), ("hf_classic_read_0123456789", True)]
)
async def test_can_call_inference_providers(hub: FakeHub, token: str, can_call: bool) -> None:
    async with HubClient(token=token, endpoint=hub.url) as c:
        assert (await c.whoami()).can_call_inference_providers is can_call


async def test_bad_token_is_authentication_and_missing_token_is_config(hub: FakeHub) -> None:
    async with HubClient(token="hf_unknown_token_0123456789", endpoint=hub.url) as c:
        with pytest.raises(HuggingFaceError) as info:
            await c.whoami()
    assert info.value.kind is K.AUTHENTICATION
    async with HubClient(endpoint=hub.url) as c:
        with pytest.raises(HuggingFaceError) as info:
            await c.whoami()
    assert info.value.kind is K.CONFIG
    assert len(hub.requests_to("/api/whoami-v2")) == 1  # the tokenless call sent nothing


async def test_driver_validate_token_uses_hf_endpoint(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    async with HuggingFaceDriver(token=ALICE) as driver:
        assert (await driver.validate_token()).name == "alice"
    async with HuggingFaceDriver(token="hf_noinference_0123456789") as driver:
        with pytest.raises(HuggingFaceError, match="Make calls to Inference Providers") as info:
            await driver.validate_token()
    assert info.value.kind is K.PERMISSION


# ---------------------------------------------------------------------------- search


async def test_search_follows_pages_lazily(client: HubClient, hub: FakeHub) -> None:
    models = client.search_models("filler", limit=None)
    first = await models.__anext__()
    assert first.id == "fake-org/filler-model-000"
    assert len(hub.requests_to("/api/models")) == 1  # nothing fetched ahead of need
    rest = [m.id async for m in models]
    assert len(rest) == 239
    assert len(hub.requests_to("/api/models")) == 3  # pages of 100, 100, 40
    assert len({first.id, *rest}) == 240


async def test_limit_bounds_the_total_and_the_pages(client: HubClient, hub: FakeHub) -> None:
    assert len([m async for m in client.search_models("filler", limit=2)]) == 2
    (only,) = hub.requests_to("/api/models")
    assert "limit=2" in only.path
    hub.requests.clear()
    assert len([m async for m in client.search_models("filler", limit=150)]) == 150
    assert len(hub.requests_to("/api/models")) == 2
    with pytest.raises(HuggingFaceError) as info:
        [m async for m in client.search_models(limit=0)]
    assert info.value.kind is K.INVALID_REQUEST


async def test_search_fields_and_filters(client: HubClient, hub: FakeHub) -> None:
    (llama,) = [m async for m in client.search_models("Llama-3.2-1B-Instruct", author="meta-llama")]
    assert llama.downloads == 2_900_000 and llama.likes == 1100 and llama.gated == "manual"
    assert llama.pipeline_tag == "text-generation" and llama.library_name == "transformers"
    assert llama.live_providers == ("novita", "together") and not llama.has_gguf
    assert llama.created_at is not None and llama.created_at.year == 2024
    sent = hub.requests_to("/api/models")[0].path
    for part in (
        "search=Llama-3.2-1B-Instruct",
        "author=meta-llama",
        "pipeline_tag=text-generation",
        "sort=downloads",
        "expand%5B%5D=inferenceProviderMapping",
    ):
        assert part in sent
    ggufs = [m.id async for m in client.search_models(gguf=True)]
    assert ggufs == ["bartowski/Llama-3.2-1B-Instruct-GGUF", "unsloth/gemma-3-270m-it-GGUF"]
    assert not [m async for m in client.search_models("GGUF", gguf=False)]
    together = [m.id async for m in client.search_models(inference_provider="together")]
    assert together == ["meta-llama/Llama-3.2-1B-Instruct", "Qwen/Qwen2.5-7B-Instruct"]


async def test_search_by_likes(client: HubClient) -> None:
    ids = [m.id async for m in client.search_models(sort="likes", limit=3, pipeline_tag=None)]
    assert ids == ["openai-community/gpt2", "meta-llama/Llama-3.2-1B-Instruct", "Qwen/Qwen2.5-7B-Instruct"]


# ---------------------------------------------------------------------------- router catalogue


async def test_router_models_live_and_merged(client: HubClient) -> None:
    models = await client.router_models()
    llama = find_model(models, "meta-llama/Llama-3.2-1B-Instruct:fastest")
    assert llama is not None and llama.source == "live+catalogue" and llama.max_output_tokens == 8192
    assert llama.context_window == 131072 and llama.owned_by == "meta-llama"
    cheapest, fastest = llama.cheapest(), llama.fastest()
    assert (
        cheapest is not None
        and cheapest.provider == "novita"
        and cheapest.pricing is not None
        and cheapest.pricing.output == 0.05
    )
    assert fastest is not None and fastest.provider == "together" and fastest.throughput == 210.5
    assert [m.id for m in models_with_tools(models)] == ["meta-llama/Llama-3.2-1B-Instruct"]


async def test_router_models_tolerate_sparse_entries() -> None:
    sparse = [
        {
            "id": "a/b",
            "providers": [
                {"provider": "x"},
                {"provider": "y", "status": "staging", "pricing": {"input": 1}},
                {"no": "provider"},
            ],
        },
        {"id": "c/d"},
    ]
    async with (
        FakeHub(router_models=sparse) as hub,
        HubClient(endpoint=hub.url, router_url=hub.router_url) as c,
    ):
        models = await c.router_models()
    assert [m.id for m in models] == ["a/b", "c/d"]
    assert [p.provider for p in models[0].live_providers] == ["x"]
    assert models[0].cheapest() is None and models[0].fastest() is None and models[1].providers == ()


async def test_router_unreachable_falls_back_to_the_catalogue(
    hub: FakeHub, caplog: pytest.LogCaptureFixture
) -> None:
    hub.enqueue("/v1/models", *[FakeResponse.error(503, "overloaded")] * 3)
    async with HubClient(endpoint=hub.url, router_url=hub.router_url) as c:
        with caplog.at_level(logging.WARNING, logger="hfdriver"):
            models = await c.router_models()
    assert {m.id for m in models} == {e.id for e in BUILTIN_CATALOGUE}
    assert all(m.source == "catalogue" for m in models)
    assert "built-in catalogue" in caplog.text


async def test_router_timeout_falls_back_and_fallback_false_raises(
    hub: FakeHub, caplog: pytest.LogCaptureFixture
) -> None:
    hub.enqueue("/v1/models", FakeResponse.completion("slow", delay=1.0))
    async with HubClient(endpoint=hub.url, router_url=hub.router_url) as c:
        with caplog.at_level(logging.WARNING, logger="hfdriver"):
            models = await c.router_models(timeout=0.2)
        assert models[0].source == "catalogue" and "unavailable" in caplog.text
        hub.enqueue("/v1/models", FakeResponse.completion("slow", delay=1.0))
        with pytest.raises(HuggingFaceError) as info:
            await c.router_models(timeout=0.2, fallback=False)
    assert info.value.kind is K.TIMEOUT


async def test_router_connection_refused_falls_back() -> None:
    async with FakeHub() as gone:
        url = gone.router_url
    async with HubClient(router_url=url) as c:
        models = await c.router_models()
    assert models and models[0].source == "catalogue"


# ---------------------------------------------------------------------------- GGUF files


async def test_list_gguf_files_with_pagination() -> None:
    async with FakeHub(tree_page_size=3) as hub, HubClient(endpoint=hub.url) as c:
        files = await c.list_gguf_files("bartowski/Llama-3.2-1B-Instruct-GGUF")
        pages = len(hub.requests_to("/api/models/bartowski/Llama-3.2-1B-Instruct-GGUF/tree/main"))
    assert pages == 3
    assert [(f.name, f.quantization) for f in files] == [
        ("Llama-3.2-1B-Instruct-Q4_K_M.gguf", "Q4_K_M"),
        ("Llama-3.2-1B-Instruct-Q8_0.gguf", "Q8_0"),
        ("Llama-3.2-1B-Instruct-f16.gguf", "F16"),
        ("Llama-3.2-1B-Instruct-IQ2_XS.gguf", "IQ2_XS"),
        ("Llama-3.2-1B-Instruct-Q6_K-00001-of-00002.gguf", "Q6_K"),
        ("Llama-3.2-1B-Instruct-Q6_K-00002-of-00002.gguf", "Q6_K"),
    ]
    assert files[0].size == 807_694_464 and files[0].sha256 == "1" * 64 and files[4].path.startswith("split/")


async def test_list_gguf_files_errors(client: HubClient) -> None:
    with pytest.raises(HuggingFaceError) as info:
        await client.list_gguf_files("nobody/nothing")
    assert info.value.kind is K.NOT_FOUND and "Repository not found" in info.value.message
    with pytest.raises(HuggingFaceError) as info:
        await client.list_gguf_files("not-a-repo-id")
    assert info.value.kind is K.INVALID_REQUEST


# ---------------------------------------------------------------------------- errors and environment


async def test_hub_rate_limit_header_sets_retry_after(client: HubClient, hub: FakeHub) -> None:
    hub.enqueue(
        "/api/whoami-v2",
        FakeResponse.error(
            429,
            "You have been rate-limited",
            headers={"RateLimit": '"api";r=0;t=55', "RateLimit-Policy": '"fixed window";"api";q=500;w=300'},
        ),
    )
    with pytest.raises(HuggingFaceError) as info:
        await client.whoami()
    assert info.value.kind is K.RATE_LIMITED and info.value.retry_after == 55
    assert len(hub.requests_to("/api/whoami-v2")) == 1  # beyond the hub's 10 s cap: raised at once


async def test_offline_mode_makes_no_network_attempt(
    client: HubClient, hub: FakeHub, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for call in (client.whoami(), client.router_models(fallback=False), client.list_gguf_files("a/b")):
        with pytest.raises(HuggingFaceError, match="offline mode") as info:
            await call
        assert info.value.kind is K.CONFIG
    with pytest.raises(HuggingFaceError, match="offline mode"):
        [m async for m in client.search_models()]
    # The catalogue falls back offline as it does without a network, saying so (issue 10).
    with caplog.at_level(logging.WARNING, logger="hfdriver"):
        catalogue = await client.router_models()
    assert catalogue and all(m.source == "catalogue" for m in catalogue) and "offline mode" in caplog.text
    assert hub.requests == []


async def test_hub_timeout(hub: FakeHub) -> None:
    from hfdriver import Timeouts

    hub.enqueue("/api/whoami-v2", FakeResponse(json=whoami_body(), delay=1.0))
    async with HubClient(token=ALICE, endpoint=hub.url, timeouts=Timeouts(total=0.2)) as c:
        with pytest.raises(HuggingFaceError) as info:
            await c.whoami()
    assert info.value.kind is K.TIMEOUT


async def test_non_json_hub_answer_is_decode(client: HubClient, hub: FakeHub) -> None:
    hub.enqueue("/api/whoami-v2", FakeResponse(body=b"<html>proxy</html>", content_type="text/html"))
    with pytest.raises(HuggingFaceError) as info:
        await client.whoami()
    assert info.value.kind is K.DECODE


# ---------------------------------------------------------------------------- routing with the catalogue


async def test_unlisted_provider_is_sent_with_a_warning(
    client: HubClient, caplog: pytest.LogCaptureFixture
) -> None:
    catalogue = await client.router_models()
    async with (
        FakeRouter() as router,
        HuggingFaceDriver(base_url=router.base_url, catalogue=catalogue) as driver,
    ):
        base = GenerateRequest.builder().model("meta-llama/Llama-3.2-1B-Instruct").user("hi")
        with caplog.at_level(logging.WARNING, logger="hfdriver"):
            await driver.generate(base.routing("together").build())
            await driver.generate(base.routing("cheapest").build())
            assert not caplog.records
            await driver.generate(base.routing("groq").build())
            await driver.generate(base.routing("groq").build())
    assert [r.json["model"] for r in router.requests][-1] == "meta-llama/Llama-3.2-1B-Instruct:groq"
    (record,) = caplog.records  # warned once per model and provider
    assert "'groq' is not listed" in record.getMessage() and "novita, together" in record.getMessage()


async def test_a_router_failure_names_the_router_not_the_hub() -> None:
    async with FakeHub() as gone:
        url = gone.router_url
    async with HubClient(router_url=url) as c:
        with pytest.raises(HuggingFaceError) as info:
            await c.router_models(fallback=False)
    assert info.value.kind is K.CONNECTION
    assert "could not reach the router" in info.value.message and "HF_ENDPOINT" not in info.value.message
