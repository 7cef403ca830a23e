"""``hfdriver whoami`` and ``hfdriver login``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path
from typing import Any

from hfdriver.auth import TOKEN_ENV_VARS, Token, token_file_path
from hfdriver.cli._common import UsageError, hub_client, out
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.hub import HubClient

__all__ = ["register"]


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    whoami = sub.add_parser(
        "whoami",
        parents=parents,
        help="who the token belongs to, and whether it can call Inference Providers",
    )
    whoami.set_defaults(func=run_whoami)
    login = sub.add_parser(
        "login", parents=parents, help="validate a token and save it to the standard token file"
    )
    login.add_argument("--token", help="the token (default: prompt without echo, or read stdin when piped)")
    login.set_defaults(func=run_login)
    sub.add_parser("logout", parents=parents, help="delete the saved token file").set_defaults(
        func=run_logout
    )


def run_logout(args: argparse.Namespace) -> int:
    path = token_file_path()
    if path.exists():
        path.unlink()
        out(f"deleted {path}")
    else:
        out(f"no saved token at {path}")
    still = [name for name in TOKEN_ENV_VARS if os.environ.get(name, "").strip()]
    if still:
        out(
            f"{', '.join(still)} is still set in this shell and is used first: unset it too",
            stream=sys.stderr,
        )
    return 0


async def run_whoami(args: argparse.Namespace) -> int:
    async with hub_client() as hub:
        who = await hub.whoami()
    out(f"{who.name} ({who.type})" + (f", member of {', '.join(who.orgs)}" if who.orgs else ""))
    out(f"token: {who.token_name or '?'} [{who.token_role or 'unknown role'}]")
    out(
        "Inference Providers: "
        + (
            "allowed"
            if who.can_call_inference_providers
            else "NOT allowed: tick 'Make calls to Inference Providers' at https://huggingface.co/settings/tokens"
        )
    )
    return 0


def run_login(args: argparse.Namespace) -> int:
    secret = args.token
    if secret is None:
        if sys.stdin.isatty():
            # Before any event loop runs: Ctrl-C at the hidden prompt then interrupts it at once
            # (asyncio's own SIGINT handler would only cancel a task, not a blocking read).
            secret = getpass.getpass("Hugging Face token (input hidden): ")
        else:
            secret = sys.stdin.readline()
    secret = (secret or "").strip()
    if not secret:
        raise UsageError("no token given: pass --token, pipe it on stdin, or type it at the prompt")
    return asyncio.run(_login(secret))


async def _login(secret: str) -> int:
    try:
        async with HubClient(Token(secret, "login")) as hub:
            who = await hub.whoami()
    except HuggingFaceError as exc:
        if exc.kind is HuggingFaceErrorKind.AUTHENTICATION:
            raise HuggingFaceError(
                exc.kind,
                "the Hub rejected that token (401): copy a valid one from https://huggingface.co/settings/tokens "
                "(a fine-grained token with 'Make calls to Inference Providers'); nothing was saved",
                status=exc.status,
            ) from None
        raise
    path = token_file_path()
    _private_dirs(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secret)
    os.chmod(path, 0o600)
    out(f"logged in as {who.name}; token saved to {path} (mode 0600)")
    if not who.can_call_inference_providers:
        out(
            "warning: this token cannot call Inference Providers; tick 'Make calls to Inference Providers' on it",
            stream=sys.stderr,
        )
    overriding = [name for name in TOKEN_ENV_VARS if os.environ.get(name, "").strip()]
    if overriding:
        out(
            f"warning: {overriding[0]} is set in the environment and takes precedence over the saved token; "
            f"unset it to use the token saved here",
            stream=sys.stderr,
        )
    return 0


def _private_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing parents as 0700, whatever the umask: a token lives there."""
    missing = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    for created in reversed(missing):
        created.mkdir(mode=0o700)
        os.chmod(created, 0o700)
