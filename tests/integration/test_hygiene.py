"""Connection hygiene against a real local server: nothing leaks, nothing warns."""

from __future__ import annotations

import asyncio
import gc

import pytest

from hfdriver import GenerateRequest, HuggingFaceDriver
from hfdriver.testing import FakeResponse, FakeRouter
from tests.integration.conftest import TOKEN

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")


async def wait_closed(router: FakeRouter, expected: int = 0) -> int:
    for _ in range(200):
        if router.open_connections <= expected:
            break
        await asyncio.sleep(0.01)
    return router.open_connections


async def test_done_returns_the_connection_to_the_pool(
    driver: HuggingFaceDriver, router: FakeRouter, request_: GenerateRequest
) -> None:
    for _ in range(30):
        async with driver.generate_stream(request_) as stream:
            async for _chunk in stream:
                pass
        await driver.generate(request_)
    peers = {r.peer for r in router.requests}
    assert len(peers) == 1, "every request should reuse one pooled connection"


async def test_1000_abandoned_streams_leak_nothing(router: FakeRouter, request_: GenerateRequest) -> None:
    # Debug mode makes aiohttp warn (ResourceWarning -> error here) about any response that is
    # garbage-collected without having been closed by us.
    asyncio.get_running_loop().set_debug(True)
    # Still being written when abandoned: a fully received body would free itself.
    long_stream = FakeResponse.stream([f"t{i} " for i in range(200)], chunk_size=256, delay=0.002)
    kept: list[object] = []  # references held: only our own release can free these sockets

    async def abandon(driver: HuggingFaceDriver, how: int) -> None:
        router.enqueue(long_stream)
        if how == 0:  # break inside async with
            async with driver.generate_stream(request_) as stream:
                kept.append(stream)
                async for _ in stream:
                    break
        elif how == 1:  # an exception raised by the caller mid-stream
            try:
                async with driver.generate_stream(request_) as stream:
                    kept.append(stream)
                    async for _ in stream:
                        raise RuntimeError("caller gave up")
            except RuntimeError:
                pass
        elif how == 2:  # bare async for, then break: the dropped stream frees its socket
            async for _ in driver.generate_stream(request_):
                break
        else:  # explicit aclose after the first chunk
            stream = driver.generate_stream(request_)
            kept.append(stream)
            await stream.__anext__()
            await stream.aclose()

    async with HuggingFaceDriver(
        token=TOKEN, base_url=router.base_url, model="m/x", connection_limit=8
    ) as driver:
        for i in range(1000):
            await abandon(driver, i % 4)
            if i % 50 == 0:
                # Everything abandoned so far is closed: at most the one idle pooled connection.
                assert await wait_closed(router, 1) <= 1, f"leak after {i + 1} streams"
        # Cancellation while a chunk is awaited.
        for _ in range(20):
            router.enqueue(FakeResponse.stream(["a"] * 50, chunk_size=200, delay=0.02))
            task = asyncio.create_task(driver.generate_stream(request_).collect())
            for _ in range(500):  # until the router took the stream (a busy machine may be slow)
                if not router.pending:
                    break
                await asyncio.sleep(0.01)
            assert not router.pending, "the stream request never reached the router"
            await asyncio.sleep(0.03)  # a chunk or two in: cancelled while the next is awaited
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        gc.collect()
        assert await wait_closed(router) == 0
        # The driver still works after all that.
        assert (await driver.generate(request_)).text == "echo: Hello there"
    assert await wait_closed(router) == 0


async def test_closing_the_driver_closes_open_streams(router: FakeRouter, request_: GenerateRequest) -> None:
    router.enqueue(FakeResponse.stream(["x"] * 100, chunk_size=1000, stall_after=1))
    driver = HuggingFaceDriver(token=TOKEN, base_url=router.base_url, model="m/x")
    stream = driver.generate_stream(request_)
    await stream.__anext__()
    await driver.aclose()
    assert await wait_closed(router) == 0
    del stream
