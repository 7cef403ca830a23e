"""The ``hfdriver`` entry point: assembles the command modules, runs one, maps failures to exit codes."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from hfdriver._version import __version__
from hfdriver.cli import (
    auth,
    batch,
    cache,
    chat,
    config,
    embed,
    fake,
    local,
    logs,
    models,
    ollama,
    serve,
    task,
)
from hfdriver.cli._common import UsageError, global_options, out
from hfdriver.errors import HuggingFaceError

__all__ = ["build_parser", "main", "run"]

# One module per command group; each registers its subparsers and their handlers.
COMMANDS = (chat, logs, embed, task, batch, models, auth, config, cache, local, serve, ollama, fake)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hfdriver", description="Hugging Face inference from the command line."
    )
    parser.add_argument("--version", action="version", version=f"hfdriver {__version__}")
    global_options(parser, suppress=False)
    shared = argparse.ArgumentParser(add_help=False)
    global_options(shared, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(sub, [shared])
    return parser


def _command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the (sub)command ``args`` chose: ``hfdriver local pull`` -> the ``pull`` parser."""
    current = parser
    while True:
        choice = None
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                choice = action.choices.get(getattr(args, action.dest, None) or "")
        if choice is None:
            return current
        current = choice


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code.

    Exit codes: 0 ok, 1 error (one line: the kind and what to do; a traceback only with
    --debug), 2 usage, 130 interrupted, 141 the reader of stdout went away (``| head``).
    """
    if sys.stdout is None:  # started with stdout closed (`>&-`): nothing could be shown
        out(
            "error: stdout is closed, so nothing can be printed; redirect it to a file or "
            "/dev/null instead (nothing was sent)",
            stream=sys.stderr,
        )
        return 1
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:  # told by the command that was run, with its usage (argparse's own says the top one)
        _command_parser(parser, args).error(f"unrecognized arguments: {' '.join(extras)}")
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
    else:
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        result = args.func(args)  # an int, or a coroutine for the commands that do I/O
        return int(asyncio.run(result) if inspect.iscoroutine(result) else result)
    except KeyboardInterrupt:
        out("interrupted", stream=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`hfdriver models list | head`): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush cannot fail again
        return 141
    except UsageError as exc:
        out(f"hfdriver: {exc}", stream=sys.stderr)
        return 2
    except HuggingFaceError as exc:
        if args.debug:
            traceback.print_exc()
        out(f"error: {exc.kind.name}: {exc.message}", stream=sys.stderr)
        return 1
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        out(
            f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)",
            stream=sys.stderr,
        )
        return 1


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
