"""A fast local chat-completions server for the benchmark (runs in its own process).

Answers are precomputed: a small chat completion, or an SSE stream of N chunks + usage + [DONE]
written at once, so the client's CPU is what the benchmark measures.
"""

from __future__ import annotations

import asyncio
import json
import sys

from aiohttp import web

from hfdriver.testing import completion_body, stream_events


def build_app(stream_chunks: int) -> web.Application:
    unary = json.dumps(completion_body("The capital of France is Paris.", model="bench/model")).encode()
    pieces = [f" tok{i}" for i in range(stream_chunks)]
    events = b"".join(
        b"data: " + json.dumps(e, separators=(",", ":")).encode() + b"\n\n"
        for e in stream_events(pieces, model="bench/model")
    )
    sse = events + b"data: [DONE]\n\n"
    headers = {"x-request-id": "bench", "x-inference-provider": "bench"}

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if body.get("stream"):
            resp = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream"})
            await resp.prepare(request)
            await resp.write(sse)
            await resp.write_eof()
            return resp
        return web.Response(body=unary, headers={**headers, "Content-Type": "application/json"})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


async def serve(port: int, stream_chunks: int) -> None:
    runner = web.AppRunner(build_app(stream_chunks), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    print(f"ready {runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2])))
