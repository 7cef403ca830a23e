"""hfdriver's batch on Ray against Ray Data LLM's HTTP request processor, same limit, same workers.

    python benchmarks/bench_ray.py [--rows 5000] [--rate 100] [--workers 2] [--latency 0.02] [--only hfdriver]

FakeRouter runs in its own process, limited to RATE requests/s (a token bucket, burst RATE/10,
429 + Retry-After in whole seconds past it). One local Ray instance (2 CPUs, no dashboard) runs
them one after the other, with the limiter refilled in between; "first answer after" is the
start-up (Ray's actor pool) and "while sending" the rate from the first answer to the last:

- hfdriver: ``run_batch_on_ray`` (actor pool of drivers, one shared limit), learning the limit
  from the server's 429s, then told it (``rpm``, as the processor is told its ``qps``);
- Ray Data LLM: ``HttpRequestProcessorConfig`` + ``build_processor`` with ``qps`` set to the
  limit split between the workers (it is told the limit), ``max_retries=3`` (fixed exponential
  waits; ``Retry-After`` is not read). A block whose row exhausts its retries fails; the run
  goes on past failed blocks (``max_errored_blocks=-1``) and their rows count as failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MODEL = "bench/model"


def start_fake(rate: float, latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "_fake_router_process.py"), str(rate), str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().split()[1]


def fake(base_url: str, path: str, method: str = "GET") -> dict[str, Any]:
    url = base_url.rsplit("/v1", 1)[0] + path
    data = b"" if method == "POST" else None
    with urllib.request.urlopen(urllib.request.Request(url, method=method, data=data)) as r:
        return json.load(r)  # type: ignore[no-any-return]


def write_input(path: Path, rows: int) -> None:
    with path.open("w") as handle:
        for i in range(rows):
            handle.write(
                json.dumps({"custom_id": f"r{i}", "prompt": f"question {i}", "max_tokens": 8}) + "\n"
            )


def hfdriver_on_ray(
    base_url: str, source: Path, tmp: Path, workers: int, rpm: float | None = None
) -> tuple[int, int]:
    import shutil

    from hfdriver.batch.ray import run_batch_on_ray
    from hfdriver.config import LLMConfig

    llm = LLMConfig(provider="huggingface-endpoint", base_url=base_url, model=MODEL)
    out = tmp / "hfdriver-out"
    shutil.rmtree(out, ignore_errors=True)
    summary = run_batch_on_ray(source, out, llm=llm, workers=workers, concurrency=32, rpm=rpm)
    return summary.succeeded, summary.failed


def ray_data_llm(
    base_url: str, source: Path, tmp: Path, workers: int, rate: float, rows: int
) -> tuple[int, int]:
    import ray
    from ray.data.llm import HttpRequestProcessorConfig, build_processor

    ray.data.DataContext.get_current().max_errored_blocks = -1
    config = HttpRequestProcessorConfig(
        url=f"{base_url}/chat/completions",
        headers={"Authorization": "Bearer hf_bench"},
        qps=max(1, int(rate / workers)),
        concurrency=workers,
        batch_size=64,
        max_retries=3,
    )
    processor = build_processor(
        config,
        preprocess=lambda row: {
            "payload": {
                "model": MODEL,
                "messages": [{"role": "user", "content": json.loads(row["text"])["prompt"]}],
                "max_tokens": 8,
            }
        },
        postprocess=lambda row: {"answer": row["http_response"]["choices"][0]["message"]["content"]},
    )
    answered = processor(ray.data.read_text(str(source))).count()
    return answered, rows - answered


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--only", choices=("hfdriver", "anchor"), help="run one client only")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    ray.data.DataContext.get_current().enable_progress_bars = False
    # The first Dataset a process runs pays Ray Data's own warm-up: pay it here, for neither client.
    ray.data.range(100, override_num_blocks=4).map_batches(lambda batch: batch).count()
    proc, base_url = start_fake(args.rate, args.latency)
    print(f"python {sys.version.split()[0]}, ray {ray.__version__}, {os.cpu_count()} CPUs")
    print(
        f"\n## {args.rows} rows, limit {args.rate:g} requests/s (burst {max(1, args.rate / 10):g}, "
        f"Retry-After in whole seconds), {args.latency * 1000:g} ms per answer, {args.workers} workers"
    )
    print(f"ideal wall time {args.rows / args.rate:.1f}s\n")
    print(
        "| client | wall (s) | first answer after (s) | rows answered | failed rows | 429s received "
        "| % of the allowed rate | while sending |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            source = tmp / "in.jsonl"
            write_input(source, args.rows)
            clients = (
                (
                    "hfdriver on Ray, learning the limit (no rpm)",
                    lambda: hfdriver_on_ray(base_url, source, tmp, args.workers),
                ),
                (
                    f"hfdriver on Ray, told the limit (rpm {args.rate * 60:g})",
                    lambda: hfdriver_on_ray(base_url, source, tmp, args.workers, rpm=args.rate * 60),
                ),
                (
                    f"Ray Data LLM HttpRequestProcessor (qps {max(1, int(args.rate / args.workers))} x {args.workers}, 3 retries)",
                    lambda: ray_data_llm(base_url, source, tmp, args.workers, args.rate, args.rows),
                ),
            )
            for index, (name, client) in enumerate(clients):
                if args.only and args.only != ("hfdriver", "hfdriver", "anchor")[index]:
                    continue
                fake(base_url, "/_fake/reset", "POST")
                started = time.monotonic()  # the fake's clock too (one machine)
                try:
                    ok, failed = client()
                except Exception as exc:  # an anchor that breaks is reported, not fatal
                    print(
                        f"| {name} | error: {type(exc).__name__}: {str(exc)[:100]} | | | | | | |", flush=True
                    )
                    continue
                wall = time.monotonic() - started
                stats = fake(base_url, "/_fake/stats")
                sending = stats["served"] / stats["span"] / args.rate * 100 if stats["span"] else 0.0
                first = stats["first"] - started if stats["first"] is not None else float("nan")
                print(
                    f"| {name} | {wall:.1f} | {first:.1f} | {ok} | {failed} | {stats['rate_limited']} | "
                    f"{ok / wall / args.rate * 100:.0f}% | {sending:.0f}% |",
                    flush=True,
                )
    finally:
        proc.kill()
        ray.shutdown()


if __name__ == "__main__":
    main()
