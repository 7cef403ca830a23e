from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from hfdriver import HuggingFaceDriver, HuggingFaceError, HuggingFaceErrorKind, RetryPolicy, Timeouts
from hfdriver._defaults import DefaultsDriver
from hfdriver._wrapper import core_of
from hfdriver.config import (
    LLMConfig,
    create_driver,
    driver_factories,
    load_config,
)

K = HuggingFaceErrorKind

GOOD = """
[llm]
provider = "huggingface"
model = "meta-llama/Llama-3.2-1B-Instruct"
routing = "fastest"
bill_to = "acme"
max_tokens = 256
temperature = 0.5

[llm.auth]
api_key_env = "MY_HF_TOKEN"

[llm.retry]
attempts = 2
max_retry_after = 5

[llm.timeouts]
read = 90

[profiles.cheap]
routing = "cheapest"
max_tokens = 32

[profiles.cheap.timeouts]
connect = 3

[profiles.vllm]
provider = "huggingface-endpoint"
base_url = "http://127.0.0.1:8000/v1"
model = "Qwen/Qwen2.5-7B-Instruct"

[profiles.vllm.auth]
token_file = "TOKEN_FILE"
"""


def write(tmp_path: Path, text: str, name: str = "hfdriver.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_valid_config_and_profile_inheritance(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    llm = config.llm
    assert (llm.provider, llm.model, llm.routing, llm.bill_to, llm.max_tokens, llm.temperature) == (
        "huggingface", "meta-llama/Llama-3.2-1B-Instruct", "fastest", "acme", 256, 0.5,
    )  # fmt: skip
    # retry and timeouts are held as the values themselves, validated once
    assert llm.auth.api_key_env == "MY_HF_TOKEN" and llm.retry == RetryPolicy(attempts=2, max_retry_after=5)
    cheap = config.profile("cheap")
    assert (cheap.model, cheap.routing, cheap.max_tokens, cheap.temperature) == (
        llm.model,
        "cheapest",
        32,
        0.5,
    )
    assert cheap.timeouts == Timeouts(read=90, connect=3)  # nested tables merge
    assert cheap.auth.api_key_env == "MY_HF_TOKEN"
    vllm = config.profile("vllm")
    assert (
        vllm.auth.token_file == "TOKEN_FILE" and vllm.auth.api_key_env is None
    )  # one source replaces the other


def test_create_driver_from_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_HF_TOKEN", "hf_from_my_env_0123456789")
    (tmp_path / "tok").write_text("hf_from_the_file_0123456789\n")
    config = load_config(write(tmp_path, GOOD.replace("TOKEN_FILE", str(tmp_path / "tok"))))
    driver = create_driver(config)
    assert isinstance(driver.inner, DefaultsDriver)  # type: ignore[attr-defined]  # spans, then defaults
    inner = core_of(driver)
    assert isinstance(inner, HuggingFaceDriver)
    assert inner.token is not None and inner.token.reveal() == "hf_from_my_env_0123456789"
    assert (inner.model, inner.routing, inner.bill_to) == (
        "meta-llama/Llama-3.2-1B-Instruct",
        "fastest",
        "acme",
    )
    assert inner.retry == RetryPolicy(attempts=2, max_retry_after=5) and inner.timeouts == Timeouts(read=90)
    endpoint = create_driver(config, "vllm", model="other/model")
    core = core_of(endpoint)
    assert isinstance(core, HuggingFaceDriver)
    assert core.base_url == "http://127.0.0.1:8000/v1" and core.model == "other/model"
    assert core.token is not None and core.token.reveal() == "hf_from_the_file_0123456789"


async def test_defaults_apply_only_when_unset() -> None:
    from hfdriver import GenerateRequest
    from hfdriver.testing import FakeRouter

    async with FakeRouter() as router:
        llm = LLMConfig(
            provider="huggingface-endpoint",
            base_url=router.base_url,
            model="m/x",
            max_tokens=7,
            temperature=0.1,
        )
        async with create_driver(llm) as driver:
            await driver.generate(GenerateRequest.builder().user("a").build())
            await driver.generate(GenerateRequest.builder().user("b").max_tokens(3).build())
    first, second = (r.json for r in router.requests)
    assert (first["max_tokens"], first["temperature"]) == (7, 0.1)
    assert (second["max_tokens"], second["temperature"]) == (3, 0.1)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[llm]\nmodle = "x/y"\n', "[llm] key 'modle' is not known; did you mean 'model'?"),
        (
            '[llm]\nmodel = "x/y"\n[llm.retry]\nattempt = 3\n',
            "[llm.retry] key 'attempt' is not known; did you mean 'attempts'?",
        ),
        ('[lm]\nmodel = "x/y"\n', "[top level] key 'lm' is not known; did you mean 'llm'?"),
        ('[llm]\nmax_tokens = "lots"\n', "[llm] max_tokens must be an integer >= 1, got str 'lots'"),
        ("[llm]\nmax_tokens = 0\n", "max_tokens must be an integer >= 1, got 0"),
        ("[llm]\ntemperature = 3.5\n", "temperature must be between 0 and 2"),
        ("[llm]\ntemperature = true\n", "temperature must be a number"),
        ('[llm]\nbase_url = "localhost:8000"\n', "base_url must be an http(s):// URL"),
        ('[llm]\nrouting = "Fast Please"\n', "routing"),
        ("[llm]\nauth = 3\n", "[llm.auth] must be a table"),
        ('[llm.auth]\napi_key_env = "A"\ntoken_file = "b"\n', "set api_key_env or token_file, not both"),
        ("[llm.retry]\nattempts = 0\n", "[llm.retry]"),
        ("[llm.timeouts]\nread = -1\n", "read must be > 0"),
        ('[profiles.x]\nmodle = "y"\n', "[profiles.x] key 'modle'"),
        ("[llm\n", "not valid TOML"),
    ],
)
def test_invalid_configs_name_file_key_and_expectation(tmp_path: Path, text: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(HuggingFaceError) as info:
        load_config(path)
    assert info.value.kind is K.CONFIG
    assert str(path) in info.value.message
    assert words in info.value.message


def test_create_driver_errors(tmp_path: Path) -> None:
    no_model = load_config(write(tmp_path, '[llm]\nprovider = "huggingface"\n'))
    with pytest.raises(HuggingFaceError, match="model is missing") as info:
        create_driver(no_model)
    assert info.value.kind is K.CONFIG
    unknown = load_config(write(tmp_path, '[llm]\nprovider = "openia"\nmodel = "a/b"\n', "u.toml"))
    with pytest.raises(
        HuggingFaceError, match=r"provider .openia. is not known; known providers: .*huggingface-endpoint"
    ):
        create_driver(unknown)
    unset = load_config(
        write(tmp_path, '[llm]\nmodel = "a/b"\n[llm.auth]\napi_key_env = "NOT_SET_ANYWHERE_X"\n', "e.toml")
    )
    with pytest.raises(HuggingFaceError, match="api_key_env names NOT_SET_ANYWHERE_X, which is not set"):
        create_driver(unset)
    with pytest.raises(HuggingFaceError, match="needs base_url"):
        create_driver(LLMConfig(provider="huggingface-endpoint", model="a/b"))
    with pytest.raises(HuggingFaceError, match="profile 'nope' is not defined"):
        create_driver(no_model, "nope")
    with pytest.raises(
        HuggingFaceError, match=r"\[llm.options\] key 'quant' is not known; did you mean 'quantization'\?"
    ):
        create_driver(LLMConfig(provider="huggingface-local", model="a/b", options={"quant": "Q4_K_M"}))


def test_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("HFDRIVER_CONFIG", raising=False)
    assert load_config().path is None  # nothing anywhere: defaults
    user = tmp_path / "xdg" / "hfdriver" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text('[llm]\nmodel = "user/level"\n')
    assert load_config().llm.model == "user/level"
    write(tmp_path, '[llm]\nmodel = "cwd/level"\n')
    assert load_config().llm.model == "cwd/level"
    env_file = write(tmp_path, '[llm]\nmodel = "env/level"\n', "env.toml")
    monkeypatch.setenv("HFDRIVER_CONFIG", str(env_file))
    assert load_config().llm.model == "env/level"
    explicit = write(tmp_path, '[llm]\nmodel = "explicit/level"\n', "explicit.toml")
    assert load_config(explicit).llm.model == "explicit/level"
    with pytest.raises(HuggingFaceError, match="no such file"):
        load_config(tmp_path / "missing.toml")


def test_registered_and_plugin_drivers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real distribution on sys.path declaring an entry point in the hfdriver.drivers group.
    (tmp_path / "echo_plugin.py").write_text(
        textwrap.dedent(
            """
            class EchoDriver:
                def __init__(self, config, token):
                    self.config, self.token = config, token
                async def generate(self, request): ...
                def generate_stream(self, request): ...
                async def aclose(self): ...

            def factory(config, token):
                return EchoDriver(config, token)
            """
        )
    )
    dist = tmp_path / "echo_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[hfdriver.drivers]\necho = echo_plugin:factory\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "echo" in driver_factories()
    driver = create_driver(LLMConfig(provider="echo", model="any/model", options={"colour": "blue"}))
    core: Any = core_of(driver)  # composed around it: spans, defaults, cache...
    assert type(core).__name__ == "EchoDriver" and core.config.options == {"colour": "blue"}

    sentinel = object()
    import hfdriver.config._registry

    monkeypatch.setitem(hfdriver.config._registry._REGISTRY, "custom-test", lambda config, token: sentinel)
    assert core_of(create_driver(LLMConfig(provider="custom-test", model="a/b"))) is sentinel


def test_local_provider_builds_a_local_driver_without_loading() -> None:
    from hfdriver.local import LocalDriver

    driver = create_driver(
        LLMConfig(
            provider="huggingface-local",
            model="acme/tiny-GGUF",
            options={"quantization": "Q4_K_M", "device": "cpu", "context_size": 512},
        )
    )
    driver = core_of(driver)
    assert isinstance(driver, LocalDriver) and not driver.loaded
    assert (driver.source, driver.quantization, driver.device, driver.context_size) == (
        "acme/tiny-GGUF",
        "Q4_K_M",
        "cpu",
        512,
    )
