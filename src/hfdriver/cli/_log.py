"""The conversation log of ``hfdriver chat`` (as ``llm`` keeps one): every exchange in a SQLite
file beside the cache, so ``hfdriver logs`` shows them and ``chat -c`` continues the last one.

What is kept: the messages (system, user, assistant), the model and the token counts. Never a
token or any other credential. Off for one run with ``--no-log``; off for good with
``hfdriver logs off`` (a marker file; ``hfdriver logs on`` removes it).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

__all__ = ["ConversationLog", "log_dir"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL,
    model TEXT,
    system TEXT
);
CREATE TABLE IF NOT EXISTS exchanges (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation INTEGER NOT NULL REFERENCES conversations (id),
    at REAL NOT NULL,
    model TEXT,
    prompt TEXT NOT NULL,
    answer TEXT NOT NULL,
    input_tokens INTEGER,
    output_tokens INTEGER
);
CREATE INDEX IF NOT EXISTS exchanges_conversation ON exchanges (conversation);
"""


def log_dir() -> Path:
    """``$HF_HOME/hfdriver``: the cache's folder."""
    from hfdriver.cache import default_cache_path

    return default_cache_path().parent


class ConversationLog:
    """The log file; each method opens it briefly (a CLI process logs a few exchanges at most)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or log_dir()
        self.path = self.folder / "logs.sqlite"
        self.off_marker = self.folder / "logs-off"

    @property
    def enabled(self) -> bool:
        return not self.off_marker.exists()

    def turn(self, on: bool) -> None:
        if on:
            self.off_marker.unlink(missing_ok=True)
        else:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.off_marker.write_text("hfdriver chat keeps no log while this file exists\n")

    def _connect(self) -> sqlite3.Connection:
        self.folder.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10.0)
        db.executescript(_SCHEMA)
        return db

    def start(self, model: str | None, system: str | None) -> int:
        with self._connect() as db:
            cursor = db.execute(
                "INSERT INTO conversations (started, model, system) VALUES (?, ?, ?)",
                (time.time(), model, system),
            )
            return int(cursor.lastrowid or 0)

    def add(
        self, conversation: int, prompt: str, answer: str, *, model: str | None, usage: Any | None = None
    ) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO exchanges (conversation, at, model, prompt, answer, input_tokens, output_tokens) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation, time.time(), model, prompt, answer,
                    getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None),
                ),
            )  # fmt: skip

    def last(self) -> tuple[int, str | None, list[tuple[str, str]]] | None:
        """The latest conversation: its id, system message and ``(prompt, answer)`` exchanges."""
        if not self.path.exists():
            return None
        with self._connect() as db:
            row = db.execute(
                "SELECT c.id, c.system FROM conversations c JOIN exchanges e ON e.conversation = c.id "
                "ORDER BY e.id DESC LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            pairs = db.execute(
                "SELECT prompt, answer FROM exchanges WHERE conversation = ? ORDER BY id", (row[0],)
            ).fetchall()
        return int(row[0]), row[1], [(str(p), str(a)) for p, a in pairs]

    def recent(self, count: int) -> list[dict[str, Any]]:
        """The ``count`` latest exchanges, oldest first."""
        if not self.path.exists():
            return []
        with self._connect() as db:
            rows = db.execute(
                "SELECT conversation, at, model, prompt, answer, input_tokens, output_tokens FROM exchanges "
                "ORDER BY id DESC LIMIT ?",
                (count,),
            ).fetchall()
        keys = ("conversation", "at", "model", "prompt", "answer", "input_tokens", "output_tokens")
        return [dict(zip(keys, row, strict=True)) for row in reversed(rows)]


def dumps(rows: list[dict[str, Any]]) -> str:
    return "\n".join(json.dumps(row, ensure_ascii=False) for row in rows)
