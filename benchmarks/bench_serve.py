"""Requests per second through `hfdriver serve` against the driver called directly.

FakeRouter (echo mode) runs in one process and `hfdriver serve` (a huggingface-endpoint driver
pointed at it) in another; this process sends the same unary chat requests at the same
concurrency to both paths, in interleaved rounds, and reports the median requests per second.
The serve path adds one HTTP hop and a server's work; the ratio shows what that costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hfdriver import GenerateRequest, HuggingFaceDriver, RetryPolicy

HERE = Path(__file__).resolve().parent
REQUEST = (
    GenerateRequest.builder()
    .model("meta-llama/Llama-3.2-1B-Instruct")
    .user("What is the capital of France?")
    .max_tokens(16)
    .build()
)


def spawn(
    args: list[str], marker: str, env: dict[str, str] | None = None, stream: str = "stdout"
) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    pipe = proc.stdout if stream == "stdout" else proc.stderr
    assert pipe is not None
    for _ in range(50):
        line = pipe.readline()
        if marker in line:
            return proc, line
    proc.kill()
    raise SystemExit(f"{args} did not start")


async def rps(driver: HuggingFaceDriver, total: int, concurrency: int) -> float:
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await driver.generate(REQUEST)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - start)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=16)
    args = p.parse_args()

    router, line = spawn([sys.executable, str(HERE / "_fake_router_process.py")], "ready")
    upstream = line.split()[1]
    config = Path(tempfile.mkdtemp()) / "hfdriver.toml"
    config.write_text(
        f'[llm]\nprovider = "huggingface-endpoint"\nbase_url = "{upstream}"\nmodel = "meta-llama/Llama-3.2-1B-Instruct"\n'
    )
    env = {**os.environ, "HFDRIVER_CONFIG": str(config)}
    server, line = spawn(
        [sys.executable, "-m", "hfdriver.cli", "serve", "--port", "0"],
        "hfdriver serving",
        env,
        stream="stderr",
    )
    served = line.split(" at ", 1)[1].split()[0]
    results: dict[str, list[float]] = {
        "driver -> FakeRouter (direct)": [],
        "driver -> hfdriver serve -> FakeRouter": [],
    }
    try:
        async with (
            HuggingFaceDriver(base_url=upstream, retry=RetryPolicy.disabled()) as direct,
            HuggingFaceDriver(base_url=served, retry=RetryPolicy.disabled()) as via_serve,
        ):
            await rps(direct, 50, 4)
            await rps(via_serve, 50, 4)
            for _ in range(args.rounds):
                results["driver -> FakeRouter (direct)"].append(
                    await rps(direct, args.requests, args.concurrency)
                )
                results["driver -> hfdriver serve -> FakeRouter"].append(
                    await rps(via_serve, args.requests, args.concurrency)
                )
    finally:
        for proc in (server, router):
            proc.terminate()
            proc.wait(timeout=10)
    base = statistics.median(results["driver -> FakeRouter (direct)"])
    print(
        f"\nunary chat requests per second, concurrency {args.concurrency}, {args.requests} requests, median of {args.rounds} interleaved rounds\n"
    )
    print("| path | requests/s | ratio to direct |")
    print("|---|---:|---:|")
    for name, values in results.items():
        value = statistics.median(values)
        print(f"| {name} | {value:.0f} | {value / base:.2f}x |")


if __name__ == "__main__":
    asyncio.run(main())
