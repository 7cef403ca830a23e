"""Run hfdriver.testing.FakeRouter (echo mode) in its own process for the benchmarks.

``python _fake_router_process.py [RATE_LIMIT [LATENCY [BURST]]]``: requests/s past which it
answers 429 + Retry-After (0: no limit), seconds each answer waits, token-bucket burst.
"""

from __future__ import annotations

import asyncio
import sys

from hfdriver.testing import FakeRouter


async def main(rate: float | None, latency: float, burst: float | None) -> None:
    async with FakeRouter(rate_limit=rate, latency=latency, burst=burst, record=False) as router:
        print(f"ready {router.base_url}", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    args = [float(a) for a in sys.argv[1:]]
    rate = args[0] if args and args[0] > 0 else None
    latency = args[1] if len(args) > 1 else 0.0
    burst = args[2] if len(args) > 2 else None
    asyncio.run(main(rate, latency, burst))
