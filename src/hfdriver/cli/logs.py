"""``hfdriver logs [-n N] [--json]``, ``hfdriver logs on|off``: the conversation log of ``chat``."""

from __future__ import annotations

import argparse
import datetime
from typing import Any

from hfdriver.cli._common import out

__all__ = ["register"]


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    logs = sub.add_parser(
        "logs", parents=parents, help="the conversations `chat` logged; `logs off` stops logging"
    )
    logs.add_argument("switch", nargs="?", choices=("on", "off"), help="turn the log on or off for good")
    logs.add_argument("-n", "--count", type=int, default=3, help="how many exchanges (default 3)")
    logs.add_argument("--json", action="store_true", help="one JSON object per exchange")
    logs.set_defaults(func=run_logs)


def run_logs(args: argparse.Namespace) -> int:
    from hfdriver.cli._log import ConversationLog, dumps

    log = ConversationLog()
    if args.switch is not None:
        log.turn(args.switch == "on")
        out(f"conversation log {args.switch} ({log.path})")
        return 0
    rows = log.recent(max(1, args.count))
    if args.json:
        if rows:
            out(dumps(rows))
        return 0
    if not log.enabled:
        out("(the log is off: `hfdriver logs on` turns it back on)")
    if not rows:
        out(f"no conversations logged yet ({log.path})")
        return 0
    for row in rows:
        when = datetime.datetime.fromtimestamp(row["at"]).strftime("%Y-%m-%d %H:%M:%S")
        tokens = (
            f", {row['input_tokens']} in + {row['output_tokens']} out"
            if row["input_tokens"] is not None
            else ""
        )
        out(f"## {when} · conversation {row['conversation']} · {row['model'] or '?'}{tokens}")
        out(f"> {row['prompt']}")
        out(row["answer"])
        out()
    return 0
