"""The CLI and configuration as a new user and a careless script meet them (issue 10, group 5)."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hfdriver import HuggingFaceDriver
from hfdriver._wrapper import core_of
from hfdriver.config import create_driver, load_config
from hfdriver.testing import FakeHub, FakeResponse, FakeRouter
from tests.integration.test_cli import TOKEN, Terminal, cli, cli_env

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[dict[str, object]]:
    async with cli_env(tmp_path) as environment:
        yield environment


async def test_a_closed_stdout_ends_quietly(env: dict[str, object]) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # `| head` that has already gone
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hfdriver.cli", "chat", "hello",
        stdin=asyncio.subprocess.DEVNULL, stdout=write_end, stderr=asyncio.subprocess.PIPE,
        env=dict(env["environ"]),  # type: ignore[call-overload]
    )  # fmt: skip
    os.close(write_end)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 141 and err == b""


@pytest.mark.parametrize(("args", "prompt"), [(("chat",), b"you> "), (("login",), b"input hidden")])
async def test_ctrl_c_at_a_prompt_exits(env: dict[str, object], args: tuple[str, ...], prompt: bytes) -> None:
    async with Terminal(env, *args) as term:
        await term.until(prompt)
        term.proc.send_signal(signal.SIGINT)  # Ctrl-C at the prompt
        assert await term.exit_code(timeout=10) == 130


async def test_interactive_chat_has_a_banner_and_local_commands(env: dict[str, object]) -> None:
    router: FakeRouter = env["router"]  # type: ignore[assignment]
    async with Terminal(env, "chat") as term:
        await term.until(b"you> ")
        assert b"chatting with meta-llama/Llama-3.2-1B-Instruct" in term.screen and b"/exit" in term.screen
        term.type(b"/help")
        await term.until(b"commands:")
        term.type(b"/exit")
        assert await term.exit_code() == 0
    assert router.requests == []  # /help and /exit never reach the model


async def test_debug_logs_each_request_without_the_token(env: dict[str, object]) -> None:
    result = await cli(env, "chat", "hi", "--debug", extra_env={"HF_TOKEN": TOKEN})
    assert result.code == 0, result.err
    line = next(line for line in result.err.splitlines() if "/v1/chat/completions" in line)
    assert "POST http://127.0.0.1:" in line and "-> 200 in " in line and "(attempt 1, request id " in line
    assert TOKEN not in result.err


async def test_piped_text_joins_the_prompt(env: dict[str, object]) -> None:
    router: FakeRouter = env["router"]  # type: ignore[assignment]
    result = await cli(env, "chat", "Summarise this:", stdin=b"a long document\n")
    assert result.code == 0, result.err
    assert router.requests[0].json["messages"][-1]["content"] == "Summarise this:\n\na long document"


async def test_bad_input_is_one_line_that_says_what_to_do(env: dict[str, object]) -> None:
    router: FakeRouter = env["router"]  # type: ignore[assignment]
    deep = Path(str(env["tmp"])) / "deep.toml"
    deep.write_text("x = " + "[" * 20_000 + "]" * 20_000 + "\n")
    cases = [
        (("--config", str(deep), "config", "show"), 1, "nested too deeply"),
        (("serve", "--port", "70000"), 2, "70000 is not a port"),
        (("serve", "--max-request-bytes", "-1"), 2, "must be at least 1"),
        (("chat", "--model", "a b", "hi"), 1, "INVALID_REQUEST: model: 'a b' is not a model id"),
        (("ollama", "pull", "a/b:Q4_K_M", "--ollama-url", "::garbage::"), 1, "is not an http(s):// URL"),
    ]
    for args, code, words in cases:
        result = await cli(env, *args)
        assert result.code == code and words in result.err, (args, result.err)
        assert "unexpected" not in result.err and "Traceback" not in result.err
    latin1 = await cli(env, "chat", stdin="café crème".encode("latin-1"))
    assert latin1.code == 2 and "stdin is not UTF-8" in latin1.err and "extra" not in latin1.err
    assert router.requests == []


async def test_config_show_redacts_secrets(env: dict[str, object]) -> None:
    config: Path = env["config"]  # type: ignore[assignment]
    config.write_text(
        '[llm]\nprovider = "acme-plugin"\nmodel = "a/b"\nbase_url = "https://user:s3cr3t-pass@host.example/v1"\n'
        '[llm.options]\napi_key = "sk-plugin-secret"\nregion = "eu"\nnote = "hf_abcdefghijklmnopqrstu"\n'
    )
    shown = await cli(env, "config", "show")
    assert shown.code == 0, shown.err
    assert "s3cr3t-pass" not in shown.out and "sk-plugin-secret" not in shown.out
    assert "hf_abcdefghijklmnopqrstu" not in shown.out
    assert "user:****@host.example" in shown.out and "api_key=****" in shown.out and "region=eu" in shown.out


async def test_login_warns_about_an_overriding_variable_and_keeps_its_directory_private(
    env: dict[str, object],
) -> None:
    home = Path(str(env["tmp"])) / "fresh" / "hf_home"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hfdriver.cli", "login", "--token", TOKEN,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**dict(env["environ"]), "HF_HOME": str(home), "HUGGINGFACE_API_TOKEN": "hf_other_0123456789"},  # type: ignore[call-overload]
        preexec_fn=lambda: os.umask(0),
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err
    assert b"HUGGINGFACE_API_TOKEN is set in the environment and takes precedence" in err
    for directory in (home, home.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "token").stat().st_mode) == 0o600


async def test_messages_point_at_the_right_setting(env: dict[str, object]) -> None:
    bad = await cli(env, "login", "--token", "hf_not_a_known_token_0123")
    assert bad.code == 1 and "rejected that token" in bad.err and "hfdriver login" not in bad.err
    router: FakeRouter = env["router"]  # type: ignore[assignment]
    router.enqueue(FakeResponse.error(429, "slow down", headers={"Retry-After": "3600"}))
    limited = await cli(env, "chat", "hi")
    assert (
        limited.code == 1
        and "RATE_LIMITED" in limited.err
        and "retries this automatically" not in limited.err
    )
    hub_down = await cli(env, "whoami", extra_env={"HF_ENDPOINT": "http://127.0.0.1:1", "HF_TOKEN": TOKEN})
    assert hub_down.code == 1 and "HF_ENDPOINT" in hub_down.err and "base_url" not in hub_down.err


async def test_a_port_in_use_says_to_pick_another(env: dict[str, object]) -> None:
    router: FakeRouter = env["router"]  # type: ignore[assignment]
    busy = await cli(env, "serve", "--port", str(router.port))
    assert busy.code == 1 and "CONFIG: cannot listen on 127.0.0.1" in busy.err and "--port" in busy.err


async def test_models_list_offline_falls_back_to_the_catalogue(env: dict[str, object]) -> None:
    config: Path = env["config"]  # type: ignore[assignment]
    hub: FakeHub = env["hub"]  # type: ignore[assignment]
    config.write_text(f'[llm]\nprovider = "huggingface"\nbase_url = "{hub.router_url}"\nmodel = "a/b"\n')
    result = await cli(env, "models", "list", extra_env={"HF_HUB_OFFLINE": "1"})
    assert result.code == 0, result.err
    assert "(built-in catalogue)" in result.out and "offline mode" in result.err
    assert hub.requests == []


async def test_re_pulling_an_installed_model_says_so(env: dict[str, object]) -> None:
    hub: FakeHub = env["hub"]  # type: ignore[assignment]
    hub.add_file("acme/tiny-GGUF", "tiny-Q4_K_M.gguf", b"GGUF" + b"\0" * 50_000)
    extra = {"HF_HUB_DISABLE_TELEMETRY": "1"}
    assert (await cli(env, "local", "pull", "acme/tiny-GGUF:Q4_K_M", extra_env=extra)).code == 0
    again = await cli(env, "local", "pull", "acme/tiny-GGUF:Q4_K_M", extra_env=extra)
    assert again.code == 0 and "already installed" in again.out and "100%" not in again.err


def test_an_endpoint_profile_does_not_inherit_the_routers_routing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "hfdriver.toml"
    config.write_text(
        '[llm]\nmodel = "a/b"\nrouting = "fastest"\n'
        '[profiles.vllm]\nprovider = "huggingface-endpoint"\nbase_url = "http://127.0.0.1:8000/v1"\n'
    )
    driver = core_of(create_driver(load_config(config), "vllm"))
    assert isinstance(driver, HuggingFaceDriver) and driver.routing is None
    assert isinstance(core_of(create_driver(load_config(config))), HuggingFaceDriver)


def test_the_example_configs_local_vllm_profile_is_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_API_TOKEN", "HUGGINGFACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    driver = create_driver(load_config(EXAMPLES / "hfdriver.toml"), "local-vllm")
    inner = core_of(driver)
    assert isinstance(inner, HuggingFaceDriver) and inner.token is None and inner.routing is None


async def test_a_prompt_with_an_idle_inherited_stdin_does_not_hang(env: dict[str, object]) -> None:
    # stdin is a pipe that nobody writes to or closes (a harness's): the prompt goes alone.
    read_end, write_end = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hfdriver.cli", "chat", "just this",
            stdin=read_end, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=dict(env["environ"]),  # type: ignore[call-overload]
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert proc.returncode == 0, err
    assert out.decode().strip() == "echo: just this"
