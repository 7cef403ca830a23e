"""``hfdriver serve``: a driver or configuration profile as an OpenAI-compatible API."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from hfdriver.cli.chat import chat_driver
from hfdriver.server import DEFAULT_HOST, DEFAULT_PORT, OpenAIServer

__all__ = ["register"]


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser(
        "serve", parents=parents, help="serve a driver or config profile as an OpenAI-compatible API"
    )
    serve.add_argument(
        "--host", default=DEFAULT_HOST, help=f"interface to bind (default {DEFAULT_HOST}: this machine only)"
    )
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--api-key", help="require 'Authorization: Bearer KEY' from clients")
    serve.add_argument("--model", help="model to serve (overrides the configuration)")
    serve.add_argument("--local", action="store_true", help="serve the embedded local model (llama.cpp)")
    serve.add_argument("--max-request-bytes", type=int, default=4 * 1024 * 1024)
    serve.set_defaults(func=run_serve)


async def run_serve(args: argparse.Namespace) -> int:
    driver = chat_driver(args)
    server = OpenAIServer(
        driver, host=args.host, port=args.port, api_key=args.api_key, max_request_bytes=args.max_request_bytes
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
        print(
            f"hfdriver serving {getattr(driver, 'model', None) or 'its default model'} at {server.base_url} (Ctrl-C to stop)",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()
        print("shutting down: letting in-flight streams finish", file=sys.stderr, flush=True)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await server.close()
        await driver.aclose()
    return 0
