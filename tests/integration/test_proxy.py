"""HTTP(S)_PROXY and NO_PROXY are honoured by every client, as huggingface_hub and curl do."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from hfdriver import GenerateRequest, HubClient, HuggingFaceDriver
from hfdriver.ollama import ollama_pull
from hfdriver.testing import FakeRouter, completion_body, whoami_body

TOKEN = "hf_proxy_test_token_0123456789"
PROXY_VARS = (
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
)


@pytest.fixture
async def proxy(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[str]]:
    """A forward proxy on 127.0.0.1 that answers every request itself, recording the target URL."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append(str(request.url))
        if request.path.endswith("/chat/completions"):
            return web.json_response(completion_body("via the proxy"))
        if request.path.endswith("/whoami-v2"):
            return web.json_response(whoami_body("proxied"))
        if request.path.endswith("/api/pull"):
            return web.Response(body=b'{"status": "success"}\n', content_type="application/x-ndjson")
        return web.Response(status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{runner.addresses[0][1]}")
    try:
        yield seen
    finally:
        await runner.cleanup()


async def test_the_driver_hub_and_ollama_clients_go_through_the_proxy(proxy: list[str]) -> None:
    request = GenerateRequest.builder().model("m/x").user("hi").build()
    async with HuggingFaceDriver(TOKEN, base_url="http://router.invalid/v1") as driver:
        assert (await driver.generate(request)).text == "via the proxy"
    async with HubClient(TOKEN, endpoint="http://hub.invalid") as hub:
        assert (await hub.whoami()).name == "proxied"
    assert await ollama_pull("a/b:Q4_K_M", ollama_url="http://ollama.invalid:11434") == "hf.co/a/b:Q4_K_M"
    assert [url.split("/")[2] for url in proxy] == ["router.invalid", "hub.invalid", "ollama.invalid:11434"]


async def test_no_proxy_bypasses_it(proxy: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    request = GenerateRequest.builder().model("m/x").user("hi").build()
    async with FakeRouter() as router, HuggingFaceDriver(TOKEN, base_url=router.base_url) as driver:
        assert (await driver.generate(request)).text == "echo: hi"
    assert proxy == []
