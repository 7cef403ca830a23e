"""`hfdriver serve` against browsers, slow and vanishing clients, and careless payloads (issue 10, group 4)."""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hfdriver import GenerateRequest, GenerateResponse, HuggingFaceDriver, RetryPolicy
from hfdriver.server import OpenAIServer
from hfdriver.testing import FakeResponse, FakeRouter

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def router() -> AsyncIterator[FakeRouter]:
    async with FakeRouter() as fake:
        yield fake


@pytest.fixture
async def server(router: FakeRouter) -> AsyncIterator[OpenAIServer]:
    async with (
        HuggingFaceDriver(base_url=router.base_url, model="m/x", retry=RetryPolicy.disabled()) as driver,
        OpenAIServer(
            driver, port=0, allowed_hosts=["my-box.lan"], allowed_origins=["https://app.example"]
        ) as srv,
    ):
        yield srv


async def _post(
    server: OpenAIServer, body: Any = None, *, headers: dict[str, str] | None = None, raw: bytes | None = None
) -> tuple[int, dict[str, Any]]:
    data = (
        raw if raw is not None else json.dumps(body if body is not None else {"messages": MESSAGES}).encode()
    )
    sent = {"Content-Type": "application/json", **(headers or {})}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{server.base_url}/chat/completions", data=data, headers=sent) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 200),
        ({"Host": "localhost:1234"}, 200),
        ({"Host": "localhost.:1234"}, 200),
        ({"Host": "[::1]:9231"}, 200),
        ({"Host": "192.168.1.20:9231"}, 200),  # an IP literal cannot be a rebinding name
        ({"Host": "my-box.lan"}, 200),  # allowed by the user
        ({"Host": "evil.example"}, 403),  # DNS rebinding
        ({"Origin": "http://localhost:3000"}, 200),
        ({"Origin": "https://app.example"}, 200),  # allowed by the user
        ({"Origin": "https://evil.example"}, 403),  # any web page
        ({"Origin": "null"}, 403),
        ({"Content-Type": "text/plain"}, 400),  # a cross-site "simple" request
        ({"Content-Type": "application/x-www-form-urlencoded"}, 400),
    ],
)
async def test_browsers_cannot_drive_it(
    server: OpenAIServer, router: FakeRouter, headers: dict[str, str], status: int
) -> None:
    code, body = await _post(server, headers=headers)
    assert code == status, body
    if status != 200:
        assert "error" in body and router.requests == []  # nothing was forwarded upstream


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": MESSAGES, "stop": 5}, "stop"),
        (
            {
                "messages": MESSAGES,
                "tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}],
            },
            "tools[0].function.parameters",
        ),
        ({"messages": MESSAGES, "tool_choice": {"function": "f"}}, "tool_choice"),
        (
            {"messages": [{"role": "assistant", "content": "", "tool_calls": {"id": "x"}}]},
            "messages[0].tool_calls",
        ),
        (
            {"messages": MESSAGES, "response_format": {"type": "json_schema", "json_schema": "x"}},
            "response_format.json_schema",
        ),
        ({"messages": MESSAGES, "response_format": "json"}, "response_format"),
        ({"messages": MESSAGES, "tools": {"a": 1}}, "tools"),
        ({"messages": MESSAGES, "max_tokens": "many"}, "max_tokens"),
        ({"messages": [{"role": "user", "content": [5]}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": "hi", "name": 7}]}, "messages[0].name"),
    ],
)
async def test_wrong_field_types_are_400s_naming_the_field(
    server: OpenAIServer, body: dict[str, Any], field: str
) -> None:
    code, answer = await _post(server, body)
    assert code == 400, answer
    assert answer["error"]["type"] == "invalid_request_error" and answer["error"]["message"].startswith(field)


@pytest.mark.parametrize(
    ("raw", "headers", "words"),
    [
        (b"[" * 100_000 + b"]" * 100_000, {}, "nested too deeply"),
        (b'{"messages": []}', {"Content-Type": "application/json; charset=bogus-8"}, "unknown charset"),
        ('{"messages": [{"role": "user", "content": "é"}]}'.encode("latin-1"), {}, "not valid utf-8"),
        (b"", {}, "not valid JSON"),
    ],
)
async def test_broken_bodies_are_400s(
    server: OpenAIServer, raw: bytes, headers: dict[str, str], words: str
) -> None:
    code, answer = await _post(server, raw=raw, headers=headers)
    assert code == 400 and words in answer["error"]["message"], answer


async def test_odd_bytes_in_authorization_are_a_401_not_a_crash(router: FakeRouter) -> None:
    async with (
        HuggingFaceDriver(base_url=router.base_url, model="m/x") as driver,
        OpenAIServer(driver, port=0, api_key="k") as server,
    ):
        request = b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \xff\xfe\r\nConnection: close\r\n\r\n"
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(request)
        answer = await asyncio.wait_for(reader.read(), timeout=5)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 401")


async def test_an_infinite_estimated_time_upstream_is_a_503_not_a_500(
    server: OpenAIServer, router: FakeRouter
) -> None:
    router.enqueue(FakeResponse(status=503, body=b'{"error": "Model is loading", "estimated_time": 1e400}'))
    code, answer = await _post(server)
    assert code == 503 and answer["error"]["code"] == "model_loading"


async def test_an_unexpected_failure_is_a_logged_500_error_object(
    router: FakeRouter, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        model = "m/x"

        async def generate(self, request: GenerateRequest) -> GenerateResponse:
            raise KeyError("a bug")

        async def aclose(self) -> None: ...

    async with OpenAIServer(Broken(), port=0) as server:  # type: ignore[arg-type]
        code, answer = await _post(server)
    assert code == 500 and answer["error"]["type"] == "server_error" and "Traceback" not in json.dumps(answer)
    assert "a bug" in caplog.text


async def test_a_client_that_hangs_up_cancels_the_upstream_call() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    class Slow:
        model = "m/x"

        async def generate(self, request: GenerateRequest) -> GenerateResponse:
            started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            raise AssertionError("not reached")

        async def aclose(self) -> None: ...

    async with OpenAIServer(Slow(), port=0) as server:  # type: ignore[arg-type]
        body = json.dumps({"messages": MESSAGES}).encode()
        _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        await asyncio.wait_for(started.wait(), timeout=5)
        writer.close()  # the client goes away
        await asyncio.wait_for(cancelled.wait(), timeout=5)


async def test_slow_and_idle_connections_are_closed(router: FakeRouter) -> None:
    async with (
        HuggingFaceDriver(base_url=router.base_url, model="m/x") as driver,
        OpenAIServer(driver, port=0, idle_timeout=0.5) as server,
    ):
        sockets = []
        for i in range(50):
            sock = socket.create_connection(("127.0.0.1", server.port))
            if i % 2:
                sock.sendall(
                    b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                )  # slowloris: never ends
            sock.setblocking(False)
            sockets.append(sock)
        deadline = time.monotonic() + 5
        open_ = list(sockets)
        while open_ and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            still = []
            for sock in open_:
                try:
                    if sock.recv(1024) == b"":
                        continue  # closed by the server
                except BlockingIOError:
                    pass
                still.append(sock)
            open_ = still
        for sock in sockets:
            sock.close()
    assert open_ == [], f"{len(open_)} of 50 slow or idle connections still open"


async def test_shutdown_stops_accepting_then_drains(router: FakeRouter) -> None:
    router.enqueue(FakeResponse.stream(["a"] * 30, chunk_size=60, delay=0.05))
    async with HuggingFaceDriver(base_url=router.base_url, model="m/x") as driver:
        server = await OpenAIServer(driver, port=0, grace=0.6).start()
        async with aiohttp.ClientSession() as session:
            body = {"messages": MESSAGES, "stream": True}
            async with session.post(f"{server.base_url}/chat/completions", json=body) as resp:
                await resp.content.readline()  # the stream is under way
                began = time.monotonic()
                closing = asyncio.create_task(server.close())
                await asyncio.sleep(0.1)
                with pytest.raises(aiohttp.ClientConnectionError):  # no new connections during the grace
                    async with aiohttp.ClientSession() as other:
                        await other.get(server.base_url.removesuffix("/v1") + "/health")
                text = (await resp.read()).decode()
            await closing
    assert time.monotonic() - began < 3.0  # the grace period, not several of them
    assert "shutting down" in text and text.rstrip().endswith("data: [DONE]")


def test_the_api_key_comes_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hfdriver.cli.serve import API_KEY_ENV, _api_key

    key_file = tmp_path / "key"
    key_file.write_text("sk-from-file\n")
    args = argparse.Namespace(api_key=None, api_key_file=str(key_file))
    assert _api_key(args) == "sk-from-file"
    monkeypatch.setenv(API_KEY_ENV, "sk-from-env")
    assert _api_key(argparse.Namespace(api_key=None, api_key_file=None)) == "sk-from-env"
    assert _api_key(argparse.Namespace(api_key="sk-arg", api_key_file=None)) == "sk-arg"


async def test_a_body_that_never_finishes_arriving_is_cut_off(router: FakeRouter) -> None:
    async with (
        HuggingFaceDriver(base_url=router.base_url, model="m/x") as driver,
        OpenAIServer(driver, port=0, body_timeout=0.3) as server,
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"messages": '
        )
        await writer.drain()
        answer = b""
        while b"seconds" not in answer:  # the answer comes; the connection may stay open
            answer += await asyncio.wait_for(reader.read(4096), timeout=5)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 400") and b"not received within 0.3 seconds" in answer
    assert router.requests == []


async def test_a_request_without_a_host_header_is_served(server: OpenAIServer) -> None:
    # HTTP/1.0 tools send no Host; browsers always do, so its absence is no rebinding attempt.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /v1/models HTTP/1.0\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    assert answer.startswith(b"HTTP/1.0 200") and b'"object": "list"' in answer
