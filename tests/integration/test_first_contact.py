"""First contact from a fresh clone: no token, no configuration, an empty folder (issue 24)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.integration.test_cli import Result


def bare_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "HFDRIVER"))}
    env.update(
        HF_HOME=str(tmp_path / "hf_home"), XDG_CONFIG_HOME=str(tmp_path / "config"), PYTHONUNBUFFERED="1"
    )
    return env


async def hfdriver(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    folder = tmp_path / "empty"
    folder.mkdir(exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hfdriver.cli", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env or bare_env(tmp_path), cwd=str(folder),
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


async def test_chat_without_token_or_config_uses_the_embedded_model_and_says_so(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp", reason="the local extra runs the embedded model")
    result = await hfdriver(tmp_path, "chat", "What is the capital of France?")
    assert result.code == 0, result.err
    assert "Paris" in result.out
    assert "no Hugging Face token and no hfdriver.toml: using the embedded local model" in result.err


@pytest.mark.parametrize("how", ["--model", "config"])
async def test_a_router_model_without_a_token_names_every_way_out(tmp_path: Path, how: str) -> None:
    env = bare_env(tmp_path)
    args = ["chat", "hi"]
    if how == "--model":
        args += ["--model", "meta-llama/Llama-3.2-1B-Instruct"]
    else:
        config = tmp_path / "hfdriver.toml"
        config.write_text('[llm]\nmodel = "meta-llama/Llama-3.2-1B-Instruct"\n')
        env["HFDRIVER_CONFIG"] = str(config)
    result = await hfdriver(tmp_path, *args, env=env)
    assert result.code == 1 and result.out == ""
    line = result.err.strip()
    assert line.startswith("error: CONFIG: no Hugging Face token found") and "\n" not in line
    for way in ("--local", "hfdriver login", "HF_TOKEN"):
        assert way in line


async def test_serve_without_a_token_warns_and_logs_each_request(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hfdriver.cli", "serve", "--port", "0", "--model", "meta-llama/Llama-3.2-1B-Instruct",
        "--no-store", stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=bare_env(tmp_path),
    )  # fmt: skip
    assert proc.stderr is not None
    lines = []
    while not lines or "hfdriver serving" not in lines[-1]:
        lines.append((await asyncio.wait_for(proc.stderr.readline(), timeout=30)).decode())
    assert "no Hugging Face token found" in lines[0] and "--local" in lines[0]
    base = lines[-1].split(" at ", 1)[1].split()[0]
    body = {"messages": [{"role": "user", "content": "a secret prompt"}]}
    async with (
        aiohttp.ClientSession() as session,
        session.post(base + "/chat/completions", json=body) as resp,
    ):
        assert resp.status == 500 and "no Hugging Face token" in (await resp.json())["error"]["message"]
    access = ""
    while "/v1/chat/completions" not in access:
        access = (await asyncio.wait_for(proc.stderr.readline(), timeout=10)).decode()
    assert '"POST /v1/chat/completions" 500' in access and "model=meta-llama/Llama-3.2-1B-Instruct" in access
    assert "secret" not in access
    proc.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(proc.wait(), timeout=30) == 0


# ---------------------------------------------------------------------------- profiles and fallbacks
def test_a_local_profile_does_not_inherit_the_routers_model(tmp_path: Path) -> None:
    from hfdriver.config import load_config

    config = tmp_path / "hfdriver.toml"
    config.write_text(
        '[llm]\nmodel = "meta-llama/Llama-3.2-1B-Instruct"\nbase_url = "http://127.0.0.1:1/v1"\n'
        "[llm.options]\nseed = 1\n\n"
        '[profiles.local]\nprovider = "huggingface-local"\n\n'
        "[profiles.big]\nmax_tokens = 99\n"
    )
    loaded = load_config(config)
    local = loaded.profile("local")
    assert (local.provider, local.model, local.base_url, dict(local.options)) == (
        "huggingface-local",
        None,
        None,
        {},
    )
    big = loaded.profile("big")  # the same provider: everything is inherited
    assert (big.model, big.base_url, big.max_tokens) == (
        "meta-llama/Llama-3.2-1B-Instruct",
        "http://127.0.0.1:1/v1",
        99,
    )


async def test_a_route_without_a_token_and_a_host_that_does_not_resolve_fall_over_at_once() -> None:
    from hfdriver import FallbackDriver, GenerateRequest, HuggingFaceDriver, RetryPolicy
    from hfdriver.auth import NO_TOKEN
    from hfdriver.testing import FakeRouter
    from hfdriver.transport import get_on_retry_hooks, set_on_retry_hooks

    retries: list[object] = []
    before = get_on_retry_hooks()
    set_on_retry_hooks([*before, retries.append])
    policy = RetryPolicy(attempts=4)
    request = GenerateRequest.builder().user("hi").build()
    async with (
        FakeRouter() as router,
        HuggingFaceDriver(NO_TOKEN, model="meta-llama/Llama-3.2-1B-Instruct", retry=policy) as no_token,
        HuggingFaceDriver(
            "hf_x", base_url="http://no-such-host.invalid/v1", model="m", retry=policy
        ) as nowhere,
        HuggingFaceDriver(base_url=router.base_url, model="m") as working,
    ):
        no_token._token = None  # type: ignore[attr-defined]  # as a router driver that found none
        fallback = FallbackDriver([("router", no_token), ("nowhere", nowhere), ("local", working)])
        try:
            response = await fallback.generate(request)
        finally:
            set_on_retry_hooks(before)
    assert response.text == "echo: hi"
    assert [(f.route, f.kind) for f in response.failed_routes] == [
        ("router", "CONFIG"),
        ("nowhere", "CONNECTION"),
    ]
    assert "does not resolve" in response.failed_routes[1].message
    assert retries == []  # neither was retried: the next route answered at once
