"""Access to the shared conformance corpus (real recorded server responses)."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

_HERE = Path(__file__).resolve().parent.parent


def corpus_dir() -> Path | None:
    explicit = os.environ.get("HFDRIVER_CONFORMANCE_DIR")
    candidates = [Path(explicit)] if explicit else []
    candidates += [_HERE.parent / "shared" / "conformance", Path.cwd().parent / "shared" / "conformance"]
    for path in candidates:
        if (path / "INDEX.tsv").is_file():
            return path
    return None


SKIP_REASON = (
    "conformance corpus not found: expected ../shared/conformance next to the project "
    "(or set HFDRIVER_CONFORMANCE_DIR)"
)
requires_corpus = pytest.mark.skipif(corpus_dir() is None, reason=SKIP_REASON)


@dataclass(frozen=True)
class Recording:
    body_file: str
    status: int
    uri: str
    quirks: str

    @property
    def path(self) -> Path:
        root = corpus_dir()
        assert root is not None
        return root / self.body_file

    @property
    def body(self) -> bytes:
        return self.path.read_bytes()

    @property
    def is_chat(self) -> bool:
        return self.uri.rstrip("/").endswith("/chat/completions")

    @property
    def is_sse(self) -> bool:
        return self.body_file.endswith(".sse")

    @property
    def id(self) -> str:
        return self.body_file.split("/", 1)[1].rsplit(".response.", 1)[0]

    def meta(self) -> dict[str, Any]:
        meta_path = self.path.with_name(self.path.name.split(".response.")[0] + ".meta.json")
        return json.loads(meta_path.read_text()) if meta_path.is_file() else {}

    def response_headers(self) -> dict[str, str]:
        meta = self.meta()
        headers = (meta.get("response") or {}).get("headers") or meta.get("response_headers") or {}
        drop = {"transfer-encoding", "content-length", "content-encoding"}
        out: dict[str, str] = {}
        for key, value in headers.items():
            if key.lower() in drop:
                continue
            out[key] = value[0] if isinstance(value, list) and value else str(value)
        return out


@cache
def recordings() -> tuple[Recording, ...]:
    root = corpus_dir()
    if root is None:
        return ()
    with (root / "INDEX.tsv").open(newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    return tuple(Recording(r[0], int(r[1]), r[2], r[4] if len(r) > 4 else "") for r in rows[1:] if r)


def params(items: tuple[Recording, ...]) -> list[Any]:
    if not items:
        return [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_REASON), id="no-corpus")]
    return [pytest.param(r, id=r.id) for r in items]


def chat_json_200() -> tuple[Recording, ...]:
    return tuple(r for r in recordings() if r.status == 200 and r.is_chat and not r.is_sse)


def chat_sse_200() -> tuple[Recording, ...]:
    return tuple(r for r in recordings() if r.status == 200 and r.is_chat and r.is_sse)


def error_bodies() -> tuple[Recording, ...]:
    return tuple(r for r in recordings() if r.status >= 400)


def secondary_items() -> list[dict[str, Any]]:
    root = corpus_dir()
    if root is None:
        return []
    data = json.loads((root / "secondary" / "error_bodies_secondary_and_source_derived.json").read_text())
    return list(data["items"])


def sse_vectors() -> list[dict[str, Any]]:
    root = corpus_dir()
    if root is None:
        return []
    return list(
        json.loads((root / "sse_vectors" / "openai_python_test_streaming_vectors.json").read_text())["cases"]
    )


def sse_expected_text(body: bytes) -> str:
    """Concatenate delta contents of every data event (the recorded deltas), reading line by line."""
    text = []
    for line in body.decode("utf-8").splitlines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if not data or data == "[DONE]":
            continue
        obj = json.loads(data)
        for choice in obj.get("choices") or []:
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if isinstance(content, str):
                text.append(content)
    return "".join(text)
