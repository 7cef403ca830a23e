"""Access to the recorded non-chat exchanges (../shared/recordings/tasks): real server answers of 27
tasks on 9 providers, with the output a correct client must produce (``expect``)."""

from __future__ import annotations

import base64
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from hfdriver.testing import FakeResponse

_HERE = Path(__file__).resolve().parent.parent


def tasks_dir() -> Path | None:
    explicit = os.environ.get("HFDRIVER_TASKS_DIR")
    candidates = [Path(explicit)] if explicit else []
    candidates += [
        _HERE.parent / "shared" / "recordings" / "tasks",
        Path.cwd().parent / "shared" / "recordings" / "tasks",
    ]
    for path in candidates:
        if (path / "INDEX.tsv").is_file():
            return path
    return None


SKIP_REASON = (
    "task recordings not found: expected ../shared/recordings/tasks next to the project "
    "(or set HFDRIVER_TASKS_DIR)"
)
requires_tasks = pytest.mark.skipif(tasks_dir() is None, reason=SKIP_REASON)


@cache
def cases(task: str) -> tuple[tuple[str, dict[str, Any]], ...]:
    """``(name, case)`` of every recording of ``task`` (empty when the recordings are absent)."""
    root = tasks_dir()
    if root is None:
        return ()
    folder = root / "cases" / task
    return tuple((path.stem, json.loads(path.read_text())) for path in sorted(folder.glob("*.json")))


def params(task: str) -> list[Any]:
    """``cases(task)`` as pytest parameters (one skipped placeholder when the recordings are absent)."""
    found = [pytest.param(case, id=name) for name, case in cases(task)]
    return found or [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_REASON), id="no-recordings")]


def body_of(response: dict[str, Any]) -> bytes:
    """The recorded body's bytes, as the README says to replay them."""
    if "text" in response:
        return str(response["text"]).encode()
    if "body_b64" in response:
        return base64.b64decode(response["body_b64"])
    if "json" in response:
        return json.dumps(response["json"], separators=(",", ":"), ensure_ascii=False).encode()
    return b""


def served(response: dict[str, Any]) -> FakeResponse:
    """A recorded response as the fake sends it (framing headers dropped)."""
    headers = {
        k: v
        for k, v in (response.get("headers") or {}).items()
        if k.lower() not in ("content-type", "content-length", "transfer-encoding", "content-encoding")
    }
    content_type = (response.get("headers") or {}).get("content-type", "application/json")
    return FakeResponse(
        status=response["status"], body=body_of(response), headers=headers, content_type=content_type
    )


def answered_steps(case: dict[str, Any]) -> list[dict[str, Any]]:
    """The inference calls of a case (submit, retries), without Hub look-ups or downloads."""
    return [step for step in case["steps"] if step["role"] in ("submit", "retry")]
