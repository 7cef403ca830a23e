"""The response cache: SQLite and memory stores, the driver integration, single-flight, replay."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hfdriver import Cost, GenerateRequest, GenerateResponse, HuggingFaceDriver, Output, Usage, compose
from hfdriver.cache import Cache, CachedDriver, MemoryCache, SQLiteCache, cache_key, cache_of
from hfdriver.config import create_driver, parse_config
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.testing import FakeResponse, FakeRouter

TOKEN = "hf_cache_test_token_0123456789"
MODEL = "meta-llama/Llama-3.2-1B-Instruct"


def chat_requests(router: FakeRouter) -> int:
    return sum(1 for r in router.requests if r.path == "/v1/chat/completions")


def req(text: str = "Hello", **kw: Any) -> GenerateRequest:
    return GenerateRequest.builder().model(MODEL).user(text).max_tokens(kw.pop("max_tokens", 16)).build()


@pytest.fixture
async def router() -> AsyncIterator[FakeRouter]:
    async with FakeRouter() as fake:
        yield fake


@pytest.fixture(params=["sqlite", "memory"])
async def cache(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cache]:
    store: Cache = SQLiteCache(tmp_path / "c.sqlite") if request.param == "sqlite" else MemoryCache()
    yield store
    await store.aclose()


# ---------------------------------------------------------------------------- the stores


async def test_store_get_set_delete_clear(cache: Cache) -> None:
    assert await cache.get("k") is None
    await cache.set("k", b"value")
    assert await cache.get("k") == b"value"
    await cache.set("k", b"other")
    assert await cache.get("k") == b"other"
    await cache.delete("k")
    assert await cache.get("k") is None
    await cache.set("a", b"1")
    await cache.clear()
    assert await cache.get("a") is None
    stats = await cache.stats()
    assert stats.entries == 0


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
async def test_ttl_expires_answers(kind: str, tmp_path: Path) -> None:
    store: Cache = SQLiteCache(tmp_path / "c.sqlite", ttl=0.2) if kind == "sqlite" else MemoryCache(ttl=0.2)
    try:
        await store.set("k", b"v")
        assert await store.get("k") == b"v"
        await asyncio.sleep(0.3)
        assert await store.get("k") is None
        stats = await store.stats()
        assert stats.expired == 1 and stats.hits == 1 and stats.misses == 1
    finally:
        await store.aclose()


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
async def test_size_cap_evicts_least_recently_used(kind: str, tmp_path: Path) -> None:
    store: Cache = (
        SQLiteCache(tmp_path / "c.sqlite", max_bytes=1000)
        if kind == "sqlite"
        else MemoryCache(max_bytes=1000)
    )
    try:
        for i in range(4):
            await store.set(f"k{i}", bytes([i]) * 200)
        await asyncio.sleep(0.01)
        assert await store.get("k0") is not None  # k0 is now the most recently used
        for i in range(4, 7):
            await store.set(f"k{i}", bytes([i]) * 200)
        stats = await store.stats()
        assert stats.bytes <= 1000
        assert stats.evictions >= 1
        assert await store.get("k0") is not None  # kept: used recently
        assert await store.get("k1") is None  # evicted: least recently used
        await store.set("huge", b"x" * 5000)  # larger than the whole cache: not stored
        assert await store.get("huge") is None
    finally:
        await store.aclose()


async def test_sqlite_is_shared_by_two_instances(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    one, two = SQLiteCache(path), SQLiteCache(path)
    try:
        await one.set("k", b"from one")
        assert await two.get("k") == b"from one"
        mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
    finally:
        await one.aclose()
        await two.aclose()
    # Lifetime counters survive the processes that made them.
    three = SQLiteCache(path)
    stats = await three.stats()
    await three.aclose()
    assert stats.hits == 1 and stats.stores == 1 and stats.entries == 1


async def damaged_cache(path: Path) -> None:
    """A cache file of hfdriver's own whose pages are damaged (its header is intact)."""
    store = SQLiteCache(path)
    for i in range(50):
        await store.set(f"k{i}", b"x" * 500)
    await store.aclose()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with path.open("r+b") as handle:
        handle.seek(100)
        handle.write(b"this is not a database page" * 400)


async def test_corrupt_file_is_bypassed_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "broken.sqlite"
    await damaged_cache(path)  # (a file that is not a cache of ours is never touched: test_nothing_lost)
    store = SQLiteCache(path)
    with caplog.at_level(logging.WARNING, logger="hfdriver"):
        assert await store.get("k") is None
        await store.set("k", b"v")
        assert await store.get("k") is None
    warnings = [r for r in caplog.records if "cannot be used" in r.getMessage()]
    assert len(warnings) == 1
    assert "hfdriver cache clear" in warnings[0].getMessage()
    await store.clear()  # makes the file anew
    await store.set("k", b"v")
    assert await store.get("k") == b"v"
    await store.aclose()


async def test_damaged_row_is_a_miss_never_a_wrong_answer(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    store = SQLiteCache(path)
    await store.set("k", b'{"answer": "right"}')
    await store.aclose()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE entries SET value = ? WHERE key = 'k'", (b'{"answer": "wrong"}',))
    store = SQLiteCache(path)
    assert await store.get("k") is None
    await store.aclose()


async def test_locked_file_skips_the_operation(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "c.sqlite"
    store = SQLiteCache(path, busy_timeout=0.05)
    await store.set("a", b"1")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with caplog.at_level(logging.WARNING, logger="hfdriver"):
            await store.set("b", b"2")  # cannot write now: skipped, no exception
        assert any("locked" in r.getMessage() for r in caplog.records)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    await store.set("c", b"3")  # the lock is gone: the cache works again
    assert await store.get("c") == b"3"
    await store.aclose()


def test_key_is_canonical_and_never_holds_the_token() -> None:
    a = cache_key(
        "http://x/v1", {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    )
    b = cache_key("http://x/v1", {"messages": [{"content": "hi", "role": "user"}], "model": "m"})
    assert a == b  # key order and stream flags do not matter
    assert a != cache_key("http://y/v1", {"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert TOKEN not in a


# ---------------------------------------------------------------------------- the driver


async def test_driver_answers_repeats_from_the_cache(router: FakeRouter, cache: Cache) -> None:
    async with compose(HuggingFaceDriver(TOKEN, base_url=router.base_url), cache=cache) as driver:
        first = await driver.generate(req("What is 2+2?"))
        second = await driver.generate(req("What is 2+2?"))
        other = await driver.generate(req("What is 3+3?"))
    assert chat_requests(router) == 2
    assert not first.cached and second.cached and not other.cached
    assert second.text == first.text and second.usage == first.usage and second.model == first.model
    assert second.cost == Cost.zero()  # a hit costs nothing
    assert second.provider == first.provider and second.request_id == first.request_id


async def test_errors_and_truncated_streams_are_not_stored(router: FakeRouter) -> None:
    cache = MemoryCache()
    router.enqueue(FakeResponse.error(400, "bad things"))
    async with compose(HuggingFaceDriver(TOKEN, base_url=router.base_url), cache=cache) as driver:
        with pytest.raises(HuggingFaceError):
            await driver.generate(req("x"))
        assert (await driver.generate(req("x"))).text  # asked again: the error was not stored
        # A stream abandoned half way is not stored.
        async with driver.generate_stream(req("one two three four five")) as stream:
            await stream.__anext__()
        async with driver.generate_stream(req("one two three four five")) as stream:
            chunks = [c async for c in stream]
            assert not stream.cached
    assert "".join(c.text for c in chunks) == "echo: one two three four five"
    assert chat_requests(router) == 4


async def test_a_stream_is_replayed_from_the_cache(router: FakeRouter) -> None:
    cache = MemoryCache()
    async with compose(HuggingFaceDriver(TOKEN, base_url=router.base_url), cache=cache) as driver:
        async with driver.generate_stream(req("stream me please")) as stream:
            live = [c async for c in stream]
        async with driver.generate_stream(req("stream me please")) as stream:
            replayed = [c async for c in stream]
            assert stream.cached
            collected = await stream.collect()
        unary = await driver.generate(req("stream me please"))  # a stored stream answers unary too
    assert chat_requests(router) == 1
    assert "".join(c.text for c in replayed) == "".join(c.text for c in live) == "echo: stream me please"
    assert replayed[-1].finish_reason == "stop" and replayed[-1].usage == live[-1].usage
    assert collected.cached and unary.cached and unary.text == "echo: stream me please"


async def test_identical_requests_in_flight_make_one_call(router: FakeRouter) -> None:
    router.enqueue(FakeResponse.completion("shared answer", delay=0.2))
    async with compose(HuggingFaceDriver(TOKEN, base_url=router.base_url), cache=MemoryCache()) as driver:
        answers = await asyncio.gather(*(driver.generate(req("same")) for _ in range(10)))
    assert chat_requests(router) == 1
    assert {a.text for a in answers} == {"shared answer"}
    assert sum(not a.cached for a in answers) == 1


async def test_single_flight_shares_an_error_too(router: FakeRouter) -> None:
    router.enqueue(FakeResponse.error(400, "nope", delay=0.2))
    async with compose(HuggingFaceDriver(TOKEN, base_url=router.base_url), cache=MemoryCache()) as driver:
        results = await asyncio.gather(
            *(driver.generate(req("same")) for _ in range(5)), return_exceptions=True
        )
    assert chat_requests(router) == 1
    assert all(
        isinstance(r, HuggingFaceError) and r.kind is HuggingFaceErrorKind.BAD_REQUEST for r in results
    )


async def test_a_cancelled_leader_lets_followers_call(router: FakeRouter) -> None:
    router.enqueue(FakeResponse.completion("slow", delay=0.5))
    async with compose(HuggingFaceDriver(TOKEN, base_url=router.base_url), cache=MemoryCache()) as driver:
        leader = asyncio.ensure_future(driver.generate(req("same")))
        await asyncio.sleep(0.05)
        follower = asyncio.ensure_future(driver.generate(req("same")))
        await asyncio.sleep(0.05)
        leader.cancel()
        answer = await asyncio.wait_for(follower, 5)
    assert answer.text == "echo: same"
    assert chat_requests(router) == 2


async def test_corrupt_cache_file_never_breaks_the_driver(router: FakeRouter, tmp_path: Path) -> None:
    path = tmp_path / "garbage.sqlite"
    path.write_bytes(b"\x00garbage" * 1000)
    async with compose(HuggingFaceDriver(TOKEN, base_url=router.base_url), cache=SQLiteCache(path)) as driver:
        first = await driver.generate(req("hi"))
        second = await driver.generate(req("hi"))
    assert first.text == second.text == "echo: hi"
    assert chat_requests(router) == 2


async def test_unreadable_entry_is_dropped_and_answered_live(router: FakeRouter) -> None:
    cache = MemoryCache()
    async with compose(HuggingFaceDriver(TOKEN, base_url=router.base_url), cache=cache) as driver:
        await driver.generate(req("hi"))
        (key,) = list(cache._data)
        await cache.set(key, b"{not json")
        again = await driver.generate(req("hi"))
    assert not again.cached and chat_requests(router) == 2


class CountingDriver:
    """A minimal third-party driver: the wrapper must work with any Driver."""

    model = "local/toy"

    def __init__(self) -> None:
        self.calls = 0

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        self.calls += 1
        await asyncio.sleep(0.05)
        text = request.messages[-1].text
        return GenerateResponse(
            outputs=(Output(text=f"toy: {text}", finish_reason="stop"),),
            usage=Usage(1, 2, 3),
            cost=Cost.zero(),
        )

    def generate_stream(self, request: GenerateRequest) -> Any:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass

    async def __aenter__(self) -> CountingDriver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def test_cached_driver_wraps_any_driver(tmp_path: Path) -> None:
    inner = CountingDriver()
    async with CachedDriver(inner, SQLiteCache(tmp_path / "c.sqlite")) as driver:
        plain = GenerateRequest.builder().user("no model named").build()
        a, b = await asyncio.gather(driver.generate(plain), driver.generate(plain))
        c = await driver.generate(plain)
        assert driver.model == "local/toy"  # attributes pass through
    assert inner.calls == 1
    assert a.text == b.text == c.text == "toy: no model named"
    assert c.cached


async def test_config_cache_table_builds_a_cache(router: FakeRouter, tmp_path: Path) -> None:
    path = tmp_path / "from-config.sqlite"
    config = parse_config(
        {
            "llm": {
                "provider": "huggingface-endpoint",
                "base_url": router.base_url,
                "model": MODEL,
                "cache": {"path": str(path), "ttl": 3600, "max_size": "10MB"},
            },
            "profiles": {"nocache": {"cache": {"enabled": False}}},
        }
    )
    assert config.llm.cache.max_size == 10_000_000
    driver = create_driver(config)
    async with driver:
        cache = cache_of(driver)
        assert isinstance(cache, SQLiteCache) and cache.path == path and cache.ttl == 3600
        await driver.generate(req("config"))
        assert (await driver.generate(req("config"))).cached
    assert path.exists()
    assert cache_of(create_driver(config, "nocache")) is None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"ttl": -1}, "ttl must be"),
        ({"max_size": "lots"}, "max_size must be"),
        ({"backend": "redis"}, "backend must be"),
        ({"pth": "x"}, "did you mean 'path'"),
    ],
)
def test_config_cache_table_is_checked(table: dict[str, Any], message: str) -> None:
    with pytest.raises(HuggingFaceError, match=message) as info:
        parse_config({"llm": {"cache": table}})
    assert info.value.kind is HuggingFaceErrorKind.CONFIG


def test_a_non_cache_is_a_config_error() -> None:
    with pytest.raises(HuggingFaceError, match=r"must implement hfdriver\.cache\.Cache") as info:
        compose(HuggingFaceDriver(TOKEN, base_url="http://127.0.0.1:1/v1"), cache={"not": "a cache"})  # type: ignore[arg-type]
    assert info.value.kind is HuggingFaceErrorKind.CONFIG


async def test_hits_send_nothing_and_count(router: FakeRouter, cache: Cache) -> None:
    async with compose(HuggingFaceDriver(TOKEN, base_url=router.base_url), cache=cache) as driver:
        await driver.generate(req("warm"))
        before = len(router.requests)
        for _ in range(20):
            assert (await driver.generate(req("warm"))).cached
        stats = await cache.stats()
    assert len(router.requests) == before
    assert (stats.hits, stats.misses, stats.stores, stats.entries) == (20, 1, 1, 1)
    assert stats.hit_rate == pytest.approx(20 / 21)


async def test_serve_streams_cached_answers_to_a_real_client(router: FakeRouter) -> None:
    openai = pytest.importorskip("openai", reason="the dev extra installs openai")
    from hfdriver.server import OpenAIServer

    driver = compose(HuggingFaceDriver(TOKEN, base_url=router.base_url, model=MODEL), cache=MemoryCache())
    async with (
        OpenAIServer(driver, port=0, api_key="sk-test") as server,
        openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client,
    ):
        texts = []
        for _ in range(2):
            stream = await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "cached via serve"}], stream=True
            )
            texts.append("".join([c.choices[0].delta.content or "" async for c in stream if c.choices]))
        unary = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "cached via serve"}]
        )
    await driver.aclose()
    assert texts == ["echo: cached via serve"] * 2
    assert unary.choices[0].message.content == "echo: cached via serve"
    assert chat_requests(router) == 1


async def _cli(*args: str, home: Path) -> tuple[int, str, str]:
    import os
    import sys

    environ = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "HFDRIVER"))}
    environ["HF_HOME"] = str(home)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hfdriver.cli", "cache", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environ, cwd=str(home),
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_cli_cache_stats_and_clear(tmp_path: Path) -> None:
    path = tmp_path / "cli.sqlite"
    code, out, _ = await _cli("stats", "--path", str(path), home=tmp_path)
    assert code == 0 and "no cache file" in out
    store = SQLiteCache(path)
    for i in range(3):
        await store.set(f"k{i}", b"x" * 100)
    await store.get("k0")
    await store.get("missing")
    await store.aclose()
    code, out, _ = await _cli("stats", "--path", str(path), home=tmp_path)
    assert code == 0, out
    assert "entries   3" in out and "hits      1" in out and "misses    1" in out and "50.0%" in out
    code, out, _ = await _cli("clear", "--path", str(path), home=tmp_path)
    assert code == 0 and "cleared 3 cached answers" in out
    code, out, _ = await _cli("stats", "--path", str(path), home=tmp_path)
    assert "entries   0" in out
    # The default path comes from HF_HOME; a damaged file is made anew by clear.
    default = tmp_path / "hfdriver" / "cache.sqlite"
    await damaged_cache(default)
    code, out, _ = await _cli("stats", home=tmp_path)
    assert code == 1 and "cannot be read" in out and "cache clear" in out
    code, out, _ = await _cli("clear", home=tmp_path)
    assert code == 0, out
    code, out, _ = await _cli("stats", home=tmp_path)
    assert code == 0 and "entries   0" in out
