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
