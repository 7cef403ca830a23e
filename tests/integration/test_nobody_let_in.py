"""Nobody let in: tokens never leave for a server that takes none, an empty API key never opens
`serve`, and no password written into a proxy or base URL ever shows."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from hfdriver import NO_TOKEN, GenerateRequest, HuggingFaceDriver, RetryPolicy, compose, describe
from hfdriver.auth import resolve_token
from hfdriver.config import create_driver, load_config
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.server import OpenAIServer
from hfdriver.testing import FakeResponse, FakeRouter

from .test_batch import write_input

ENV_TOKEN = "hf_env_token_that_must_stay_home_0123"
MODEL = "meta-llama/Llama-3.2-1B-Instruct"
PASSWORD = "s3cr3t-pa55word"


@pytest.fixture
async def router() -> AsyncIterator[FakeRouter]:
    async with FakeRouter() as fake:
        yield fake


def ask(text: str = "hello") -> GenerateRequest:
    return GenerateRequest.builder().model(MODEL).user(text).max_tokens(8).build()


def authorizations(router: FakeRouter) -> list[str | None]:
    return [r.headers.get("Authorization") for r in router.requests]


# ---------------------------------------------------------------------------- anonymous = true


def test_no_token_looks_nowhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_TOKEN", ENV_TOKEN)
    (tmp_path / "token").write_text("hf_from_the_token_file_0123456")
    monkeypatch.setenv("HF_TOKEN_PATH", str(tmp_path / "token"))
    assert resolve_token(None) is not None
    assert resolve_token(NO_TOKEN) is None
    assert HuggingFaceDriver(NO_TOKEN, base_url="http://127.0.0.1:9/v1").token is None


async def test_tokens_never_leave_for_a_server_that_takes_none(
    router: FakeRouter, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """As the primary route, as a fallback route, with prices on, and in a batch."""
    monkeypatch.setenv("HF_TOKEN", ENV_TOKEN)
    async with FakeRouter() as down:
        down.fail_when("", FakeResponse.error(503, "down"))
        config = tmp_path / "hfdriver.toml"
        config.write_text(
            f'[llm]\nprovider = "huggingface-endpoint"\nbase_url = "{router.base_url}"\nmodel = "{MODEL}"\n'
            "costs = true\n[llm.auth]\nanonymous = true\n"
            f'[profiles.first]\nbase_url = "{down.base_url}"\nfallbacks = ["anon"]\n'
            f'[profiles.anon]\nbase_url = "{router.base_url}"\n[profiles.anon.auth]\nanonymous = true\n'
            f'[profiles.first.auth]\napi_key_env = "HF_TOKEN"\n'
        )
        async with create_driver(load_config(config)) as driver:
            assert (await driver.generate(ask("primary"))).text == "echo: primary"
        async with create_driver(load_config(config), "first", retry=RetryPolicy(attempts=1)) as driver:
            answer = await driver.generate(ask("fallback"))
            assert answer.text == "echo: fallback" and answer.route == "profile anon"
        assert set(authorizations(down)) == {f"Bearer {ENV_TOKEN}"}  # the profile that asked for it
    source, out = write_input(tmp_path / "in.jsonl", 3), tmp_path / "out.jsonl"
    environ_token = os.environ.get("HF_TOKEN")
    assert environ_token == ENV_TOKEN
    code, _, err = await _batch(router, tmp_path, config, str(source), "-o", str(out))
    assert code == 0, err
    assert router.requests and all(a is None for a in authorizations(router)), authorizations(router)


async def _batch(router: FakeRouter, tmp_path: Path, config: Path, *args: str) -> tuple[int, str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    environ.update(HF_HOME=str(tmp_path / "hf"), HFDRIVER_CONFIG=str(config), HF_TOKEN=ENV_TOKEN)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hfdriver.cli", "batch", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=environ, cwd=str(tmp_path),
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


# ---------------------------------------------------------------------------- serve's API key


@pytest.mark.parametrize(
    ("args", "environ"),
    [
        (["--api-key", ""], {}),
        (["--api-key", "   "], {}),
        ([], {"HFDRIVER_SERVE_API_KEY": ""}),
    ],
    ids=["empty option", "blank option", "empty variable"],
)
async def test_serve_refuses_an_empty_api_key(
    tmp_path: Path, args: list[str], environ: dict[str, str]
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "HFDRIVER"))}
    env.update(HF_HOME=str(tmp_path), **environ)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hfdriver.cli", "serve", "--host", "0.0.0.0", "--port", "0",
        "--model", MODEL, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=str(tmp_path),
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    text = err.decode()
    assert proc.returncode == 1, text
    assert "empty" in text and "serving" not in text


def test_the_server_refuses_an_empty_api_key() -> None:
    driver = HuggingFaceDriver(NO_TOKEN, base_url="http://127.0.0.1:9/v1")
    for key in ("", " ", "two words", "line\nbreak"):
        with pytest.raises(HuggingFaceError) as info:
            OpenAIServer(driver, api_key=key)
        assert info.value.kind is HuggingFaceErrorKind.CONFIG


# ---------------------------------------------------------------------------- proxy passwords


@pytest.fixture
async def refusing_proxy(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[int]:
    """A proxy that answers every CONNECT with 407."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_a_proxy_refusal_never_shows_its_password(
    refusing_proxy: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://proxyuser:{PASSWORD}@127.0.0.1:{refusing_proxy}")
    with caplog.at_level(logging.DEBUG, logger="hfdriver"):
        async with HuggingFaceDriver(
            "hf_proxy_token_0123456789", base_url="https://router.invalid/v1", retry=RetryPolicy(attempts=1)
        ) as driver:
            with pytest.raises(HuggingFaceError) as info:
                await driver.generate(ask())
    shown = f"{info.value} {info.value.message} {info.value.body} {caplog.text}"
    assert PASSWORD not in shown, shown


async def test_an_unsupported_proxy_is_logged_without_its_password(
    router: FakeRouter, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"socks5://proxyuser:{PASSWORD}@127.0.0.1:1080")
    with caplog.at_level(logging.WARNING, logger="hfdriver"):
        async with HuggingFaceDriver(NO_TOKEN, base_url=router.base_url) as driver:
            await driver.generate(ask())
    assert "only http:// proxies are supported" in caplog.text
    assert PASSWORD not in caplog.text and "proxyuser:****@" in caplog.text


# ---------------------------------------------------------------------------- base URL credentials


def _with_credentials(url: str) -> str:
    return url.replace("http://", f"http://alice:{PASSWORD}@", 1)


async def test_base_url_credentials_go_as_basic_auth_and_never_show(
    router: FakeRouter, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HF_TOKEN", ENV_TOKEN)  # found in the environment: not for this server
    base_url = _with_credentials(router.base_url)
    router.fail_when("fail", FakeResponse.error(500, "boom"))
    with (
        caplog.at_level(logging.DEBUG, logger="hfdriver"),
        caplog.at_level(logging.DEBUG, logger="hfdriver.http"),
    ):
        async with compose(
            HuggingFaceDriver(base_url=base_url, retry=RetryPolicy(attempts=1)), fallbacks=["backup/model"]
        ) as driver:
            shown = [repr(driver), str(describe(driver).base_url)]
            assert (await driver.generate(ask("hello"))).text == "echo: hello"
            with pytest.raises(HuggingFaceError) as info:
                await driver.generate(ask("fail"))
            shown += [str(info.value), info.value.message, str(info.value.body)]
    basic = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    assert set(authorizations(router)) == {basic}
    shown.append(caplog.text)
    assert all(PASSWORD not in text for text in shown), shown
    assert "every route failed" in info.value.message


async def test_base_url_credentials_and_a_token_are_one_clear_error(router: FakeRouter) -> None:
    with pytest.raises(HuggingFaceError) as info:
        HuggingFaceDriver("hf_explicit_token_0123456789", base_url=_with_credentials(router.base_url))
    assert info.value.kind is HuggingFaceErrorKind.CONFIG
    assert PASSWORD not in info.value.message and "user name and password" in info.value.message


async def test_a_hub_endpoint_with_credentials_never_shows_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from hfdriver import HubClient

    async def whoami(request: web.Request) -> web.Response:
        return web.json_response({"error": "nope"}, status=401)

    app = web.Application()
    app.router.add_get("/api/whoami-v2", whoami)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    endpoint = f"http://alice:{PASSWORD}@127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with HubClient(NO_TOKEN, endpoint=endpoint) as hub:
            assert PASSWORD not in repr(hub)
            with pytest.raises(HuggingFaceError) as info:
                await hub.whoami()
    finally:
        await runner.cleanup()
    assert PASSWORD not in str(info.value) and PASSWORD not in str(info.value.body)


def test_every_hfdriver_logger_scrubs_secrets() -> None:
    import re

    from hfdriver.errors._redact import LOGGERS

    names = set()
    for path in Path(__file__).resolve().parents[2].joinpath("src", "hfdriver").rglob("*.py"):
        names.update(re.findall(r'getLogger\("([^"]+)"\)', path.read_text()))
    assert names and names <= set(LOGGERS), names - set(LOGGERS)
    record = logging.LogRecord(
        "hfdriver", logging.WARNING, __file__, 1, "via %s", (f"http://u:{PASSWORD}@h",), None
    )
    for name in LOGGERS:
        assert all(f.filter(record) for f in logging.getLogger(name).filters)
    assert PASSWORD not in record.getMessage()
