"""``hfdriver chat``: one answer, streamed, or an interactive conversation."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import select
import sqlite3
import sys
from pathlib import Path
from typing import Any

from hfdriver.cli._common import LoopRunner, UsageError, out
from hfdriver.config import Config, LLMConfig, create_driver, load_config, token_for
from hfdriver.driver import Driver
from hfdriver.dto.request import GenerateRequest, Image, Message
from hfdriver.dto.response import GenerateResponse
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.openai import converter

__all__ = ["register"]


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    chat = sub.add_parser("chat", parents=parents, help="chat with a model (streams the answer)")
    chat.add_argument(
        "prompt",
        nargs="?",
        help="the prompt; read from stdin when piped; interactive when omitted on a terminal",
    )
    chat.add_argument("-m", "--model", help="model id, optionally with :fastest / :cheapest / :provider")
    chat.add_argument("-s", "--system", help="a system message")
    chat.add_argument("--max-tokens", type=int)
    chat.add_argument("--temperature", type=float)
    chat.add_argument("--json", action="store_true", help="print the whole response as JSON (no streaming)")
    chat.add_argument(
        "--local",
        action="store_true",
        help="run locally (llama.cpp): the embedded Gemma 3 270M base model, or --model REPO:QUANT / a .gguf path",
    )
    chat.add_argument(
        "-a", "--attach", action="append", default=[], metavar="FILE", help="attach an image (repeatable)"
    )
    chat.add_argument(
        "-c",
        "--continue",
        dest="continue_",
        action="store_true",
        help="continue the last logged conversation",
    )
    chat.add_argument(
        "--no-log", action="store_true", help="keep no log of this conversation (see `hfdriver logs`)"
    )
    chat.set_defaults(func=run_chat)


NO_TOKEN_HINT = (
    "no Hugging Face token found for the router: run `hfdriver login`, or set HF_TOKEN (a "
    "fine-grained token with 'Make calls to Inference Providers' from "
    "https://huggingface.co/settings/tokens); or add --local to use the embedded model offline"
)


def _embedded_available() -> bool:
    """Whether the embedded model can run here (the local extra and its model package)."""
    import importlib.util

    try:
        from hfdriver.local import embedded_model_path
    except ImportError:  # pragma: no cover - hfdriver.local imports nothing heavy
        return False
    return importlib.util.find_spec("llama_cpp") is not None and embedded_model_path() is not None


def chat_driver(args: argparse.Namespace, *, command: str = "chat") -> Driver:
    """The driver ``chat`` and ``serve`` use: the embedded local model, or the configuration's.

    First contact (no configuration file, no token, no --model): the embedded model, said on
    stderr, as ``examples/chat.py`` does. A router profile without a token is refused up front
    with what to do (``serve`` warns and starts: a client may bring nothing else)."""
    if args.local:
        # --model names a pulled model (REPO:QUANT, as `hfdriver local pull` takes it) or a .gguf path.
        return create_driver(LLMConfig(provider="huggingface-local", model=args.model or None))
    config = load_config(args.config)
    llm = config.profile(args.profile)
    if llm.provider == "huggingface" and _no_token(config, args.profile):
        if config.path is None and not args.model and _embedded_available():
            from hfdriver.local import DEFAULT_MODEL_DESCRIPTION

            out(
                f"[no Hugging Face token and no hfdriver.toml: using the embedded local model "
                f"({DEFAULT_MODEL_DESCRIPTION}); run `hfdriver login` or set HF_TOKEN for the router]",
                stream=sys.stderr,
            )
            return create_driver(LLMConfig(provider="huggingface-local"))
        if command == "serve":
            logging.getLogger("hfdriver").warning(
                "hfdriver serve: %s; every request will fail until then", NO_TOKEN_HINT
            )
        else:
            raise HuggingFaceError(HuggingFaceErrorKind.CONFIG, NO_TOKEN_HINT)
    return create_driver(config, args.profile, model=args.model)


def _no_token(config: Config, profile: str | None) -> bool:
    llm = config.profile(profile)
    try:
        token = token_for(llm, config.path, f"profiles.{profile}" if profile else "llm")
    except HuggingFaceError:
        return False  # a broken [auth] table: create_driver says what is wrong with it
    return token is None


def _response_json(response: Any) -> str:
    return json.dumps(converter.unstructure(response), indent=2, ensure_ascii=False, default=str)


HELP = (
    "commands: /exit (or /quit, Ctrl-D) leaves, /help shows this; Ctrl-C stops an answer "
    "(and leaves at the prompt); anything else is sent to the model (//text sends /text)"
)


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
            journal = _Journal(args, getattr(driver, "model", None), history)
            images = _attachments(args.attach)
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
                    if prompt.startswith("/") and not prompt.startswith("//"):
                        out(
                            f"unknown command {prompt.split()[0]}: /help lists them "
                            "(start the line with // to send it as text)",
                            stream=sys.stderr,
                        )
                        continue
                    if prompt.startswith("//"):
                        prompt = prompt[1:]
                assert prompt is not None
                history.append(Message.user(prompt, *images))
                images = []  # attachments go with the first prompt
                request = GenerateRequest(
                    messages=tuple(history), max_tokens=args.max_tokens, temperature=args.temperature
                )
                if args.json:
                    response = runner.run(driver.generate(request))
                    journal.record(prompt, response.text, response)
                    out(_response_json(response))
                    return 0
                parts: list[str] = []
                answered: GenerateResponse | None = None
                try:
                    answered = runner.run(_stream_answer(driver, request, parts))
                except KeyboardInterrupt:
                    if not interactive:
                        raise
                    # Ctrl-C stops this answer (the stream is closed, the call cancelled), not the
                    # conversation: what arrived is kept, and the prompt comes back.
                    out()
                    out("[stopped; Ctrl-C at the prompt or Ctrl-D leaves]", stream=sys.stderr)
                if not parts:
                    history.pop()  # nothing came back: as if the question had not been asked
                else:
                    history.append(Message.assistant("".join(parts)))
                    journal.record(prompt, "".join(parts), answered)
                if not interactive:
                    return 0
        finally:
            runner.run(driver.aclose())


async def _stream_answer(driver: Driver, request: GenerateRequest, parts: list[str]) -> GenerateResponse:
    """Print the answer as it arrives, collecting it in ``parts`` (what arrived, if interrupted)."""
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
    return response


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
    finish = response.finish_reason
    if finish is not None and str(finish) != "stop":
        parts.append(f"finish: {finish}" + (" (raise --max-tokens)" if str(finish) == "length" else ""))
    return f"[{' · '.join(parts)}]" if parts else ""


_IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
}


def _attachments(paths: list[str]) -> list[Image]:
    """``-a FILE``: images, sent with the first prompt (a vision model reads them)."""
    images = []
    for name in paths:
        path = Path(name).expanduser()
        kind = _IMAGE_TYPES.get(path.suffix.lower())
        if kind is None:
            raise UsageError(
                f"--attach {name}: only images can be attached ({', '.join(sorted(_IMAGE_TYPES))})"
            )
        try:
            images.append(Image.from_bytes(path.read_bytes(), kind))
        except OSError as exc:
            raise UsageError(f"--attach {name}: cannot be read ({exc.strerror or exc})") from None
    return images


class _Journal:
    """The conversation log for one ``chat`` run (``--no-log`` and ``hfdriver logs off`` keep none);
    ``-c`` first loads the last conversation into ``history``."""

    def __init__(self, args: argparse.Namespace, model: str | None, history: list[Message]) -> None:
        from hfdriver.cli._log import ConversationLog

        self.log: ConversationLog | None = ConversationLog()
        self.model = args.model or model
        self.system = args.system
        self.conversation: int | None = None
        if args.continue_:
            last = self.log.last()
            if last is None:
                raise UsageError("no conversation to continue: the log is empty (or off: `hfdriver logs on`)")
            self.conversation, system, pairs = last
            if system and not args.system:
                history.insert(0, Message.system(system))
            for prompt, answer in pairs:
                history.extend((Message.user(prompt), Message.assistant(answer)))
            out(f"[continuing the last conversation: {len(pairs)} exchanges]", stream=sys.stderr)
        if args.no_log or not self.log.enabled:
            self.log = None

    def record(self, prompt: str, answer: str, response: GenerateResponse | None) -> None:
        if self.log is None or not answer:
            return
        try:
            if self.conversation is None:
                self.conversation = self.log.start(self.model, self.system)
            usage = response.usage if response is not None else None
            self.log.add(
                self.conversation,
                prompt,
                answer,
                model=(response.model if response else None) or self.model,
                usage=usage,
            )
        except sqlite3.Error as exc:  # a log must never cost an answer
            logging.getLogger("hfdriver").warning("hfdriver: could not write the conversation log (%s)", exc)
            self.log = None
