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
