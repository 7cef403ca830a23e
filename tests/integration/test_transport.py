"""HttpClient against a real local server: bounded reads, mapped failures, session ownership."""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from hfdriver import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.errors import MAX_BODY_CHARS
from hfdriver.transport import ERROR_BODY_BYTES, USER_AGENT, HttpClient, request_timeout

K = HuggingFaceErrorKind
BIG = 256 * 1024  # bytes a test body holds; the limits under test are smaller


async def _sized(request: web.Request) -> web.Response:
    return web.Response(body=b"x" * int(request.query["n"]))


async def _chunked(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    for _ in range(int(request.query["pieces"])):
        await resp.write(b"y" * 4096)
    await resp.write_eof()
    return resp


async def _gzip(request: web.Request) -> web.Response:
    # A small compressed body that expands past the limit: a gzip bomb in miniature.
    return web.Response(body=gzip.compress(b"\0" * BIG), headers={"Content-Encoding": "gzip"})


async def _huge_error(request: web.Request) -> web.Response:
    return web.Response(status=500, body=b'{"error": "' + b"e" * (3 * ERROR_BODY_BYTES) + b'"}')


async def _ndjson(request: web.Request) -> web.Response:
    return web.Response(body=b'{"a": 1}\n\n{"a": 2}\n', content_type="application/x-ndjson")


async def _echo_headers(request: web.Request) -> web.Response:
    return web.json_response(dict(request.headers))


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/sized", _sized)
    app.router.add_get("/chunked", _chunked)
    app.router.add_get("/gzip", _gzip)
    app.router.add_get("/huge-error", _huge_error)
    app.router.add_get("/ndjson", _ndjson)
    app.router.add_get("/headers", _echo_headers)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("path", ["/sized?n=100000", "/chunked?pieces=25", "/gzip"])
async def test_bodies_past_the_limit_are_decode_errors(server: str, path: str) -> None:
    async with _client() as http:
        with pytest.raises(HuggingFaceError) as info:
            await http.fetch("GET", server + path, max_bytes=64 * 1024)
    assert info.value.kind is K.DECODE and "65,536 bytes" in info.value.message


@pytest.mark.parametrize("path", ["/sized?n=1000", "/chunked?pieces=3", "/gzip"])
async def test_bodies_within_the_limit_are_read_whole(server: str, path: str) -> None:
    async with _client() as http:
        reply = await http.fetch("GET", server + path, max_bytes=BIG)
    assert reply.status == 200 and len(reply.body) in (1000, 3 * 4096, BIG)


async def test_error_bodies_are_read_up_to_a_bound_then_mapped(server: str) -> None:
    async with _client() as http:
        with pytest.raises(HuggingFaceError) as info:
            await http.fetch("GET", server + "/huge-error")
    error = info.value
    assert error.kind is K.SERVER and error.status == 500
    assert error.body is not None and len(error.body) <= MAX_BODY_CHARS


async def test_lines_and_headers(server: str) -> None:
    async with _client(headers={"X-Extra": "1"}) as http:
        resp = await http.open("GET", server + "/ndjson")
        try:
            lines = [line async for line in http.lines(resp)]
        finally:
            resp.release()
        sent = (await http.fetch("GET", server + "/headers")).body
    assert lines == [b'{"a": 1}', b"", b'{"a": 2}']
    assert USER_AGENT.encode() in sent and b'"X-Extra": "1"' in sent


async def test_a_closed_client_says_so_and_a_borrowed_session_stays_open(server: str) -> None:
    http = HttpClient(owner="HubClient")
    await http.fetch("GET", server + "/sized?n=1")
    await http.aclose()
    with pytest.raises(HuggingFaceError) as info:
        await http.fetch("GET", server + "/sized?n=1")
    assert info.value.kind is K.CONFIG and "this HubClient was closed" in info.value.message
    async with aiohttp.ClientSession() as session:
        borrowed = HttpClient(session=session)
        await borrowed.fetch("GET", server + "/sized?n=1")
        await borrowed.aclose()
        assert not session.closed


async def test_refused_and_timed_out_are_mapped(server: str) -> None:
    async with _client(service="the Hub", hint="check HF_ENDPOINT") as http:
        with pytest.raises(HuggingFaceError) as refused:
            await http.fetch("GET", "http://127.0.0.1:1/x")
        with pytest.raises(HuggingFaceError) as slow:
            await http.fetch("GET", server + "/chunked?pieces=1", timeout=request_timeout(total=1e-4))
    assert refused.value.kind is K.CONNECTION and "could not reach the Hub" in refused.value.message
    assert "check HF_ENDPOINT" in refused.value.message
    assert slow.value.kind is K.TIMEOUT


@contextlib.asynccontextmanager
async def _client(**kwargs: Any) -> AsyncIterator[HttpClient]:
    http = HttpClient(**kwargs)
    try:
        yield http
    finally:
        await http.aclose()
