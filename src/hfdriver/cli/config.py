"""``hfdriver config init|show``: write a commented configuration, show the one in effect."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from hfdriver.auth import NO_TOKEN, Token
from hfdriver.cli._common import llm_config, out
from hfdriver.config import token_for
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind, redact
from hfdriver.transport import RetryPolicy, Timeouts

__all__ = ["CONFIG_TEMPLATE", "config_summary", "configured_token", "register"]

CONFIG_TEMPLATE = """\
# hfdriver configuration. Found as --config, $HFDRIVER_CONFIG, ./hfdriver.toml or
# ~/.config/hfdriver/config.toml. `hfdriver config show` prints what is in effect.

[llm]
# "huggingface" (the Inference Providers router), "huggingface-endpoint" (any
# OpenAI-compatible /v1: Inference Endpoints, TGI, vLLM, llama.cpp, Ollama) or a plugin.
provider = "huggingface"
model = "meta-llama/Llama-3.2-1B-Instruct"
# embedding_model = "BAAI/bge-small-en-v1.5"   # for `hfdriver embed` and serve's /v1/embeddings
# routing = "fastest"            # fastest | cheapest | preferred | a provider such as "together"
# bill_to = "my-org"             # bill an organisation (X-HF-Bill-To)
# base_url = "http://127.0.0.1:8000/v1"
max_tokens = 512                 # defaults for requests that do not set them
# temperature = 0.7
# fallbacks = ["Qwen/Qwen2.5-7B-Instruct:together", "local"]   # models, model:provider, or profiles

[llm.auth]
# Where the token comes from; without this table: HF_TOKEN & co., then the token file.
# api_key_env = "HUGGINGFACE_API_TOKEN"
# token_file = "~/.cache/huggingface/token"
# anonymous = true               # send no token (a local server that takes none)

[llm.retry]
# attempts = 4
# max_retry_after = 60

[llm.timeouts]
# connect = 10
# read = 60        # silence allowed between streamed bytes
# total = 300      # bound for a non-streamed answer

# A response cache (on when this table is present; identical requests are answered from it).
# [llm.cache]
# backend = "sqlite"             # or "memory" (this process only)
# path = "~/.cache/huggingface/hfdriver/cache.sqlite"
# ttl = 86400                    # seconds an answer stays valid
# max_size = "512MB"

# Profiles inherit [llm] and override what they set: hfdriver --profile local-vllm chat ...
[profiles.local-vllm]
provider = "huggingface-endpoint"
base_url = "http://127.0.0.1:8000/v1"
model = "Qwen/Qwen2.5-7B-Instruct"

# In-process llama.cpp: no model means the embedded Gemma 3 270M (offline); or a pulled
# REPO with [profiles.local.options] quantization = "Q4_K_M", or a .gguf path.
[profiles.local]
provider = "huggingface-local"
"""


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    config = sub.add_parser("config", parents=parents, help="configuration files").add_subparsers(
        dest="config_command", metavar="SUBCOMMAND", required=True
    )
    init = config.add_parser("init", parents=parents, help="write a commented hfdriver.toml")
    init.add_argument("--path", default="hfdriver.toml")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.set_defaults(func=run_init)
    show = config.add_parser("show", parents=parents, help="the resolved settings (token redacted)")
    show.set_defaults(func=run_show)


def run_init(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if path.exists() and not args.force:
        raise HuggingFaceError(
            HuggingFaceErrorKind.CONFIG, f"{path} already exists; pass --force to overwrite it"
        )
    path.write_text(CONFIG_TEMPLATE, encoding="utf-8")
    out(f"wrote {path}")
    return 0


_SECRET_KEY = re.compile(r"key|token|secret|password|passwd|auth|credential", re.IGNORECASE)


def _redact_option(key: str, value: Any) -> str:
    """An ``[llm.options]`` value fit to print: secrets by name masked, token shapes redacted."""
    if _SECRET_KEY.search(key) and value not in (None, ""):
        return "****"
    return redact(str(value))


def _changed(value: Any, default: Any) -> str:
    """``name=value`` for the fields of a frozen value that differ from its defaults."""
    fields = [f.name for f in value.__attrs_attrs__]
    return ", ".join(f"{n}={getattr(value, n)}" for n in fields if getattr(value, n) != getattr(default, n))


def config_summary(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The resolved settings as ``(name, value)`` pairs, secrets masked: what ``config show``
    prints and the console's System view shows."""
    config, llm = llm_config(args)
    rows = [
        ("file", str(config.path or "(none found: defaults)")),
        (
            "profile",
            (args.profile or "[llm]")
            + (f" (profiles: {', '.join(sorted(config.profiles))})" if config.profiles else ""),
        ),
    ]
    for name in ("provider", "model", "base_url", "routing", "bill_to", "max_tokens", "temperature"):
        value = getattr(llm, name)
        if name == "base_url" and value:
            value = redact(value)  # a URL's password too
        rows.append((name, str(value) if value is not None else "-"))
    for name, default in (("retry", RetryPolicy()), ("timeouts", Timeouts())):
        changed = _changed(getattr(llm, name), default)
        if changed:
            rows.append((name, changed))
    if llm.options:
        rows.append(("options", ", ".join(f"{k}={_redact_option(k, v)}" for k, v in llm.options.items())))
    rows.append(("fallbacks", ", ".join(llm.fallbacks) or "-"))
    cache = llm.cache
    if cache.enabled:
        where = cache.path or "the default file" if cache.backend == "sqlite" else "this process"
        limits = ", ".join(
            f"{k}={v}" for k, v in (("ttl", cache.ttl), ("max_size", cache.max_size)) if v is not None
        )
        rows.append(("cache", f"{cache.backend} ({where})" + (f", {limits}" if limits else "")))
    else:
        rows.append(("cache", "off (add an [llm.cache] table to turn it on)"))
    if llm.provider == "huggingface-local":
        rows.append(("token", "not needed (a local model)"))
        return rows
    try:
        token = token_for(llm, config.path, f"profiles.{args.profile}" if args.profile else "llm")
    except HuggingFaceError as exc:
        rows.append(("token", f"unavailable ({exc.message})"))
    else:
        if isinstance(token, Token):
            rows.append(("token", f"{token.masked} (from {token.source})"))
        elif token is NO_TOKEN:
            rows.append(("token", "none sent (anonymous = true)"))
        else:
            rows.append(("token", "none found (set HF_TOKEN or run `hfdriver login`)"))
    return rows


def configured_token(args: argparse.Namespace) -> Token | None:
    """The token the active profile would send, or None (none found, anonymous, or unreadable)."""
    config, llm = llm_config(args)
    try:
        token = token_for(llm, config.path, f"profiles.{args.profile}" if args.profile else "llm")
    except HuggingFaceError:
        return None
    return token if isinstance(token, Token) else None


def run_show(args: argparse.Namespace) -> int:
    for name, value in config_summary(args):
        out(f"{name}: {value}")
    return 0
