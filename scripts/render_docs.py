"""Regenerate the parts of the docs drawn from code: HUGGINGFACE.md's table of error kinds.

Run with `just docs`; `--check` exits 1 if the file is out of date (the test suite checks too).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hfdriver.errors import kinds_markdown_table

DOCS = Path(__file__).resolve().parents[1] / "HUGGINGFACE.md"
START = "<!-- error-kinds: generated from hfdriver/errors/_table.py by `just docs` -->"
END = "<!-- /error-kinds -->"


def render(text: str) -> str:
    head, sep, rest = text.partition(START)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise SystemExit(f"{DOCS}: the markers {START!r} ... {END!r} are missing")
    return f"{head}{START}\n{kinds_markdown_table()}\n{END}{tail}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    args = p.parse_args()
    current = DOCS.read_text(encoding="utf-8")
    wanted = render(current)
    if args.check:
        if wanted != current:
            print(f"{DOCS.name} is out of date: run `just docs`", file=sys.stderr)
            return 1
        return 0
    DOCS.write_text(wanted, encoding="utf-8")
    print(f"wrote {DOCS.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
