"""``hfdriver local pull|list|rm``: GGUF models from the Hub, verified and installed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

__all__ = ["register"]


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    local = sub.add_parser("local", parents=parents, help="local GGUF models").add_subparsers(
        dest="local_command", metavar="SUBCOMMAND", required=True
    )
    pull = local.add_parser(
        "pull", parents=parents, help="download a GGUF model from the Hub: REPO[:QUANT] or REPO --file F"
    )
    pull.add_argument("model", help="REPO[:QUANT], e.g. bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M")
    pull.add_argument("--file", help="a GGUF file of the repository, instead of a quantization")
    pull.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    pull.set_defaults(func=run_pull)
    local.add_parser("list", parents=parents, help="installed local models").set_defaults(func=run_list)
    rm = local.add_parser(
        "rm",
        parents=parents,
        help="remove an installed model: REPO:QUANT, or a KEY from `hfdriver local list`",
    )
    rm.add_argument("key")
    rm.set_defaults(func=run_rm)
    info = local.add_parser(
        "info",
        parents=parents,
        help="this machine for local models: CPU, RAM, accelerator, llama.cpp build, caches",
    )
    info.add_argument(
        "--json", action="store_true", help="the report as JSON (what the console's System view shows)"
    )
    info.set_defaults(func=run_info)


async def run_info(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from hfdriver.cli.config import config_summary
    from hfdriver.console import format_info, system_info

    report = await asyncio.to_thread(system_info, dict(config_summary(args)))
    print(json.dumps(report, indent=2) if args.json else format_info(report))
    return 0


def run_list(args: argparse.Namespace) -> int:
    from hfdriver.local import DEFAULT_MODEL_DESCRIPTION, ModelStore, embedded_model_path

    models = ModelStore().list()
    for m in models:
        print(f"{m.key}  {m.size / 1e6:,.1f} MB  {m.path}")
    embedded = embedded_model_path()
    if embedded is not None:
        size = Path(embedded).stat().st_size / 1e6
        print(f"embedded  {size:,.1f} MB  {DEFAULT_MODEL_DESCRIPTION} (hfdriver chat --local)")
    if not models:
        print(
            "no local models installed besides the embedded one; try: "
            "hfdriver local pull bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
            file=sys.stderr,
        )
    return 0


async def run_rm(args: argparse.Namespace) -> int:
    from hfdriver.local import ModelStore

    removed = ModelStore().remove(args.key)
    print(f"removed {removed.key}")
    return 0


async def run_pull(args: argparse.Namespace) -> int:
    from hfdriver.local import DownloadProgress, ModelStore

    repo, _, quant = args.model.partition(":")
    if not quant and not args.file:
        raise HuggingFaceError(
            HuggingFaceErrorKind.INVALID_REQUEST,
            f"model: give a quantization ({repo}:Q4_K_M) or --file NAME.gguf",
        )
    store = ModelStore()
    spec = args.file or quant.upper()
    existing = store.get(repo, spec, args.device)
    if existing is not None:
        print(f"{existing.key} is already installed at {existing.path}")
        return 0
    bars: dict[str, Any] = {}

    def show(progress: DownloadProgress) -> None:
        from tqdm.auto import tqdm  # type: ignore[import-untyped,unused-ignore]

        bar = bars.get(progress.filename)
        if bar is None:
            bar = bars[progress.filename] = tqdm(
                total=progress.total, unit="B", unit_scale=True, unit_divisor=1000, desc=progress.filename,  # MB, as `local list` says
                file=sys.stderr, dynamic_ncols=True,
            )  # fmt: skip
        if progress.total and bar.total != progress.total:
            bar.total = progress.total
        bar.update(max(0, progress.downloaded - bar.n))
        if progress.done:
            bar.close()

    try:
        model = await store.pull(
            repo, quantization=quant or None, file=args.file, device=args.device, on_progress=show
        )
    finally:
        for bar in bars.values():
            bar.close()
    print(f"installed {model.key} at {model.path}")
    return 0
