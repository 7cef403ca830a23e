"""A local stand-in for Ollama's pull API (``POST /api/pull`` with NDJSON progress)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from aiohttp import web

__all__ = ["FakeOllama"]


class FakeOllama:
    """Serves ``/api/pull`` (streamed progress, then success) and ``/api/tags``.

    Models in ``available`` pull successfully, in three layers; others fail with Ollama's
    "file does not exist" error line. ``pulled`` lists what was pulled.
    """

    def __init__(
        self,
        available: Iterable[str] = ("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",),
        *,
        layer_bytes: int = 3000,
        delay: float = 0.0,
    ) -> None:
        self.available = set(available)
        self.layer_bytes = layer_bytes
        self.delay = delay
        self.pulled: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeOllama:
        app = web.Application()
        app.router.add_post("/api/pull", self._pull)
        app.router.add_get("/api/tags", self._tags)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeOllama:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _tags(self, _request: web.Request) -> web.Response:
        return web.json_response({"models": [{"name": n, "model": n} for n in self.pulled]})

    async def _pull(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        name = body.get("model") or body.get("name")
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(request)

        async def line(obj: dict[str, Any]) -> None:
            if self.delay:
                await asyncio.sleep(self.delay)
            await resp.write(json.dumps(obj).encode() + b"\n")

        await line({"status": "pulling manifest"})
        if name not in self.available:
            await line({"error": "pull model manifest: file does not exist"})
            await resp.write_eof()
            return resp
        for layer in range(3):
            digest = f"sha256:{layer:064d}"
            for done in range(0, self.layer_bytes + 1, self.layer_bytes // 3):
                await line(
                    {
                        "status": f"pulling {digest[7:19]}",
                        "digest": digest,
                        "total": self.layer_bytes,
                        "completed": done,
                    }
                )
        for status in ("verifying sha256 digest", "writing manifest", "success"):
            await line({"status": status})
        self.pulled.append(str(name))
        await resp.write_eof()
        return resp
