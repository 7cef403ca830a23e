"""Client CPU per request / per stream chunk: raw aiohttp (the floor) against hfdriver.

Run with `just bench`. A fast local server runs in a separate process, so the CPU time measured
here (time.process_time of this process) is the client's alone. Implementations run in
interleaved rounds (raw, hfdriver, peers, raw, hfdriver, ...) and the median round is reported,
which keeps the ratios honest on a shared, noisy machine.

Optional peers (the `bench` extra): openai, huggingface_hub, litellm — measured when installed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from hfdriver import GenerateRequest, RetryPolicy, create_driver
from hfdriver.config import AuthConfig, LLMConfig

MODEL = "bench/model"
PROMPT = "What is the capital of France?"
PAYLOAD: dict[str, Any] = {
    "model": MODEL,
    "messages": [{"role": "user", "content": PROMPT}],
    "max_tokens": 32,
}
STREAM_PAYLOAD: dict[str, Any] = {**PAYLOAD, "stream": True, "stream_options": {"include_usage": True}}
REQUEST = GenerateRequest.builder().model(MODEL).user(PROMPT).max_tokens(32).build()

Call = Callable[[], Awaitable[int]]  # one request; returns the number of stream chunks seen (1 for unary)


async def run_load(call: Call, total: int, concurrency: int) -> tuple[float, int]:
    """CPU seconds spent by this process to complete `total` calls at `concurrency`."""
    remaining = total
    units = 0

    async def worker() -> None:
        nonlocal remaining, units
        while remaining > 0:
            remaining -= 1
            units += await call()

    gc.collect()
    start = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.process_time() - start, units


class Impl:
    name = ""

    async def start(self, base_url: str) -> None: ...

    async def stop(self) -> None: ...

    async def unary(self) -> int:
        raise NotImplementedError

    async def stream(self) -> int:
        raise NotImplementedError


class RawAiohttp(Impl):
    name = "raw aiohttp"

    async def start(self, base_url: str) -> None:
        self.url = base_url + "/chat/completions"
        self.session = aiohttp.ClientSession(
            headers={"Authorization": "Bearer hf_bench"}, connector=aiohttp.TCPConnector(limit=100)
        )

    async def stop(self) -> None:
        await self.session.close()

    async def unary(self) -> int:
        async with self.session.post(self.url, json=PAYLOAD) as resp:
            data = await resp.json()
        assert data["choices"][0]["message"]["content"]
        return 1

    async def stream(self) -> int:
        n = 0
        async with self.session.post(self.url, json=STREAM_PAYLOAD) as resp:
            async for line in resp.content:
                if line.startswith(b"data:"):
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        break
                    json.loads(data)
                    n += 1
        return n


class Hfdriver(Impl):
    name = "hfdriver"

    async def start(self, base_url: str) -> None:
        # The path users run: create_driver composes the core driver (spans included, idle here).
        llm = LLMConfig(
            provider="huggingface-endpoint",
            base_url=base_url,
            model=MODEL,
            auth=AuthConfig(anonymous=True),
            retry=RetryPolicy(),
        )
        self.driver: Any = create_driver(llm)

    async def stop(self) -> None:
        await self.driver.aclose()

    async def unary(self) -> int:
        response = await self.driver.generate(REQUEST)
        assert response.text
        return 1

    async def stream(self) -> int:
        n = 0
        async with self.driver.generate_stream(REQUEST) as stream:
            async for _chunk in stream:
                n += 1
        return n


class OpenAIPeer(Impl):
    name = "openai"

    async def start(self, base_url: str) -> None:
        import openai

        self.name = f"openai {openai.__version__}"
        self.client = openai.AsyncOpenAI(base_url=base_url, api_key="hf_bench", max_retries=0)

    async def stop(self) -> None:
        await self.client.close()

    async def unary(self) -> int:
        r = await self.client.chat.completions.create(
            model=MODEL, messages=PAYLOAD["messages"], max_tokens=32
        )
        assert r.choices[0].message.content
        return 1

    async def stream(self) -> int:
        n = 0
        s = await self.client.chat.completions.create(
            model=MODEL,
            messages=PAYLOAD["messages"],
            max_tokens=32,
            stream=True,
            stream_options={"include_usage": True},
        )
        async for _ in s:
            n += 1
        return n


class HubPeer(Impl):
    name = "huggingface_hub"

    async def start(self, base_url: str) -> None:
        import huggingface_hub

        self.name = f"huggingface_hub {huggingface_hub.__version__}"
        self.client = huggingface_hub.AsyncInferenceClient(base_url=base_url, api_key="hf_bench")

    async def stop(self) -> None:
        await self.client.close()

    async def unary(self) -> int:
        r = await self.client.chat_completion(messages=PAYLOAD["messages"], model=MODEL, max_tokens=32)
        assert r.choices[0].message.content
        return 1

    async def stream(self) -> int:
        n = 0
        s = await self.client.chat_completion(
            messages=PAYLOAD["messages"], model=MODEL, max_tokens=32, stream=True
        )
        async for _ in s:
            n += 1
        return n


class LitellmPeer(Impl):
    name = "litellm"

    async def start(self, base_url: str) -> None:
        import litellm

        self.litellm = litellm
        self.base_url = base_url
        self.name = "litellm"

    async def unary(self) -> int:
        r = await self.litellm.acompletion(
            model=f"openai/{MODEL}",
            api_base=self.base_url,
            api_key="hf_bench",
            messages=PAYLOAD["messages"],
            max_tokens=32,
        )
        assert r.choices[0].message.content
        return 1

    async def stream(self) -> int:
        n = 0
        s = await self.litellm.acompletion(
            model=f"openai/{MODEL}",
            api_base=self.base_url,
            api_key="hf_bench",
            messages=PAYLOAD["messages"],
            max_tokens=32,
            stream=True,
        )
        async for _ in s:
            n += 1
        return n


PEERS = {"openai": OpenAIPeer, "huggingface_hub": HubPeer, "litellm": LitellmPeer}


def start_server(stream_chunks: int) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_server.py")), "0", str(stream_chunks)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if not line or line[0] != "ready":
        proc.kill()
        raise SystemExit("benchmark server failed to start")
    return proc, int(line[1])


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--requests", type=int, default=400, help="unary requests per round and implementation")
    p.add_argument("--streams", type=int, default=40, help="streams per round and implementation")
    p.add_argument("--chunks", type=int, default=200, help="chunks per stream")
    p.add_argument("--no-peers", action="store_true", help="only raw aiohttp and hfdriver")
    args = p.parse_args()

    proc, port = start_server(args.chunks)
    base_url = f"http://127.0.0.1:{port}/v1"
    impls: list[Impl] = [RawAiohttp(), Hfdriver()]
    if not args.no_peers:
        impls += [cls() for mod, cls in PEERS.items() if importlib.util.find_spec(mod) is not None]
    try:
        for impl in impls:
            await impl.start(base_url)
            await impl.unary()  # warm up connections and caches
            await impl.stream()
        workloads = [
            ("unary c=1", "unary", 1, args.requests),
            ("unary c=64", "unary", 64, args.requests),
            ("stream c=1", "stream", 1, args.streams),
        ]
        results: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for label, kind, conc, total in workloads:
                for impl in impls:
                    call = impl.unary if kind == "unary" else impl.stream
                    cpu, units = await run_load(call, total, conc)
                    per = cpu / units if kind == "stream" else cpu / total
                    results.setdefault((label, impl.name), []).append(per * 1e6)
    finally:
        for impl in impls:
            await impl.stop()
        proc.kill()
        proc.wait()

    print(
        f"\nclient CPU, median of {args.rounds} interleaved rounds ({args.requests} requests / {args.streams} streams x {args.chunks} chunks per round)\n"
    )
    print("| workload | client | CPU µs per request (unary) or per chunk (stream) | ratio to raw aiohttp |")
    print("|---|---|---:|---:|")
    for label, _, _, _ in workloads:
        raw = statistics.median(results[(label, impls[0].name)])
        for impl in impls:
            value = statistics.median(results[(label, impl.name)])
            print(f"| {label} | {impl.name} | {value:.1f} | {value / raw:.2f}x |")


if __name__ == "__main__":
    asyncio.run(main())
