from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from hfdriver import GenerateRequest, HuggingFaceDriver, HuggingFaceError, HuggingFaceErrorKind, RetryPolicy
from hfdriver.testing import FakeResponse, FakeRouter
from hfdriver.transport import set_testing
from tests.integration.conftest import TOKEN

K = HuggingFaceErrorKind


@pytest.fixture
def real_waits() -> Iterator[None]:
    """Real retry waits (the suite zeroes them), for tests that check what the wait was."""
    set_testing(False)
    yield
    set_testing(True)


async def test_429_with_retry_after_then_200(
    driver: HuggingFaceDriver, router: FakeRouter, request_: GenerateRequest, caplog: pytest.LogCaptureFixture
) -> None:
    router.enqueue(
        FakeResponse.error(429, "Rate limit reached", headers={"Retry-After": "2"}),
        FakeResponse.completion("ok"),
    )
    with caplog.at_level(logging.WARNING, logger="hfdriver"):
        assert (await driver.generate(request_)).text == "ok"
    assert len(router.requests) == 2
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and "RATE_LIMITED" in record.getMessage()
    assert record.hf_kind == "RATE_LIMITED" and record.hf_attempt == 1  # type: ignore[attr-defined]


async def test_retry_after_is_the_wait_when_waits_are_real(
    real_waits: None, router: FakeRouter, request_: GenerateRequest, caplog: pytest.LogCaptureFixture
) -> None:
    router.enqueue(
        FakeResponse.error(429, "slow down", headers={"Retry-After": "0.05"}),
        FakeResponse.completion("ok"),
    )
    async with HuggingFaceDriver(token=TOKEN, base_url=router.base_url, model="m/x") as driver:
        with caplog.at_level(logging.WARNING, logger="hfdriver"):
            assert (await driver.generate(request_)).text == "ok"
    assert caplog.records[0].hf_wait == pytest.approx(0.05)  # type: ignore[attr-defined]


async def test_503_loading_then_200_uses_estimated_time(
    real_waits: None, router: FakeRouter, request_: GenerateRequest, caplog: pytest.LogCaptureFixture
) -> None:
    router.enqueue(
        FakeResponse.error(503, "Model m is currently loading", estimated_time=0.05),
        FakeResponse.completion("loaded"),
    )
    async with HuggingFaceDriver(token=TOKEN, base_url=router.base_url, model="m/x") as driver:
        with caplog.at_level(logging.WARNING, logger="hfdriver"):
            assert (await driver.generate(request_)).text == "loaded"
    assert caplog.records[0].hf_kind == "MODEL_LOADING"  # type: ignore[attr-defined]
    assert caplog.records[0].hf_wait == pytest.approx(0.05)  # type: ignore[attr-defined]


async def test_500_repeated_until_attempts_run_out(
    driver: HuggingFaceDriver, router: FakeRouter, request_: GenerateRequest
) -> None:
    router.enqueue(*[FakeResponse.error(500, f"boom {i}") for i in range(5)])
    with pytest.raises(HuggingFaceError) as info:
        await driver.generate(request_)
    assert info.value.kind is K.SERVER and "boom 2" in info.value.message
    assert len(router.requests) == 3  # RetryPolicy(attempts=3)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, K.BAD_REQUEST),
        (401, K.AUTHENTICATION),
        (402, K.PAYMENT_REQUIRED),
        (403, K.PERMISSION),
        (404, K.NOT_FOUND),
        (422, K.VALIDATION),
    ],
)
async def test_client_errors_are_never_retried(
    driver: HuggingFaceDriver, router: FakeRouter, request_: GenerateRequest, status: int, kind: K
) -> None:
    router.enqueue(FakeResponse.error(status, "no"), FakeResponse.completion("should not be reached"))
    with pytest.raises(HuggingFaceError) as info:
        await driver.generate(request_)
    assert info.value.kind is kind
    assert len(router.requests) == 1


async def test_connection_reset_is_retried(
    driver: HuggingFaceDriver, router: FakeRouter, request_: GenerateRequest
) -> None:
    router.enqueue(
        FakeResponse.completion("lost", chunk_size=5, disconnect_after=0),
        FakeResponse.completion("second try"),
    )
    assert (await driver.generate(request_)).text == "second try"
    assert len(router.requests) == 2


async def test_retry_after_beyond_the_cap_raises_at_once(
    router: FakeRouter, request_: GenerateRequest
) -> None:
    router.enqueue(
        FakeResponse.error(429, "come back later", headers={"Retry-After": "3600"}),
        FakeResponse.completion("no"),
    )
    async with HuggingFaceDriver(
        token=TOKEN, base_url=router.base_url, model="m/x", retry=RetryPolicy(max_retry_after=30)
    ) as driver:
        with pytest.raises(HuggingFaceError) as info:
            await driver.generate(request_)
    assert info.value.kind is K.RATE_LIMITED and info.value.retry_after == 3600
    assert len(router.requests) == 1


async def test_disabled_policy_makes_one_attempt(router: FakeRouter, request_: GenerateRequest) -> None:
    router.enqueue(FakeResponse.error(503, "overloaded"), FakeResponse.completion("no"))
    async with HuggingFaceDriver(
        token=TOKEN, base_url=router.base_url, model="m/x", retry=RetryPolicy.disabled()
    ) as driver:
        with pytest.raises(HuggingFaceError) as info:
            await driver.generate(request_)
    assert info.value.kind is K.OVERLOADED and len(router.requests) == 1


async def test_stream_retried_before_its_first_chunk(
    driver: HuggingFaceDriver, router: FakeRouter, request_: GenerateRequest
) -> None:
    router.enqueue(
        FakeResponse.error(503, "overloaded"),
        FakeResponse.stream(["never"], chunk_size=5, disconnect_after=0),
        FakeResponse.stream(["third", " time"]),
    )
    async with driver.generate_stream(request_) as stream:
        text = "".join([c.text async for c in stream])
    assert text == "third time"
    assert len(router.requests) == 3


async def test_stream_error_event_before_first_chunk_when_overloaded_is_retried(
    driver: HuggingFaceDriver, router: FakeRouter, request_: GenerateRequest
) -> None:
    router.enqueue(
        FakeResponse(events=[{"error": "overloaded", "error_type": "overloaded"}]),
        FakeResponse.stream(["fine"]),
    )
    async with driver.generate_stream(request_) as stream:
        assert (await stream.collect()).text == "fine"
    assert len(router.requests) == 2


async def test_deadline_stops_retries(
    real_waits: None, router: FakeRouter, request_: GenerateRequest
) -> None:
    router.enqueue(*[FakeResponse.error(502, "bad gateway") for _ in range(10)])
    policy = RetryPolicy(attempts=10, deadline=0.15, initial_backoff=0.1, jitter=0)
    async with HuggingFaceDriver(token=TOKEN, base_url=router.base_url, model="m/x", retry=policy) as driver:
        with pytest.raises(HuggingFaceError) as info:
            await driver.generate(request_)
    assert info.value.kind is K.SERVER
    assert 1 < len(router.requests) < 10
