"""The ``hfdriver`` command.

One module per command group (``chat``, ``embed``, ``task``, ``batch``, ``models``, ``auth``, ``config``, ``cache``,
``local``, ``serve``, ``ollama``); each has ``register(subparsers, parents)``, which adds its subcommands and sets
``func`` to its handler: ``handler(args) -> int``, ``async def`` when it does I/O. ``_app`` assembles them; a new command is a
new module added to ``_app.COMMANDS``. ``--config``, ``--profile`` and ``--debug`` are accepted
before or after the subcommand.
"""

from hfdriver.cli._app import build_parser, main, run
from hfdriver.cli.config import CONFIG_TEMPLATE

__all__ = ["CONFIG_TEMPLATE", "build_parser", "main", "run"]
