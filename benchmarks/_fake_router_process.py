"""Run hfdriver.testing.FakeRouter (echo mode) in its own process for the benchmarks.

``python _fake_router_process.py [RATE_LIMIT [LATENCY [BURST [FRACTIONAL [STATE]]]]]``: requests/s
past which it answers 429 + Retry-After (0: no limit), seconds each answer waits, token-bucket
burst (0: a tenth of the rate), 1 for an exact fractional Retry-After instead of whole seconds,
and ``openai`` or ``ietf`` to state the limit in every answer's headers (``-``: not stated).
"""

from __future__ import annotations

import asyncio
import sys

from hfdriver.testing import FakeRouter


async def main(
    rate: float | None, latency: float, burst: float | None, fractional: bool, state: str | None
) -> None:
    async with FakeRouter(
        rate_limit=rate,
        latency=latency,
        burst=burst,
        fractional_retry_after=fractional,
        record=False,
        state_limit=state,
    ) as router:
        print(f"ready {router.base_url}", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    state = sys.argv[5] if len(sys.argv) > 5 and sys.argv[5] != "-" else None
    args = [float(a) for a in sys.argv[1:5]]
    rate = args[0] if args and args[0] > 0 else None
    latency = args[1] if len(args) > 1 else 0.0
    burst = args[2] if len(args) > 2 and args[2] > 0 else None
    fractional = len(args) > 3 and args[3] == 1
    asyncio.run(main(rate, latency, burst, fractional, state))
