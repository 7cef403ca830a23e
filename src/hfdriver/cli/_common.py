"""What the command modules share: output, usage errors, tables, the configuration in effect."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine, Sequence
from types import TracebackType
from typing import Any, TextIO, TypeVar

import attrs

from hfdriver.config import Config, LLMConfig, load_config
from hfdriver.hub import HubClient

__all__ = [
    "LoopRunner",
    "UsageError",
    "global_options",
    "hub_client",
    "llm_config",
    "out",
    "progress_bar",
    "table",
]

T = TypeVar("T")


class UsageError(Exception):
    """A usage error (exit 2)."""


def global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """``--config``, ``--profile`` and ``--debug``. On the subcommands they default to SUPPRESS, so
    they are accepted after the subcommand too without overwriting a value given before it."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=default,
        help="configuration file (default: $HFDRIVER_CONFIG, ./hfdriver.toml, ~/.config/hfdriver/config.toml)",
    )
    parser.add_argument(
        "--profile", metavar="NAME", default=default, help="a [profiles.NAME] of the configuration"
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="log requests and show tracebacks",
    )


def out(text: str = "", *, stream: TextIO | None = None, end: str = "\n") -> None:
    target = stream or sys.stdout
    if target is None:  # a closed stderr (`2>&-`): there is nowhere to say it
        return
    target.write(text + end)
    target.flush()


def llm_config(args: argparse.Namespace) -> tuple[Config, LLMConfig]:
    """The configuration file and the ``[llm]`` / profile settings in effect (``--model`` applied)."""
    config = load_config(args.config)
    llm = config.profile(args.profile)
    if getattr(args, "model", None):
        llm = attrs.evolve(llm, model=args.model)
    return config, llm


def table(rows: Sequence[Sequence[str]], header: Sequence[str], right: Sequence[int] = ()) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [
            str(c).rjust(widths[i]) if i in right else str(c).ljust(widths[i]) for i, c in enumerate(row)
        ]
        out("  ".join(cells).rstrip())


def hub_client(llm: LLMConfig | None = None) -> HubClient:
    """A Hub client; the router catalogue comes from the profile's base_url when it is a router."""
    router_url = llm.base_url if llm is not None and llm.provider == "huggingface" and llm.base_url else None
    return HubClient(router_url=router_url)


def progress_bar(fraction: float | None, width: int = 30) -> str:
    if fraction is None:
        return "[" + "?" * width + "]"
    filled = int(fraction * width)
    return "[" + "#" * filled + "." * (width - filled) + f"] {fraction * 100:5.1f}%"


class LoopRunner:
    """One event loop for several ``run(coroutine)`` calls, with no loop running in between:
    a blocking prompt read between them is interrupted by Ctrl-C at once. ``asyncio.Runner`` on
    Python 3.11+ (a Ctrl-C during ``run`` cancels the coroutine, then raises KeyboardInterrupt)."""

    def __init__(self) -> None:
        self._runner: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> LoopRunner:
        if sys.version_info >= (3, 11):
            self._runner = asyncio.Runner()
            self._runner.__enter__()
        else:  # pragma: no cover - Python 3.10
            self._loop = asyncio.new_event_loop()
        return self

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._runner is not None:
            result: T = self._runner.run(coroutine)
            return result
        assert self._loop is not None  # pragma: no cover - Python 3.10
        return self._loop.run_until_complete(coroutine)  # pragma: no cover

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            self._runner.__exit__(exc_type, exc, tb)
        elif self._loop is not None:  # pragma: no cover - Python 3.10
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()
