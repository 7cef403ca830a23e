"""``hfdriver models search|list``: the Hub's models and the router's catalogue."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hfdriver.cli._common import hub_client, llm_config, out, table

__all__ = ["register"]


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    models = sub.add_parser("models", parents=parents, help="find models").add_subparsers(
        dest="models_command", metavar="SUBCOMMAND", required=True
    )
    search = models.add_parser("search", parents=parents, help="search the Hub")
    search.add_argument("query")
    search.add_argument("--limit", type=int, default=20)
    search.add_argument("--provider", help="only models served by this provider ('all': any)")
    search.add_argument("--gguf", action="store_true", help="only repositories with GGUF files")
    search.set_defaults(func=run_search)
    listing = models.add_parser(
        "list", parents=parents, help="the router's catalogue: providers, prices, context"
    )
    listing.add_argument("--search", help="only model ids containing this text")
    listing.add_argument("--tools", action="store_true", help="only models with a tool-capable provider")
    listing.set_defaults(func=run_list)


async def run_search(args: argparse.Namespace) -> int:
    async with hub_client() as hub:
        found = hub.search_models(
            args.query, limit=args.limit, inference_provider=args.provider, gguf=args.gguf or None
        )
        rows = [
            (
                m.id,
                f"{m.downloads:,}",
                str(m.likes),
                "yes" if m.has_gguf else "no",
                ", ".join(m.live_providers) or "-",
            )
            async for m in found
        ]
    if not rows:
        out(f"no models match {args.query!r}", stream=sys.stderr)
        return 0
    table(rows, ("model", "downloads", "likes", "gguf", "providers"), right=(1, 2))
    return 0


def _price(value: float | None) -> str:
    return "-" if value is None else f"${value:g}"


async def run_list(args: argparse.Namespace) -> int:
    _, llm = llm_config(args)
    async with hub_client(llm) as hub:
        models = await hub.router_models()
    if args.search:
        models = [m for m in models if args.search.lower() in m.id.lower()]
    if args.tools:
        known = [m for m in models if any(p.supports_tools is not None for p in m.live_providers)]
        if models and not known:
            offline = all(m.source == "catalogue" for m in models)
            out(
                "the catalogue has no tool information"
                + (" (offline: this is hfdriver's built-in list)" if offline else "")
                + "; run it online to filter by tool support, or leave out --tools",
                stream=sys.stderr,
            )
            return 1
        models = [m for m in models if m.supports_tools]
    rows = []
    for m in models:
        cheapest = m.cheapest()
        pricing = cheapest.pricing if cheapest is not None else None
        providers = ", ".join(p.provider for p in m.live_providers) or (
            "(built-in catalogue)" if m.source == "catalogue" else "-"
        )
        rows.append(
            (
                m.id,
                providers,
                _price(pricing.input if pricing else None),
                _price(pricing.output if pricing else None),
                f"{m.context_window:,}" if m.context_window else "-",
            )
        )
    if not rows:
        out("no models match", stream=sys.stderr)
        return 0
    table(rows, ("model", "providers", "in $/1M", "out $/1M", "context"), right=(2, 3, 4))
    return 0
