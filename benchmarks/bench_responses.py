"""Server CPU per streamed event: the Responses API (`/v1/responses`) vs chat completions
(`/v1/chat/completions`), both through `hfdriver serve` started from a config, as users run it.

Processes: the fast upstream (`_server.py`, precomputed streams of N chunks), two `hfdriver serve`
processes started by the CLI from the same configuration (one takes the chat streams, the other
the Responses streams, in the same window: every load worker alternates between them), and this
one, which sends the load. CPU is each server process's own (user + system, from /proc). Rounds
are reported by their median. The Responses server stores each response (the default, a SQLite
file) unless --no-store-requests asks clients to send `store: false`.

Goal (issue 22): CPU per Responses event <= 1.2x CPU per chat event.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
CLOCK = os.sysconf("SC_CLK_TCK")
QUESTION = "What is the capital of France?"


def spawn_upstream(chunks: int) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "_server.py"), "0", str(chunks)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if not line or line[0] != "ready":
        proc.kill()
        raise SystemExit("_server.py did not start")
    return proc, int(line[1])


def spawn_serve(config: Path, home: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "HFDRIVER_CONFIG": str(config), "HF_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hfdriver.cli", "serve", "--port", "0"],
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    if " at " not in line:
        proc.kill()
        raise SystemExit(f"hfdriver serve did not start: {line}")
    return proc, line.split(" at ", 1)[1].split()[0]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK


async def load(
    session: aiohttp.ClientSession, targets: list[tuple[str, bytes]], *, total: int, concurrency: int
) -> list[int]:
    """``total`` streams to each target, workers alternating between them; returns events per target."""
    remaining = total * len(targets)
    events = [0] * len(targets)

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            index = remaining % len(targets)
            url, body = targets[index]
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
                assert resp.status == 200, await resp.text()
                data = await resp.read()
                events[index] += data.count(b"data: ")

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return events


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--streams", type=int, default=300, help="streams per round and server")
    p.add_argument("--chunks", type=int, default=200, help="text chunks per stream")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--no-store-requests", action="store_true", help="send store: false to /v1/responses")
    args = p.parse_args()

    upstream, port = spawn_upstream(args.chunks)
    work = Path(tempfile.mkdtemp(prefix="bench_responses_"))
    config = work / "hfdriver.toml"
    config.write_text(
        f'[llm]\nprovider = "huggingface-endpoint"\nbase_url = "http://127.0.0.1:{port}/v1"\nmodel = "bench/model"\n'
    )
    servers = {
        "chat completions": spawn_serve(config, work / "a"),
        "responses": spawn_serve(config, work / "b"),
    }
    chat_body = json.dumps(
        {"model": "bench/model", "messages": [{"role": "user", "content": QUESTION}], "stream": True}
    ).encode()
    responses_body = json.dumps(
        {
            "model": "bench/model",
            "input": QUESTION,
            "stream": True,
            **({"store": False} if args.no_store_requests else {}),
        }
    ).encode()
    targets = [
        (servers["chat completions"][1] + "/chat/completions", chat_body),
        (servers["responses"][1] + "/responses", responses_body),
    ]
    procs = [proc for proc, _ in servers.values()]
    per_event: dict[str, list[float]] = {name: [] for name in servers}
    per_stream: dict[str, list[float]] = {name: [] for name in servers}
    counts: dict[str, int] = {}
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.concurrency)) as session:
            await load(session, targets, total=10, concurrency=2)  # warm up
            for _ in range(args.rounds):
                before = [cpu_seconds(proc.pid) for proc in procs]
                events = await load(session, targets, total=args.streams, concurrency=args.concurrency)
                for name, proc, start, count in zip(servers, procs, before, events, strict=True):
                    used = cpu_seconds(proc.pid) - start
                    per_event[name].append(used / count * 1e6)
                    per_stream[name].append(used / args.streams * 1e6)
                    counts[name] = count // args.streams
    finally:
        for proc in (*procs, upstream):
            proc.kill()
            proc.wait()

    store = "store: false" if args.no_store_requests else "stored (SQLite, the default)"
    print(
        f"\nhfdriver serve CPU, median of {args.rounds} side-by-side rounds "
        f"({args.streams} streams x {args.chunks} chunks per round and server, concurrency {args.concurrency}; responses {store})\n"
    )
    print("| route | events per stream | CPU µs per event | ratio | CPU µs per stream | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    base_event = statistics.median(per_event["chat completions"])
    base_stream = statistics.median(per_stream["chat completions"])
    for name in servers:
        event, stream = statistics.median(per_event[name]), statistics.median(per_stream[name])
        print(
            f"| {name} | {counts[name]} | {event:.1f} | {event / base_event:.2f}x | {stream:.0f} | {stream / base_stream:.2f}x |"
        )


if __name__ == "__main__":
    asyncio.run(main())
