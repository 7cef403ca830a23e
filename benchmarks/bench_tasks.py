"""Client CPU per task call: TaskClient against huggingface_hub's AsyncInferenceClient (and raw
aiohttp, the floor) on the same fast local server in another process, so this process's CPU is
the client's alone. Text classification (a small JSON answer) and text-to-image (a 256x256 PNG:
hfdriver returns its bytes, huggingface_hub a PIL image, as each documents). Interleaved rounds,
the median reported.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench_serve import spawn  # the benchmarks' helper: start a process, wait for its marker

HERE = Path(__file__).resolve().parent
TEXT = "I love this new library, it made my week!"
PROMPT = "An astronaut riding a horse on the moon"


class Raw:
    name = "raw aiohttp"

    async def start(self, base: str) -> None:
        import aiohttp

        self.base = base
        self.session = aiohttp.ClientSession(headers={"Authorization": "Bearer hf_bench"})

    async def stop(self) -> None:
        await self.session.close()

    async def classify(self) -> Any:
        async with self.session.post(
            f"{self.base}/hf-inference/models/bench/clf", json={"inputs": TEXT, "parameters": {}}
        ) as resp:
            return (await resp.json())[0]

    async def paint(self) -> Any:
        async with self.session.post(
            f"{self.base}/hf-inference/models/bench/sd", json={"inputs": PROMPT, "parameters": {}}
        ) as resp:
            return await resp.read()


class Hfdriver:
    name = "hfdriver TaskClient"

    async def start(self, base: str) -> None:
        from hfdriver import TaskClient

        self.client = TaskClient(token="hf_bench", router_url=base, provider="hf-inference")

    async def stop(self) -> None:
        await self.client.aclose()

    async def classify(self) -> Any:
        return await self.client.text_classification(TEXT, model="bench/clf")

    async def paint(self) -> Any:
        return await self.client.text_to_image(PROMPT, model="bench/sd")


class Hub:
    name = "huggingface_hub AsyncInferenceClient"

    async def start(self, base: str) -> None:
        import huggingface_hub

        self.name = f"huggingface_hub {huggingface_hub.__version__} AsyncInferenceClient"
        self.clf = huggingface_hub.AsyncInferenceClient(
            model=f"{base}/hf-inference/models/bench/clf", token="hf_bench"
        )
        self.sd = huggingface_hub.AsyncInferenceClient(
            model=f"{base}/hf-inference/models/bench/sd", token="hf_bench"
        )

    async def stop(self) -> None:
        await self.clf.close()
        await self.sd.close()

    async def classify(self) -> Any:
        return await self.clf.text_classification(TEXT)

    async def paint(self) -> Any:
        return await self.sd.text_to_image(PROMPT)


async def cpu_per_call(call: Callable[[], Awaitable[Any]], total: int) -> float:
    gc.collect()
    start = time.process_time()
    for _ in range(total):
        await call()
    return (time.process_time() - start) / total * 1e6


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=300)
    args = p.parse_args()
    server, line = spawn([sys.executable, str(HERE / "_task_server.py"), "0"], "ready")
    base = f"http://127.0.0.1:{line.split()[1]}"
    clients: list[Any] = [Raw(), Hfdriver()]
    if importlib.util.find_spec("huggingface_hub") and importlib.util.find_spec("PIL"):
        clients.append(Hub())
    results: dict[tuple[str, str], list[float]] = {}
    try:
        for client in clients:
            await client.start(base)
            await client.classify()
            await client.paint()
        for _ in range(args.rounds):
            for task in ("classify", "paint"):
                for client in clients:
                    value = await cpu_per_call(getattr(client, task), args.calls)
                    results.setdefault((task, client.name), []).append(value)
    finally:
        for client in clients:
            await client.stop()
        server.kill()
        server.wait()
    print(
        f"\n### client CPU per task call, median of {args.rounds} interleaved rounds ({args.calls} calls each)\n"
    )
    print("| task | client | CPU µs per call | ratio to raw aiohttp |")
    print("|---|---|---:|---:|")
    for task, label in (("classify", "text-classification"), ("paint", "text-to-image (256x256 PNG)")):
        raw = statistics.median(results[(task, clients[0].name)])
        for client in clients:
            value = statistics.median(results[(task, client.name)])
            print(f"| {label} | {client.name} | {value:.0f} | {value / raw:.2f}x |")


if __name__ == "__main__":
    asyncio.run(main())
