"""CLI commands around local inference: ``serve``, ``local pull|list|rm``, ``ollama pull``."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

__all__ = ["add_commands", "run_local", "run_ollama", "run_serve"]


def add_commands(sub: Any) -> None:
    """Register ``serve``, ``local`` and ``ollama`` on the CLI's subparsers."""
    from hfdriver.server import DEFAULT_HOST, DEFAULT_PORT

    serve = sub.add_parser("serve", help="serve a driver or config profile as an OpenAI-compatible API")
    serve.add_argument(
        "--host", default=DEFAULT_HOST, help=f"interface to bind (default {DEFAULT_HOST}: this machine only)"
    )
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--api-key", help="require 'Authorization: Bearer KEY' from clients")
    serve.add_argument("--model", help="model to serve (overrides the configuration)")
    serve.add_argument("--local", action="store_true", help="serve the embedded local model (llama.cpp)")
    serve.add_argument("--max-request-bytes", type=int, default=4 * 1024 * 1024)

    local = sub.add_parser("local", help="local GGUF models").add_subparsers(
        dest="local_command", metavar="SUBCOMMAND", required=True
    )
    pull = local.add_parser("pull", help="download a GGUF model from the Hub: REPO[:QUANT] or REPO --file F")
    pull.add_argument("model", help="REPO[:QUANT], e.g. bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M")
    pull.add_argument("--file", help="a GGUF file of the repository, instead of a quantization")
    pull.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    local.add_parser("list", help="installed local models")
    rm = local.add_parser("rm", help="remove an installed model (KEY from `hfdriver local list`)")
    rm.add_argument("key")

    ollama = sub.add_parser("ollama", help="Ollama").add_subparsers(
        dest="ollama_command", metavar="SUBCOMMAND", required=True
    )
    opull = ollama.add_parser("pull", help="ask a running Ollama to pull hf.co/REPO:QUANT")
    opull.add_argument("model", help="REPO[:QUANT]")
    opull.add_argument("--ollama-url", default="http://127.0.0.1:11434")


def _bar(fraction: float | None, width: int = 30) -> str:
    if fraction is None:
        return "[" + "?" * width + "]"
    filled = int(fraction * width)
    return "[" + "#" * filled + "." * (width - filled) + f"] {fraction * 100:5.1f}%"


async def run_local(args: argparse.Namespace) -> int:
    from hfdriver.local import DownloadProgress, ModelStore

    store = ModelStore()
    if args.local_command == "list":
        models = store.list()
        if not models:
            print(
                "no local models installed; try: hfdriver local pull bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
                file=sys.stderr,
            )
            return 0
        for m in models:
            print(f"{m.key}  {m.size / 1e6:,.1f} MB  {m.path}")
        return 0
    if args.local_command == "rm":
        removed = store.remove(args.key)
        print(f"removed {removed.key}")
        return 0
    repo, _, quant = args.model.partition(":")
    if not quant and not args.file:
        raise HuggingFaceError(
            HuggingFaceErrorKind.INVALID_REQUEST,
            f"model: give a quantization ({repo}:Q4_K_M) or --file NAME.gguf",
        )

    def show(progress: DownloadProgress) -> None:
        size = f"{progress.downloaded / 1e6:,.1f}/{(progress.total or 0) / 1e6:,.1f} MB"
        print(
            f"\r{progress.filename} {_bar(progress.fraction)} {size}",
            end="\n" if progress.done else "",
            file=sys.stderr,
            flush=True,
        )

    model = await store.pull(
        repo, quantization=quant or None, file=args.file, device=args.device, on_progress=show
    )
    print(f"installed {model.key} at {model.path}")
    return 0


async def run_ollama(args: argparse.Namespace) -> int:
    from hfdriver.ollama import PullProgress, ollama_pull

    last: list[str] = [""]

    def show(progress: PullProgress) -> None:
        if progress.total:
            print(f"\r{progress.status} {_bar(progress.fraction)}", end="", file=sys.stderr, flush=True)
            last[0] = "bar"
        else:
            print(("\n" if last[0] == "bar" else "") + progress.status, file=sys.stderr, flush=True)
            last[0] = "status"

    name = await ollama_pull(args.model, ollama_url=args.ollama_url, on_progress=show)
    print(
        f"pulled {name}; use it with provider 'huggingface-endpoint', base_url '{args.ollama_url}/v1', model '{name}'"
    )
    return 0


async def run_serve(args: argparse.Namespace, driver: Any) -> int:
    from hfdriver.server import OpenAIServer

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
