"""Real Responses API clients against `hfdriver serve`: the OpenAI Agents SDK, Codex CLI (the npm
package `@openai/codex`) and openai-python over the embedded local model."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from hfdriver import HuggingFaceDriver, RetryPolicy
from hfdriver.server import OpenAIServer
from hfdriver.testing import FakeResponse, FakeRouter
from hfdriver.testing._responses import completion_body, stream_events

openai = pytest.importorskip(
    "openai", reason="the dev extra installs openai to test serve with a real client"
)

MODEL = "meta-llama/Llama-3.2-1B-Instruct"


async def test_the_agents_sdk_runs_an_agent_with_a_function_tool_to_its_final_output() -> None:
    agents = pytest.importorskip("agents", reason="the dev extra installs openai-agents")
    calls: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"sunny in {city}"

    agents.set_tracing_disabled(True)
    async with FakeRouter() as router:
        router.enqueue(
            FakeResponse(
                json=completion_body(
                    "",
                    finish_reason="tool_calls",
                    tool_calls=[
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        }
                    ],
                )
            ),
            FakeResponse(json=completion_body("It is sunny in Paris.")),
        )
        driver = HuggingFaceDriver(base_url=router.base_url, model=MODEL, retry=RetryPolicy.disabled())
        async with (
            OpenAIServer(driver, port=0) as server,
            openai.AsyncOpenAI(base_url=server.base_url, api_key="unused", max_retries=0) as client,
        ):
            agent = agents.Agent(
                name="weather",
                instructions="Answer with the weather tool.",
                tools=[get_weather],
                model=agents.OpenAIResponsesModel(model=MODEL, openai_client=client),
            )
            result = await agents.Runner.run(agent, "What is the weather in Paris?")
        await driver.aclose()
    assert result.final_output == "It is sunny in Paris."
    assert calls == ["Paris"]
    second = router.requests[1].json["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "tool"]
    assert second[-1] == {"role": "tool", "content": "sunny in Paris", "tool_call_id": "call_1"}


def _codex() -> str | None:
    found = shutil.which("codex")
    return found if found and shutil.which("node") else None


@pytest.mark.skipif(
    _codex() is None, reason="Codex CLI not installed (needs Node.js and `npm install -g @openai/codex`)"
)
async def test_codex_exec_runs_against_hfdriver_serve(tmp_path: Path) -> None:
    async with FakeRouter() as router:
        router.enqueue(*[FakeResponse(events=stream_events(["The answer", " is 42."]))] * 3)
        config = tmp_path / "hfdriver.toml"
        config.write_text(
            f'[llm]\nprovider = "huggingface-endpoint"\nbase_url = "{router.base_url}"\nmodel = "{MODEL}"\n'
        )
        environ = {
            k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "OPENAI", "CODEX"))
        }
        environ.update(HF_HOME=str(tmp_path / "hf_home"), HFDRIVER_CONFIG=str(config), PYTHONUNBUFFERED="1")
        serve = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hfdriver.cli", "serve", "--port", "0",
            stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=environ,
        )  # fmt: skip
        try:
            assert serve.stderr is not None
            line = (await asyncio.wait_for(serve.stderr.readline(), timeout=30)).decode()
            base_url = line.split(" at ", 1)[1].split()[0]
            home = tmp_path / "codex_home"
            home.mkdir()
            (home / "config.toml").write_text(
                f'model = "{MODEL}"\nmodel_provider = "hfdriver"\ncheck_for_update_on_startup = false\n\n'
                "[analytics]\nenabled = false\n\n"
                f'[model_providers.hfdriver]\nname = "hfdriver serve"\nbase_url = "{base_url}"\nwire_api = "responses"\n'
            )
            workdir = tmp_path / "work"
            workdir.mkdir()
            codex = await asyncio.create_subprocess_exec(
                str(_codex()), "exec", "--skip-git-repo-check", "What is the answer?",
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env={**environ, "CODEX_HOME": str(home), "NO_COLOR": "1"}, cwd=str(workdir),
            )  # fmt: skip
            out, err = await asyncio.wait_for(codex.communicate(), timeout=180)
        finally:
            serve.terminate()
            serve_err = (await asyncio.wait_for(serve.communicate(), timeout=30))[1].decode()
    assert codex.returncode == 0, (out.decode(), err.decode()[-3000:], serve_err[-3000:])
    assert "The answer is 42." in out.decode()
    sent = router.requests[0].json
    assert sent["messages"][0]["role"] == "system" and "Codex" in sent["messages"][0]["content"]
    assert sent["messages"][-1] == {"role": "user", "content": "What is the answer?"}
    assert all(t["type"] == "function" for t in sent.get("tools", []))  # hosted tools left out
    assert "hosted tools that serve does not run" in serve_err


# ---------------------------------------------------------------------------- the embedded local model
@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def local_client() -> AsyncIterator[Any]:
    local = pytest.importorskip("hfdriver.local", reason="the local extra runs the embedded model")
    async with local.LocalDriver.default(threads=2) as driver:
        await driver.load()
        async with (
            OpenAIServer(driver, port=0) as server,
            openai.AsyncOpenAI(base_url=server.base_url, api_key="unused", max_retries=0) as client,
        ):
            yield client


GREEDY: dict[str, Any] = {"model": "gemma", "temperature": 0, "max_output_tokens": 16}


@pytest.mark.asyncio(loop_scope="module")
async def test_local_model_answers_and_continues(local_client: Any) -> None:
    first = await local_client.responses.create(input="What is the capital of France?", **GREEDY)
    assert "Paris" in first.output_text and first.status in ("completed", "incomplete")
    second = await local_client.responses.create(
        input="And what is the capital of Italy?", previous_response_id=first.id, **GREEDY
    )
    assert second.output_text.strip() and second.previous_response_id == first.id
    items = await local_client.responses.input_items.list(second.id)
    assert [i.content[0].text for i in items.data] == ["And what is the capital of Italy?"]


@pytest.mark.asyncio(loop_scope="module")
async def test_local_model_streams_events_in_order(local_client: Any) -> None:
    stream = await local_client.responses.create(
        input="What is the capital of France?", instructions="Answer in one sentence.", stream=True, **GREEDY
    )
    events = [e async for e in stream]
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) > 1 and "".join(deltas) == events[-1].response.output_text
    assert [e.sequence_number for e in events] == list(range(len(events)))


@pytest.mark.asyncio(loop_scope="module")
async def test_local_model_follows_a_json_schema(local_client: Any) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    response = await local_client.responses.create(
        input="Name the capital of France.",
        text={"format": {"type": "json_schema", "name": "city", "schema": schema}},
        **{**GREEDY, "max_output_tokens": 40},
    )
    assert isinstance(json.loads(response.output_text)["city"], str)


@pytest.mark.asyncio(loop_scope="module")
async def test_local_model_refuses_tools_it_cannot_call(local_client: Any) -> None:
    tool = {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}
    with pytest.raises(openai.BadRequestError) as refused:
        await local_client.responses.create(input="hi", tools=[tool], **GREEDY)
    assert "chatml-function-calling" in str(refused.value)
