"""Embeddings: client CPU, memory of a large answer, local throughput, and `serve`.

1. **Client CPU per `embed` call** against a fast local server in another process (so this
   process's CPU is the client's alone): raw aiohttp + ``json.loads`` of JSON numbers (what a
   hand-written client does; the ratio's base) and raw aiohttp asking base64 (the floor of that
   wire) against hfdriver (``create_driver``, the path users run; it asks base64 from an
   OpenAI-compatible server, as the openai SDK does, and floats when told) and, when installed,
   openai-python's ``embeddings.create`` and huggingface_hub's
   ``AsyncInferenceClient.feature_extraction``.
   Interleaved rounds, the median reported. Goal: hfdriver <= 1.3x raw.
2. **Peak memory of a 100,000 x 384 answer** (each client in a fresh process; the growth of its
   peak RSS during the call, against the vectors' float32 size, 153.6 MB). Goal: <= 2x.
3. **Local throughput**: ``LocalDriver.embed`` against llama-cpp-python's ``create_embedding``
   on the very same loaded model and inputs — one text per call (what gives each text its own
   vector on this model) and the whole list in one call (faster, but llama.cpp mixes the rows of
   Gemma 3 when sequences share a batch: its vectors after the first are wrong). Goal: >= 0.95x.
4. **`hfdriver serve --local`** (started from a config) answering ``/v1/embeddings``, texts/s
   against the same direct calls in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench_serve import spawn  # the benchmarks' helper: start a process, wait for its marker

HERE = Path(__file__).resolve().parent
MODEL = "bench/embedder"
TEXTS = [f"sentence number {i}: the quick brown fox jumps over the lazy dog" for i in range(8)]
VECTOR_BYTES = 384 * 4


# ---------------------------------------------------------------------------- clients
class Client:
    name = ""

    async def start(self, base: str) -> None: ...

    async def stop(self) -> None: ...

    async def embed(self, texts: list[str]) -> int:
        raise NotImplementedError


class Raw(Client):
    name = "raw aiohttp + json.loads"

    async def start(self, base: str) -> None:
        import aiohttp

        self.url = f"{base}/v1/embeddings"
        self.session = aiohttp.ClientSession(headers={"Authorization": "Bearer hf_bench"})

    async def stop(self) -> None:
        await self.session.close()

    async def embed(self, texts: list[str]) -> int:
        async with self.session.post(self.url, json={"model": MODEL, "input": texts}) as resp:
            data = await resp.json()
        vectors = [item["embedding"] for item in sorted(data["data"], key=lambda d: d["index"])]
        return len(vectors)


class RawBase64(Raw):
    name = "raw aiohttp + base64 (the floor of the base64 wire)"

    async def embed(self, texts: list[str]) -> int:
        from array import array
        from base64 import b64decode

        body = {"model": MODEL, "input": texts, "encoding_format": "base64"}
        async with self.session.post(self.url, json=body) as resp:
            data = await resp.json()
        vectors = []
        for item in sorted(data["data"], key=lambda d: d["index"]):
            row = array("f")
            row.frombytes(b64decode(item["embedding"]))
            vectors.append(row)
        return len(vectors)


class Hfdriver(Client):
    name = "hfdriver"

    def __init__(self, extra: dict[str, Any] | None = None, name: str | None = None) -> None:
        self.extra = extra or {}
        if name:
            self.name = name

    async def start(self, base: str) -> None:
        from hfdriver import create_driver
        from hfdriver.config import AuthConfig, LLMConfig

        self.driver: Any = create_driver(
            LLMConfig(
                provider="huggingface-endpoint",
                base_url=f"{base}/v1",
                model=MODEL,
                auth=AuthConfig(anonymous=True),
            )
        )

    async def stop(self) -> None:
        await self.driver.aclose()

    async def embed(self, texts: list[str]) -> int:
        from hfdriver import EmbedRequest

        response = await self.driver.embed(EmbedRequest(inputs=texts, extra=self.extra))
        return len(response.vectors)


class OpenAIPeer(Client):
    async def start(self, base: str) -> None:
        import openai

        self.name = f"openai {openai.__version__} (base64)"
        self.client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="hf_bench", max_retries=0)

    async def stop(self) -> None:
        await self.client.close()

    async def embed(self, texts: list[str]) -> int:
        result = await self.client.embeddings.create(model=MODEL, input=texts)
        return len(result.data)


class HubPeer(Client):
    async def start(self, base: str) -> None:
        import huggingface_hub

        self.name = f"huggingface_hub {huggingface_hub.__version__} (feature_extraction)"
        url = f"{base}/hf-inference/models/{MODEL}/pipeline/feature-extraction"
        self.client = huggingface_hub.AsyncInferenceClient(model=url, api_key="hf_bench")

    async def stop(self) -> None:
        await self.client.close()

    async def embed(self, texts: list[str]) -> int:
        result = await self.client.feature_extraction(texts)  # type: ignore[arg-type]
        return len(result)


def clients(peers: bool) -> list[Client]:
    found: list[Client] = [
        Raw(),
        RawBase64(),
        Hfdriver(),
        Hfdriver({"encoding_format": "float"}, "hfdriver (floats asked)"),
    ]
    if peers and importlib.util.find_spec("openai"):
        found.append(OpenAIPeer())
    if peers and importlib.util.find_spec("huggingface_hub"):
        found.append(HubPeer())
    return found


async def cpu_per_call(call: Callable[[], Awaitable[int]], total: int, concurrency: int) -> float:
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    gc.collect()
    start = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - start) / total * 1e6


async def bench_client(args: argparse.Namespace, base: str) -> None:
    impls = clients(not args.no_peers)
    workloads = [
        ("8 inputs, c=1", TEXTS, 1, args.calls),
        ("8 inputs, c=32", TEXTS, 32, args.calls),
        ("256 inputs, c=1", [f"{t} {i}" for i in range(32) for t in TEXTS], 1, max(10, args.calls // 20)),
    ]
    results: dict[tuple[str, str], list[float]] = {}
    try:
        for impl in impls:
            await impl.start(base)
            assert await impl.embed(TEXTS) == len(TEXTS)
        for _ in range(args.rounds):
            for label, texts, concurrency, total in workloads:
                for impl in impls:
                    per = await cpu_per_call(
                        lambda impl=impl, texts=texts: impl.embed(texts), total, concurrency
                    )
                    results.setdefault((label, impl.name), []).append(per)
    finally:
        for impl in impls:
            await impl.stop()
    print(f"\n### client CPU per embed call, median of {args.rounds} interleaved rounds (384 dimensions)\n")
    print("| workload | client | CPU µs per call | ratio to raw |")
    print("|---|---|---:|---:|")
    for label, *_ in workloads:
        raw = statistics.median(results[(label, impls[0].name)])
        for impl in impls:
            value = statistics.median(results[(label, impl.name)])
            print(f"| {label} | {impl.name} | {value:.0f} | {value / raw:.2f}x |")


# ---------------------------------------------------------------------------- memory
MEMORY_CLIENTS: dict[str, Callable[[], Client]] = {
    "raw aiohttp + json.loads (floats)": Raw,
    "hfdriver (its default: base64)": lambda: Hfdriver(),
    "hfdriver (floats asked)": lambda: Hfdriver({"encoding_format": "float"}),
    "openai (base64)": OpenAIPeer,
}


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _current_rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def memory_child(name: str, rows: int, base: str) -> None:
    client = MEMORY_CLIENTS[name]()
    await client.start(base)
    await client.embed(["warm", "up"])
    texts = ["x"] * rows
    gc.collect()
    before = _current_rss()
    kept = await client.embed(texts)
    grew = _peak_rss() - before  # the high-water mark over the call, above where it started
    await client.stop()
    print(f"result {kept} {grew}", flush=True)


def bench_memory(args: argparse.Namespace, base: str) -> None:
    size = args.rows * VECTOR_BYTES
    print(
        f"\n### peak memory of one {args.rows:,} x 384 answer (float32 size {size / 1e6:.1f} MB), fresh process each\n"
    )
    print("| client | peak RSS growth | ratio to float32 size |")
    print("|---|---:|---:|")
    for name in MEMORY_CLIENTS:
        if name.startswith("openai") and (args.no_peers or not importlib.util.find_spec("openai")):
            continue
        done = subprocess.run(
            [sys.executable, __file__, "--memory-child", name, "--rows", str(args.rows), "--base", base],
            capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith("result")), None)
        if line is None:
            print(f"| {name} | failed: {done.stderr.strip().splitlines()[-1:]} | |")
            continue
        kept, grew = (int(v) for v in line.split()[1:])
        assert kept == args.rows, (name, kept)
        print(f"| {name} | {grew / 1e6:.0f} MB | {grew / size:.2f}x |")


# ---------------------------------------------------------------------------- local
LOCAL_TEXTS = [
    f"{i}: {s}"
    for i, s in enumerate(
        [
            "The Eiffel Tower is in Paris.",
            "Bananas are rich in potassium and are a popular fruit.",
            "A lighthouse keeper watches the sea through long winter nights.",
            "The stock market fell sharply on Monday after the announcement.",
        ]
        * 8
    )
]


async def bench_local(args: argparse.Namespace) -> None:
    from hfdriver import EmbedRequest
    from hfdriver.local import LocalDriver

    async with LocalDriver.default(threads=args.threads) as driver:
        await driver.embed(EmbedRequest(inputs="warm up"))
        llm = driver._embedder._llm  # the very same loaded model and settings

        def direct_each() -> int:
            return sum(len(llm.create_embedding(text)["data"]) for text in LOCAL_TEXTS)

        def direct_list() -> int:
            return len(llm.create_embedding(LOCAL_TEXTS)["data"])

        async def mine() -> int:
            return len((await driver.embed(EmbedRequest(inputs=LOCAL_TEXTS))).vectors)

        serve_rate = await _serve_setup(args)
        paths: dict[str, Callable[[], Awaitable[int]]] = {
            "llama-cpp-python create_embedding, one text per call": lambda: asyncio.to_thread(direct_each),
            "llama-cpp-python create_embedding, the whole list (rows mixed on this model)": lambda: (
                asyncio.to_thread(direct_list)
            ),
            "hfdriver LocalDriver.embed": mine,
        }
        if serve_rate is not None:
            paths["hfdriver serve --local, POST /v1/embeddings (16 texts a request)"] = serve_rate
        rates: dict[str, list[float]] = {}
        try:
            for _ in range(args.rounds):
                for name, run in paths.items():
                    start = time.perf_counter()
                    count = await run()
                    rates.setdefault(name, []).append(count / (time.perf_counter() - start))
        finally:
            await _serve_teardown()
    base = statistics.median(rates["llama-cpp-python create_embedding, one text per call"])
    print(
        f"\n### local embeddings, Gemma 3 270M Q4_K_M (640 dimensions), {len(LOCAL_TEXTS)} texts, "
        f"{args.threads} threads, median of {args.rounds} interleaved rounds\n"
    )
    print("| path | texts/s | ratio to one text per call |")
    print("|---|---:|---:|")
    for name, values in rates.items():
        value = statistics.median(values)
        print(f"| {name} | {value:.1f} | {value / base:.3f}x |")


_serve: dict[str, Any] = {}


async def _serve_setup(args: argparse.Namespace) -> Callable[[], Awaitable[int]] | None:
    if args.skip_serve:
        return None
    import aiohttp

    folder = Path(tempfile.mkdtemp())
    config = folder / "hfdriver.toml"
    config.write_text(f'[llm]\nprovider = "huggingface-local"\n[llm.options]\nthreads = {args.threads}\n')
    env = {**os.environ, "HFDRIVER_CONFIG": str(config)}
    proc, line = spawn(
        [sys.executable, "-m", "hfdriver.cli", "serve", "--port", "0"], "hfdriver serving", env, "stderr"
    )
    url = next(word for word in line.split() if word.startswith("http")).rstrip("/")
    if not url.endswith("/v1"):
        url += "/v1"
    session = aiohttp.ClientSession()
    _serve.update(proc=proc, session=session)

    async def post(texts: list[str]) -> int:
        async with session.post(
            f"{url}/embeddings", json={"input": texts, "encoding_format": "base64"}
        ) as resp:
            assert resp.status == 200, await resp.text()
            return len((await resp.json())["data"])

    await post(["warm up"])

    async def rate() -> int:
        return sum([await post(LOCAL_TEXTS[i : i + 16]) for i in range(0, len(LOCAL_TEXTS), 16)])

    return rate


async def _serve_teardown() -> None:
    if "session" in _serve:
        await _serve["session"].close()
    if "proc" in _serve:
        _serve["proc"].terminate()
        _serve["proc"].wait(timeout=30)


# ---------------------------------------------------------------------------- main
async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=400, help="embed calls per round and client (8 inputs)")
    p.add_argument("--rows", type=int, default=100_000, help="vectors in the memory test's answer")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-peers", action="store_true")
    p.add_argument("--skip-client", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-local", action="store_true")
    p.add_argument("--skip-serve", action="store_true")
    p.add_argument("--memory-child", help=argparse.SUPPRESS)
    p.add_argument("--base", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_child:
        await memory_child(args.memory_child, args.rows, args.base)
        return
    if not (args.skip_client and args.skip_memory):
        server, line = spawn([sys.executable, str(HERE / "_embed_server.py"), "0"], "ready")
        base = f"http://127.0.0.1:{line.split()[1]}"
        try:
            if not args.skip_client:
                await bench_client(args, base)
            if not args.skip_memory:
                bench_memory(args, base)
        finally:
            server.kill()
            server.wait()
    if not args.skip_local:
        await bench_local(args)


if __name__ == "__main__":
    asyncio.run(main())
