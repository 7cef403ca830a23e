"""Batch throughput under a rate limit, memory flatness, and the cost of a cache hit.

    python benchmarks/bench_batch.py [--rows 5000] [--rate 100] [--latency 0.02]
                                     [--memory-rows 10000 100000] [--skip-memory] [--skip-cache]

1. **Throughput**: ROWS requests against FakeRouter (its own process) limited to RATE requests/s
   (a token bucket, burst RATE/10, 429 + ``Retry-After`` in whole seconds beyond it), answering
   after LATENCY seconds. Every client runs in the same process, one after the other, with the
   limiter refilled in between: hfdriver's batch (file in, file out; learning the limit, told
   it, and against a second fake that states it in OpenAI's x-ratelimit-* headers), a hand-written
   ``asyncio.gather`` + semaphore over ``HuggingFaceDriver``, openai-python with its default
   retries, and LiteLLM ``batch_completion``, flexllm and oaib when installed.
2. **Memory**: peak RSS of ``hfdriver batch`` for each of MEMORY_ROWS input rows (no limit).
3. **Cache**: client CPU per cache hit (memory and SQLite) against a FakeRouter round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from hfdriver import GenerateRequest, HuggingFaceDriver, HuggingFaceError, Message
from hfdriver.batch import FlowControl, OutputFile, read_input, result_line, run_batch
from hfdriver.cache import MemoryCache, SQLiteCache
from hfdriver.transport import set_on_retry_hooks

HERE = Path(__file__).resolve().parent
MODEL = "bench/model"
CONCURRENCY = 64


def start_fake(
    rate: float, latency: float, fractional: bool = False, state: str = "-"
) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "_fake_router_process.py"),
            str(rate),
            str(latency),
            "0",
            str(int(fractional)),
            state,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    return proc, line[1]


def fake_call(base_url: str, path: str, method: str = "GET") -> dict[str, Any]:
    url = base_url.rsplit("/v1", 1)[0] + path
    with urllib.request.urlopen(
        urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    ) as r:
        return json.load(r)  # type: ignore[no-any-return]


def write_input(path: Path, rows: int) -> None:
    with path.open("w") as handle:
        for i in range(rows):
            handle.write(
                json.dumps({"custom_id": f"r{i}", "model": MODEL, "prompt": f"question {i}", "max_tokens": 8})
                + "\n"
            )


def requests_for(rows: int) -> list[GenerateRequest]:
    return [
        GenerateRequest(messages=(Message.user(f"question {i}"),), model=MODEL, max_tokens=8)
        for i in range(rows)
    ]


# ---------------------------------------------------------------------------- clients


async def hfdriver_batch(base_url: str, rows: int, tmp: Path, rpm: float | None = None) -> tuple[int, int]:
    source, out = tmp / "in.jsonl", tmp / "out.jsonl"
    write_input(source, rows)
    ok = failed = 0
    output = OutputFile(out, resume=False).open()
    try:
        async with HuggingFaceDriver("hf_bench", base_url=base_url) as driver:
            flow = FlowControl(max_concurrency=CONCURRENCY, rpm=rpm)
            async for result in run_batch(driver, read_input(source), flow=flow, concurrency=CONCURRENCY):
                output.write(result_line(result))
                ok += result.ok
                failed += not result.ok
    finally:
        output.close()
    return ok, failed


async def gather_semaphore(base_url: str, rows: int, tmp: Path) -> tuple[int, int]:
    semaphore = asyncio.Semaphore(CONCURRENCY)
    async with HuggingFaceDriver("hf_bench", base_url=base_url) as driver:

        async def one(request: GenerateRequest) -> bool:
            async with semaphore:
                try:
                    await driver.generate(request)
                except HuggingFaceError:
                    return False
                return True

        results = await asyncio.gather(*(one(r) for r in requests_for(rows)))
    return sum(results), len(results) - sum(results)


async def openai_python(base_url: str, rows: int, tmp: Path) -> tuple[int, int]:
    import openai

    semaphore = asyncio.Semaphore(CONCURRENCY)
    client = openai.AsyncOpenAI(base_url=base_url, api_key="hf_bench")  # default: 2 retries

    async def one(i: int) -> bool:
        async with semaphore:
            try:
                await client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": f"question {i}"}], max_tokens=8
                )
            except openai.OpenAIError:
                return False
            return True

    try:
        results = await asyncio.gather(*(one(i) for i in range(rows)))
    finally:
        await client.close()
    return sum(results), len(results) - sum(results)


async def litellm_batch(base_url: str, rows: int, tmp: Path) -> tuple[int, int]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    logging.getLogger("LiteLLM").setLevel(logging.CRITICAL)
    messages = [[{"role": "user", "content": f"question {i}"}] for i in range(rows)]
    results = await asyncio.to_thread(
        litellm.batch_completion,
        model=f"openai/{MODEL}",
        messages=messages,
        api_base=base_url,
        api_key="hf_bench",
        max_tokens=8,
        max_workers=CONCURRENCY,
    )
    ok = sum(1 for r in results if not isinstance(r, BaseException))
    return ok, len(results) - ok


async def flexllm_batch(base_url: str, rows: int, tmp: Path) -> tuple[int, int]:
    from flexllm import LLMClient

    client = LLMClient(base_url=base_url, api_key="hf_bench", model=MODEL, concurrency_limit=CONCURRENCY)
    messages = [[{"role": "user", "content": f"question {i}"}] for i in range(rows)]
    results = await client.chat_completions_batch(
        messages, show_progress=False, output_jsonl=str(tmp / "flexllm.jsonl"), max_tokens=8
    )
    ok = sum(1 for r in results if r)
    return ok, len(results) - ok


async def oaib_batch(base_url: str, rows: int, tmp: Path, rate: float) -> tuple[int, int]:
    from oaib import Batch

    # oaib paces by the limits it is told: give it the true limit (an advantage the others lack).
    batch = Batch(
        rpm=int(rate * 60),
        tpm=10**9,
        workers=CONCURRENCY,
        loglevel=0,
        base_url=base_url,
        api_key="hf_bench",
        logdir=str(tmp / "oaib.txt"),
    )
    for i in range(rows):
        await batch.add(
            "chat.completions.create",
            model=MODEL,
            messages=[{"role": "user", "content": f"question {i}"}],
            max_tokens=8,
        )
    frame = await batch.run()
    ok = int(frame["result"].notna().sum()) if "result" in frame else 0
    return ok, rows - ok


def anchors(
    rate: float,
) -> list[tuple[str, Callable[[str, int, Path], Awaitable[tuple[int, int]]], str | None]]:
    def available(module: str) -> str | None:
        try:
            __import__(module)
        except ImportError:
            return module
        return None

    return [
        ("hfdriver batch (adaptive)", hfdriver_batch, None),
        (
            f"hfdriver batch (told the limit, rpm {rate * 60:g})",
            lambda b, n, t: hfdriver_batch(b, n, t, rate * 60),
            None,
        ),
        ("gather + semaphore(64), HuggingFaceDriver", gather_semaphore, None),
        ("openai-python, gather + semaphore(64)", openai_python, available("openai")),
        ("LiteLLM batch_completion", litellm_batch, available("litellm")),
        ("flexllm chat_completions_batch", flexllm_batch, available("flexllm")),
        ("oaib Batch (told the limit)", lambda b, n, t: oaib_batch(b, n, t, rate), available("oaib")),
    ]


async def throughput(
    rows: int, rate: float, latency: float, only: str | None = None, fractional: bool = False
) -> None:
    proc, base_url = start_fake(rate, latency, fractional)
    retry_after = "exact fractional Retry-After" if fractional else "Retry-After in whole seconds"
    print(
        f"\n## Throughput: {rows} rows, limit {rate:g} requests/s (burst {max(1, rate / 10):g}, {retry_after}), {latency * 1000:g} ms per answer"
    )
    print(f"ideal wall time {rows / rate:.1f}s\n")
    print(
        "| client | wall (s) | rows answered | failed rows | 429s received | % of the allowed rate | while sending |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    stating, stating_url = start_fake(rate, latency, fractional, "openai")
    rows_to_run = [(name, client, missing, base_url) for name, client, missing in anchors(rate)]
    rows_to_run.insert(
        1, ("hfdriver batch (adaptive, the limit stated the OpenAI way)", hfdriver_batch, None, stating_url)
    )
    try:
        for name, client, missing, base_url in rows_to_run:
            if only and only.lower() not in name.lower():
                continue
            if missing:
                print(f"| {name} | not installed (`pip install {missing}`) | | | | |")
                continue
            fake_call(base_url, "/_fake/reset", "POST")
            with tempfile.TemporaryDirectory() as tmp:
                started = time.perf_counter()
                try:
                    ok, failed = await asyncio.wait_for(
                        client(base_url, rows, Path(tmp)), timeout=max(600, rows / rate * 10)
                    )
                except Exception as exc:  # an anchor that breaks is reported, not fatal
                    print(f"| {name} | error: {type(exc).__name__}: {str(exc)[:80]} | | | | |")
                    continue
                wall = time.perf_counter() - started
            stats = fake_call(base_url, "/_fake/stats")
            share = ok / wall / rate * 100
            sending = stats["served"] / stats["span"] / rate * 100 if stats["span"] else 0.0
            print(
                f"| {name} | {wall:.1f} | {ok} | {failed} | {stats['rate_limited']} | {share:.0f}% | {sending:.0f}% |",
                flush=True,
            )
    finally:
        proc.kill()
        stating.kill()


# ---------------------------------------------------------------------------- memory


def peak_rss_of(cmd: list[str], env: dict[str, str]) -> tuple[int, float]:
    wrapper = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "code = subprocess.run(sys.argv[1:]).returncode; "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t, code)"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *cmd], env=env, capture_output=True, text=True, check=True
    )
    kib, seconds, code = out.stdout.split()
    if code != "0":
        raise RuntimeError(f"hfdriver batch exited {code}: {out.stderr[-500:]}")
    return int(kib), float(seconds)


def memory(sizes: list[int]) -> None:
    proc, base_url = start_fake(0, 0.0)
    print("\n## Memory: peak RSS of `hfdriver batch` (no upstream limit)\n")
    print("| input rows | peak RSS (MiB) | wall (s) | rows/s |")
    print("|---:|---:|---:|---:|")
    peaks = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "hfdriver.toml"
            config.write_text(
                f'[llm]\nprovider = "huggingface-endpoint"\nbase_url = "{base_url}"\nmodel = "{MODEL}"\n'
            )
            env = {**os.environ, "HFDRIVER_CONFIG": str(config), "HF_TOKEN": "hf_bench", "HF_HOME": tmp}
            for size in sizes:
                source, out = Path(tmp) / f"in-{size}.jsonl", Path(tmp) / f"out-{size}.jsonl"
                write_input(source, size)
                cmd = [sys.executable, "-m", "hfdriver.cli", "batch", str(source), "-o", str(out), "--quiet"]
                kib, seconds = peak_rss_of(cmd, env)
                peaks.append(kib)
                print(f"| {size:,} | {kib / 1024:.1f} | {seconds:.1f} | {size / seconds:,.0f} |", flush=True)
                out.unlink()
    finally:
        proc.kill()
    if len(peaks) >= 2:
        print(f"\nlargest / smallest peak RSS: {peaks[-1] / peaks[0]:.2f}x (target <= 1.2x)")


# ---------------------------------------------------------------------------- cache


async def cache_cpu(calls: int) -> None:
    proc, base_url = start_fake(0, 0.0)
    request = GenerateRequest(messages=(Message.user("cache me"),), model=MODEL, max_tokens=8)

    async def cpu_per_call(driver: HuggingFaceDriver, warm: bool) -> float:
        if warm:
            await driver.generate(request)
        for _ in range(50):
            await driver.generate(request if warm else _fresh())
        started = time.process_time()
        for _ in range(calls):
            await driver.generate(request if warm else _fresh())
        return (time.process_time() - started) / calls * 1e6

    counter = iter(range(10**9))

    def _fresh() -> GenerateRequest:
        return GenerateRequest(messages=(Message.user(f"fresh {next(counter)}"),), model=MODEL, max_tokens=8)

    print(f"\n## Cache: client CPU per call ({calls} calls each, same process)\n")
    print("| call | CPU per call (µs) | vs a round trip |")
    print("|---|---:|---:|")
    try:
        async with HuggingFaceDriver("hf_bench", base_url=base_url) as driver:
            trip = await cpu_per_call(driver, warm=False)
        print(f"| FakeRouter round trip (no cache) | {trip:.0f} | 1.00 |")
        with tempfile.TemporaryDirectory() as tmp:
            for name, cache in (
                ("MemoryCache hit", MemoryCache()),
                ("SQLiteCache hit", SQLiteCache(Path(tmp) / "c.sqlite")),
            ):
                async with HuggingFaceDriver("hf_bench", base_url=base_url, cache=cache) as driver:
                    hit = await cpu_per_call(driver, warm=True)
                print(f"| {name} | {hit:.0f} | {hit / trip:.2f} |", flush=True)
            # Cold: answers another process stored, each read once here (the SELECT off the loop).
            path = Path(tmp) / "shared.sqlite"
            distinct = [
                GenerateRequest(messages=(Message.user(f"shared {i}"),), model=MODEL, max_tokens=8)
                for i in range(calls)
            ]
            async with HuggingFaceDriver("hf_bench", base_url=base_url, cache=SQLiteCache(path)) as writer:
                for item in distinct:
                    await writer.generate(item)
            async with HuggingFaceDriver("hf_bench", base_url=base_url, cache=SQLiteCache(path)) as reader:
                started = time.process_time()
                for item in distinct:
                    assert (await reader.generate(item)).cached
                cold = (time.process_time() - started) / calls * 1e6
            print(f"| SQLiteCache hit, first read in this process | {cold:.0f} | {cold / trip:.2f} |")
    finally:
        proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--memory-rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--cache-calls", type=int, default=2000)
    parser.add_argument("--only", help="run only the clients whose name contains this text")
    parser.add_argument(
        "--fractional-retry-after",
        action="store_true",
        help="the fake's Retry-After is exact, not whole seconds",
    )
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-cache", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    set_on_retry_hooks([])  # retries are counted by the fake, not logged
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    if not args.skip_throughput:
        asyncio.run(throughput(args.rows, args.rate, args.latency, args.only, args.fractional_retry_after))
    if not args.skip_cache:
        asyncio.run(cache_cpu(args.cache_calls))
    if not args.skip_memory:
        memory(args.memory_rows)


if __name__ == "__main__":
    main()
