"""Search the Hub for models, with their inference providers.

python examples/search_models.py llama --limit 10 --provider all

Offline (the Hub unreachable), or with --fake, it searches hfdriver's local FakeHub and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

from hfdriver import HubClient, HuggingFaceError, HuggingFaceErrorKind
from hfdriver.testing import FakeHub


@contextlib.asynccontextmanager
async def open_hub(fake: bool) -> AsyncIterator[HubClient]:
    if not fake:
        async with HubClient() as hub:
            yield hub
        return
    async with FakeHub() as fake_hub:
        print(f"[using hfdriver's local FakeHub at {fake_hub.url}]", file=sys.stderr)
        async with HubClient(endpoint=fake_hub.url, router_url=fake_hub.router_url) as hub:
            yield hub


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("query", nargs="?")
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--provider", help="only models served by this provider ('all': by any)")
    p.add_argument("--gguf", action="store_true", help="only repositories with GGUF files")
    p.add_argument("--fake", action="store_true", help="search hfdriver's local FakeHub instead of the Hub")
    args = p.parse_args()
    try:
        try:
            rows = await search(args, fake=args.fake)
        except HuggingFaceError as error:
            if args.fake or error.kind not in (HuggingFaceErrorKind.CONNECTION, HuggingFaceErrorKind.TIMEOUT):
                raise
            print(
                f"[the Hub is unreachable ({error.kind.name}): searching the local FakeHub instead]",
                file=sys.stderr,
            )
            rows = await search(args, fake=True)
    except HuggingFaceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{'model':55} {'downloads':>11} {'likes':>6}  gguf  providers")
    for row in rows:
        print(row)
    return 0


async def search(args: argparse.Namespace, *, fake: bool) -> list[str]:
    rows = []
    async with open_hub(fake) as hub:
        async for model in hub.search_models(
            args.query, limit=args.limit, inference_provider=args.provider, gguf=args.gguf or None
        ):
            providers = ", ".join(model.live_providers) or "-"
            gguf = "yes" if model.has_gguf else "no "
            rows.append(f"{model.id:55} {model.downloads:>11,} {model.likes:>6}  {gguf:4}  {providers}")
    return rows


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
