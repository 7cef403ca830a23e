"""The transport's pieces that need no server: the failure table, Link parsing, retry hooks, the testing switch."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import aiohttp
import pytest

from hfdriver import HuggingFaceError, HuggingFaceErrorKind, RetryDetails, RetryPolicy
from hfdriver.transport import (
    Reply,
    call_with_retries,
    get_on_retry_hooks,
    instant_retries,
    is_testing,
    log_retry,
    map_transport_error,
    set_on_retry_hooks,
    set_testing,
)

K = HuggingFaceErrorKind


@pytest.mark.parametrize(
    ("exc", "phase", "kind", "retryable", "words"),
    [
        (aiohttp.ConnectionTimeoutError(), "request", K.TIMEOUT, True, "connect timeout fired"),
        (aiohttp.SocketTimeoutError(), "open", K.TIMEOUT, False, "read timeout fired"),
        (asyncio.TimeoutError(), "request", K.TIMEOUT, False, "total timeout fired"),
        (aiohttp.ClientPayloadError("cut"), "open", K.STREAM, True, "the stream broke"),
        (aiohttp.ClientPayloadError("cut"), "stream", K.STREAM, False, "the stream broke"),
        (aiohttp.ServerDisconnectedError(), "request", K.CONNECTION, True, "could not reach the server"),
        (aiohttp.ServerDisconnectedError(), "stream", K.STREAM, False, "the stream broke"),
        (ConnectionRefusedError(111, "refused"), "request", K.CONNECTION, True, "check the base_url"),
        (aiohttp.InvalidURL("nonsense"), "request", K.CONFIG, False, "not a valid URL"),
        (aiohttp.ClientError("odd"), "request", K.CONNECTION, True, "transport failure: odd"),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_transport_failures_map_through_one_table(
    exc: BaseException, phase: str, kind: HuggingFaceErrorKind, retryable: bool, words: str
) -> None:
    error = map_transport_error(exc, phase=phase)
    assert (error.kind, error.retryable) == (kind, retryable)
    assert words in error.message


def test_transport_messages_name_the_service_and_redact_the_secret() -> None:
    secret = "sk-not-an-hf-token-12345"
    error = map_transport_error(
        OSError(f"cannot connect with {secret} or hf_abcdefghijklmnopqr"),
        secret=secret,
        service="the Hub",
        hint="check HF_ENDPOINT",
    )
    assert error.message.startswith("could not reach the Hub: ") and error.message.endswith(
        "check HF_ENDPOINT"
    )
    assert secret not in error.message and "hf_abcdefghijklmnopqr" not in error.message
    named = map_transport_error(OSError("x"), unreachable="Ollama is not reachable at http://h")
    assert named.message.startswith("Ollama is not reachable at http://h: x")


@pytest.mark.parametrize(
    ("link", "rel", "url"),
    [
        (
            '<https://hub/api/models?cursor=abc%2C1&limit=5>; rel="next"',
            "next",
            "https://hub/api/models?cursor=abc%2C1&limit=5",
        ),
        ('<https://a/1>; rel="prev", <https://a/3>; rel="next"', "next", "https://a/3"),
        ("<https://a/3>; rel=next", "next", "https://a/3"),
        ('<https://a/1>; rel="prev"', "next", None),
        ("", "next", None),
    ],
)
def test_reply_link(link: str, rel: str, url: str | None) -> None:
    assert Reply(200, {"Link": link} if link else {}, b"").link(rel) == url


@pytest.fixture
def hooks() -> Iterator[list[RetryDetails]]:
    seen: list[RetryDetails] = []
    set_on_retry_hooks([seen.append])
    try:
        yield seen
    finally:
        set_on_retry_hooks(None)


def _flaky(failures: list[HuggingFaceError]) -> tuple[list[int], object]:
    calls: list[int] = []

    async def attempt() -> str:
        calls.append(1)
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return "ok"

    return calls, attempt


async def test_retry_hooks_receive_retry_details(hooks: list[RetryDetails]) -> None:
    failures = [
        HuggingFaceError(K.RATE_LIMITED, "slow", status=429, request_id="r1", provider="p1", retry_after=0.0),
        HuggingFaceError(K.OVERLOADED, "busy", status=529, request_id="r2"),
    ]
    calls, attempt = _flaky(failures)
    with instant_retries():
        result = await call_with_retries(RetryPolicy(attempts=4), "generate", attempt)  # type: ignore[arg-type]
    assert result == "ok" and len(calls) == 3
    assert [(d.what, d.attempt, d.attempts, d.wait) for d in hooks] == [
        ("generate", 1, 4, 0.0),
        ("generate", 2, 4, 0.0),
    ]
    first, second = hooks
    assert (first.kind, first.status, first.request_id, first.provider) == ("RATE_LIMITED", 429, "r1", "p1")
    assert (second.kind, second.status, second.request_id) == ("OVERLOADED", 529, "r2")
    assert first.error is failures[0] and 0 <= first.elapsed <= second.elapsed


async def test_retry_waits_are_real_without_the_testing_switch(hooks: list[RetryDetails]) -> None:
    _, attempt = _flaky([HuggingFaceError(K.SERVER, "boom", status=502)])
    with set_testing(False):
        policy = RetryPolicy(attempts=2, initial_backoff=0.01, max_backoff=0.01, jitter=0.0)
        await call_with_retries(policy, "stream", attempt)  # type: ignore[arg-type]
    assert [d.wait for d in hooks] == [0.01]


async def test_no_hook_runs_when_nothing_is_retried(hooks: list[RetryDetails]) -> None:
    _, attempt = _flaky([HuggingFaceError(K.AUTHENTICATION, "bad token", status=401)])
    with pytest.raises(HuggingFaceError):
        await call_with_retries(RetryPolicy(), "generate", attempt)  # type: ignore[arg-type]
    assert hooks == []


async def test_a_failing_hook_never_breaks_the_call(caplog: pytest.LogCaptureFixture) -> None:
    def broken(details: RetryDetails) -> None:
        raise RuntimeError("hook bug")

    set_on_retry_hooks([broken])
    try:
        _, attempt = _flaky([HuggingFaceError(K.SERVER, "boom", status=502)])
        with instant_retries(), caplog.at_level(logging.ERROR, logger="hfdriver"):
            assert await call_with_retries(RetryPolicy(), "generate", attempt) == "ok"  # type: ignore[arg-type]
    finally:
        set_on_retry_hooks(None)
    assert "retry hook" in caplog.text and "hook bug" in caplog.text


async def test_default_hook_logs_and_empty_hooks_silence(caplog: pytest.LogCaptureFixture) -> None:
    assert get_on_retry_hooks()[0] is log_retry  # (and telemetry's span events, once it is in use)
    _, attempt = _flaky([HuggingFaceError(K.SERVER, "boom", status=502)])
    with instant_retries(), caplog.at_level(logging.WARNING, logger="hfdriver"):
        await call_with_retries(RetryPolicy(), "generate", attempt)  # type: ignore[arg-type]
    assert "generate failed with SERVER (status 502) on attempt 1 of 4; retrying in 0.00s" in caplog.text
    caplog.clear()
    set_on_retry_hooks([])
    try:
        _, attempt = _flaky([HuggingFaceError(K.SERVER, "boom", status=502)])
        with instant_retries(), caplog.at_level(logging.WARNING, logger="hfdriver"):
            await call_with_retries(RetryPolicy(), "generate", attempt)  # type: ignore[arg-type]
    finally:
        set_on_retry_hooks(None)
    assert caplog.text == ""


def test_the_testing_switch_restores_what_was_there() -> None:
    before = is_testing()
    with set_testing(not before):
        assert is_testing() is (not before)
        with set_testing(before):
            assert is_testing() is before
        assert is_testing() is (not before)
    assert is_testing() is before
    with pytest.raises(ValueError, match="inside"), instant_retries():
        assert is_testing()
        raise ValueError("inside")
    assert is_testing() is before
    set_testing(True)  # a plain call flips it for good
    try:
        assert is_testing()
    finally:
        set_testing(before)


@pytest.mark.parametrize(
    ("host", "no_proxy", "bypass"),
    [
        ("api.example.com", "example.com", True),
        ("api.example.com", ".example.com", True),
        ("example.com", ".example.com", True),
        ("badexample.com", "example.com", False),
        ("10.1.2.3", "10.0.0.0/8", True),
        ("11.1.2.3", "10.0.0.0/8", False),
        ("127.0.0.1", "localhost, 127.0.0.1", True),
        ("::1", "[::1]", True),
        ("anything", "*", True),
        ("host", "other:8080,host:3128", True),
    ],
)
def test_no_proxy_rules(host: str, no_proxy: str, bypass: bool) -> None:
    from hfdriver.transport._proxy import bypassed

    assert bypassed(host, no_proxy) is bypass


def test_the_proxy_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from hfdriver.transport._proxy import _VARS, ProxyResolver

    for name in _VARS:
        monkeypatch.delenv(name, raising=False)
    resolve = ProxyResolver()
    assert resolve("https://router.huggingface.co/v1") is None
    monkeypatch.setenv("https_proxy", "proxy.corp:3128")
    assert resolve("https://router.huggingface.co/v1") == "http://proxy.corp:3128"
    assert resolve("http://127.0.0.1:8000/v1") is None  # no HTTP_PROXY
    monkeypatch.setenv("ALL_PROXY", "http://all.corp:1")
    assert resolve("http://127.0.0.1:8000/v1") == "http://all.corp:1"
    monkeypatch.setenv("NO_PROXY", "huggingface.co")
    assert resolve("https://router.huggingface.co/v1") is None


async def test_quiet_retry_log_silences_the_warning_only(caplog: pytest.LogCaptureFixture) -> None:
    from hfdriver.transport import add_default_retry_hook, quiet_retry_log, reset_retry_log

    seen: list[RetryDetails] = []
    before = get_on_retry_hooks()
    token = quiet_retry_log()
    try:
        add_default_retry_hook(seen.append)  # a layer installing its hook meanwhile still counts
        _, attempt = _flaky([HuggingFaceError(K.SERVER, "boom", status=502)])
        with instant_retries(), caplog.at_level(logging.WARNING, logger="hfdriver"):
            await call_with_retries(RetryPolicy(), "generate", attempt)  # type: ignore[arg-type]
        assert not [r for r in caplog.records if "retrying" in r.getMessage()]
        assert len(seen) == 1  # other hooks still ran
    finally:
        reset_retry_log(token)
        import hfdriver.transport._retry as retry_module

        if seen.append in retry_module._defaults:
            retry_module._defaults.remove(seen.append)
    assert get_on_retry_hooks() == before
    _, attempt = _flaky([HuggingFaceError(K.SERVER, "boom", status=502)])
    with instant_retries(), caplog.at_level(logging.WARNING, logger="hfdriver"):
        await call_with_retries(RetryPolicy(), "generate", attempt)  # type: ignore[arg-type]
    assert [r for r in caplog.records if "retrying" in r.getMessage()]
