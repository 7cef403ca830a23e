"""OpenTelemetry GenAI spans and metrics, read back with the SDK's in-memory exporters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

trace = pytest.importorskip("opentelemetry.trace", reason="the dev extra installs opentelemetry-sdk")
from opentelemetry import metrics  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from hfdriver import GenerateRequest, HuggingFaceDriver, RetryPolicy, telemetry  # noqa: E402
from hfdriver.errors import HuggingFaceError  # noqa: E402
from hfdriver.testing import FakeResponse, FakeRouter  # noqa: E402

MODEL = "meta-llama/Llama-3.2-1B-Instruct"
SPANS = InMemorySpanExporter()
READER = InMemoryMetricReader()


@pytest.fixture(scope="module", autouse=True)
def _providers() -> None:
    # Global and set once per process (OpenTelemetry refuses to replace them).
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(SPANS))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[READER]))
    telemetry._state["checked"] = -1.0  # look again now, not within the second


@pytest.fixture(autouse=True)
def _clear() -> None:
    SPANS.clear()


@pytest.fixture
async def router() -> AsyncIterator[FakeRouter]:
    async with FakeRouter(provider="novita") as fake:
        yield fake


def req(text: str = "Hello") -> GenerateRequest:
    return GenerateRequest.builder().model(MODEL).user(text).max_tokens(16).temperature(0.2).build()


def points(name: str) -> list[Any]:
    data = READER.get_metrics_data()
    found = []
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    found.extend(metric.data.data_points)
    return found


def only_span() -> Any:
    spans = SPANS.get_finished_spans()
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


async def test_a_call_makes_one_genai_span_and_metrics(router: FakeRouter) -> None:
    async with HuggingFaceDriver("hf_secret_token_123", base_url=router.base_url) as driver:
        response = await driver.generate(req("What is OpenTelemetry?"))
    span = only_span()
    assert span.name == f"chat {MODEL}" and span.kind is trace.SpanKind.CLIENT
    a = span.attributes
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "huggingface"
    assert a["gen_ai.request.model"] == MODEL and a["gen_ai.request.max_tokens"] == 16
    assert a["gen_ai.request.temperature"] == 0.2 and a["server.address"] == "127.0.0.1"
    assert a["gen_ai.response.model"] == response.model and a["gen_ai.response.id"] == response.id
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop"]
    assert a["gen_ai.usage.input_tokens"] == response.usage.prompt_tokens  # type: ignore[union-attr]
    assert a["gen_ai.usage.output_tokens"] == response.usage.completion_tokens  # type: ignore[union-attr]
    assert a["hfdriver.inference_provider"] == "novita"
    # No content, no token, anywhere in the span.
    text = repr(dict(a)) + repr([e.attributes for e in span.events])
    assert "OpenTelemetry" not in text and "hf_secret" not in text
    assert points("gen_ai.client.operation.duration")
    types = {p.attributes["gen_ai.token.type"] for p in points("gen_ai.client.token.usage")}
    assert types == {"input", "output"}


async def test_a_failed_call_sets_error_type(router: FakeRouter) -> None:
    router.enqueue(FakeResponse.error(400, "bad request body"))
    async with HuggingFaceDriver("hf_x", base_url=router.base_url) as driver:
        with pytest.raises(HuggingFaceError):
            await driver.generate(req())
    span = only_span()
    assert span.attributes["error.type"] == "bad_request"
    assert span.attributes["http.response.status_code"] == 400
    assert span.status.status_code is trace.StatusCode.ERROR


async def test_retries_are_span_events(router: FakeRouter) -> None:
    router.enqueue(FakeResponse.error(503, "upstream unavailable"))
    async with HuggingFaceDriver("hf_x", base_url=router.base_url, retry=RetryPolicy(attempts=3)) as driver:
        await driver.generate(req())
    span = only_span()
    retries = [e for e in span.events if e.name == "hfdriver.retry"]
    assert len(retries) == 1
    event = retries[0].attributes
    assert event["hfdriver.retry.attempt"] == 1 and event["hfdriver.retry.attempts"] == 3
    assert event["error.type"] == "server" and event["http.response.status_code"] == 503
    assert "error.type" not in span.attributes  # the call succeeded in the end


async def test_a_stream_abandoned_halfway(router: FakeRouter) -> None:
    router.enqueue(FakeResponse.stream(["one", " two", " three", " four"]))
    async with (
        HuggingFaceDriver("hf_x", base_url=router.base_url) as driver,
        driver.generate_stream(req()) as stream,
    ):
        await stream.__anext__()
        await stream.__anext__()
    span = only_span()
    assert span.attributes["hfdriver.stream"] is True
    assert span.attributes["hfdriver.stream.abandoned"] is True
    assert span.attributes["hfdriver.time_to_first_chunk_s"] >= 0
    assert points("gen_ai.client.operation.time_to_first_chunk")


async def test_a_stream_read_to_the_end(router: FakeRouter) -> None:
    async with (
        HuggingFaceDriver("hf_x", base_url=router.base_url) as driver,
        driver.generate_stream(req("a b c")) as stream,
    ):
        text = "".join([c.text async for c in stream])
    assert text == "echo: a b c"
    span = only_span()
    assert "hfdriver.stream.abandoned" not in span.attributes
    assert span.attributes["gen_ai.usage.output_tokens"] > 0


async def test_the_fallback_span_names_the_route(router: FakeRouter) -> None:
    router.enqueue(FakeResponse.error(402, "no credits"))
    async with HuggingFaceDriver(
        "hf_x", base_url=router.base_url, retry=RetryPolicy(attempts=1), fallbacks=[f"{MODEL}:together"]
    ) as driver:
        await driver.generate(req())
    span = only_span()
    assert span.attributes["hfdriver.route"] == f"{MODEL}:together"
    assert list(span.attributes["hfdriver.failed_routes"]) == ["the request's model"]


def test_nothing_is_created_without_a_provider() -> None:
    import subprocess
    import sys

    code = (
        "from hfdriver import GenerateRequest, telemetry\n"
        "request = GenerateRequest.builder().model('m/x').user('hi').build()\n"
        "assert telemetry.start_chat(request, model='m/x', base_url='http://127.0.0.1:1/v1') is None\n"
        "assert telemetry._instruments == {}  # no tracer, no meter, no instrument was made\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
