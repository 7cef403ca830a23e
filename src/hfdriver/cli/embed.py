"""``hfdriver embed``: embeddings of texts (arguments, or stdin lines), shown or as OpenAI JSON."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from hfdriver._wrapper import embed_with
from hfdriver.cli._common import UsageError, out
from hfdriver.config import LLMConfig, create_driver, load_config
from hfdriver.driver import Driver
from hfdriver.dto.embed import EmbedRequest, EmbedResponse
from hfdriver.openai.embeddings import embeddings_object

__all__ = ["register"]

_SHOWN = 4  # values of each vector printed (the rest is elided)


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    embed = sub.add_parser(
        "embed",
        parents=parents,
        help="embed texts (one vector per text)",
        description="Embed each TEXT (or each non-empty line of stdin) and print its dimensions and first "
        "values, or the OpenAI-shaped JSON with --json.",
    )
    embed.add_argument("texts", nargs="*", metavar="TEXT", help="texts to embed; stdin lines when none")
    embed.add_argument(
        "--model",
        help="an embedding model (e.g. BAAI/bge-small-en-v1.5, optionally :provider); default: the "
        "configuration's embedding_model, else its model. With --local: REPO:QUANT or a .gguf path",
    )
    embed.add_argument(
        "--dimensions", type=int, help="fewer dimensions (models that can truncate their vectors)"
    )
    embed.add_argument("--json", action="store_true", help="print the OpenAI embeddings JSON (floats)")
    embed.add_argument(
        "--local",
        action="store_true",
        help="embed locally (llama.cpp): the embedded Gemma 3 270M, or --model",
    )
    embed.set_defaults(func=run_embed)


def _texts(args: argparse.Namespace) -> list[str]:
    if args.texts:
        return list(args.texts)
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError("nothing to embed: pass TEXT arguments, or pipe lines on stdin")
    data = sys.stdin.buffer.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"stdin is not UTF-8 text (byte {exc.start}); convert it first") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise UsageError("nothing to embed: stdin held no non-empty line")
    return lines


def _driver(args: argparse.Namespace) -> Driver:
    if args.local:
        return create_driver(LLMConfig(provider="huggingface-local", model=args.model or None))
    return create_driver(load_config(args.config), args.profile)


def _shown(response: EmbedResponse, texts: list[str]) -> list[str]:
    lines = []
    for index, text in enumerate(texts):
        values = " ".join(f"{v:+.4f}" for v in response.vectors[index][:_SHOWN].tolist())
        more = " ..." if response.dimensions > _SHOWN else ""
        label = text if len(text) <= 40 else text[:37] + "..."
        lines.append(f"{label!r}: {response.dimensions} dims [{values}{more}]")
    return lines


def _footer(response: EmbedResponse) -> str:
    parts = [response.model or "?"]
    if response.provider:
        parts.append(f"via {response.provider}")
    if response.usage is not None and response.usage.prompt_tokens:
        parts.append(f"{response.usage.prompt_tokens} tokens")
    if response.cost is not None:
        parts.append(f"${response.cost.total:.6f}")
    if response.cached:
        parts.append("cached")
    return "[" + ", ".join(parts) + "]"


async def run_embed(args: argparse.Namespace) -> int:
    texts = _texts(args)
    request = EmbedRequest(
        inputs=tuple(texts), model=None if args.local else args.model, dimensions=args.dimensions
    )
    driver = _driver(args)
    try:
        response = await embed_with(driver, request)
    finally:
        await driver.aclose()
    if args.json:
        body = embeddings_object(response, model=response.model or "")
        out(json.dumps(body, ensure_ascii=False))
        return 0
    for line in _shown(response, texts):
        out(line)
    out(_footer(response), stream=sys.stderr)
    return 0
