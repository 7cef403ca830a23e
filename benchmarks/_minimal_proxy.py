"""The yardstick for `hfdriver serve`: a minimal aiohttp proxy that only parses each request and
each stream event with `json` and encodes it again (no validation, no DTOs, one write per event).

Usage: python _minimal_proxy.py UPSTREAM_V1_URL  (prints "ready PORT")
"""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp
from aiohttp import web


def build_app(upstream: str) -> web.Application:
    url = upstream.rstrip("/") + "/chat/completions"
    session: dict[str, aiohttp.ClientSession] = {}

    async def start(app: web.Application) -> None:
        session["s"] = aiohttp.ClientSession()

    async def stop(app: web.Application) -> None:
        await session["s"].close()

    async def chat(request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read())
        async with session["s"].post(
            url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        ) as up:
            if not body.get("stream"):
                answer = json.loads(await up.read())
                return web.Response(body=json.dumps(answer).encode(), content_type="application/json")
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            async for line in up.content:
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    await resp.write(b"data: [DONE]\n\n")
                    break
                await resp.write(b"data: " + json.dumps(json.loads(data)).encode() + b"\n\n")
            await resp.write_eof()
            return resp

    app = web.Application()
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_post("/v1/chat/completions", chat)
    return app


async def serve(upstream: str) -> None:
    runner = web.AppRunner(build_app(upstream), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    print(f"ready {runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
