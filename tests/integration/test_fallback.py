"""Fallback across routes: FallbackDriver, compose(driver, fallbacks=...), `fallbacks` in the config."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hfdriver import FallbackDriver, GenerateRequest, HuggingFaceDriver, RetryPolicy, compose
from hfdriver.config import create_driver, parse_config
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.fallback import FALLBACK_KINDS
from hfdriver.testing import FakeResponse, FakeRouter

K = HuggingFaceErrorKind
PRIMARY = "meta-llama/Llama-3.2-1B-Instruct"


@pytest.fixture
async def router() -> AsyncIterator[FakeRouter]:
    async with FakeRouter() as fake:
        yield fake


def req(text: str = "Hello") -> GenerateRequest:
    return GenerateRequest.builder().model(PRIMARY).user(text).max_tokens(16).build()


def models_sent(router: FakeRouter) -> list[str]:
    return [r.json["model"] for r in router.requests if r.path == "/v1/chat/completions"]


def driver(router: FakeRouter, fallbacks: Any = (), **kw: Any) -> Any:
    core = HuggingFaceDriver("hf_x", base_url=router.base_url, retry=RetryPolicy(attempts=1), **kw)
    return compose(core, fallbacks=fallbacks)


async def test_402_on_the_first_route_then_the_next_answers(
    router: FakeRouter, caplog: pytest.LogCaptureFixture
) -> None:
    router.enqueue(FakeResponse.error(402, "You have exceeded your monthly included credits"))
    async with driver(router, fallbacks=[f"{PRIMARY}:together", "Qwen/Qwen2.5-7B-Instruct"]) as d:
        with caplog.at_level(logging.WARNING, logger="hfdriver"):
            response = await d.generate(req())
    assert response.text == "echo: Hello"
    assert response.route == f"{PRIMARY}:together"
    assert [(f.route, f.kind) for f in response.failed_routes] == [
        ("the request's model", "PAYMENT_REQUIRED")
    ]
    assert models_sent(router) == [PRIMARY, f"{PRIMARY}:together"]
    warnings = [r.getMessage() for r in caplog.records if "falling back" in r.getMessage()]
    assert len(warnings) == 1 and "PAYMENT_REQUIRED" in warnings[0]


@pytest.mark.parametrize(
    ("status", "body"),
    [(400, "bad request"), (401, "Invalid credentials"), (422, "Input validation error"), (403, "forbidden")],
)
async def test_errors_that_would_fail_everywhere_do_not_fall_back(
    router: FakeRouter, status: int, body: str
) -> None:
    router.enqueue(FakeResponse.error(status, body))
    async with driver(router, fallbacks=["Qwen/Qwen2.5-7B-Instruct"]) as d:
        with pytest.raises(HuggingFaceError) as info:
            await d.generate(req())
    assert info.value.kind not in FALLBACK_KINDS
    assert models_sent(router) == [PRIMARY]


async def test_every_route_failing_is_one_error_listing_each(router: FakeRouter) -> None:
    router.enqueue(
        FakeResponse.error(402, "no credits"),
        FakeResponse.error(503, "upstream down"),
        FakeResponse.error(429, "slow down", headers={"Retry-After": "0"}),
    )
    async with driver(router, fallbacks=["a/b:one", "c/d"]) as d:
        with pytest.raises(HuggingFaceError) as info:
            await d.generate(req())
    error = info.value
    assert error.kind is K.RATE_LIMITED  # the last kind
    assert error.message.startswith("every route failed: ")
    for piece in (
        "the request's model: PAYMENT_REQUIRED (no credits",
        "a/b:one: SERVER (upstream down",
        "c/d: RATE_LIMITED",
    ):
        assert piece in error.message


async def test_a_stream_falls_back_before_its_first_chunk_only(router: FakeRouter) -> None:
    router.enqueue(FakeResponse.error(503, "down"))  # the first route fails before any chunk
    async with driver(router, fallbacks=["b/second"]) as d:
        async with d.generate_stream(req("one two")) as stream:
            text = "".join([c.text async for c in stream])
            assert stream.route == "b/second"
        assert text == "echo: one two"
        # After the first chunk, a failure is the caller's: no second route is tried.
        router.enqueue(FakeResponse.stream(["x"] * 50, chunk_size=60, disconnect_after=3))
        before = len(models_sent(router))
        with pytest.raises(HuggingFaceError) as info:
            async with d.generate_stream(req("x")) as stream:
                async for _ in stream:
                    pass
        assert info.value.kind in (K.STREAM, K.CONNECTION)
        assert len(models_sent(router)) == before + 1


async def test_a_failing_route_cools_down_then_comes_back(router: FakeRouter) -> None:
    class Broken:
        model = "broken/route"
        calls = 0

        async def generate(self, request: GenerateRequest) -> Any:
            Broken.calls += 1
            raise HuggingFaceError(K.OVERLOADED, "busy")

        def generate_stream(self, request: GenerateRequest) -> Any:
            raise NotImplementedError

        async def aclose(self) -> None:
            pass

    backup = driver(router, model="b/backup")
    fallback = FallbackDriver([Broken(), backup], cooldown=0.3, trip_after=2)
    for _ in range(2):
        assert (await fallback.generate(req())).route == "b/backup"
    assert Broken.calls == 2
    await fallback.generate(req())  # tripped: skipped, straight to the backup
    assert Broken.calls == 2
    await asyncio.sleep(0.35)
    await fallback.generate(req())  # the cooldown is over: tried again
    assert Broken.calls == 3
    await fallback.aclose()


async def test_fallbacks_in_the_config(router: FakeRouter) -> None:
    config = parse_config(
        {
            "llm": {
                "provider": "huggingface-endpoint",
                "base_url": router.base_url,
                "model": PRIMARY,
                "fallbacks": ["x/route-model", "backup"],
                "retry": {"attempts": 1},
            },
            "profiles": {"backup": {"model": "y/profile-model"}},
        }
    )
    assert config.llm.fallbacks == ("x/route-model", "backup")
    router.enqueue(FakeResponse.error(404, "model not found"), FakeResponse.error(500, "boom"))
    async with create_driver(config) as d:
        response = await d.generate(GenerateRequest.builder().user("hi").build())
    assert response.route == "profile backup"
    assert models_sent(router) == [PRIMARY, "x/route-model", "y/profile-model"]
    with pytest.raises(HuggingFaceError, match="fallbacks must be a list"):
        parse_config({"llm": {"fallbacks": ["ok", 3]}})
    with pytest.raises(HuggingFaceError, match="fallbacks must be"):
        parse_config({"llm": {"fallbacks": "a/b"}})
