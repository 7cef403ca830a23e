"""The batch on a local Ray instance (2 CPUs, no dashboard) against a rate-limited FakeRouter."""

from __future__ import annotations

import asyncio
import json
import os
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
    assert len(list(out.glob("*.jsonl"))) >= 2  # several blocks, written by Ray's datasink
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
    (out / "earlier.jsonl").write_bytes(earlier)
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
    """Processes of the pool's actors (Ray titles them ``ray::MapWorker(...)``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(b"ray::MapWorker"):
                pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker processes in /proc (Linux)")
async def test_a_worker_killed_mid_run_loses_no_row(tmp_path: Path) -> None:
    source, out = write_input(tmp_path / "in.jsonl", 300), tmp_path / "out"
    async with FakeRouter(latency=0.05, record=False) as router:
        job = asyncio.ensure_future(run(source, out, router, workers=2, concurrency=4, batch_size=30))
        for _ in range(600):
            await asyncio.sleep(0.05)
            if router.served >= 40:
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
    rows = output_rows(out)
    assert len(rows) == 61 and sum(1 for r in rows if r["error"]) == 1
    bad = next(r for r in rows if r["error"])
    assert "input line 61" in bad["error"]["message"] or "input row" in bad["error"]["message"]
