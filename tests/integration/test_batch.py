"""Batches: run_batch, flow control against a rate-limited FakeRouter, files, resume, the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hfdriver import GenerateRequest, HuggingFaceDriver, RetryPolicy
from hfdriver.batch import (
    BatchItem,
    BatchResult,
    BatchSummary,
    FlowControl,
    OutputFile,
    check_input,
    parse_line,
    read_input,
    result_line,
    run_batch,
)
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.testing import FakeResponse, FakeRouter

TOKEN = "hf_batch_test_token_0123456789"
MODEL = "meta-llama/Llama-3.2-1B-Instruct"


def rows(n: int, prefix: str = "row") -> list[tuple[str, GenerateRequest]]:
    return [
        (f"{prefix}-{i}", GenerateRequest.builder().model(MODEL).user(f"{prefix} {i}").max_tokens(8).build())
        for i in range(n)
    ]


@pytest.fixture
async def router() -> AsyncIterator[FakeRouter]:
    async with FakeRouter() as fake:
        yield fake


def driver_for(router: FakeRouter, **kw: Any) -> HuggingFaceDriver:
    return HuggingFaceDriver(TOKEN, base_url=router.base_url, **kw)


async def collect(driver: Any, items: Any, **kw: Any) -> list[BatchResult]:
    return [r async for r in run_batch(driver, items, **kw)]


# ---------------------------------------------------------------------------- run_batch


async def test_every_row_is_answered_once(router: FakeRouter) -> None:
    async with driver_for(router) as driver:
        results = await collect(driver, rows(50), concurrency=8)
    assert sorted(r.custom_id for r in results) == sorted(f"row-{i}" for i in range(50))
    assert all(r.ok and r.response is not None for r in results)
    by_id = {r.custom_id: r for r in results}
    assert by_id["row-7"].response.text == "echo: row 7"  # type: ignore[union-attr]
    assert all(r.attempts == 1 and r.elapsed >= 0 for r in results)


async def test_async_iterable_input_and_bad_rows(router: FakeRouter) -> None:
    async def source() -> AsyncIterator[Any]:
        yield ("a", GenerateRequest.builder().model(MODEL).user("a").build())
        yield BatchItem(
            custom_id="broken",
            error=HuggingFaceError(HuggingFaceErrorKind.INVALID_REQUEST, "line 2: bad"),
            line=2,
        )
        yield ("b", GenerateRequest.builder().model(MODEL).user("b").build())

    async with driver_for(router) as driver:
        results = {r.custom_id: r for r in await collect(driver, source())}
    assert results["a"].ok and results["b"].ok
    broken = results["broken"]
    assert not broken.ok and broken.attempts == 0 and broken.line == 2
    assert broken.error is not None and broken.error.kind is HuggingFaceErrorKind.INVALID_REQUEST


async def test_a_failing_row_is_retried_then_recorded_and_the_batch_goes_on(router: FakeRouter) -> None:
    router.fail_when("row 3", FakeResponse.error(503, "upstream unavailable"))
    router.fail_when("row 5", FakeResponse.error(500, "flaky"), times=1)
    async with driver_for(router, retry=RetryPolicy(attempts=3)) as driver:
        results = {r.custom_id: r for r in await collect(driver, rows(10), concurrency=4)}
    failed = results["row-3"]
    assert not failed.ok and failed.attempts == 3
    assert failed.error is not None and failed.error.kind is HuggingFaceErrorKind.SERVER
    assert results["row-5"].ok and results["row-5"].attempts == 2
    assert sum(r.ok for r in results.values()) == 9


async def test_payment_required_stops_the_batch_early(router: FakeRouter) -> None:
    router.fail_when("", FakeResponse.error(402, "You have exceeded your monthly included credits"))
    seen: list[BatchResult] = []
    async with driver_for(router) as driver:
        with pytest.raises(HuggingFaceError) as info:
            async for result in run_batch(driver, rows(500), concurrency=4):
                seen.append(result)
    assert info.value.kind is HuggingFaceErrorKind.PAYMENT_REQUIRED
    assert "stopped early" in info.value.message and "rerun" in info.value.message
    assert len(seen) <= 4  # the rows in flight when it happened, not 500
    assert len(router.requests) <= 4


async def test_consumer_leaving_early_cancels_the_rest(router: FakeRouter) -> None:
    router.latency = 0.05
    async with driver_for(router) as driver:
        results = run_batch(driver, rows(200), concurrency=4)
        async for _ in results:
            break
        await results.aclose()
        await asyncio.sleep(0.2)
        sent = len(router.requests)
        await asyncio.sleep(0.3)
        assert len(router.requests) == sent  # nothing new was sent after the consumer left
    assert sent < 20


async def test_input_is_read_lazily(router: FakeRouter) -> None:
    pulled = 0

    def source() -> Any:
        nonlocal pulled
        for item in rows(1000):
            pulled += 1
            yield item

    async with driver_for(router) as driver:
        results = run_batch(driver, source(), concurrency=4)
        for _ in range(10):
            await results.__anext__()
        await results.aclose()
    assert pulled < 40  # rows in flight + the results queue, not the whole input


# ---------------------------------------------------------------------------- flow control


async def test_rate_limited_router_every_row_answered_under_the_limit() -> None:
    async with FakeRouter(rate_limit=40, burst=4, fractional_retry_after=True, latency=0.01) as router:
        async with driver_for(router, retry=RetryPolicy(attempts=6)) as driver:
            flow = FlowControl(max_concurrency=16)
            results = await collect(driver, rows(160), flow=flow)
        assert all(r.ok for r in results), Counter(r.error.kind.name for r in results if r.error)
        assert router.served == 160
        per_second = router.per_second()
        # The fake never lets more than rate + burst through in a second; hfdriver stayed near it.
        assert max(per_second) <= 40 + 4 + 1
        assert flow.rate is not None and flow.rate < 60  # learned a rate near the limit
        # Retry-After paused everyone: far fewer 429s than rows.
        assert router.rate_limited < 40


async def test_retry_after_pauses_every_worker_at_once() -> None:
    async with FakeRouter() as router:
        router.fail_when(
            "row 0", FakeResponse.error(429, "slow down", headers={"Retry-After": "0.5"}), times=1
        )
        flow = FlowControl(max_concurrency=8, adaptive=False)
        async with driver_for(router) as driver:
            items = rows(1) + [(cid, r) for cid, r in rows(40, "later")]

            async def staggered() -> AsyncIterator[Any]:
                for index, item in enumerate(items):
                    if index == 1:
                        await asyncio.sleep(0.1)  # row 0's 429 has arrived by now
                    yield item

            started = asyncio.get_running_loop().time()
            results = await collect(driver, staggered(), flow=flow)
        assert all(r.ok for r in results)
        assert flow.pauses == 1
        # Requests after the 429: none was sent during the pause (0.5 s from the 429).
        times = router.served_at
        assert times, "nothing was served"
        first_after = min(times)
        assert first_after - started >= 0.45


async def test_rpm_budget_paces_requests(router: FakeRouter) -> None:
    async with driver_for(router) as driver:
        started = asyncio.get_running_loop().time()
        results = await collect(driver, rows(11), rpm=600, adaptive=False)  # 10 per second
        elapsed = asyncio.get_running_loop().time() - started
    assert all(r.ok for r in results)
    assert elapsed >= 0.9  # 11 requests at 10/s: at least a second apart first to last


async def test_tpm_budget_waits_for_tokens() -> None:
    flow = FlowControl(tpm=600)  # 10 tokens/s, at most 10 seconds' worth (100) held
    loop = asyncio.get_running_loop()
    started = loop.time()
    await flow.spend_tokens(100)  # the whole bucket: at once
    assert loop.time() - started < 0.2
    await flow.spend_tokens(5)  # half a second of budget
    assert loop.time() - started >= 0.45
    flow.refund_tokens(estimate=50, used=10)  # the estimate was high: 40 come back
    resumed = loop.time()
    await flow.spend_tokens(40)
    assert loop.time() - resumed < 0.2
    huge = FlowControl(tpm=600)
    await huge.spend_tokens(10**9)  # larger than any bucket: takes a full one, never waits forever
    assert loop.time() - resumed < 0.2


async def test_tpm_budget_in_a_batch(router: FakeRouter) -> None:
    router.latency = 0.3
    async with driver_for(router) as driver:
        started = asyncio.get_running_loop().time()
        # Each row is estimated at ~209 tokens (max_tokens 200); 12,000 tpm holds 2,000: 9 rows go at
        # once, the rest wait for budget (refunds arrive only when answers do).
        items = [
            (f"t{i}", GenerateRequest.builder().model(MODEL).user("x").max_tokens(200).build())
            for i in range(12)
        ]
        results = await collect(driver, items, tpm=12_000, adaptive=False)
        elapsed = asyncio.get_running_loop().time() - started
    assert all(r.ok for r in results)
    assert elapsed >= 0.55  # two rounds of latency at least: not all 12 were sent at once


async def test_overloaded_halves_concurrency() -> None:
    flow = FlowControl(max_concurrency=32, adaptive=False)
    flow.in_flight = 1
    flow.after_attempt(HuggingFaceError(HuggingFaceErrorKind.OVERLOADED, "busy", retry_after=0.0))
    assert flow.limit == 16
    assert flow.pauses == 1 and flow.rate_limited == 1


async def test_concurrency_slots_wait_and_pass_on() -> None:
    flow = FlowControl(max_concurrency=2, adaptive=False)
    await flow.before_attempt()
    await flow.before_attempt()
    third = asyncio.ensure_future(flow.before_attempt())
    cancelled = asyncio.ensure_future(flow.before_attempt())
    await asyncio.sleep(0.05)
    assert not third.done() and flow.in_flight == 2
    cancelled.cancel()  # a waiter that leaves must not take a slot
    flow.after_attempt(None)
    await asyncio.wait_for(third, 1)
    assert flow.in_flight == 2
    flow.after_attempt(None)
    flow.after_attempt(None)
    assert flow.in_flight == 0


async def test_any_driver_is_paced_row_by_row() -> None:
    from hfdriver import GenerateResponse, Output

    class Plain:
        """A third-party driver: no hfdriver transport inside."""

        def __init__(self) -> None:
            self.calls = 0

        async def generate(self, request: GenerateRequest) -> GenerateResponse:
            self.calls += 1
            return GenerateResponse(outputs=(Output(text="ok", finish_reason="stop"),))

        def generate_stream(self, request: GenerateRequest) -> Any:
            raise NotImplementedError

        async def aclose(self) -> None:
            pass

    plain = Plain()
    loop = asyncio.get_running_loop()
    started = loop.time()
    results = await collect(plain, rows(11), rpm=600, adaptive=False)  # 10 a second
    assert all(r.ok and r.attempts == 1 for r in results) and plain.calls == 11
    assert loop.time() - started >= 0.9


def test_bad_settings_are_config_errors() -> None:
    for kwargs in ({"max_concurrency": 0}, {"rpm": -1}, {"tpm": "many"}):
        with pytest.raises(HuggingFaceError) as info:
            FlowControl(**kwargs)  # type: ignore[arg-type]
        assert info.value.kind is HuggingFaceErrorKind.CONFIG


# ---------------------------------------------------------------------------- files


def test_input_formats() -> None:
    openai = parse_line(
        json.dumps(
            {
                "custom_id": "q1",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "m/x", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5},
            }
        ),
        1,
    )
    assert openai is not None and openai.request is not None
    assert (openai.custom_id, openai.request.model, openai.request.max_tokens) == ("q1", "m/x", 5)
    short = parse_line('{"custom_id": "q2", "prompt": "Hello", "system": "Be brief.", "temperature": 0.2}', 2)
    assert short is not None and short.request is not None
    assert [m.role.value for m in short.request.messages] == ["system", "user"]
    assert short.request.temperature == 0.2
    messages = parse_line('{"custom_id": 7, "messages": [{"role": "user", "content": "x"}]}', 3)
    assert messages is not None and messages.custom_id == "7" and messages.request is not None
    assert parse_line("   \n", 4) is None


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"prompt": "no id"}', 'no "custom_id"'),
        ('{"custom_id": "", "prompt": "x"}', 'no "custom_id"'),
        ('{"custom_id": "e", "url": "/v1/audio/speech", "body": {}}', "not supported"),
        ('{"custom_id": "f", "url": "/v1/embeddings", "body": {}}', "input: is required"),
        ('{"custom_id": "g", "url": "/v1/embeddings", "body": {"input": [[1, 2]]}}', "token ids"),
        ('{"custom_id": "m", "method": "GET", "body": {}}', "not supported"),
        ('{"custom_id": "b", "body": "text"}', '"body" must be'),
        ('{"custom_id": "t", "prompt": "x", "temperature": 9}', "temperature"),
        ('{"custom_id": "p", "prompt": 5}', '"prompt" must be a string'),
        ('{"custom_id": "n"}', "needs"),
        ('{"custom_id": "r", "messages": [{"role": "wizard", "content": "x"}]}', "role"),
    ],
)
def test_bad_lines_become_error_rows_naming_the_line(line: str, problem: str) -> None:
    item = parse_line(line, 12)
    assert item is not None and item.request is None and item.error is not None
    assert item.error.kind is HuggingFaceErrorKind.INVALID_REQUEST
    assert item.error.message.startswith("input line 12:")
    assert problem in item.error.message
    assert item.line == 12 and item.custom_id


def test_a_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    source = tmp_path / "bom.jsonl"
    source.write_bytes(b'\xef\xbb\xbf{"custom_id": "a", "prompt": "x"}\n{"custom_id": "b", "prompt": "y"}\n')
    items = list(read_input(source))
    assert [i.custom_id for i in items] == ["a", "b"] and all(i.request is not None for i in items)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_full_disk_is_a_clear_error() -> None:
    from hfdriver import GenerateResponse, Output

    output = OutputFile(Path("/dev/full")).open()
    try:
        with pytest.raises(HuggingFaceError, match=r"No space left on device.*rerun to resume") as info:
            output.write(
                result_line(BatchResult(custom_id="a", response=GenerateResponse(outputs=(Output(),))))
            )
        assert info.value.kind is HuggingFaceErrorKind.CONFIG
    finally:
        output.close()


def test_duplicate_custom_ids_are_refused_before_sending(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"custom_id": "a", "prompt": "x"}\n{"custom_id": "b", "prompt": "y"}\n{"custom_id": "a", "prompt": "z"}\n'
    )
    with pytest.raises(HuggingFaceError, match=r"'a' is on lines 1 and 3") as info:
        check_input(source)
    assert info.value.kind is HuggingFaceErrorKind.INVALID_REQUEST


def test_output_lines_follow_the_openai_batch_format() -> None:
    from hfdriver import Cost, GenerateResponse, Output, Usage

    response = GenerateResponse(
        outputs=(Output(text="Paris", finish_reason="stop"),),
        usage=Usage(3, 1, 4),
        model="m/x",
        id="chatcmpl-1",
        request_id="req-9",
        provider="novita",
        cost=Cost(input=1e-6, output=2e-6),
    )
    ok = json.loads(result_line(BatchResult(custom_id="q1", response=response, attempts=2, elapsed=0.5)))
    assert ok["custom_id"] == "q1" and ok["id"].startswith("batch_req_") and ok["error"] is None
    assert ok["response"]["status_code"] == 200 and ok["response"]["request_id"] == "req-9"
    body = ok["response"]["body"]
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["content"] == "Paris"
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    assert ok["hfdriver"]["attempts"] == 2 and ok["hfdriver"]["cost"]["total"] == pytest.approx(3e-6)
    error = HuggingFaceError(HuggingFaceErrorKind.RATE_LIMITED, "slow down", status=429, request_id="r")
    failed = json.loads(result_line(BatchResult(custom_id="q2", error=error, attempts=4)))
    assert failed["error"] == {"code": "rate_limited", "message": "slow down"}
    assert failed["response"]["status_code"] == 429
    assert (
        failed["response"]["body"]["error"]["type"] == "rate_limit_error"
        or failed["response"]["body"]["error"]["type"]
    )
    local = HuggingFaceError(HuggingFaceErrorKind.INVALID_REQUEST, "input line 3: bad")
    bad = json.loads(result_line(BatchResult(custom_id="line-3", error=local, line=3)))
    assert bad["response"] is None and bad["hfdriver"]["line"] == 3


def test_resume_keeps_answers_and_drops_failures_and_torn_lines(tmp_path: Path) -> None:
    from hfdriver import GenerateResponse, Output

    out = tmp_path / "out.jsonl"
    ok = GenerateResponse(outputs=(Output(text="x", finish_reason="stop"),))
    fail = HuggingFaceError(HuggingFaceErrorKind.SERVER, "boom", status=500)
    with OutputFile(out) as output:
        output.write(result_line(BatchResult(custom_id="a", response=ok)))
        output.write(result_line(BatchResult(custom_id="b", error=fail)))
        output.write(result_line(BatchResult(custom_id="c", response=ok)))
        output.write(result_line(BatchResult(custom_id="a", response=ok)))  # a repeat
        output.write(result_line(BatchResult(custom_id="d", response=ok))[:40])  # torn by a kill
    resumed = OutputFile(out).open()
    resumed.close()
    assert len(resumed.done) == 2 and "a" in resumed.done and "c" in resumed.done
    assert "b" not in resumed.done and "d" not in resumed.done
    lines = out.read_bytes().splitlines(keepends=True)
    assert len(lines) == 2 and all(line.endswith(b"\n") for line in lines)
    assert [json.loads(line)["custom_id"] for line in lines] == ["a", "c"]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"custom_id": c, "prompt": c}) + "\n" for c in "abcd"))
    assert check_input(source, resumed.done) == (4, 2)
    assert [item.custom_id for item in read_input(source, skip=resumed.done)] == ["b", "d"]


def test_summary_counts() -> None:
    from hfdriver import Cost, GenerateResponse, Output, Usage

    summary = BatchSummary()
    response = GenerateResponse(
        outputs=(Output(text="x"),), usage=Usage(3, 2, 5), cost=Cost(input=0.5, output=0.25)
    )
    summary.add(BatchResult(custom_id="a", response=response, attempts=2))
    summary.add(
        BatchResult(custom_id="b", error=HuggingFaceError(HuggingFaceErrorKind.TIMEOUT, "t"), attempts=3)
    )
    assert (summary.rows, summary.succeeded, summary.failed, summary.attempts) == (2, 1, 1, 5)
    assert summary.failures == Counter({"TIMEOUT": 1})
    assert summary.tokens == 5 and summary.cost.total == pytest.approx(0.75) and summary.priced == 1


# ---------------------------------------------------------------------------- the CLI


def write_input(path: Path, n: int) -> Path:
    with path.open("w") as handle:
        for i in range(n):
            handle.write(json.dumps({"custom_id": f"r{i}", "prompt": f"question {i}"}) + "\n")
    return path


async def run_cli(router: FakeRouter, tmp_path: Path, *args: str, wait: bool = True) -> Any:
    config = tmp_path / "hfdriver.toml"
    config.write_text(
        f'[llm]\nprovider = "huggingface-endpoint"\nbase_url = "{router.base_url}"\nmodel = "{MODEL}"\n'
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    environ.update(HF_HOME=str(tmp_path / "hf_home"), HFDRIVER_CONFIG=str(config), PYTHONUNBUFFERED="1")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hfdriver.cli", "batch", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=environ, cwd=str(tmp_path),
    )  # fmt: skip
    if not wait:
        return proc
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode, out.decode(), err.decode()


def output_ids(path: Path) -> list[str]:
    return [json.loads(line)["custom_id"] for line in path.read_bytes().splitlines()]


async def test_cli_runs_a_file_and_reports(router: FakeRouter, tmp_path: Path) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(source, 30)
    with source.open("a") as handle:
        handle.write("this line is broken\n")
    code, _, err = await run_cli(router, tmp_path, str(source), "-o", str(out), "--quiet")
    assert code == 1, err  # a row failed
    ids = output_ids(out)
    assert len(ids) == 31 and len(set(ids)) == 31 and "line-31" in ids
    assert "31 rows" in err and "30 answered, 1 failed" in err and "INVALID_REQUEST 1" in err
    # Rerun: the answered rows are skipped; only the broken line is tried again.
    before = len(router.requests)
    code, _, err = await run_cli(router, tmp_path, str(source), "-o", str(out), "--quiet")
    assert code == 1 and len(router.requests) == before
    assert "30 already answered before" in err
    assert sorted(output_ids(out)) == sorted(ids)


async def test_cli_resumes_after_sigkill_without_duplicates(tmp_path: Path) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(source, 300)
    async with FakeRouter(latency=0.02) as router:
        proc = await run_cli(
            router, tmp_path, str(source), "-o", str(out), "--quiet", "--concurrency", "8", wait=False
        )
        for _ in range(600):
            await asyncio.sleep(0.02)
            if out.exists() and out.stat().st_size > 0 and len(out.read_bytes().splitlines()) >= 40:
                break
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        partial = output_ids(out) if out.read_bytes().endswith(b"\n") else output_ids(out)[:-1]
        assert 0 < len(partial) < 300
        code, _, err = await run_cli(router, tmp_path, str(source), "-o", str(out), "--quiet")
        assert code == 0, err
    ids = output_ids(out)
    assert sorted(ids) == sorted(f"r{i}" for i in range(300))  # complete, no duplicates
    for line in out.read_bytes().splitlines():
        assert json.loads(line)["response"]["status_code"] == 200


async def test_cli_stops_early_on_payment_required(router: FakeRouter, tmp_path: Path) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(source, 200)
    router.fail_when("", FakeResponse.error(402, "You have exceeded your monthly included credits"))
    code, _, err = await run_cli(
        router, tmp_path, str(source), "-o", str(out), "--quiet", "--concurrency", "4"
    )
    assert code == 1
    assert "PAYMENT_REQUIRED" in err and "stopped early" in err
    assert len(router.requests) <= 4
    assert not out.exists() or out.read_bytes() == b""  # nothing recorded: a rerun sends them all
    router._rules.clear()
    code, _, err = await run_cli(router, tmp_path, str(source), "-o", str(out), "--quiet")
    assert code == 0, err
    assert len(output_ids(out)) == 200


async def test_cli_refuses_duplicates_and_bad_arguments(router: FakeRouter, tmp_path: Path) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text('{"custom_id": "a", "prompt": "x"}\n{"custom_id": "a", "prompt": "y"}\n')
    code, _, err = await run_cli(router, tmp_path, str(source), "-o", str(out))
    assert code == 1 and "'a' is on lines 1 and 2" in err
    assert not router.requests
    code, _, err = await run_cli(router, tmp_path, str(tmp_path / "missing.jsonl"), "-o", str(out))
    assert code == 2 and "is not a file" in err
    code, _, err = await run_cli(router, tmp_path, str(source), "-o", str(source))
    assert code == 2 and "must not be the input" in err


# ---------------------------------------------------------------------------- stated limits


@pytest.mark.parametrize("dialect", ["openai", "ietf"])
async def test_a_stated_limit_is_paced_at_from_the_first_answer(dialect: str) -> None:
    async with (
        FakeRouter(rate_limit=100, state_limit=dialect, latency=0.01) as router,
        driver_for(router, retry=RetryPolicy(attempts=6)) as driver,
    ):
        flow = FlowControl(max_concurrency=32)
        results = await collect(driver, rows(300), flow=flow)
    assert all(r.ok for r in results)
    # Paced just under the stated 100/s from the first answer: no slow start to climb out of, and
    # no 429 to learn the limit from (the slow start alone would take a refusal or two).
    assert flow.rate == pytest.approx(98.5, rel=0.01)  # (then probing up slowly, as at a fitted limit)
    assert router.rate_limited <= 1


async def test_a_stated_limit_that_the_429s_contradict_is_corrected_by_them() -> None:
    # The headers say 100/s, the bucket refills at 40/s: the refusals win, and the same statement
    # repeated by every later answer does not put the rate back up.
    async with (
        FakeRouter(
            rate_limit=40,
            burst=4,
            state_limit="openai",
            stated_rate=100,
            fractional_retry_after=True,
            latency=0.01,
        ) as router,
        driver_for(router, retry=RetryPolicy(attempts=8)) as driver,
    ):
        flow = FlowControl(max_concurrency=16)
        results = await collect(driver, rows(200), flow=flow)
    assert all(r.ok for r in results)
    assert router.rate_limited >= 1
    assert flow.rate is not None and flow.rate < 45
    assert max(router.per_second()) <= 40 + 4 + 1
