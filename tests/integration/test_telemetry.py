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

from hfdriver import GenerateRequest, HuggingFaceDriver, RetryPolicy, compose, telemetry  # noqa: E402
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind  # noqa: E402
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
    async with compose(HuggingFaceDriver("hf_secret_token_123", base_url=router.base_url)) as driver:
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
    async with compose(HuggingFaceDriver("hf_x", base_url=router.base_url)) as driver:
        with pytest.raises(HuggingFaceError):
            await driver.generate(req())
    span = only_span()
    assert span.attributes["error.type"] == "bad_request"
    assert span.attributes["http.response.status_code"] == 400
    assert span.status.status_code is trace.StatusCode.ERROR


async def test_retries_are_span_events(router: FakeRouter) -> None:
    router.enqueue(FakeResponse.error(503, "upstream unavailable"))
    async with compose(
        HuggingFaceDriver("hf_x", base_url=router.base_url, retry=RetryPolicy(attempts=3))
    ) as driver:
        await driver.generate(req())
    span = only_span()
    retries = [e for e in span.events if e.name == "hfdriver.retry"]
    assert len(retries) == 1
    event = retries[0].attributes
    assert event["hfdriver.retry.attempt"] == 1 and event["hfdriver.retry.attempts"] == 3
    assert event["error.type"] == "server" and event["http.response.status_code"] == 503
    assert event["hfdriver.retry.wait_s"] >= 0 and event["hfdriver.retry.elapsed_s"] >= 0
    assert "error.type" not in span.attributes  # the call succeeded in the end


async def test_a_stream_abandoned_halfway(router: FakeRouter) -> None:
    router.enqueue(FakeResponse.stream(["one", " two", " three", " four"]))
    async with (
        compose(HuggingFaceDriver("hf_x", base_url=router.base_url)) as driver,
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
        compose(HuggingFaceDriver("hf_x", base_url=router.base_url)) as driver,
        driver.generate_stream(req("a b c")) as stream,
    ):
        text = "".join([c.text async for c in stream])
    assert text == "echo: a b c"
    span = only_span()
    assert "hfdriver.stream.abandoned" not in span.attributes
    assert span.attributes["gen_ai.usage.output_tokens"] > 0


async def test_the_fallback_span_names_the_route(router: FakeRouter) -> None:
    router.enqueue(FakeResponse.error(402, "no credits"))
    async with compose(
        HuggingFaceDriver("hf_x", base_url=router.base_url, retry=RetryPolicy(attempts=1)),
        fallbacks=[f"{MODEL}:together"],
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


@pytest.mark.parametrize(
    ("paths", "body"),
    [
        (("/v1/chat/completions",) * 2, {"messages": [{"role": "user", "content": "hi"}]}),
        (("/v1/responses", "/responses"), {"input": "hi"}),
    ],
    ids=["chat", "responses"],
)
async def test_serve_makes_a_server_span_with_the_driver_span_inside(
    router: FakeRouter, paths: tuple[str, str], body: dict[str, Any]
) -> None:
    import aiohttp

    from hfdriver.server import OpenAIServer

    driver = HuggingFaceDriver("hf_x", base_url=router.base_url, model=MODEL)
    async with OpenAIServer(driver, port=0) as server, aiohttp.ClientSession() as session:
        root = server.base_url.removesuffix("/v1")
        for path, stream in zip(paths, (False, True), strict=True):
            async with session.post(root + path, json={"model": MODEL, **body, "stream": stream}) as resp:
                assert resp.status == 200
                await resp.read()
    await driver.aclose()
    spans = SPANS.get_finished_spans()
    servers = [s for s in spans if s.kind is trace.SpanKind.SERVER]
    clients = [s for s in spans if s.kind is trace.SpanKind.CLIENT]
    assert len(servers) == 2 and len(clients) == 2
    for server_span in servers:
        assert server_span.attributes["gen_ai.operation.name"] == "chat"
        child = next(
            c for c in clients if c.parent is not None and c.parent.span_id == server_span.context.span_id
        )
        assert child.context.trace_id == server_span.context.trace_id
        assert list(server_span.attributes["gen_ai.response.finish_reasons"]) == ["stop"]
    # The unary request reports usage (a streamed chat request did not ask for it: stream_options).
    assert any(s.attributes.get("gen_ai.usage.output_tokens") for s in servers)


async def test_local_driver_spans() -> None:
    pytest.importorskip("llama_cpp", reason="the local extra runs the embedded model")
    from hfdriver.local import LocalDriver

    request = GenerateRequest.builder().user("Hi").max_tokens(4).temperature(0).build()
    async with compose(LocalDriver.default(threads=2)) as local:
        await local.generate(request)
        async with local.generate_stream(request) as stream:
            async for _ in stream:
                pass
    spans = SPANS.get_finished_spans()
    assert len(spans) == 2
    assert all(s.attributes["gen_ai.provider.name"] == "llama_cpp" for s in spans)
    assert spans[1].attributes["hfdriver.stream"] is True
    assert all(s.attributes["gen_ai.usage.output_tokens"] > 0 for s in spans)


async def test_content_is_recorded_only_when_opted_in(
    router: FakeRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    async with compose(HuggingFaceDriver("hf_x", base_url=router.base_url)) as driver:
        await driver.generate(req("private question"))
    events = {e.name: e.attributes for e in only_span().events}
    assert "private question" in events["gen_ai.user.message"]["content"]
    assert events["gen_ai.choice"]["message"] == "echo: private question"


async def test_a_fallback_driver_span_holds_its_routes(router: FakeRouter) -> None:
    from hfdriver import FallbackDriver

    router.enqueue(FakeResponse.error(402, "no credits"))
    first = compose(
        HuggingFaceDriver("hf_x", base_url=router.base_url, model="a/first", retry=RetryPolicy(attempts=1))
    )
    second = compose(HuggingFaceDriver("hf_x", base_url=router.base_url, model="b/second"))
    async with compose(FallbackDriver([first, second])) as fallback:
        await fallback.generate(GenerateRequest.builder().user("hi").build())
    spans = SPANS.get_finished_spans()
    (outer,) = [s for s in spans if s.attributes["gen_ai.provider.name"] == "hfdriver.fallback"]
    assert outer.attributes["hfdriver.route"] == "b/second"
    assert list(outer.attributes["hfdriver.failed_routes"]) == ["a/first"]
    routes = [s for s in spans if s is not outer]
    assert {s.attributes["gen_ai.request.model"] for s in routes} == {"a/first", "b/second"}
    assert all(s.parent is not None and s.parent.span_id == outer.context.span_id for s in routes)
    failed = next(s for s in routes if s.attributes["gen_ai.request.model"] == "a/first")
    assert failed.attributes["error.type"] == "payment_required"


async def test_a_streamed_fallback_span_names_the_route(router: FakeRouter) -> None:
    router.enqueue(FakeResponse.error(503, "down"))
    async with (
        compose(
            HuggingFaceDriver("hf_x", base_url=router.base_url, retry=RetryPolicy(attempts=1)),
            fallbacks=["b/backup"],
        ) as driver,
        driver.generate_stream(req("x y")) as stream,
    ):
        assert "".join([c.text async for c in stream]) == "echo: x y"
    span = only_span()
    assert span.attributes["hfdriver.route"] == "b/backup"
    assert list(span.attributes["hfdriver.failed_routes"]) == ["the request's model"]


async def test_server_chosen_values_are_clipped_and_metrics_keep_the_request_model(
    router: FakeRouter,
) -> None:
    choices = [
        {"index": i, "message": {"role": "assistant", "content": "x"}, "finish_reason": f"reason-{i}"}
        for i in range(20_000)
    ]
    body = {
        "id": "i" * 2_000_000,
        "object": "chat.completion",
        "model": "m" * 100_000,
        "choices": choices,
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    router.enqueue(FakeResponse(json=body, headers={"x-inference-provider": "p" * 5_000}))
    async with compose(HuggingFaceDriver("hf_x", base_url=router.base_url)) as driver:
        response = await driver.generate(req())
    assert len(response.outputs) == 20_000  # the answer itself is whole
    a = only_span().attributes
    assert len(a["gen_ai.response.id"]) <= 256 and len(a["gen_ai.response.model"]) <= 256
    assert len(a["hfdriver.inference_provider"]) <= 256
    assert len(a["gen_ai.response.finish_reasons"]) <= 16
    for point in points("gen_ai.client.operation.duration") + points("gen_ai.client.token.usage"):
        assert "gen_ai.response.model" not in point.attributes, point.attributes
        assert len(str(point.attributes.get("gen_ai.request.model", ""))) <= 256


class _Plugin:
    """A driver written outside hfdriver: only the Driver protocol, no describe(), no cache code."""

    def __init__(self, name: str, *, fail: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.calls = 0

    async def generate(self, request: GenerateRequest) -> Any:
        from hfdriver import GenerateResponse, Output, Usage

        self.calls += 1
        if self.fail:
            raise HuggingFaceError(HuggingFaceErrorKind.SERVER, f"{self.name} is down", status=503)
        text = f"{self.name}: {request.messages[-1].text}"
        return GenerateResponse(
            outputs=(Output(text=text, finish_reason="stop"),), usage=Usage(1, 2, 3), model=request.model
        )

    def generate_stream(self, request: GenerateRequest) -> Any:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None

    async def __aenter__(self) -> _Plugin:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


@pytest.mark.parametrize("build", ["compose", "create_driver"])
async def test_a_plugin_gets_cache_fallback_and_spans_like_the_router_driver(
    build: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hfdriver.cache import MemoryCache
    from hfdriver.config import create_driver, register_driver

    primary, backup = _Plugin("primary"), _Plugin("backup")
    if build == "compose":
        driver: Any = compose(primary, cache=MemoryCache(), fallbacks=[("backup", backup)])
    else:
        import hfdriver.config._registry as registry
        from hfdriver.config import parse_config

        monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
        register_driver("plugin-primary", lambda config, token: primary)
        register_driver("plugin-backup", lambda config, token: backup)

        config = parse_config(
            {
                "llm": {
                    "provider": "plugin-primary",
                    "model": "p/m",
                    "fallbacks": ["backup"],
                    "cache": {"backend": "memory"},
                },
                "profiles": {"backup": {"provider": "plugin-backup"}},
            }
        )
        driver = create_driver(config)
    request = GenerateRequest.builder().model("p/m").user("hello").build()
    first = await driver.generate(request)
    again = await driver.generate(request)  # a cache hit: the plugin is not called again
    assert first.text == "primary: hello" and again.text == "primary: hello"
    assert again.cached and primary.calls == 1
    primary.fail = True  # a fallback, like the router driver's
    other = await driver.generate(GenerateRequest.builder().model("p/m").user("other").build())
    assert other.text == "backup: other" and other.route is not None and other.failed_routes
    spans = SPANS.get_finished_spans()
    assert len(spans) == 3 and all(s.name == "chat p/m" for s in spans)  # one span per call
    assert spans[1].attributes["hfdriver.cached"] is True
    assert spans[2].attributes["hfdriver.route"] == other.route
    await driver.aclose()


async def test_a_wrapper_refuses_an_operation_its_driver_lacks() -> None:
    from hfdriver import EmbedRequest

    driver = compose(_Plugin("no-embeddings"))
    with pytest.raises(HuggingFaceError) as info:
        await driver.embed(EmbedRequest(inputs="x", model="a/b"))  # type: ignore[attr-defined]
    assert info.value.kind is HuggingFaceErrorKind.MODEL_NOT_SUPPORTED
    assert "_Plugin does not compute embeddings" in info.value.message


async def test_embeddings_make_an_embeddings_span_client_and_server(router: FakeRouter) -> None:
    import aiohttp

    from hfdriver import EmbedRequest
    from hfdriver.server import OpenAIServer

    model = "BAAI/bge-small-en-v1.5"
    async with compose(HuggingFaceDriver("hf_secret_token_123", base_url=router.base_url)) as driver:
        response = await driver.embed(
            EmbedRequest(inputs=["secret text", "more"], model=model, dimensions=16)
        )
    span = only_span()
    assert span.name == f"embeddings {model}" and span.kind is trace.SpanKind.CLIENT
    a = span.attributes
    assert a["gen_ai.operation.name"] == "embeddings" and a["gen_ai.request.model"] == model
    assert a["gen_ai.embeddings.dimension.count"] == 16 == response.dimensions
    assert a["gen_ai.usage.input_tokens"] == response.usage.prompt_tokens  # type: ignore[union-attr]
    assert "secret text" not in repr(dict(a)) and "hf_secret" not in repr(dict(a))
    SPANS.clear()
    core = HuggingFaceDriver("hf_x", base_url=router.base_url, model=model)
    async with (
        OpenAIServer(core, port=0) as server,
        aiohttp.ClientSession() as session,
        session.post(f"{server.base_url}/embeddings", json={"input": ["a", "b"]}) as resp,
    ):
        assert resp.status == 200
    await core.aclose()
    spans = SPANS.get_finished_spans()
    (outer,) = [s for s in spans if s.kind is trace.SpanKind.SERVER]
    (inner,) = [s for s in spans if s.kind is trace.SpanKind.CLIENT]
    assert (
        outer.attributes["gen_ai.operation.name"] == inner.attributes["gen_ai.operation.name"] == "embeddings"
    )
    assert inner.parent is not None and inner.parent.span_id == outer.context.span_id
    assert outer.attributes["gen_ai.embeddings.dimension.count"] == 384


async def test_a_task_call_is_one_span_with_its_job_polls_as_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hfdriver.tasks import TaskClient
    from hfdriver.testing import FakeHub

    async with FakeRouter() as router, FakeRouter() as media, FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        hub.provider_mappings["org/video"] = [
            {"provider": "fal-ai", "providerId": "fal-ai/video", "status": "live", "task": "text-to-video"}
        ]
        router.fal_queue_job("fal-ai/video", {"video": {"url": f"{media.url}/v.mp4"}}, pending=2)
        media.script("/v.mp4", FakeResponse(body=b"\x00\x00\x00\x18ftypmp42"))
        async with TaskClient(token="hf_secret_token_123", router_url=router.url, poll_interval=0.001) as hf:
            await hf.text_to_video("a secret prompt", model="org/video")
    span = only_span()
    assert (
        span.name == "text-to-video org/video" and span.attributes["gen_ai.operation.name"] == "text-to-video"
    )
    assert span.attributes["hfdriver.inference_provider"] == "fal-ai"
    names = [event.name for event in span.events]
    assert names.count("hfdriver.job.poll") == 2 and names[-1] == "hfdriver.job.done"
    assert "a secret prompt" not in repr(dict(span.attributes)) and "hf_secret" not in repr(
        dict(span.attributes)
    )
