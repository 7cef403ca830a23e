"""``hfdriver cache stats|clear``: the response cache file of the configuration."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hfdriver.cache import SQLiteCache, classify_cache_path, default_cache_path
from hfdriver.cli._common import llm_config, out, table

__all__ = ["register"]


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    cache = sub.add_parser("cache", parents=parents, help="the response cache").add_subparsers(
        dest="cache_command", metavar="SUBCOMMAND", required=True
    )
    for name, func, text in (
        ("stats", run_stats, "entries, size, hits and misses of the cache file"),
        ("clear", run_clear, "forget every cached answer (a damaged file is made anew)"),
    ):
        command = cache.add_parser(name, parents=parents, help=text)
        command.add_argument(
            "--path", type=Path, help="the cache file (default: [llm.cache] path, else the standard one)"
        )
        command.set_defaults(func=func)


def _path(args: argparse.Namespace) -> Path:
    if args.path is not None:
        return Path(args.path).expanduser()
    _, llm = llm_config(args)
    return Path(llm.cache.path).expanduser() if llm.cache.path else default_cache_path()


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)  # pragma: no cover


def _existing(args: argparse.Namespace, missing: str) -> SQLiteCache | None:
    """The cache at the path in effect; ``CONFIG`` (one line, nothing touched) when that path
    holds anything but a cache file (a directory, a device, a dataset, another program's database)."""
    path = _path(args)
    cache = SQLiteCache(path)
    if classify_cache_path(cache.path) == "new":
        out(f"no cache file at {path}{missing}")
        return None
    return cache


async def run_stats(args: argparse.Namespace) -> int:
    cache = _existing(args, " yet (it is created on the first cached answer)")
    if cache is None:
        return 0
    path = cache.path
    try:
        stats = await cache.stats()
    finally:
        await cache.aclose()
    if stats.errors:
        out(f"the cache file {path} cannot be read; `hfdriver cache clear` makes it anew")
        return 1
    rows = [
        ("path", str(path)),
        ("entries", f"{stats.entries:,}"),
        ("size", _size(stats.bytes)),
        ("hits", f"{stats.hits:,}"),
        ("misses", f"{stats.misses:,}"),
        ("hit rate", f"{stats.hit_rate * 100:.1f}%"),
        ("stored", f"{stats.stores:,}"),
        ("evicted", f"{stats.evictions:,}"),
        ("expired", f"{stats.expired:,}"),
    ]
    table(rows, ("", ""))
    return 0


async def run_clear(args: argparse.Namespace) -> int:
    cache = _existing(args, ": nothing to clear")
    if cache is None:
        return 0
    path = cache.path
    try:
        before = await cache.stats()
        await cache.clear()
        after = await cache.stats()
    finally:
        await cache.aclose()
    if after.errors and after.entries:
        out(f"could not clear {path}")
        return 1
    out(f"cleared {before.entries:,} cached answers ({_size(before.bytes)}) from {path}")
    return 0
