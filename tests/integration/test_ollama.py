from __future__ import annotations

import pytest

from hfdriver import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.ollama import PullProgress, ollama_model_ref, ollama_pull
from hfdriver.testing import FakeOllama

K = HuggingFaceErrorKind


@pytest.mark.parametrize(
    ("spec", "ref"),
    [
        ("bartowski/Llama-3.2-1B-Instruct-GGUF:q4_k_m", "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"),
        ("bartowski/Llama-3.2-1B-Instruct-GGUF", "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF"),
        ("hf.co/unsloth/gemma-3-270m-it-GGUF:Q8_0", "hf.co/unsloth/gemma-3-270m-it-GGUF:Q8_0"),
    ],
)
def test_model_refs(spec: str, ref: str) -> None:
    assert ollama_model_ref(spec) == ref


def test_bad_ref_is_invalid_request() -> None:
    with pytest.raises(HuggingFaceError) as info:
        ollama_model_ref("just-a-name")
    assert info.value.kind is K.INVALID_REQUEST


async def test_pull_streams_progress_to_success() -> None:
    seen: list[PullProgress] = []
    async with FakeOllama() as ollama:
        name = await ollama_pull(
            "bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", ollama_url=ollama.url, on_progress=seen.append
        )
        assert ollama.requests == [
            {"model": "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "stream": True}
        ]
        assert ollama.pulled == [name]
    assert seen[0].status == "pulling manifest" and seen[-1].status == "success"
    downloading = [p for p in seen if p.total]
    assert downloading and downloading[-1].fraction == 1.0 and downloading[0].fraction == 0.0


async def test_pull_of_a_missing_model_is_not_found() -> None:
    async with FakeOllama() as ollama:
        with pytest.raises(HuggingFaceError, match="file does not exist") as info:
            await ollama_pull("nobody/nothing-GGUF:Q4_K_M", ollama_url=ollama.url)
    assert info.value.kind is K.NOT_FOUND


async def test_ollama_not_running_says_to_start_it() -> None:
    async with FakeOllama() as gone:
        url = gone.url
    with pytest.raises(HuggingFaceError, match="ollama serve") as info:
        await ollama_pull("a/b:Q4_K_M", ollama_url=url)
    assert info.value.kind is K.CONNECTION


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"[1]\n", "not a JSON object but a list"),
        (b"5\n", "not a JSON object but a int"),
        (b"null\n", "not a JSON object but a NoneType"),
        (b'{"status": "downloading", "total": "lots", "completed": 1}\n', "total is not a number"),
        (b'{"status": "downloading", "total": 10, "completed": -1}\n', "negative completed"),
        (b"{" + b" " * (1024 * 1024) + b"}\n", "too long"),
        (b"{not json\n", "not JSON"),
    ],
    ids=["list", "number", "null", "text-total", "negative", "1MB-line", "garbage"],
)
async def test_hostile_progress_lines_are_decode_errors(body: bytes, words: str) -> None:
    from aiohttp import web

    async def pull(request: web.Request) -> web.Response:
        return web.Response(
            body=b'{"status": "pulling manifest"}\n' + body, content_type="application/x-ndjson"
        )

    app = web.Application()
    app.router.add_post("/api/pull", pull)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        with pytest.raises(HuggingFaceError, match=words) as info:
            await ollama_pull("a/b:Q4_K_M", ollama_url=f"http://127.0.0.1:{runner.addresses[0][1]}")
    finally:
        await runner.cleanup()
    assert info.value.kind is K.DECODE
