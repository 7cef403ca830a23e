"""``hfdriver chat``: one answer, streamed, or an interactive conversation."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from hfdriver.cli._common import UsageError, out
from hfdriver.config import LLMConfig, create_driver, load_config
from hfdriver.driver import Driver
from hfdriver.dto.request import GenerateRequest, Message
from hfdriver.openai import converter

__all__ = ["register"]


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    chat = sub.add_parser("chat", parents=parents, help="chat with a model (streams the answer)")
    chat.add_argument(
        "prompt",
        nargs="?",
        help="the prompt; read from stdin when piped; interactive when omitted on a terminal",
    )
    chat.add_argument("--model", help="model id, optionally with :fastest / :cheapest / :provider")
    chat.add_argument("--system", help="a system message")
    chat.add_argument("--max-tokens", type=int)
    chat.add_argument("--temperature", type=float)
    chat.add_argument("--json", action="store_true", help="print the whole response as JSON (no streaming)")
    chat.add_argument(
        "--local",
        action="store_true",
        help="run locally (llama.cpp): the embedded Gemma 3 270M base model, or --model REPO:QUANT / a .gguf path",
    )
    chat.set_defaults(func=run_chat)


def chat_driver(args: argparse.Namespace) -> Driver:
    """The driver ``chat`` and ``serve`` use: the embedded local model, or the configuration's."""
    if args.local:
        # --model names a pulled model (REPO:QUANT, as `hfdriver local pull` takes it) or a .gguf path.
        return create_driver(LLMConfig(provider="huggingface-local", model=args.model or None))
    return create_driver(load_config(args.config), args.profile, model=args.model)


def _response_json(response: Any) -> str:
    return json.dumps(converter.unstructure(response), indent=2, ensure_ascii=False, default=str)


async def run_chat(args: argparse.Namespace) -> int:
    prompt = args.prompt
    interactive = prompt is None and sys.stdin.isatty()
    if prompt is None and not interactive:
        prompt = sys.stdin.read().strip()
        if not prompt:
            raise UsageError(
                "no prompt: pass one, pipe one on stdin, or run on a terminal for an interactive chat"
            )
    if args.local and not args.model:
        from hfdriver.local import DEFAULT_MODEL_DESCRIPTION

        out(f"[local: {DEFAULT_MODEL_DESCRIPTION}; expect rough answers]", stream=sys.stderr)
    driver = chat_driver(args)
    try:
        history: list[Message] = [Message.system(args.system)] if args.system else []
        while True:
            if interactive:
                try:
                    prompt = await asyncio.to_thread(input, "you> ")
                except EOFError:
                    out()
                    return 0
                if prompt.strip() in ("/exit", "/quit"):
                    return 0
                if not prompt.strip():
                    continue
            history.append(Message.user(prompt))
            request = GenerateRequest(
                messages=tuple(history), max_tokens=args.max_tokens, temperature=args.temperature
            )
            if args.json:
                out(_response_json(await driver.generate(request)))
                return 0
            answer = await _stream_answer(driver, request)
            history.append(Message.assistant(answer or None))
            if not interactive:
                return 0
    finally:
        await driver.aclose()


async def _stream_answer(driver: Driver, request: GenerateRequest) -> str:
    parts: list[str] = []
    async with driver.generate_stream(request) as stream:
        async for chunk in stream:
            if chunk.text:
                parts.append(chunk.text)
                out(chunk.text, end="")
    out()
    return "".join(parts)
