"""Run a fake server from the shell: ``python -m hfdriver.testing router|hub|ollama [--port N]``
(also ``hfdriver fake ...``). It prints its URL and serves until Ctrl-C; point ``base_url``,
``HF_ENDPOINT`` or ``OLLAMA_HOST`` at it to try an application offline."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

__all__ = ["main", "serve_fake"]

KINDS = ("router", "hub", "ollama")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "kind", choices=KINDS, help="router (OpenAI-compatible /v1), hub (HF_ENDPOINT) or ollama"
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free one)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface (default 127.0.0.1: this machine only)"
    )


async def serve_fake(kind: str, *, host: str = "127.0.0.1", port: int = 0) -> int:
    from hfdriver.testing import FakeHub, FakeOllama, FakeRouter

    server = {"router": FakeRouter, "hub": FakeHub, "ollama": FakeOllama}[kind]()
    server.host, server.port = host, port  # read when it starts
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        where = {
            "router": f"base_url = {server.url}/v1",
            "hub": f"HF_ENDPOINT={server.url}",
            "ollama": f"OLLAMA_HOST={server.url}",
        }[kind]
        print(f"fake {kind} at {server.url} ({where}); Ctrl-C to stop", file=sys.stderr, flush=True)
        await stop.wait()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hfdriver.testing", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return asyncio.run(serve_fake(args.kind, host=args.host, port=args.port))


if __name__ == "__main__":
    sys.exit(main())
