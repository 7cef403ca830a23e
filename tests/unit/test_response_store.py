"""The Responses API's store: kept across instances (SQLite), bounded by size and age, one WARNING."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from hfdriver.server import MemoryResponseStore, SQLiteResponseStore, StoredResponse, default_store_path


def entry(n: int, *, size: int = 100, created: float | None = None) -> StoredResponse:
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x" * size}]}
    return StoredResponse(
        f"resp_{n}",
        {"id": f"resp_{n}", "object": "response", "output": []},
        (item,),
        (item,),
        created if created is not None else time.time(),
    )


def test_the_default_file_sits_beside_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    assert default_store_path() == tmp_path / "hfdriver" / "responses.sqlite"


async def test_sqlite_keeps_responses_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite"
    first = SQLiteResponseStore(path)
    await first.put(entry(1))
    await first.aclose()
    second = SQLiteResponseStore(path)
    found = await second.get("resp_1")
    assert (
        found is not None and found.response["id"] == "resp_1" and found.input_items == entry(1).input_items
    )
    assert await second.delete("resp_1") and not await second.delete("resp_1")
    assert await second.get("resp_1") is None
    await second.aclose()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_the_oldest_go_first_past_the_size_limit_with_one_warning(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    size = len(entry(0, size=1000).encode())
    store = (
        MemoryResponseStore(max_bytes=size * 10)
        if kind == "memory"
        else SQLiteResponseStore(tmp_path / "r.sqlite", max_bytes=size * 10)
    )
    with caplog.at_level(logging.DEBUG, logger="hfdriver"):
        for n in range(30):
            await store.put(entry(n, size=1000, created=time.time() + n * 0.001))
    kept = [n for n in range(30) if await store.get(f"resp_{n}") is not None]
    assert 0 < len(kept) <= 10 and kept == list(range(30 - len(kept), 30))  # the newest survive
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "dropped the" in warnings[0].getMessage()
    await store.aclose()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_responses_past_the_age_limit_are_gone(kind: str, tmp_path: Path) -> None:
    store = (
        MemoryResponseStore(max_age=60)
        if kind == "memory"
        else SQLiteResponseStore(tmp_path / "r.sqlite", max_age=60)
    )
    await store.put(entry(1, created=time.time() - 120))
    await store.put(entry(2))
    assert await store.get("resp_1") is None
    assert await store.get("resp_2") is not None
    await store.aclose()


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        MemoryResponseStore(max_bytes=0)
