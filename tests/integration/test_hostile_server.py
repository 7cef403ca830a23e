"""What a hostile or broken server can do to the driver, and what the driver does instead (issue 10, group 3)."""

from __future__ import annotations

import asyncio
import gzip
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from hfdriver import GenerateRequest, HuggingFaceDriver, HuggingFaceError, HuggingFaceErrorKind, RetryPolicy
from hfdriver.auth import resolve_token
from hfdriver.testing import FakeResponse, FakeRouter, completion_body

K = HuggingFaceErrorKind
REQUEST = GenerateRequest.builder().model("m/x").user("hi").build()
LIMIT = 64 * 1024
SECRET = "sk-vllm-secret-key-0123456789"  # not shaped like hf_: only knowing it lets us redact it


async def _endless(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    while True:  # until the client hangs up
        await resp.write(b"x" * 65536)
        await asyncio.sleep(0)


async def _endless_sse_line(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    await resp.write(b"data: {")
    while True:
        await resp.write(b"a" * 65536)
        await asyncio.sleep(0)


async def _endless_data_lines(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    while True:  # data lines that never end their event with a blank line
        await resp.write(b"data: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n" * 1000)
        await asyncio.sleep(0)


async def _gzip_bomb(request: web.Request) -> web.Response:
    return web.Response(
        body=gzip.compress(b" " * (16 * LIMIT)),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )


async def _big_error(request: web.Request) -> web.Response:
    return web.Response(status=500, body=b"<p>" + b"oops " * (2 * 1024 * 1024) + b"</p>")


ROUTES = {
    "endless": _endless,
    "endless-sse-line": _endless_sse_line,
    "endless-data-lines": _endless_data_lines,
    "gzip-bomb": _gzip_bomb,
    "big-error": _big_error,
}


@pytest.fixture
async def hostile() -> AsyncIterator[str]:
    app = web.Application()
    for name, handler in ROUTES.items():
        app.router.add_post(f"/{name}/v1/chat/completions", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def driver_for(base: str, **kwargs: object) -> HuggingFaceDriver:
    return HuggingFaceDriver(
        base_url=base,
        model="m/x",
        retry=RetryPolicy.disabled(),
        max_body_bytes=LIMIT,
        max_event_bytes=LIMIT,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("route", ["endless", "gzip-bomb"])
async def test_unary_bodies_are_bounded(hostile: str, route: str) -> None:
    async with driver_for(f"{hostile}/{route}/v1") as driver:
        with pytest.raises(HuggingFaceError) as info:
            await driver.generate(REQUEST)
    assert info.value.kind is K.DECODE and f"{LIMIT:,} bytes" in info.value.message


@pytest.mark.parametrize("route", ["endless-sse-line", "endless-data-lines"])
async def test_sse_lines_and_events_are_bounded(hostile: str, route: str) -> None:
    async with driver_for(f"{hostile}/{route}/v1") as driver:
        with pytest.raises(HuggingFaceError) as info:
            async with driver.generate_stream(REQUEST) as stream:
                await stream.collect()
    assert info.value.kind is K.STREAM and f"{LIMIT:,} bytes" in info.value.message


async def test_a_huge_error_body_is_clipped_before_it_is_parsed(hostile: str) -> None:
    async with driver_for(f"{hostile}/big-error/v1") as driver:
        with pytest.raises(HuggingFaceError) as info:
            await driver.generate(REQUEST)
    error = info.value
    assert error.kind is K.SERVER and error.status == 500
    assert len(error.message) < 1000 and error.body is not None and len(error.body) <= 4000


def test_the_limits_are_checked() -> None:
    with pytest.raises(HuggingFaceError, match="max_event_bytes must be an integer >= 1024"):
        HuggingFaceDriver(base_url="http://127.0.0.1:1/v1", max_event_bytes=0)


DEEP = b"[" * 20_000 + b"]" * 20_000  # deeper than the interpreter's stack, within the size limits


@pytest.mark.parametrize(
    "response",
    [
        FakeResponse(body=DEEP, content_type="application/json"),
        FakeResponse(json={**completion_body("x"), "usage": {"prompt_tokens": 1e400}}),
        FakeResponse(
            body=b'{"choices": [{"message": {"content": ' + DEEP + b"}}]}", content_type="application/json"
        ),
    ],
    ids=["deep-json", "1e400-tokens", "deep-content"],
)
async def test_absurd_json_is_decode_not_a_raw_exception(response: FakeResponse) -> None:
    async with FakeRouter() as router, driver_for(router.base_url) as driver:
        router.enqueue(response)
        with pytest.raises(HuggingFaceError) as info:
            await driver.generate(REQUEST)
    assert info.value.kind is K.DECODE


async def test_absurd_json_in_a_stream_is_decode() -> None:
    async with FakeRouter() as router, driver_for(router.base_url) as driver:
        router.enqueue(FakeResponse(events=[DEEP.decode()], done=False))
        with pytest.raises(HuggingFaceError) as info:
            async with driver.generate_stream(REQUEST) as stream:
                await stream.collect()
    assert info.value.kind is K.DECODE


async def test_an_infinite_estimated_time_is_ignored() -> None:
    async with FakeRouter() as router, driver_for(router.base_url) as driver:
        router.enqueue(
            FakeResponse(status=503, body=b'{"error": "Model is loading", "estimated_time": 1e400}')
        )
        with pytest.raises(HuggingFaceError) as info:
            await driver.generate(REQUEST)
    assert info.value.kind is K.MODEL_LOADING and info.value.retry_after is None


@pytest.mark.parametrize("bad", ["hf_abc\r\nX-Evil: 1", "hf_abc\ndef", "hf_tökén_0123456789", "hf_a b"])
def test_a_token_with_line_breaks_or_odd_characters_is_config(bad: str) -> None:
    with pytest.raises(HuggingFaceError) as info:
        HuggingFaceDriver(bad)
    assert info.value.kind is K.CONFIG and "is not a token" in info.value.message
    assert bad not in str(info.value)


def test_token_files_must_be_small_regular_files(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big"
    big.write_bytes(b"x" * (65 * 1024))
    for path, words in [
        (fifo, "not a regular file"),
        ("/dev/zero", "not a regular file"),
        (big, "larger than 64 KiB"),
        (tmp_path, "not a regular file"),
    ]:
        with pytest.raises(HuggingFaceError, match=words) as info:
            resolve_token(env={"HF_TOKEN_PATH": str(path)})
        assert info.value.kind is K.CONFIG
    assert resolve_token(env={"HF_TOKEN_PATH": str(tmp_path / "missing")}) is None


async def test_a_secret_echoed_by_the_server_is_redacted_everywhere() -> None:
    echo = {"x-request-id": f"req-{SECRET}", "x-inference-provider": "vllm"}
    error_event = {"error": {"message": f"invalid key {SECRET}", "type": "authentication_error"}}
    async with FakeRouter() as router, driver_for(router.base_url, token=SECRET) as driver:
        router.enqueue(
            FakeResponse(json=completion_body("fine"), headers=echo),
            FakeResponse(events=[error_event], headers=echo, done=False),
            FakeResponse.error(400, f"bad key {SECRET}", headers=echo),
        )
        response = await driver.generate(REQUEST)
        errors = []
        with pytest.raises(HuggingFaceError) as streamed:
            async with driver.generate_stream(REQUEST) as stream:
                await stream.collect()
        errors.append(streamed.value)
        with pytest.raises(HuggingFaceError) as unary:
            await driver.generate(REQUEST)
        errors.append(unary.value)
    assert response.request_id is not None and SECRET not in response.request_id
    for error in errors:
        for text in (str(error), repr(error), error.message, error.body or "", error.request_id or ""):
            assert SECRET not in text
