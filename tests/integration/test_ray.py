"""The batch on a local Ray instance (2 CPUs, no dashboard) against a rate-limited FakeRouter."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="the Ray engine needs the ray extra: pip install 'hfdriver[ray]'")

from hfdriver.batch import BatchResult, result_line  # noqa: E402
from hfdriver.batch.ray import run_batch_on_ray  # noqa: E402
from hfdriver.config import LLMConfig  # noqa: E402
from hfdriver.dto.response import GenerateResponse, Output  # noqa: E402
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind  # noqa: E402
from hfdriver.testing import FakeResponse, FakeRouter  # noqa: E402

MODEL = "meta-llama/Llama-3.2-1B-Instruct"


@pytest.fixture(scope="module", autouse=True)
def _ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def write_input(path: Path, n: int) -> Path:
    path.write_text(
        "".join(json.dumps({"custom_id": f"r{i}", "prompt": f"question {i}"}) + "\n" for i in range(n))
    )
    return path


def output_rows(directory: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line) for f in sorted(directory.glob("*.jsonl")) for line in f.read_text().splitlines()
    ]


def llm_for(router: FakeRouter) -> LLMConfig:
    return LLMConfig(provider="huggingface-endpoint", base_url=router.base_url, model=MODEL)


async def run(source: Path, out: Path, router: FakeRouter, **kw: Any) -> Any:
    return await asyncio.to_thread(run_batch_on_ray, source, out, llm=llm_for(router), **kw)


async def test_every_row_once_and_the_limit_shared_by_the_workers(tmp_path: Path) -> None:
    source, out = write_input(tmp_path / "in.jsonl", 400), tmp_path / "out"
    async with FakeRouter(
        rate_limit=40, burst=4, fractional_retry_after=True, latency=0.01, record=False
    ) as router:
        summary = await run(source, out, router, workers=2, concurrency=16, batch_size=50)
        per_second = router.per_second()
        rejected = router.rate_limited
    rows = output_rows(out)
    ids = [r["custom_id"] for r in rows]
    assert sorted(ids) == sorted(f"r{i}" for i in range(400))  # all, once
    assert all(r["response"]["status_code"] == 200 for r in rows)
    assert summary.succeeded == 400 and summary.failed == 0
    assert len(list(out.glob("hfdriver-part-*.jsonl"))) >= 2  # a part file per worker
    # Two workers together stayed under the one limit: never more than rate + burst a second.
    assert max(per_second) <= 40 + 4 + 1, per_second
    assert rejected < 40, rejected


async def test_resume_sends_only_what_is_missing(tmp_path: Path) -> None:
    source, out = write_input(tmp_path / "in.jsonl", 150), tmp_path / "out"
    out.mkdir()
    answered = GenerateResponse(outputs=(Output(text="earlier", finish_reason="stop"),))
    failed = HuggingFaceError(HuggingFaceErrorKind.SERVER, "boom", status=500)
    earlier = b"".join(result_line(BatchResult(custom_id=f"r{i}", response=answered)) for i in range(100))
    earlier += result_line(BatchResult(custom_id="r100", error=failed))
    earlier += result_line(BatchResult(custom_id="r101", response=answered))[:30]  # torn by a kill
    (out / "hfdriver-part-earlier.jsonl").write_bytes(earlier)  # an earlier run's part file
    async with FakeRouter() as router:
        summary = await run(source, out, router, workers=2, concurrency=8)
        sent = sum(1 for r in router.requests if r.path == "/v1/chat/completions")
    assert sent == 50  # r100..r149: the failed row and the torn one included
    assert summary.skipped == 100
    ids = Counter(r["custom_id"] for r in output_rows(out))
    assert set(ids) == {f"r{i}" for i in range(150)} and max(ids.values()) == 1
    assert (
        sum(
            1
            for r in output_rows(out)
            if r["response"]["body"]["choices"][0]["message"]["content"] == "earlier"
        )
        == 100
    )


def worker_pids() -> list[int]:
    """Processes of the pool's actors (Ray titles them ``ray::QueueWorker...``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith((b"ray::QueueWorker", b"ray::MapWorker")):
                pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker processes in /proc (Linux)")
async def test_a_worker_killed_mid_run_loses_no_row(tmp_path: Path) -> None:
    source, out = write_input(tmp_path / "in.jsonl", 300), tmp_path / "out"
    async with FakeRouter(latency=0.05, record=False) as router:
        job = asyncio.ensure_future(run(source, out, router, workers=2, concurrency=4, batch_size=30))
        for _ in range(600):
            await asyncio.sleep(0.05)
            if router.served >= 40 and worker_pids():  # the pool is up (this program starts first)
                break
        pids = worker_pids()
        assert pids, "no worker actor found"
        served_before = router.served
        os.kill(pids[0], signal.SIGKILL)
        summary = await asyncio.wait_for(job, 240)
    ids = Counter(r["custom_id"] for r in output_rows(out))
    assert set(ids) == {f"r{i}" for i in range(300)}
    assert max(ids.values()) == 1  # the killed block was redone, and written once
    assert summary.failed == 0
    assert 0 < served_before < 300


async def test_payment_required_stops_every_worker(tmp_path: Path) -> None:
    source, out = write_input(tmp_path / "in.jsonl", 400), tmp_path / "out"
    async with FakeRouter() as router:
        router.fail_when("", FakeResponse.error(402, "You have exceeded your monthly included credits"))
        with pytest.raises(HuggingFaceError) as info:
            await run(source, out, router, workers=2, concurrency=4)
        sent = len(router.requests)
    assert info.value.kind is HuggingFaceErrorKind.PAYMENT_REQUIRED
    assert "stopped early" in info.value.message
    assert sent < 40  # not 400
    assert output_rows(out) == []  # nothing recorded: a rerun sends every row


async def test_cli_engine_ray(tmp_path: Path) -> None:
    source, out = write_input(tmp_path / "in.jsonl", 60), tmp_path / "out"
    with source.open("a") as handle:
        handle.write("not json\n")
    async with FakeRouter() as router:
        config = tmp_path / "hfdriver.toml"
        config.write_text(
            f'[llm]\nprovider = "huggingface-endpoint"\nbase_url = "{router.base_url}"\nmodel = "{MODEL}"\n'
        )
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "RAY_ADDRESS"))}
        environ.update(HF_HOME=str(tmp_path / "hf"), HFDRIVER_CONFIG=str(config))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hfdriver.cli", "batch", str(source), "-o", str(out), "--engine", "ray",
            "--workers", "2", "--quiet",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environ, cwd=str(tmp_path),
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 240)
    text = err.decode()
    assert proc.returncode == 1, text  # the broken line failed
    assert "61 rows" in text and "60 answered, 1 failed" in text
    chatter = [
        line
        for line in text.splitlines()
        if re.search(r"\b(INFO|WARNING|WARN)\b|\(raylet\)|Ray Data|Running Dataset|ray\.\w|\.cc:\d+", line)
    ]
    assert chatter == [], chatter  # --quiet: no line of Ray's (INFO, WARNING, its core worker's)
    rows = output_rows(out)
    assert len(rows) == 61 and sum(1 for r in rows if r["error"]) == 1
    bad = next(r for r in rows if r["error"])
    assert bad["error"]["message"].startswith("input line 61:"), bad


# ---------------------------------------------------------------------------- nothing lost


async def test_an_output_folder_holding_the_input_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    source = write_input(data / "in.jsonl", 20)
    dataset = data / "dataset.jsonl"
    dataset.write_text('{"text": "my dataset", "label": 1}\n')
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    async with FakeRouter() as router:
        for restart in (False, True):
            with pytest.raises(HuggingFaceError) as info:
                await run(source, data, router, workers=2, concurrency=4, restart=restart)
            assert info.value.kind is HuggingFaceErrorKind.CONFIG and "holds the input" in info.value.message
        assert not router.requests
    assert {p.name: p.read_bytes() for p in data.iterdir()} == before


async def test_an_output_folder_keeps_every_file_it_did_not_make(tmp_path: Path) -> None:
    source, out = write_input(tmp_path / "in.jsonl", 40), tmp_path / "out"
    out.mkdir()
    mine = {"dataset.jsonl": b'{"text": "keep me"}\n', "notes.jsonl": b"not even json\n"}
    for name, content in mine.items():
        (out / name).write_bytes(content)
    async with FakeRouter() as router:
        await run(source, out, router, workers=2, concurrency=4)
        await run(source, out, router, workers=2, concurrency=4, restart=True)
    assert {name: (out / name).read_bytes() for name in mine} == mine
    ids = Counter(
        r["custom_id"]
        for f in out.glob("hfdriver-part-*.jsonl")
        for r in map(json.loads, f.read_text().splitlines())
    )
    assert set(ids) == {f"r{i}" for i in range(40)} and max(ids.values()) == 1


async def test_a_jsonl_output_is_one_file_with_line_numbers_in_errors(tmp_path: Path) -> None:
    source, out = write_input(tmp_path / "in.jsonl", 30), tmp_path / "answers.jsonl"
    with source.open("a") as handle:
        handle.write("{not json\n")
    async with FakeRouter() as router:
        summary = await run(source, out, router, workers=2, concurrency=4)
    assert out.is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["answers.jsonl", "in.jsonl"]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 31 and summary.succeeded == 30 and summary.failed == 1
    bad = next(r for r in rows if r["error"])
    assert bad["error"]["message"].startswith("input line 31:"), bad


def complete_rows(path: Path) -> int:
    """Lines of a part file that a rerun keeps (a line torn by the kill is sent again)."""
    kept = 0
    for raw in path.read_bytes().splitlines(keepends=True):
        with contextlib.suppress(ValueError):
            kept += raw.endswith(b"\n") and json.loads(raw)["error"] is None
    return kept


async def test_a_sigkilled_run_resends_at_most_what_was_in_flight(tmp_path: Path) -> None:
    source, out = write_input(tmp_path / "in.jsonl", 400), tmp_path / "answers.jsonl"
    async with FakeRouter(latency=0.05, record=False) as router:
        config = tmp_path / "hfdriver.toml"
        config.write_text(
            f'[llm]\nprovider = "huggingface-endpoint"\nbase_url = "{router.base_url}"\nmodel = "{MODEL}"\n'
        )
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "RAY_ADDRESS"))}
        environ.update(HF_HOME=str(tmp_path / "hf"), HFDRIVER_CONFIG=str(config))
        command = [
            sys.executable, "-m", "hfdriver.cli", "batch", str(source), "-o", str(out), "--engine", "ray",
            "--workers", "2", "--concurrency", "8", "--quiet",
        ]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=environ,
            cwd=str(tmp_path), start_new_session=True,
        )  # fmt: skip
        parts = tmp_path / ".answers.jsonl.hfdriver-parts"
        for _ in range(1200):
            await asyncio.sleep(0.05)
            written = (
                sum(len(p.read_bytes().splitlines()) for p in parts.glob("hfdriver-part-*.jsonl"))
                if parts.is_dir()
                else 0
            )
            if written >= 100:
                break
        os.killpg(proc.pid, signal.SIGKILL)  # the run and the local Ray instance it started
        await proc.wait()
        # Let Ray's processes of the killed run go: wait until nothing reaches the router any more
        # (under load, a worker of the killed run may still finish a request or two).
        settled, quiet_since = router.served, asyncio.get_running_loop().time()
        for _ in range(300):
            await asyncio.sleep(0.1)
            if router.served != settled:
                settled, quiet_since = router.served, asyncio.get_running_loop().time()
            elif asyncio.get_running_loop().time() - quiet_since >= 2.0:
                break
        first_run = router.served
        written = sum(complete_rows(p) for p in parts.glob("hfdriver-part-*.jsonl"))
        assert 100 <= written < 400
        rerun = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=environ,
            cwd=str(tmp_path),
        )  # fmt: skip
        _, err = await asyncio.wait_for(rerun.communicate(), 240)
        assert rerun.returncode == 0, err.decode()
        second_run = router.served - first_run
    ids = Counter(json.loads(line)["custom_id"] for line in out.read_text().splitlines())
    assert set(ids) == {f"r{i}" for i in range(400)} and max(ids.values()) == 1
    # Only rows never answered are sent again: at most the 16 in flight at the kill were paid twice.
    assert second_run <= 400 - written, (second_run, written)
    assert first_run + second_run <= 400 + 16, (first_run, second_run)
    assert not parts.exists()


async def test_the_cluster_paces_at_a_stated_limit(tmp_path: Path) -> None:
    source, out = write_input(tmp_path / "in.jsonl", 600), tmp_path / "out"
    async with FakeRouter(rate_limit=100, state_limit="openai", latency=0.01, record=False) as router:
        summary = await run(source, out, router, workers=2, concurrency=32, batch_size=100)
        per_second = router.per_second()
    assert summary.succeeded == 600 and summary.failed == 0
    # The first answer states 6000/min: the program, then the cluster's limit, pace just under it
    # (a slow start would climb past 100/s and learn it from a 429 or two).
    assert summary.rate_limited <= 1, (summary.rate_limited, per_second)
    assert max(per_second) <= 100 + 10 + 1, per_second
