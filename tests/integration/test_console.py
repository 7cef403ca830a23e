"""The console of `hfdriver serve`, in a real headless Chromium (Debian's `chromium`, driven by
Playwright): chat with the embedded model and with Stop, the Models view (installed, Hub search,
pull with progress, remove), the System view, the API key, and a cross-site page that must not be
able to pull or remove models. Each view's screenshot is written to `build/screenshots/`."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from hfdriver.testing import FakeHub, FakeResponse, FakeRouter

playwright_api = pytest.importorskip("playwright.async_api", reason="the dev extra installs playwright")
CHROMIUM = os.environ.get("HFDRIVER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium: apt-get install chromium (CI installs it), or set HFDRIVER_CHROMIUM",
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
TINY = b"GGUF" + bytes(range(256)) * 8_000  # about 2 MB
BIG = b"GGUF" + bytes(range(256)) * 128_000  # 32.8 MB: huggingface_hub reports progress every 10 MB


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport={"width": 1100, "height": 800})
    tab = await context.new_page()
    yield tab
    await context.close()


class Serve:
    """`hfdriver serve` as users start it, in its own process."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.env, self.args = env, args
        self.lines: list[str] = []

    async def __aenter__(self) -> Serve:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hfdriver.cli", "serve", "--port", "0", "--no-store", *self.args,
            stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=self.env,
        )  # fmt: skip
        assert self.proc.stderr is not None
        first = (await asyncio.wait_for(self.proc.stderr.readline(), timeout=60)).decode()
        assert " at " in first, first
        self.api = first.split(" at ", 1)[1].split()[0]
        self.root = self.api.removesuffix("/v1")
        self.lines.append(first)
        return self

    async def console_line(self) -> str:
        assert self.proc.stderr is not None
        line = (await asyncio.wait_for(self.proc.stderr.readline(), timeout=10)).decode()
        self.lines.append(line)
        return line

    async def __aexit__(self, *exc: object) -> None:
        self.proc.terminate()
        await asyncio.wait_for(self.proc.wait(), timeout=30)


@pytest.fixture
async def fakes(tmp_path: Path) -> AsyncIterator[tuple[FakeRouter, FakeHub, dict[str, str]]]:
    async with FakeRouter() as router, FakeHub() as hub:
        config = tmp_path / "hfdriver.toml"
        config.write_text(
            f'[llm]\nprovider = "huggingface-endpoint"\nbase_url = "{router.base_url}"\nmodel = "acme/chat"\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
        env.update(
            HF_HOME=str(tmp_path / "hf_home"),
            HF_ENDPOINT=hub.url,
            HFDRIVER_CONFIG=str(config),
            HF_HUB_DISABLE_TELEMETRY="1",
            PYTHONUNBUFFERED="1",
        )
        yield router, hub, env


async def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"console-{name}.png"), full_page=True)


async def test_chat_with_the_embedded_model(
    page: Any, fakes: tuple[FakeRouter, FakeHub, dict[str, str]]
) -> None:
    pytest.importorskip("llama_cpp", reason="the local extra runs the embedded model")
    _, _, env = fakes
    async with Serve(env, "--local") as serve:
        assert (await serve.console_line()).strip() == f"console: {serve.root}/"
        await page.goto(serve.root + "/")
        await page.get_by_text("Settings").click()
        await page.get_by_label("Temperature").fill("0")
        await page.get_by_label("Max tokens").fill("24")
        await page.get_by_label("System prompt").fill("Answer in one short sentence.")
        await page.get_by_label("Message").fill("What is the capital of France?")
        await page.get_by_label("Message").press("Enter")
        answer = page.locator(".turn.assistant .content").last
        await playwright_api.expect(answer).to_contain_text("Paris", timeout=90_000)
        meta = page.locator(".turn.assistant .meta").last
        await playwright_api.expect(meta).to_contain_text("tokens in", timeout=30_000)
        await shot(page, "chat")
        await page.reload()  # the conversation is kept in the browser
        await playwright_api.expect(page.locator(".turn.user .content")).to_have_text(
            "What is the capital of France?"
        )
        await playwright_api.expect(page.locator(".turn.assistant .content")).to_contain_text("Paris")


async def test_stop_cancels_the_upstream_call_and_errors_show_the_servers_message(
    page: Any, fakes: tuple[FakeRouter, FakeHub, dict[str, str]]
) -> None:
    router, _, env = fakes
    # 64-byte writes 50 ms apart: twenty seconds of answer unless serve hangs up on the router.
    router.enqueue(FakeResponse.stream([" word"] * 200, delay=0.05, chunk_size=64))
    router.enqueue(FakeResponse.error(402, "You have exceeded your monthly included credits"))
    async with Serve(env) as serve:
        await page.goto(serve.root + "/")
        await page.get_by_label("Message").fill("Talk for a long time")
        await page.get_by_role("button", name="Send").click()
        answer = page.locator(".turn.assistant .content").last
        await playwright_api.expect(answer).to_contain_text("word", timeout=15_000)
        assert router.open_connections == 1
        await page.get_by_role("button", name="Stop").click()
        await playwright_api.expect(page.locator(".turn.assistant .meta").last).to_contain_text("stopped")
        for _ in range(60):
            if router.open_connections == 0:
                break
            await asyncio.sleep(0.05)
        assert router.open_connections == 0  # serve closed its upstream stream
        await playwright_api.expect(page.get_by_role("button", name="Send")).to_be_visible()
        await page.get_by_label("Message").fill("Again")
        await page.get_by_label("Message").press("Enter")
        await playwright_api.expect(page.get_by_role("alert")).to_contain_text(
            "You have exceeded your monthly included credits"
        )


async def test_models_view_searches_pulls_with_progress_and_removes(
    page: Any, fakes: tuple[FakeRouter, FakeHub, dict[str, str]]
) -> None:
    pytest.importorskip("huggingface_hub", reason="the local extra downloads models")
    _, hub, env = fakes
    hub.add_model("acme/tiny-GGUF", downloads=1234, likes=56)
    hub.add_file("acme/tiny-GGUF", "tiny-Q4_K_M.gguf", TINY)
    hub.add_file("acme/tiny-GGUF", "tiny-Q8_0.gguf", TINY + TINY)
    async with Serve(env) as serve:
        await page.goto(serve.root + "/")
        await page.get_by_role("tab", name="Models").click()
        installed = page.get_by_role("table", name="Installed models")
        if _embedded() is not None:
            await playwright_api.expect(installed).to_contain_text("embedded")
        await page.get_by_label("Search models").fill("tiny")
        await page.get_by_role("button", name="Search").click()
        result = page.get_by_role("list", name="Search results")
        await playwright_api.expect(result).to_contain_text("acme/tiny-GGUF")
        await playwright_api.expect(result).to_contain_text("1,234 downloads")
        await page.get_by_role("button", name="Show files").click()
        await playwright_api.expect(result).to_contain_text("Q4_K_M")
        await page.get_by_role("button", name="Pull acme/tiny-GGUF Q4_K_M").click()
        bar = page.get_by_role("progressbar", name="Pulling acme/tiny-GGUF::Q4_K_M::auto")
        await playwright_api.expect(bar).to_have_attribute("value", "100", timeout=30_000)
        await playwright_api.expect(installed).to_contain_text("acme/tiny-GGUF", timeout=10_000)  # no reload
        await shot(page, "models")
        path = Path(await installed.locator("tr", has_text="acme/tiny-GGUF").locator("td.path").inner_text())
        assert path.read_bytes() == TINY
        await page.get_by_role("button", name="Remove acme/tiny-GGUF::Q4_K_M::auto").click()
        await playwright_api.expect(installed).not_to_contain_text("acme/tiny-GGUF")
        assert not path.exists()


async def test_a_pull_survives_a_reload_and_can_be_cancelled(
    page: Any, fakes: tuple[FakeRouter, FakeHub, dict[str, str]]
) -> None:
    pytest.importorskip("huggingface_hub", reason="the local extra downloads models")
    _, hub, env = fakes
    hub.add_model("acme/tiny-GGUF")
    hub.add_file("acme/tiny-GGUF", "tiny-Q4_K_M.gguf", BIG)
    hub.download_rate = 3_000_000  # about eleven seconds for the file
    async with Serve(env) as serve:
        await page.goto(serve.root + "/")
        await page.get_by_role("tab", name="Models").click()
        await page.get_by_label("Search models").fill("tiny")
        await page.get_by_label("Search models").press("Enter")
        await page.get_by_role("button", name="Show files").click()
        await page.get_by_role("button", name="Pull acme/tiny-GGUF Q4_K_M").click()
        name = "Pulling acme/tiny-GGUF::Q4_K_M::auto"
        await playwright_api.expect(page.get_by_text("% of 32.8 MB")).to_be_visible(timeout=15_000)
        await page.reload()
        await page.get_by_role("tab", name="Models").click()
        bar = page.get_by_role("progressbar", name=name)
        await playwright_api.expect(bar).to_be_visible()  # the page re-attached to the running pull
        await playwright_api.expect(page.get_by_text("% of 32.8 MB")).to_be_visible()
        await shot(page, "pull")
        await page.get_by_role("button", name="Cancel").click()
        await playwright_api.expect(page.locator(".pull-state")).to_have_text("cancelled", timeout=15_000)
        async with aiohttp.ClientSession() as session:
            async with session.get(serve.root + "/api/local/pulls") as resp:
                (state,) = (await resp.json())["pulls"]
            async with session.get(serve.root + "/api/local/models") as resp:
                installed = (await resp.json())["models"]
        assert state["status"] == "cancelled" and 0 < state["percent"] < 100
        assert installed == []
        served = len([r for r in hub.requests if r.path.endswith(".gguf")])
        await asyncio.sleep(1.0)
        assert len([r for r in hub.requests if r.path.endswith(".gguf")]) == served  # it stopped


def _embedded() -> str | None:
    try:
        from hfdriver.local import embedded_model_path
    except ImportError:
        return None
    return embedded_model_path()


async def test_system_view_and_the_api_key(
    page: Any, fakes: tuple[FakeRouter, FakeHub, dict[str, str]], tmp_path: Path
) -> None:
    _, _, env = fakes
    async with Serve(env, "--api-key", "console-key") as serve:
        await page.goto(serve.root + "/")
        await playwright_api.expect(page.get_by_role("alert")).to_contain_text("API key")
        await page.get_by_label("API key").fill("console-key")
        await page.get_by_role("button", name="Use key").click()
        await page.get_by_role("tab", name="System").click()
        system = page.locator("#system")
        cache = str(tmp_path / "hf_home" / "hub")
        await playwright_api.expect(system).to_contain_text(cache)
        await playwright_api.expect(system).to_contain_text("llama.cpp")
        await playwright_api.expect(system).to_contain_text("config: token")
        await shot(page, "system")
        async with aiohttp.ClientSession() as session, session.get(serve.root + "/api/system") as resp:
            assert resp.status == 401  # the API needs the key; the page asked for it


async def test_a_cross_site_page_cannot_pull_or_remove(
    page: Any, fakes: tuple[FakeRouter, FakeHub, dict[str, str]]
) -> None:
    _, hub, env = fakes
    hub.add_file("acme/tiny-GGUF", "tiny-Q4_K_M.gguf", TINY)
    async with Serve(env) as serve:
        target = serve.root
        script = f"""
          const body = JSON.stringify({{repo: "acme/tiny-GGUF", quantization: "Q4_K_M"}});
          const tries = [
            fetch("{target}/api/local/pull", {{method: "POST", mode: "no-cors", body,
                  headers: {{"Content-Type": "text/plain"}}}}),
            fetch("{target}/api/local/pull", {{method: "POST", body,
                  headers: {{"Content-Type": "application/json"}}}}),
            fetch("{target}/api/local/remove", {{method: "POST", mode: "no-cors",
                  body: JSON.stringify({{key: "acme/tiny-GGUF::Q4_K_M::auto"}})}}),
          ];
          Promise.allSettled(tries).then(() => {{ document.title = "done"; }});
        """
        evil = web.Application()

        async def evil_page(_request: web.Request) -> web.Response:
            return web.Response(
                text=f"<html><body><script>{script}</script></body></html>", content_type="text/html"
            )

        evil.router.add_get("/", evil_page)
        runner = web.AppRunner(evil)
        await runner.setup()
        site = web.TCPSite(runner, "localhost", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            await page.goto(f"http://localhost:{port}/")
            await playwright_api.expect(page).to_have_title("done", timeout=15_000)
        finally:
            await runner.cleanup()
        async with aiohttp.ClientSession() as session, session.get(serve.root + "/api/local/pulls") as resp:
            assert (await resp.json())["pulls"] == []
    assert [r for r in hub.requests if "tiny" in r.path] == []  # nothing was fetched for it
