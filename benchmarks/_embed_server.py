"""A fast local embeddings server for the benchmarks (runs in its own process).

``python _embed_server.py PORT``. Answers are built once per shape and cached, so the client's
CPU and memory are what the benchmarks measure: ``POST /v1/embeddings`` (OpenAI: floats, or
base64 when asked) and ``POST /hf-inference/models/{id}/pipeline/feature-extraction`` (bare
arrays), ``DIMENSIONS`` values a vector.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from array import array

from aiohttp import web

DIMENSIONS = 384
_ROW = [((i * 7919) % 1000) / 1000.0 - 0.5 for i in range(DIMENSIONS)]
_B64 = base64.b64encode(array("f", _ROW).tobytes()).decode()
_FLOATS = json.dumps([float(array("f", [v])[0]) for v in _ROW], separators=(",", ":"))


def _count(value: object) -> int:
    return len(value) if isinstance(value, list) else 1


def build_app() -> web.Application:
    cache: dict[tuple[str, int], bytes] = {}
    headers = {"x-request-id": "bench", "x-inference-provider": "bench", "Content-Type": "application/json"}

    def openai_body(rows: int, encoding: str) -> bytes:
        key = (encoding, rows)
        if key not in cache:
            value = f'"{_B64}"' if encoding == "base64" else _FLOATS
            items = ",".join(f'{{"object":"embedding","index":{i},"embedding":{value}}}' for i in range(rows))
            cache[key] = (
                f'{{"object":"list","data":[{items}],"model":"bench/embedder",'
                f'"usage":{{"prompt_tokens":{rows},"total_tokens":{rows}}}}}'
            ).encode()
        return cache[key]

    def nested_body(rows: int) -> bytes:
        key = ("nested", rows)
        if key not in cache:
            cache[key] = ("[" + ",".join([_FLOATS] * rows) + "]").encode()
        return cache[key]

    async def embeddings(request: web.Request) -> web.Response:
        body = await request.json()
        rows = _count(body.get("input"))
        return web.Response(body=openai_body(rows, body.get("encoding_format") or "float"), headers=headers)

    async def feature_extraction(request: web.Request) -> web.Response:
        body = await request.json()
        return web.Response(body=nested_body(_count(body.get("inputs"))), headers=headers)

    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_post("/hf-inference/models/{model:.+}/pipeline/feature-extraction", feature_extraction)
    return app


async def main(port: int) -> None:
    runner = web.AppRunner(build_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"ready {bound}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
