"""Shared by the examples: the real router when a token is set, else the local FakeRouter."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator, Callable

from hfdriver import HuggingFaceDriver, resolve_token
from hfdriver.testing import FakeResponse, FakeRouter

DEFAULT_MODEL = "meta-llama/Llama-3.2-1B-Instruct"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--fake", action="store_true", help="use the local FakeRouter even if a token is set")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model id (default {DEFAULT_MODEL})")
    return p


@contextlib.asynccontextmanager
async def open_driver(
    args: argparse.Namespace, script: Callable[[], list[FakeResponse]] | None = None
) -> AsyncIterator[HuggingFaceDriver]:
    """Yield a driver for the real router (token found) or a FakeRouter (no token, or --fake)."""
    token = None if args.fake else resolve_token()
    if token is not None:
        print(
            f"[using the Hugging Face router with model {args.model}; token from {token.source.split(':')[0]}]",
            file=sys.stderr,
        )
        async with HuggingFaceDriver(token=token, model=args.model) as driver:
            yield driver
        return
    reason = "--fake given" if args.fake else "no HF_TOKEN set"
    async with FakeRouter() as router:
        if script is not None:
            router.enqueue(*script())
        print(
            f"[{reason}: using hfdriver's local FakeRouter at {router.base_url} (answers are scripted/echoed)]",
            file=sys.stderr,
        )
        async with HuggingFaceDriver(base_url=router.base_url, model=args.model) as driver:
            yield driver
