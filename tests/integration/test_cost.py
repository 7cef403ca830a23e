"""Cost per answer: the router catalogue's per-provider prices multiplied by usage."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import attrs
import pytest
from aiohttp import web

from hfdriver import Cost, GenerateRequest, HuggingFaceDriver, Usage
from hfdriver.cli.chat import footer_text
from hfdriver.hub import HubClient, PriceBook, clear_price_cache
from hfdriver.testing import FakeHub, FakeResponse, FakeRouter, completion_body

MODEL = "meta-llama/Llama-3.2-1B-Instruct"  # priced in DEFAULT_MODELS: novita 0.02/0.05, together 0.06/0.06
TOKEN = "hf_cost_test_token_0123456789"


@pytest.fixture(autouse=True)
def _fresh_prices() -> Iterator[None]:
    clear_price_cache()
    yield
    clear_price_cache()


@pytest.fixture
async def router() -> AsyncIterator[FakeRouter]:
    async with FakeRouter(provider="novita") as fake:
        yield fake


def request(text: str = "Hello") -> GenerateRequest:
    return GenerateRequest.builder().model(MODEL).user(text).build()


def test_cost_value_adds_up_and_rejects_nonsense() -> None:
    cost = Cost.of(Usage(1_000_000, 2_000_000, 3_000_000), input_per_million=0.02, output_per_million=0.05)
    assert (cost.input, cost.output, cost.currency) == (0.02, 0.1, "USD")
    assert cost.total == pytest.approx(0.12)
    both = cost + cost
    assert both.total == pytest.approx(0.24)
    assert attrs.evolve(cost, input=1.0).total == pytest.approx(1.1)  # total follows evolve
    assert Cost.zero().total == 0 and str(Cost.zero()) == "$0"
    for bad in (-1, float("nan"), float("inf"), "1", True):
        with pytest.raises(ValueError, match="cost"):
            Cost(input=bad, output=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot add"):
        _ = cost + Cost(input=1, output=1, currency="EUR")


async def test_price_book_from_a_fake_hub_catalogue() -> None:
    async with FakeHub() as hub, HubClient(endpoint=hub.url, router_url=hub.router_url) as client:
        book = PriceBook.from_models(await client.router_models())
    usage = Usage(prompt_tokens=1000, completion_tokens=500, total_tokens=1500)
    novita = book.cost(MODEL, "novita", usage)
    assert novita is not None
    assert novita.input == pytest.approx(1000 * 0.02 / 1e6)
    assert novita.output == pytest.approx(500 * 0.05 / 1e6)
    together = book.cost(f"{MODEL}:fastest", "together", usage)  # a routing suffix is ignored
    assert together is not None and together.total == pytest.approx(1500 * 0.06 / 1e6)
    # Unknown: never a guess.
    assert book.cost(MODEL, "some-other-provider", usage) is None
    assert book.cost("org/unlisted", "novita", usage) is None
    assert book.cost(MODEL, None, usage) is None  # who answered is unknown
    assert book.cost(f"{MODEL}:novita", None, usage) == novita  # ...unless the route names the provider
    assert book.cost(MODEL, "novita", None) is None


async def test_generate_fills_cost_from_the_routers_catalogue(router: FakeRouter) -> None:
    router.enqueue(FakeResponse(json=completion_body("Paris is big", model=MODEL, prompt_tokens=10)))
    async with HuggingFaceDriver(TOKEN, base_url=router.base_url, costs=True) as driver:
        response = await driver.generate(request())
        again = await driver.generate(request("again"))
    assert response.cost == Cost.of(response.usage, input_per_million=0.02, output_per_million=0.05)  # type: ignore[arg-type]
    assert response.cost is not None and response.cost.total > 0
    assert again.cost is not None
    model_lists = [r for r in router.requests if r.path == "/v1/models"]
    assert len(model_lists) == 1  # fetched once, then reused


async def test_stream_collect_has_the_cost(router: FakeRouter) -> None:
    async with (
        HuggingFaceDriver(TOKEN, base_url=router.base_url, costs=True) as driver,
        driver.generate_stream(request("one two three")) as stream,
    ):
        response = await stream.collect()
    assert response.usage is not None and response.cost is not None
    expected = Cost.of(response.usage, input_per_million=0.02, output_per_million=0.05)
    assert response.cost.total == pytest.approx(expected.total)


async def test_cost_is_none_when_prices_are_unknown(router: FakeRouter) -> None:
    router.provider = "unpriced-provider"
    async with HuggingFaceDriver(TOKEN, base_url=router.base_url, costs=True) as driver:
        assert (await driver.generate(request())).cost is None
    router.provider = "novita"
    # Not the router, and costs not asked for: no catalogue request at all.
    async with HuggingFaceDriver(TOKEN, base_url=router.base_url) as driver:
        assert (await driver.generate(request())).cost is None
    assert [r.path for r in router.requests].count("/v1/models") == 1


class BrokenCatalogue(FakeRouter):
    async def _models(self, request: web.Request) -> web.Response:
        self.catalogue_calls += 1
        return web.json_response({"error": "upstream exploded"}, status=500)


async def test_a_failing_catalogue_never_fails_the_answer() -> None:
    async with BrokenCatalogue(provider="novita") as fake:
        fake.catalogue_calls = 0
        async with HuggingFaceDriver(TOKEN, base_url=fake.base_url, costs=True) as driver:
            first = await driver.generate(request())
            second = await driver.generate(request())
        assert first.text and first.cost is None and second.cost is None
        assert fake.catalogue_calls >= 1  # it was asked (and retried), then not again for a while
        calls = fake.catalogue_calls
        async with HuggingFaceDriver(TOKEN, base_url=fake.base_url, costs=True) as driver:
            await driver.generate(request())
        assert fake.catalogue_calls == calls  # the failure is remembered for a minute


async def test_catalogue_argument_prices_without_a_request(router: FakeRouter) -> None:
    async with FakeHub() as hub, HubClient(endpoint=hub.url, router_url=hub.router_url) as client:
        catalogue = await client.router_models()
    async with HuggingFaceDriver(TOKEN, base_url=router.base_url, catalogue=catalogue) as driver:
        response = await driver.generate(request())
    assert response.cost is not None
    assert not [r for r in router.requests if r.path == "/v1/models"]


def test_chat_footer_shows_what_is_known() -> None:
    from hfdriver import GenerateResponse, Output

    usage = Usage(12, 30, 42)
    priced = GenerateResponse(
        outputs=(Output(text="x"),),
        usage=usage,
        provider="novita",
        cost=Cost.of(usage, input_per_million=0.02, output_per_million=0.05),
    )
    assert footer_text(priced) == "[novita · 12 in + 30 out tokens · $1.74e-06]"
    assert footer_text(GenerateResponse(outputs=(Output(text="x"),))) == ""
    cached = attrs.evolve(priced, cached=True, cost=Cost.zero())
    assert "from the cache" in footer_text(cached)
