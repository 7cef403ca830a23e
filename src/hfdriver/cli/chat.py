"""``hfdriver chat``: one answer, streamed, or an interactive conversation."""

from __future__ import annotations

import argparse
import contextlib
import json
import select
import sys
from typing import Any

from hfdriver.cli._common import LoopRunner, UsageError, out
from hfdriver.config import LLMConfig, create_driver, load_config
from hfdriver.driver import Driver
from hfdriver.dto.request import GenerateRequest, Message
from hfdriver.dto.response import GenerateResponse
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


HELP = """commands: /exit (or /quit, Ctrl-D) leaves, /help shows this; anything else is sent to the model"""


def _read_stdin() -> str:
    """Piped input, which must be UTF-8 text."""
    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"stdin is not UTF-8 text (byte {exc.start}: {data[exc.start : exc.start + 1]!r}); "
            "convert it first, e.g. with iconv -f latin1 -t utf-8"
        ) from None


# With a prompt argument, piped text is joined only if stdin turns readable (data or end of input)
# this soon: a stdin inherited from a harness and never closed must not hang the command.
STDIN_WAIT = 1.0


def _stdin_ready(timeout: float) -> bool:
    try:
        readable, _, _ = select.select([sys.stdin], [], [], timeout)
    except (OSError, ValueError):  # not selectable (closed, or no real file): nothing to join
        return False
    return bool(readable)


def _prompt_from(args: argparse.Namespace) -> str | None:
    """The prompt: the argument, piped stdin, or both (``echo doc | hfdriver chat "Summarise:"``)."""
    if sys.stdin is None or sys.stdin.isatty():
        return args.prompt if isinstance(args.prompt, str) else None
    if args.prompt and not _stdin_ready(STDIN_WAIT):
        return str(args.prompt)
    piped = _read_stdin().strip()
    if args.prompt and piped:
        return f"{args.prompt}\n\n{piped}"
    prompt = args.prompt or piped
    if not prompt:
        raise UsageError(
            "no prompt: pass one, pipe one on stdin, or run on a terminal for an interactive chat"
        )
    return prompt


def _ask() -> str | None:
    """One line from the terminal (with line editing), or None at end of input.

    Read on the main thread, not a worker: Ctrl-C then interrupts it at once.
    """
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401 - importing it gives input() line editing and history
    try:
        return input("you> ")
    except EOFError:
        out()
        return None


def run_chat(args: argparse.Namespace) -> int:
    """Interactive prompts are read while no event loop runs, so Ctrl-C interrupts them at once
    (asyncio's own SIGINT handler only cancels a task); each turn then runs on one loop."""
    prompt = _prompt_from(args)
    interactive = prompt is None
    if args.local and not args.model:
        from hfdriver.local import DEFAULT_MODEL_DESCRIPTION

        out(f"[local: {DEFAULT_MODEL_DESCRIPTION}; expect rough answers]", stream=sys.stderr)
    with LoopRunner() as runner:
        driver = chat_driver(args)
        try:
            if interactive:
                name = getattr(driver, "model", None) or "the configured model"
                out(f"chatting with {name}; /help for commands, /exit or Ctrl-D to leave", stream=sys.stderr)
            history: list[Message] = [Message.system(args.system)] if args.system else []
            while True:
                if interactive:
                    prompt = _ask()
                    if prompt is None or prompt.strip() in ("/exit", "/quit"):
                        return 0
                    if prompt.strip() == "/help":
                        out(HELP, stream=sys.stderr)
                        continue
                    if not prompt.strip():
                        continue
                assert prompt is not None
                history.append(Message.user(prompt))
                request = GenerateRequest(
                    messages=tuple(history), max_tokens=args.max_tokens, temperature=args.temperature
                )
                if args.json:
                    out(_response_json(runner.run(driver.generate(request))))
                    return 0
                answer = runner.run(_stream_answer(driver, request))
                history.append(Message.assistant(answer or None))
                if not interactive:
                    return 0
        finally:
            runner.run(driver.aclose())


async def _stream_answer(driver: Driver, request: GenerateRequest) -> str:
    parts: list[str] = []
    async with driver.generate_stream(request) as stream:
        async for chunk in stream:
            if chunk.text:
                parts.append(chunk.text)
                out(chunk.text, end="")
        out()
        response = await stream.collect()  # the stream is read: this adds the cost, if known
    footer = footer_text(response)
    if footer:
        out(footer, stream=sys.stderr)
    return "".join(parts)


def footer_text(response: GenerateResponse) -> str:
    """``[provider · 12 in + 30 out tokens · $0.0000021]``: what is known of the answer."""
    parts = []
    if response.provider:
        parts.append(response.provider)
    if response.usage is not None:
        parts.append(f"{response.usage.prompt_tokens} in + {response.usage.completion_tokens} out tokens")
    if response.cached:
        parts.append("from the cache")
    elif response.cost is not None:
        parts.append(str(response.cost))
    return f"[{' · '.join(parts)}]" if parts else ""
