"""The ``hfdriver`` command: chat, models, whoami, login, config.

Exit codes: 0 ok, 1 error (one line: the kind and what to do; a traceback only with --debug),
2 usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import attrs

from hfdriver._version import __version__
from hfdriver.auth import Token, token_file_path
from hfdriver.config import Config, LLMConfig, create_driver, load_config
from hfdriver.driver import Driver
from hfdriver.dto.request import GenerateRequest, Message
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

__all__ = ["CONFIG_TEMPLATE", "main"]

CONFIG_TEMPLATE = """\
# hfdriver configuration. Found as --config, $HFDRIVER_CONFIG, ./hfdriver.toml or
# ~/.config/hfdriver/config.toml. `hfdriver config show` prints what is in effect.

[llm]
# "huggingface" (the Inference Providers router), "huggingface-endpoint" (any
# OpenAI-compatible /v1: Inference Endpoints, TGI, vLLM, llama.cpp, Ollama) or a plugin.
provider = "huggingface"
model = "meta-llama/Llama-3.2-1B-Instruct"
# routing = "fastest"            # fastest | cheapest | preferred | a provider such as "together"
# bill_to = "my-org"             # bill an organisation (X-HF-Bill-To)
# base_url = "http://127.0.0.1:8000/v1"
max_tokens = 512                 # defaults for requests that do not set them
# temperature = 0.7

[llm.auth]
# Where the token comes from; without this table: HF_TOKEN & co., then the token file.
# api_key_env = "HUGGINGFACE_API_TOKEN"
# token_file = "~/.cache/huggingface/token"

[llm.retry]
# attempts = 4
# max_retry_after = 60

[llm.timeouts]
# connect = 10
# read = 60        # silence allowed between streamed bytes
# total = 300      # bound for a non-streamed answer

# Profiles inherit [llm] and override what they set: hfdriver --profile local-vllm chat ...
[profiles.local-vllm]
provider = "huggingface-endpoint"
base_url = "http://127.0.0.1:8000/v1"
model = "Qwen/Qwen2.5-7B-Instruct"
"""


class _Usage(Exception):
    """A usage error (exit 2)."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hfdriver", description="Hugging Face inference from the command line.")
    p.add_argument("--version", action="version", version=f"hfdriver {__version__}")
    p.add_argument(
        "--config",
        metavar="PATH",
        help="configuration file (default: $HFDRIVER_CONFIG, ./hfdriver.toml, ~/.config/hfdriver/config.toml)",
    )
    p.add_argument("--profile", metavar="NAME", help="a [profiles.NAME] of the configuration")
    p.add_argument("--debug", action="store_true", help="log requests and show tracebacks")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    chat = sub.add_parser("chat", help="chat with a model (streams the answer)")
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
        help="use the embedded local model (Gemma 3 270M via llama.cpp; a base model)",
    )

    models = sub.add_parser("models", help="find models").add_subparsers(
        dest="models_command", metavar="SUBCOMMAND", required=True
    )
    search = models.add_parser("search", help="search the Hub")
    search.add_argument("query")
    search.add_argument("--limit", type=int, default=20)
    search.add_argument("--provider", help="only models served by this provider ('all': any)")
    search.add_argument("--gguf", action="store_true", help="only repositories with GGUF files")
    listing = models.add_parser("list", help="the router's catalogue: providers, prices, context")
    listing.add_argument("--search", help="only model ids containing this text")
    listing.add_argument("--tools", action="store_true", help="only models with a tool-capable provider")

    sub.add_parser("whoami", help="who the token belongs to, and whether it can call Inference Providers")
    login = sub.add_parser("login", help="validate a token and save it to the standard token file")
    login.add_argument("--token", help="the token (default: prompt without echo, or read stdin when piped)")

    config = sub.add_parser("config", help="configuration files").add_subparsers(
        dest="config_command", metavar="SUBCOMMAND", required=True
    )
    init = config.add_parser("init", help="write a commented hfdriver.toml")
    init.add_argument("--path", default="hfdriver.toml")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    config.add_parser("show", help="the resolved settings (token redacted)")

    from hfdriver._cli_local import add_commands

    add_commands(sub)
    return p


# ---------------------------------------------------------------------------- helpers


def _out(text: str = "", *, stream: TextIO | None = None, end: str = "\n") -> None:
    target = stream or sys.stdout
    target.write(text + end)
    target.flush()


def _llm(args: argparse.Namespace) -> tuple[Config, LLMConfig]:
    config = load_config(args.config)
    llm = config.profile(args.profile)
    if getattr(args, "model", None):
        llm = attrs.evolve(llm, model=args.model)
    return config, llm


def _table(rows: Sequence[Sequence[str]], header: Sequence[str], right: Sequence[int] = ()) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [
            str(c).rjust(widths[i]) if i in right else str(c).ljust(widths[i]) for i, c in enumerate(row)
        ]
        _out("  ".join(cells).rstrip())


def _hub_client(llm: LLMConfig | None = None, token: Token | None = None) -> Any:
    from hfdriver.hub import HubClient

    router_url = llm.base_url if llm is not None and llm.provider == "huggingface" and llm.base_url else None
    return HubClient(token=token, router_url=router_url)


def _response_json(response: Any) -> str:
    from hfdriver.dto.convert import converter

    return json.dumps(converter.unstructure(response), indent=2, ensure_ascii=False, default=str)


# ---------------------------------------------------------------------------- commands


async def _chat(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    prompt = args.prompt
    interactive = prompt is None and sys.stdin.isatty()
    if prompt is None and not interactive:
        prompt = sys.stdin.read().strip()
        if not prompt:
            raise _Usage(
                "no prompt: pass one, pipe one on stdin, or run on a terminal for an interactive chat"
            )
    if args.local:
        from hfdriver.local import DEFAULT_MODEL_DESCRIPTION, LocalDriver

        _out(f"[local: {DEFAULT_MODEL_DESCRIPTION}; expect rough answers]", stream=sys.stderr)
        driver: Driver = LocalDriver.default()
    else:
        driver = create_driver(config, args.profile, model=args.model)
    try:
        history: list[Message] = [Message.system(args.system)] if args.system else []
        while True:
            if interactive:
                try:
                    prompt = await asyncio.to_thread(input, "you> ")
                except EOFError:
                    _out()
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
                _out(_response_json(await driver.generate(request)))
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
                _out(chunk.text, end="")
    _out()
    return "".join(parts)


async def _models_search(args: argparse.Namespace) -> int:
    async with _hub_client() as hub:
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
        _out(f"no models match {args.query!r}", stream=sys.stderr)
        return 0
    _table(rows, ("model", "downloads", "likes", "gguf", "providers"), right=(1, 2))
    return 0


def _price(value: float | None) -> str:
    return "-" if value is None else f"${value:g}"


async def _models_list(args: argparse.Namespace) -> int:
    _, llm = _llm(args)
    async with _hub_client(llm) as hub:
        models = await hub.router_models()
    if args.search:
        models = [m for m in models if args.search.lower() in m.id.lower()]
    if args.tools:
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
        _out("no models match", stream=sys.stderr)
        return 0
    _table(rows, ("model", "providers", "in $/1M", "out $/1M", "context"), right=(2, 3, 4))
    return 0


async def _whoami(args: argparse.Namespace) -> int:
    async with _hub_client() as hub:
        who = await hub.whoami()
    _out(f"{who.name} ({who.type})" + (f", member of {', '.join(who.orgs)}" if who.orgs else ""))
    _out(f"token: {who.token_name or '?'} [{who.token_role or 'unknown role'}]")
    _out(
        "Inference Providers: "
        + (
            "allowed"
            if who.can_call_inference_providers
            else "NOT allowed: tick 'Make calls to Inference Providers' at https://huggingface.co/settings/tokens"
        )
    )
    return 0


async def _login(args: argparse.Namespace) -> int:
    from hfdriver.hub import HubClient

    secret = args.token
    if secret is None:
        if sys.stdin.isatty():
            secret = await asyncio.to_thread(getpass.getpass, "Hugging Face token (input hidden): ")
        else:
            secret = sys.stdin.readline()
    secret = (secret or "").strip()
    if not secret:
        raise _Usage("no token given: pass --token, pipe it on stdin, or type it at the prompt")
    async with HubClient(token=secret) as hub:
        who = await hub.whoami()
    path = token_file_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secret)
    os.chmod(path, 0o600)
    _out(f"logged in as {who.name}; token saved to {path} (mode 0600)")
    if not who.can_call_inference_providers:
        _out(
            "warning: this token cannot call Inference Providers; tick 'Make calls to Inference Providers' on it",
            stream=sys.stderr,
        )
    return 0


def _config_init(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if path.exists() and not args.force:
        raise HuggingFaceError(
            HuggingFaceErrorKind.CONFIG, f"{path} already exists; pass --force to overwrite it"
        )
    path.write_text(CONFIG_TEMPLATE, encoding="utf-8")
    _out(f"wrote {path}")
    return 0


def _config_show(args: argparse.Namespace) -> int:
    config, llm = _llm(args)
    _out(f"file: {config.path or '(none found: defaults)'}")
    _out(
        f"profile: {args.profile or '[llm]'}"
        + (f" (profiles: {', '.join(sorted(config.profiles))})" if config.profiles else "")
    )
    for name in ("provider", "model", "base_url", "routing", "bill_to", "max_tokens", "temperature"):
        value = getattr(llm, name)
        _out(f"{name}: {value if value is not None else '-'}")
    for name in ("retry", "timeouts", "options"):
        values = getattr(llm, name)
        if values:
            _out(f"{name}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
    try:
        from hfdriver.config import _token_for

        token = _token_for(llm, config.path, f"profiles.{args.profile}" if args.profile else "llm")
    except HuggingFaceError as exc:
        _out(f"token: unavailable ({exc.message})")
    else:
        _out(
            f"token: {token.masked} (from {token.source})"
            if token
            else "token: none found (set HF_TOKEN or run `hfdriver login`)"
        )
    return 0


def _serve_driver(args: argparse.Namespace) -> Driver:
    if args.local:
        from hfdriver.local import LocalDriver

        return LocalDriver.default()
    return create_driver(load_config(args.config), args.profile, model=args.model)


async def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "chat":
        return await _chat(args)
    if args.command == "models":
        return await (_models_search(args) if args.models_command == "search" else _models_list(args))
    if args.command == "whoami":
        return await _whoami(args)
    if args.command == "login":
        return await _login(args)
    if args.command in ("serve", "local", "ollama"):
        from hfdriver import _cli_local

        if args.command == "local":
            return await _cli_local.run_local(args)
        if args.command == "ollama":
            return await _cli_local.run_ollama(args)
        return await _cli_local.run_serve(args, _serve_driver(args))
    return _config_init(args) if args.config_command == "init" else _config_show(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
    else:
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        return asyncio.run(_dispatch(args))
    except KeyboardInterrupt:
        _out("interrupted", stream=sys.stderr)
        return 130
    except _Usage as exc:
        _out(f"hfdriver: {exc}", stream=sys.stderr)
        return 2
    except HuggingFaceError as exc:
        if args.debug:
            traceback.print_exc()
        _out(f"error: {exc.kind.name}: {exc.message}", stream=sys.stderr)
        return 1
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        _out(
            f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)",
            stream=sys.stderr,
        )
        return 1


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
