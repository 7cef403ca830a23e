"""``hfdriver fake router|hub|ollama [--port N]``: a fake server for trying an application offline."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    from hfdriver.testing.__main__ import add_arguments

    fake = sub.add_parser(
        "fake",
        parents=parents,
        help="run FakeRouter, FakeHub or FakeOllama (point base_url / HF_ENDPOINT at it)",
    )
    add_arguments(fake)
    fake.set_defaults(func=run_fake)


async def run_fake(args: argparse.Namespace) -> int:
    from hfdriver.testing.__main__ import serve_fake

    return await serve_fake(args.kind, host=args.host, port=args.port)
