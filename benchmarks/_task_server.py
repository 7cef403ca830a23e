"""A fast local server for the task benchmark (its own process): hf-inference's text
classification (JSON) and text-to-image (a real 256x256 PNG), answers built once.

``python _task_server.py PORT`` prints ``ready PORT``.
"""

from __future__ import annotations

import asyncio
import json
import struct
import sys
import zlib

from aiohttp import web


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    rows = b"".join(b"\x00" + bytes((x * 7 + y * 3) % 256 for x in range(width * 3)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def build_app() -> web.Application:
    labels = json.dumps(
        [[{"label": "POSITIVE", "score": 0.9998}, {"label": "NEGATIVE", "score": 0.0002}]]
    ).encode()
    image = png(256, 256)

    async def classify(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=labels, content_type="application/json")

    async def paint(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=image, content_type="image/png")

    app = web.Application()
    app.router.add_post("/hf-inference/models/bench/clf", classify)
    app.router.add_post("/hf-inference/models/bench/sd", paint)
    return app


async def main(port: int) -> None:
    runner = web.AppRunner(build_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"ready {runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
