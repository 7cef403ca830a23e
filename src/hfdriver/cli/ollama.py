"""``hfdriver ollama pull``: ask a running Ollama to pull a Hugging Face GGUF model."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hfdriver.cli._common import progress_bar
from hfdriver.ollama import DEFAULT_OLLAMA_URL, PullProgress, ollama_pull

__all__ = ["register"]


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    ollama = sub.add_parser("ollama", parents=parents, help="Ollama").add_subparsers(
        dest="ollama_command", metavar="SUBCOMMAND", required=True
    )
    pull = ollama.add_parser("pull", parents=parents, help="ask a running Ollama to pull hf.co/REPO:QUANT")
    pull.add_argument("model", help="REPO[:QUANT]")
    pull.add_argument("--ollama-url", default=DEFAULT_OLLAMA_URL)
    pull.set_defaults(func=run_pull)


async def run_pull(args: argparse.Namespace) -> int:
    last: list[str] = [""]

    def show(progress: PullProgress) -> None:
        if progress.total:
            print(
                f"\r{progress.status} {progress_bar(progress.fraction)}", end="", file=sys.stderr, flush=True
            )
            last[0] = "bar"
        else:
            print(("\n" if last[0] == "bar" else "") + progress.status, file=sys.stderr, flush=True)
            last[0] = "status"

    name = await ollama_pull(args.model, ollama_url=args.ollama_url, on_progress=show)
    print(
        f"pulled {name}; use it with provider 'huggingface-endpoint', base_url '{args.ollama_url}/v1', model '{name}'"
    )
    return 0
