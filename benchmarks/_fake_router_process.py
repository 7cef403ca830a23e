"""Run hfdriver.testing.FakeRouter (echo mode) in its own process for the serve benchmark."""

from __future__ import annotations

import asyncio

from hfdriver.testing import FakeRouter


async def main() -> None:
    async with FakeRouter() as router:
        print(f"ready {router.base_url}", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
