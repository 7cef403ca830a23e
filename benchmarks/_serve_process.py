"""`hfdriver serve`'s server (OpenAIServer over a huggingface-endpoint driver) for the benchmark.

Usage: python _serve_process.py UPSTREAM_V1_URL  (prints "ready PORT")
"""

from __future__ import annotations

import asyncio
import sys

from hfdriver import HuggingFaceDriver, RetryPolicy
from hfdriver.server import OpenAIServer


async def serve(upstream: str) -> None:
    async with (
        HuggingFaceDriver(base_url=upstream, model="bench/model", retry=RetryPolicy.disabled()) as driver,
        OpenAIServer(driver, port=0) as server,
    ):
        print(f"ready {server.port}", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
