"""A local stand-in for Ollama's pull API (``POST /api/pull`` with NDJSON progress)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from hfdriver.testing._server import LocalServer

__all__ = ["FakeOllama"]


class FakeOllama(LocalServer):
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
        super().__init__()
        self.available = set(available)
        self.layer_bytes = layer_bytes
        self.delay = delay
        self.pulled: list[str] = []
        self.requests: list[dict[str, Any]] = []

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/pull", self._pull)
        app.router.add_get("/api/tags", self._tags)
        return app

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
