"""Nothing lost: a batch output, a dataset beside it, a cache path or a model store never cost the
user a file; a cache never answers for another model; nothing a server or a plugin does stops a
batch or stalls a caller."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hfdriver import GenerateRequest, HuggingFaceDriver, Message, RetryPolicy, Timeouts, compose
from hfdriver.batch import BatchResult, OutputFile, OutputLock, result_line, run_batch
from hfdriver.cache import CachedDriver, MemoryCache, SQLiteCache
from hfdriver.config import CacheConfig, LLMConfig, create_driver, parse_config
from hfdriver.driver import driver_identity
from hfdriver.dto.response import GenerateResponse, Output
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.hub import clear_price_cache
from hfdriver.testing import FakeResponse, FakeRouter

from .test_batch import run_cli, write_input

TOKEN = "hf_nothing_lost_token_0123456789"
MODEL = "meta-llama/Llama-3.2-1B-Instruct"


@pytest.fixture
async def router() -> AsyncIterator[FakeRouter]:
    async with FakeRouter() as fake:
        yield fake


def ask(text: str, model: str = MODEL) -> GenerateRequest:
    return GenerateRequest.builder().model(model).user(text).max_tokens(8).build()


def answered_line(custom_id: str, text: str = "earlier") -> bytes:
    response = GenerateResponse(outputs=(Output(text=text, finish_reason="stop"),))
    return result_line(BatchResult(custom_id=custom_id, response=response))


# ---------------------------------------------------------------------------- batch outputs

FOREIGN = {
    "batch input": b'{"custom_id": "a", "prompt": "keep me"}\n{"custom_id": "b", "prompt": "me too"}\n',
    "a dataset": b'{"text": "a row of my dataset", "label": 1}\n{"text": "another", "label": 0}\n',
    "a text file": b"my notes\nthat took a week to write\n",
}


@pytest.mark.parametrize("what", sorted(FOREIGN))
def test_an_output_that_holds_no_output_row_is_refused_and_kept(tmp_path: Path, what: str) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(FOREIGN[what])
    with pytest.raises(HuggingFaceError) as info:
        OutputFile(out).open()
    assert info.value.kind is HuggingFaceErrorKind.CONFIG
    assert "none is a batch output row" in info.value.message and "--restart" in info.value.message
    assert out.read_bytes() == FOREIGN[what]  # untouched
    OutputFile(out, resume=False).open().close()  # --restart: overwritten on purpose
    assert out.read_bytes() == b""


async def test_cli_refuses_a_dataset_as_output_and_sends_nothing(router: FakeRouter, tmp_path: Path) -> None:
    source, dataset = write_input(tmp_path / "in.jsonl", 3), tmp_path / "dataset.jsonl"
    dataset.write_bytes(FOREIGN["a dataset"])
    code, _, err = await run_cli(router, tmp_path, str(source), "-o", str(dataset))
    assert code == 1 and "none is a batch output row" in err and "JSON lines that are not batch output" in err
    assert dataset.read_bytes() == FOREIGN["a dataset"]
    assert not router.requests


@pytest.mark.parametrize("link", ["hard", "symbolic"])
async def test_restart_never_truncates_the_input_under_another_name(
    router: FakeRouter, tmp_path: Path, link: str
) -> None:
    source = write_input(tmp_path / "in.jsonl", 3)
    before = source.read_bytes()
    other = tmp_path / "other-name.jsonl"
    (os.link if link == "hard" else os.symlink)(source, other)
    code, _, err = await run_cli(router, tmp_path, str(source), "-o", str(other), "--restart")
    assert code == 2 and "must not be the input" in err, err
    assert source.read_bytes() == before
    assert not router.requests


async def test_a_second_run_on_the_same_output_is_refused(tmp_path: Path) -> None:
    source, out = write_input(tmp_path / "in.jsonl", 12), tmp_path / "out.jsonl"
    async with FakeRouter(latency=0.3) as router:
        first = await run_cli(router, tmp_path, str(source), "-o", str(out), "--concurrency", "2", wait=False)
        for _ in range(200):
            await asyncio.sleep(0.05)
            if router.requests:
                break
        code, _, err = await run_cli(router, tmp_path, str(source), "-o", str(out))
        assert code == 1, err
        assert "another hfdriver batch (process" in err and "is writing" in err
        _, first_err = await asyncio.wait_for(first.communicate(), 60)
        assert first.returncode == 0, first_err.decode()
        sent = [r for r in router.requests if r.path == "/v1/chat/completions"]
    ids = [json.loads(line)["custom_id"] for line in out.read_bytes().splitlines()]
    assert sorted(ids) == sorted(f"r{i}" for i in range(12))  # every row once
    assert len(sent) == 12  # none paid twice


def test_the_lock_dies_with_its_holder(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\nfrom hfdriver.batch import OutputLock\n"
         f"OutputLock(Path({str(out)!r})).acquire()\nprint('locked', flush=True)\ntime.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(HuggingFaceError, match=f"process {holder.pid}"):
            OutputLock(out).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    OutputLock(out).acquire().release()  # a SIGKILLed holder leaves nothing that blocks


def test_a_damaged_line_that_still_parses_is_sent_again(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    damaged = answered_line("b", "café au lait").replace("café".encode(), b"caf\xff")
    assert json.loads(damaged.decode("utf-8", "replace"))["custom_id"] == "b"  # parses when decoded loosely
    out.write_bytes(answered_line("a") + damaged + answered_line("c"))
    output = OutputFile(out).open()
    output.close()
    assert "a" in output.done and "c" in output.done
    assert "b" not in output.done  # dropped, so the rerun sends it again
    assert b"\xff" not in out.read_bytes()


# ---------------------------------------------------------------------------- run_batch


class _Buggy:
    """A plugin driver with a bug for one row."""

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        if "bad" in request.messages[-1].text:
            raise ValueError("the plugin tripped over its own feet")
        return GenerateResponse(outputs=(Output(text="fine", finish_reason="stop"),))

    def generate_stream(self, request: GenerateRequest) -> Any:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None

    async def __aenter__(self) -> _Buggy:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


async def test_a_driver_bug_fails_its_row_and_the_batch_goes_on() -> None:
    rows = [(f"r{i}", ask("bad" if i == 2 else f"good {i}")) for i in range(6)]
    results = {r.custom_id: r async for r in run_batch(_Buggy(), rows, concurrency=3)}  # type: ignore[arg-type]
    assert len(results) == 6
    bad = results.pop("r2")
    assert bad.error is not None and bad.error.kind is HuggingFaceErrorKind.SERVER
    assert "ValueError" in bad.error.message and "feet" in bad.error.message
    assert all(r.ok for r in results.values())


async def test_a_huge_concurrency_costs_only_the_rows_in_flight(router: FakeRouter, tmp_path: Path) -> None:
    async with HuggingFaceDriver(TOKEN, base_url=router.base_url) as driver:
        rows = [(f"r{i}", ask(f"q{i}")) for i in range(3)]
        results = [r async for r in run_batch(driver, rows, concurrency=100_000_000)]
    assert sorted(r.custom_id for r in results) == ["r0", "r1", "r2"] and all(r.ok for r in results)
    source, out = write_input(tmp_path / "in.jsonl", 3), tmp_path / "out.jsonl"
    code, _, err = await run_cli(router, tmp_path, str(source), "-o", str(out), "--concurrency", "100000000")
    assert code == 0, err


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "86400"},
        {"retry-after-ms": "3600000"},
        {"Retry-After": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 86400))},
    ],
    ids=["a day in seconds", "an hour in ms", "a date a day ahead"],
)
async def test_a_day_long_retry_after_pauses_a_batch_no_longer_than_the_policy(
    router: FakeRouter, headers: dict[str, str]
) -> None:
    router.fail_when("q1", FakeResponse.error(429, "slow down", headers=headers), times=1)
    rows = [(f"r{i}", ask(f"q{i}")) for i in range(6)]
    started = time.monotonic()
    async with HuggingFaceDriver(
        TOKEN, base_url=router.base_url, retry=RetryPolicy(attempts=3, max_retry_after=1.0)
    ) as driver:
        results = {r.custom_id: r async for r in run_batch(driver, rows, concurrency=2)}
    assert time.monotonic() - started < 15  # not a day
    refused = results["r1"]
    assert refused.error is not None and refused.error.kind is HuggingFaceErrorKind.RATE_LIMITED
    assert all(results[f"r{i}"].ok for i in (0, 2, 3, 4, 5))


# ---------------------------------------------------------------------------- the cache file


def _foreign_sqlite(path: Path) -> bytes:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
        db.execute("INSERT INTO invoices (amount) VALUES (12.5)")
    db.close()
    return path.read_bytes()


def _fifo(path: Path) -> None:
    os.mkfifo(path)


THINGS = {
    "a text file": lambda p: p.write_bytes(b"my notes\n"),
    "a JSONL dataset": lambda p: p.write_bytes(FOREIGN["a dataset"]),
    "another program's database": _foreign_sqlite,
    "a FIFO": _fifo,
    "a directory": lambda p: p.mkdir(),
}


def _snapshot(path: Path) -> Any:
    info = os.lstat(path)
    content = path.read_bytes() if stat.S_ISREG(info.st_mode) else None
    return stat.S_IFMT(info.st_mode), content, sorted(os.listdir(path.parent))


@pytest.mark.parametrize("what", sorted(THINGS))
async def test_the_cache_never_touches_what_is_not_its_own(tmp_path: Path, what: str) -> None:
    path = tmp_path / "cache.sqlite"
    THINGS[what](path)
    before = _snapshot(path)
    store = SQLiteCache(path)
    with pytest.raises(HuggingFaceError) as info:
        store.check()
    assert info.value.kind is HuggingFaceErrorKind.CONFIG and str(path) in info.value.message
    assert await asyncio.wait_for(store.get("k"), 5) is None  # a miss, never an error (nor a hang)
    await asyncio.wait_for(store.set("k", b"v"), 5)
    with pytest.raises(HuggingFaceError):
        await asyncio.wait_for(store.clear(), 5)
    await store.stats()
    await store.aclose()
    assert _snapshot(path) == before  # not rewritten, converted, deleted or joined by -wal/-shm files


async def test_a_symlink_at_the_cache_path_leaves_its_target_alone(tmp_path: Path) -> None:
    target, path = tmp_path / "precious.db", tmp_path / "cache.sqlite"
    content = _foreign_sqlite(target)
    path.symlink_to(target)
    store = SQLiteCache(path)
    await store.set("k", b"v")
    with pytest.raises(HuggingFaceError, match="symbolic link"):
        await store.clear()
    await store.aclose()
    assert target.read_bytes() == content and path.is_symlink()


@pytest.mark.parametrize("what", ["a text file", "another program's database", "a directory"])
async def test_cache_commands_refuse_in_one_line(tmp_path: Path, what: str) -> None:
    from .test_cache import _cli

    path = tmp_path / "cache.sqlite"
    THINGS[what](path)
    before = _snapshot(path)
    for command in ("stats", "clear"):
        code, out, err = await _cli(command, "--path", str(path), home=tmp_path)
        assert code == 1, (out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: CONFIG: cache path") and str(path) in lines[0]
    assert _snapshot(path) == before


async def test_a_nul_in_the_cache_path_is_one_line_and_never_fails_a_generate(
    router: FakeRouter, tmp_path: Path
) -> None:
    store = SQLiteCache("cache\x00.sqlite")
    with pytest.raises(HuggingFaceError, match="NUL"):
        store.check()
    for path in ("cache\x00.sqlite", str(tmp_path)):  # a NUL; a directory
        llm = LLMConfig(
            provider="huggingface-endpoint",
            base_url=router.base_url,
            model=MODEL,
            cache=CacheConfig(enabled=True, path=path),
        )
        async with create_driver(llm) as driver:
            assert (await driver.generate(ask("still answered"))).text == "echo: still answered"


async def test_cache_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "hfdriver" / "cache.sqlite"
    store = SQLiteCache(path)
    await store.set("k", b"a private answer")
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if name.exists():
            assert stat.S_IMODE(name.stat().st_mode) == 0o600, name
    await store.aclose()
    os.chmod(path, 0o644)  # a cache written by an earlier hfdriver
    store = SQLiteCache(path)
    assert await store.get("k") == b"a private answer"
    await store.aclose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_an_answer_stored_while_the_clock_was_ahead_is_expired(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    store = SQLiteCache(path, ttl=60)
    await store.set("k", b"v")
    await store.aclose()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE entries SET created = ?", (time.time() + 3600,))
    db.close()
    store = SQLiteCache(path, ttl=60)
    assert await store.get("k") is None
    await store.aclose()


def test_a_size_below_one_byte_names_the_file_and_the_key(tmp_path: Path) -> None:
    config = tmp_path / "hfdriver.toml"
    with pytest.raises(HuggingFaceError) as info:
        parse_config({"llm": {"cache": {"max_size": "0.5"}}}, config)
    message = info.value.message
    assert info.value.kind is HuggingFaceErrorKind.CONFIG
    assert str(config) in message and "[llm.cache] max_size" in message and "'0.5'" in message


async def test_a_follower_does_not_wait_on_a_stalled_leader_stream(router: FakeRouter) -> None:
    router.enqueue(FakeResponse.stream(["a ", "b ", "c"]))
    request = ask("same question")
    async with compose(
        HuggingFaceDriver(TOKEN, base_url=router.base_url, timeouts=Timeouts(read=0.5)), cache=MemoryCache()
    ) as driver:
        leader = driver.generate_stream(request)
        await leader.__aenter__()
        await leader.__anext__()  # one chunk read, then its reader stops reading
        started = time.monotonic()
        answer = await asyncio.wait_for(driver.generate(request), 10)
        waited = time.monotonic() - started
        await leader.aclose()
    assert answer.text == "echo: same question"  # its own call upstream
    assert waited < 5
    assert len([r for r in router.requests if r.path == "/v1/chat/completions"]) == 2


# ---------------------------------------------------------------------------- answers of one driver only


class _Plugin:
    """A plugin driver whose answers depend on its settings."""

    def __init__(self, endpoint: str, style: str = "plain") -> None:
        self.endpoint = endpoint
        self.style = style
        self.api_key = "sk-never-in-a-key"

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        text = f"{self.endpoint}/{self.style}"
        return GenerateResponse(outputs=(Output(text=text, finish_reason="stop"),))

    def generate_stream(self, request: GenerateRequest) -> Any:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None

    async def __aenter__(self) -> _Plugin:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


async def test_plugin_drivers_that_differ_never_share_answers() -> None:
    cache = MemoryCache()
    answers = []
    for plugin in (_Plugin("a"), _Plugin("b"), _Plugin("a", "fancy"), _Plugin("a")):
        answers.append((await CachedDriver(plugin, cache).generate(ask("same"))).text)  # type: ignore[arg-type]
    assert answers == ["a/plain", "b/plain", "a/fancy", "a/plain"]
    assert "sk-never-in-a-key" not in driver_identity(_Plugin("a"))


def test_local_drivers_that_differ_never_share_answers(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp", reason="the local extra installs llama-cpp-python")
    from hfdriver.local import LocalDriver

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "model.gguf").write_bytes(b"GGUF" + folder.encode() * 100)
    drivers = [
        LocalDriver(tmp_path / "a" / "model.gguf"),
        LocalDriver(tmp_path / "b" / "model.gguf"),
        LocalDriver(tmp_path / "a" / "model.gguf", chat_format="chatml"),
        LocalDriver(tmp_path / "a" / "model.gguf", default_max_tokens=64),
        LocalDriver("bartowski/X-GGUF", quantization="Q4_K_M"),
        LocalDriver("bartowski/X-GGUF", quantization="Q8_0"),
        LocalDriver("unsloth/X-GGUF", quantization="Q4_K_M"),
    ]
    namespaces = [CachedDriver(d, MemoryCache()).namespace for d in drivers]
    assert len(set(namespaces)) == len(drivers), namespaces
    again = CachedDriver(LocalDriver(tmp_path / "a" / "model.gguf"), MemoryCache()).namespace
    assert again == namespaces[0]  # the same settings: the same answers


# ---------------------------------------------------------------------------- fallback breakers


async def test_one_failing_model_never_diverts_another(router: FakeRouter) -> None:
    router.fail_when("", FakeResponse.error(503, "A is down"), model="org/model-a")
    async with compose(
        HuggingFaceDriver(TOKEN, base_url=router.base_url, retry=RetryPolicy(attempts=1)),
        fallbacks=["backup/model"],
    ) as driver:
        for _ in range(3):
            failed_over = await driver.generate(ask("for A", model="org/model-a"))
            assert failed_over.route == "backup/model"
        healthy = await driver.generate(ask("for B", model="org/model-b"))
    assert healthy.route == "the request's model" and healthy.failed_routes == ()
    assert router.requests[-1].json["model"] == "org/model-b"


# ---------------------------------------------------------------------------- prices


@pytest.mark.parametrize("price", [-1.0, float("nan"), 1e308], ids=["negative", "nan", "huge"])
async def test_a_nonsense_price_never_fails_an_answer(price: float, caplog: pytest.LogCaptureFixture) -> None:
    clear_price_cache()
    models = [
        {
            "id": MODEL,
            "providers": [
                {"provider": "novita", "status": "live", "pricing": {"input": price, "output": price}}
            ],
        }
    ]
    async with FakeRouter(provider="novita", models=models) as router:
        router.enqueue(FakeResponse.completion("fine " * 1000, prompt_tokens=10**6))
        with caplog.at_level(logging.WARNING, logger="hfdriver"):
            async with HuggingFaceDriver(TOKEN, base_url=router.base_url, costs=True) as driver:
                answer = await driver.generate(ask("one"))
                async with driver.generate_stream(ask("two")) as stream:
                    streamed = await stream.collect()
                rows = [(f"r{i}", ask(f"q{i}")) for i in range(3)]
                results = [r async for r in run_batch(driver, rows)]
    clear_price_cache()
    assert answer.text.startswith("fine") and answer.cost is None
    assert streamed.cost is None
    assert len(results) == 3 and all(r.ok and r.cost is None for r in results)
    assert any("novita" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


# ---------------------------------------------------------------------------- the CLI and serve


async def test_chat_with_stdout_closed_says_so_and_sends_nothing(router: FakeRouter, tmp_path: Path) -> None:
    config = tmp_path / "hfdriver.toml"
    config.write_text(
        f'[llm]\nprovider = "huggingface-endpoint"\nbase_url = "{router.base_url}"\nmodel = "{MODEL}"\n'
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    environ.update(HF_HOME=str(tmp_path / "hf"), HFDRIVER_CONFIG=str(config))
    proc = await asyncio.create_subprocess_exec(
        "sh", "-c", f'exec "{sys.executable}" -m hfdriver.cli chat "hello" >&-',
        stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=environ, cwd=str(tmp_path),
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    text = err.decode()
    assert proc.returncode == 1, text
    assert "stdout is closed" in text and "AttributeError" not in text
    assert not router.requests


@pytest.mark.parametrize("text", ["\udcff", "fine \ud800 then"])
async def test_a_lone_surrogate_names_the_field(router: FakeRouter, text: str) -> None:
    request = GenerateRequest(messages=(Message.system("ok"), Message.user(text)), model=MODEL)
    async with HuggingFaceDriver(TOKEN, base_url=router.base_url) as driver:
        with pytest.raises(HuggingFaceError) as info:
            await driver.generate(request)
        with pytest.raises(HuggingFaceError) as streamed:
            async with driver.generate_stream(request) as stream:
                await stream.collect()
    for error in (info.value, streamed.value):
        assert error.kind is HuggingFaceErrorKind.INVALID_REQUEST
        assert error.message.startswith("messages[1].content"), error.message
    assert not router.requests


async def test_serve_names_the_field_of_a_lone_surrogate(router: FakeRouter) -> None:
    from aiohttp import ClientSession

    from hfdriver.server import OpenAIServer

    driver = HuggingFaceDriver(TOKEN, base_url=router.base_url, model=MODEL)
    body = b'{"messages": [{"role": "user", "content": "bad \\ud800 text"}]}'
    async with (
        OpenAIServer(driver, port=0) as server,
        ClientSession() as http,
        http.post(
            f"{server.base_url}/chat/completions", data=body, headers={"Content-Type": "application/json"}
        ) as resp,
    ):
        status, payload = resp.status, await resp.json()
    await driver.aclose()
    assert status == 400
    assert payload["error"]["message"].startswith("messages[0].content"), payload
    assert not router.requests


def test_serve_local_without_llama_cpp_refuses_before_listening(tmp_path: Path) -> None:
    script = (
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'llama_cpp' or name.startswith('llama_cpp.'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from hfdriver.cli import main\n"
        "sys.exit(main(['serve', '--local', '--port', '0']))\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    environ["HF_HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=environ, cwd=tmp_path
    )
    assert done.returncode == 1, done.stderr
    assert "pip install 'hfdriver[local]'" in done.stderr
    assert "serving" not in done.stderr
