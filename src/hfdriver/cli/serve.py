"""``hfdriver serve``: a driver or configuration profile as an OpenAI-compatible API."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from hfdriver.auth import read_token_file
from hfdriver.cli.chat import chat_driver
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.server import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    MemoryResponseStore,
    OpenAIServer,
    ResponseStore,
    SQLiteResponseStore,
)

if TYPE_CHECKING:
    from hfdriver.console import Console

__all__ = ["API_KEY_ENV", "register"]

API_KEY_ENV = "HFDRIVER_SERVE_API_KEY"


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser(
        "serve", parents=parents, help="serve a driver or config profile as an OpenAI-compatible API"
    )
    serve.add_argument(
        "--host", default=DEFAULT_HOST, help=f"interface to bind (default {DEFAULT_HOST}: this machine only)"
    )
    serve.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"0-65535 (default {DEFAULT_PORT}; 0: any free port)"
    )
    serve.add_argument(
        "--api-key",
        help=f"require 'Authorization: Bearer KEY' from clients (visible to other local users in the process "
        f"list: prefer --api-key-file or ${API_KEY_ENV})",
    )
    serve.add_argument("--api-key-file", metavar="PATH", help="read the API key from this file")
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="accept requests for this Host name too (loopback names and IP addresses always are; '*': any)",
    )
    serve.add_argument(
        "--allowed-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let web pages from this origin call the server (e.g. http://localhost:3000 is always allowed; '*': any)",
    )
    serve.add_argument("-m", "--model", help="model to serve (overrides the configuration)")
    serve.add_argument("--local", action="store_true", help="serve the embedded local model (llama.cpp)")
    serve.add_argument("--max-request-bytes", type=_positive_int, default=4 * 1024 * 1024)
    serve.add_argument(
        "--no-console",
        action="store_true",
        help="serve no console page (GET /) and no /api/ routes: the OpenAI-compatible API only",
    )
    serve.add_argument(
        "--no-store",
        action="store_true",
        help="keep stored Responses API responses in memory only (default: a SQLite file beside the cache, "
        "kept across restarts)",
    )
    serve.set_defaults(func=run_serve)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port: use 0-65535 (0 picks a free one)")
    return port


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _api_key(args: argparse.Namespace) -> str | None:
    """--api-key, else --api-key-file, else $HFDRIVER_SERVE_API_KEY. An empty key given any of
    these ways (``--api-key "$KEY"`` with KEY unset) is refused: it would serve with no key at all."""
    if args.api_key is not None:
        key = str(args.api_key).strip()
        if not key:
            raise HuggingFaceError(
                HuggingFaceErrorKind.CONFIG,
                "--api-key is empty (an unset variable?); give the key, or leave the option out "
                "to serve without one",
            )
        return key
    if args.api_key_file:
        key = (read_token_file(args.api_key_file) or "").strip()
        if not key:
            raise HuggingFaceError(
                HuggingFaceErrorKind.CONFIG, f"--api-key-file {args.api_key_file} is empty"
            )
        return key
    value = os.environ.get(API_KEY_ENV)
    if value is None:
        return None
    if not value.strip():
        raise HuggingFaceError(
            HuggingFaceErrorKind.CONFIG,
            f"${API_KEY_ENV} is set but empty; give the key, or unset it to serve without one",
        )
    return value.strip()


async def run_serve(args: argparse.Namespace) -> int:
    api_key = _api_key(args)
    logging.getLogger("hfdriver.access").setLevel(logging.INFO)  # one line per request on stderr
    driver = chat_driver(args, command="serve")
    store: ResponseStore = MemoryResponseStore() if args.no_store else SQLiteResponseStore()
    console = None if args.no_console else _console(args)
    server = OpenAIServer(
        driver,
        host=args.host,
        port=args.port,
        api_key=api_key,
        max_request_bytes=args.max_request_bytes,
        allowed_hosts=args.allowed_host,
        allowed_origins=args.allowed_origin,
        response_store=store,
        routes=console.routes() if console is not None else (),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            await server.start()
        except OSError as exc:
            raise HuggingFaceError(
                HuggingFaceErrorKind.CONFIG,
                f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc}); "
                "pass another --port (0 picks a free one) or --host",
            ) from None
        print(
            f"hfdriver serving {getattr(driver, 'model', None) or 'its default model'} at {server.base_url} (Ctrl-C to stop)",
            file=sys.stderr,
            flush=True,
        )
        if console is not None:
            print(f"console: {server.base_url.removesuffix('/v1')}/", file=sys.stderr, flush=True)
        await stop.wait()
        print("shutting down: letting in-flight streams finish", file=sys.stderr, flush=True)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await server.close()
        if console is not None:
            await console.pulls.aclose()
        await driver.aclose()
    return 0


def _console(args: argparse.Namespace) -> Console:
    """The console over this configuration: its settings (secrets masked) and its token."""
    from hfdriver.cli.config import config_summary, configured_token
    from hfdriver.console import build_console

    return build_console(dict(config_summary(args)), configured_token(args))
