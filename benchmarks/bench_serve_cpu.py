"""Server CPU per proxied request: `hfdriver serve` against a minimal aiohttp proxy.

Three kinds of process: the fast upstream (`_server.py`, precomputed answers), the two servers
under test (`_serve_process.py` and `_minimal_proxy.py`, both pointed at it), and this one, which
sends the load. The CPU measured is each server process's own (user + system, from /proc), so
neither the load generator nor the upstream counts. Each workload runs in its own phase; in
each round every load worker alternates its requests between the two servers, so both are
measured over the same window, side by side. The median round is reported. Targets (issue 10): unary <= 1.3x, streams <= 1.0x of the minimal proxy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
CLOCK = os.sysconf("SC_CLK_TCK")
BODY = {
    "model": "bench/model",
    "messages": [{"role": "user", "content": "What is the capital of France?"}],
    "max_tokens": 32,
}


def spawn(script: str, *args: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, str(HERE / script), *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if not line or line[0] != "ready":
        proc.kill()
        raise SystemExit(f"{script} did not start")
    return proc, int(line[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK  # utime + stime


async def load(
    session: aiohttp.ClientSession, urls: list[str], *, stream: bool, total: int, concurrency: int
) -> list[int]:
    """``total`` requests to each URL, every worker alternating between them, so that both servers
    run in the same window, under the same conditions. Returns the events (or answers) per URL."""
    body = json.dumps({**BODY, "stream": stream}).encode()
    remaining = total * len(urls)
    events = [0] * len(urls)

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            target = remaining % len(urls)  # the requests alternate: each URL gets exactly `total`
            async with session.post(
                urls[target], data=body, headers={"Content-Type": "application/json"}
            ) as resp:
                assert resp.status == 200, await resp.text()
                data = await resp.read()
                events[target] += data.count(b"\n\ndata:") if stream else 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return events


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--requests", type=int, default=2000, help="unary requests per round and server")
    p.add_argument("--streams", type=int, default=50, help="streams per round and server")
    p.add_argument("--chunks", type=int, default=200, help="chunks per stream")
    p.add_argument("--concurrency", type=int, default=16)
    args = p.parse_args()

    upstream, port = spawn("_server.py", "0", str(args.chunks))
    upstream_url = f"http://127.0.0.1:{port}/v1"
    servers = {
        "minimal aiohttp proxy": spawn("_minimal_proxy.py", upstream_url),
        "hfdriver serve": spawn("_serve_process.py", upstream_url),
    }
    results: dict[tuple[str, str], list[float]] = {}
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.concurrency)) as session:
            urls = [f"http://127.0.0.1:{sport}/v1/chat/completions" for _, sport in servers.values()]
            procs = [proc for proc, _ in servers.values()]
            await load(session, urls, stream=False, total=50, concurrency=4)  # warm up
            await load(session, urls, stream=True, total=4, concurrency=2)
            # One workload at a time, so that what one leaves behind (garbage to collect, say) is
            # not billed to the other; within a round both servers share the same window.
            workloads = (
                ("unary", False, args.requests),
                (f"stream ({args.chunks} chunks)", True, args.streams),
            )
            for label, stream, total in workloads:
                for _ in range(args.rounds):
                    before = [cpu_seconds(proc.pid) for proc in procs]
                    units = await load(
                        session, urls, stream=stream, total=total, concurrency=args.concurrency
                    )
                    for name, proc, start, count in zip(servers, procs, before, units, strict=True):
                        per = (cpu_seconds(proc.pid) - start) / (count if stream else total)
                        results.setdefault((label, name), []).append(per * 1e6)
    finally:
        for proc, _ in (*servers.values(), (upstream, 0)):
            proc.kill()
            proc.wait()

    print(
        f"\nserver CPU, median of {args.rounds} side-by-side rounds ({args.requests} requests / {args.streams} streams x {args.chunks} chunks, concurrency {args.concurrency})\n"
    )
    print(
        "| workload | server | CPU µs per request (unary) or per event (stream) | ratio to the minimal proxy |"
    )
    print("|---|---|---:|---:|")
    for label in ("unary", f"stream ({args.chunks} chunks)"):
        base = statistics.median(results[(label, "minimal aiohttp proxy")])
        for name in servers:
            value = statistics.median(results[(label, name)])
            print(f"| {label} | {name} | {value:.1f} | {value / base:.2f}x |")


if __name__ == "__main__":
    asyncio.run(main())
