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
    tools = await cli(env, "models", "list", "--tools", extra_env={"HF_HUB_OFFLINE": "1"})
    assert tools.code == 1 and "no models match" not in tools.err
    assert "the catalogue has no tool information (offline: this is hfdriver's built-in list)" in tools.err
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


async def test_ctrl_c_stops_an_answer_keeps_the_conversation_and_unknown_commands_get_a_hint(
    env: dict[str, object],
) -> None:
    router: FakeRouter = env["router"]  # type: ignore[assignment]
    # 64-byte writes 50 ms apart: many seconds of answer unless the CLI hangs up.
    router.enqueue(FakeResponse.stream(["Once upon a time"] + [" and then"] * 300, delay=0.05, chunk_size=64))
    async with Terminal(env, "chat") as term:
        await term.until(b"you> ")
        term.type(b"Tell me a long story")
        await term.until(b"Once upon a time")
        term.proc.send_signal(signal.SIGINT)  # Ctrl-C while the answer streams
        await term.until(b"[stopped")
        await term.until(b"you> ")
        for _ in range(60):
            if router.open_connections == 0:
                break
            await asyncio.sleep(0.05)
        assert router.open_connections == 0  # the call was cancelled, not left running
        term.type(b"/bogus")
        await term.until(b"unknown command /bogus")
        term.type(b"And then?")
        await term.until(b"echo: And then?")
        await term.until(b"you> ", count=4)  # the prompt is back: Ctrl-D is read as end of input
        term.os_eof()
        assert await term.exit_code() == 0
    assert len(router.requests) == 2  # /bogus was never sent
    second = router.requests[1].json["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[0]["content"] == "Tell me a long story" and second[1]["content"].startswith(
        "Once upon a time"
    )


async def test_short_flags_subcommand_usage_and_logout(env: dict[str, object]) -> None:
    router: FakeRouter = env["router"]  # type: ignore[assignment]
    result = await cli(env, "chat", "-m", "acme/other", "-s", "Be brief.", "hi")
    assert result.code == 0, result.err
    sent = router.requests[-1].json
    assert sent["model"] == "acme/other" and sent["messages"][0] == {"role": "system", "content": "Be brief."}
    bad = await cli(env, "local", "pull", "acme/x:Q4_K_M", "--bogus")
    assert bad.code == 2 and bad.err.startswith("usage: hfdriver local pull")
    assert "unrecognized arguments: --bogus" in bad.err
    token_file = Path(env["environ"]["HF_HOME"]) / "token"  # type: ignore[index]
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(TOKEN)
    gone = await cli(env, "logout")
    assert gone.code == 0 and gone.out.strip() == f"deleted {token_file}" and not token_file.exists()
    again = await cli(env, "logout", extra_env={"HF_TOKEN": TOKEN})
    assert again.out.strip() == f"no saved token at {token_file}" and "HF_TOKEN is still set" in again.err
    assert TOKEN not in again.out + again.err


@pytest.mark.parametrize(
    ("argv", "probe"),
    [
        (("-m", "hfdriver.cli", "fake", "router"), "/v1/models"),
        (("-m", "hfdriver.testing", "hub"), "/api/models?search=llama&limit=1"),
    ],
)
async def test_the_fakes_start_from_the_shell(argv: tuple[str, ...], probe: str, tmp_path: Path) -> None:
    import aiohttp

    proc = await asyncio.create_subprocess_exec(
        sys.executable, *argv, stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stderr is not None
    line = (await asyncio.wait_for(proc.stderr.readline(), timeout=30)).decode()
    assert line.startswith("fake ") and " at http://127.0.0.1:" in line
    url = line.split(" at ", 1)[1].split()[0]
    async with aiohttp.ClientSession() as session, session.get(url + probe) as resp:
        assert resp.status == 200 and await resp.json()
    proc.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(proc.wait(), timeout=30) == 0


async def test_the_conversation_log_continue_and_attachments(env: dict[str, object], tmp_path: Path) -> None:
    import json

    router: FakeRouter = env["router"]  # type: ignore[assignment]
    assert (await cli(env, "chat", "-s", "Be brief.", "first question")).code == 0
    shown = await cli(env, "logs", "-n", "1")
    assert "> first question" in shown.out and "echo: first question" in shown.out
    again = await cli(env, "chat", "-c", "second question")
    assert again.code == 0 and "continuing the last conversation: 1 exchanges" in again.err
    assert [m["content"] for m in router.requests[-1].json["messages"]] == [
        "Be brief.", "first question", "echo: first question", "second question",
    ]  # fmt: skip
    assert (await cli(env, "chat", "--no-log", "not kept")).code == 0
    assert (await cli(env, "logs", "off")).code == 0
    assert (await cli(env, "chat", "not kept either")).code == 0
    assert (await cli(env, "logs", "on")).code == 0
    rows = [json.loads(line) for line in (await cli(env, "logs", "-n", "10", "--json")).out.splitlines()]
    assert [r["prompt"] for r in rows] == ["first question", "second question"]
    assert rows[0]["conversation"] == rows[1]["conversation"] and rows[0]["input_tokens"] > 0
    log_file = Path(env["environ"]["HF_HOME"]) / "hfdriver" / "logs.sqlite"  # type: ignore[index]
    assert TOKEN.encode() not in log_file.read_bytes()
    png = tmp_path / "dot.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 16)
    seen = await cli(env, "chat", "-a", str(png), "What is this?")
    assert seen.code == 0, seen.err
    content = router.requests[-1].json["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "What is this?"}
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")
    text = tmp_path / "notes.txt"
    text.write_text("hi")
    refused = await cli(env, "chat", "-a", str(text), "hi")
    assert refused.code == 2 and "only images can be attached" in refused.err


async def test_the_footer_says_when_an_answer_was_cut(env: dict[str, object]) -> None:
    result = await cli(env, "chat", "--max-tokens", "2", "one two three four five")
    assert result.code == 0, result.err
    assert result.out.strip() == "echo: one"  # the fake cut it at two words
    assert "finish: length (raise --max-tokens)" in result.err
    full = await cli(env, "chat", "short")
    assert "finish:" not in full.err  # a whole answer says nothing about it
