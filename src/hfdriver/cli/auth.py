"""``hfdriver whoami`` and ``hfdriver login``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from typing import Any

from hfdriver.auth import token_file_path
from hfdriver.cli._common import UsageError, hub_client, out
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


async def run_login(args: argparse.Namespace) -> int:
    secret = args.token
    if secret is None:
        if sys.stdin.isatty():
            secret = await asyncio.to_thread(getpass.getpass, "Hugging Face token (input hidden): ")
        else:
            secret = sys.stdin.readline()
    secret = (secret or "").strip()
    if not secret:
        raise UsageError("no token given: pass --token, pipe it on stdin, or type it at the prompt")
    async with HubClient(secret) as hub:
        who = await hub.whoami()
    path = token_file_path()
    path.parent.mkdir(parents=True, exist_ok=True)
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
    return 0
