"""Where things live: keyword-only constructors, the provider registry, the one error-event rule."""

from __future__ import annotations

import argparse
from importlib import metadata
from pathlib import Path

import pytest

import hfdriver
from hfdriver import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.config import LLMConfig, Provider, create_driver, get_provider, register_driver
from hfdriver.openai import error_payload, parse_chunk, parse_event, parse_response

K = HuggingFaceErrorKind


def test_constructors_are_keyword_only_past_the_first_argument(tmp_path: Path) -> None:
    from hfdriver import HubClient, HuggingFaceDriver
    from hfdriver.local import LocalDriver, ModelStore

    HuggingFaceDriver("hf_positional_token_0123456789", model="a/b")  # the first may be positional
    for build in (
        lambda: HuggingFaceDriver("hf_positional_token_0123456789", "a/b"),  # type: ignore[misc]
        lambda: HubClient("hf_positional_token_0123456789", "https://hub"),  # type: ignore[misc]
        lambda: LocalDriver(str(tmp_path / "m.gguf"), "Q4_K_M"),  # type: ignore[misc]
        lambda: ModelStore(tmp_path, "hf_positional_token_0123456789"),  # type: ignore[misc]
    ):
        with pytest.raises(TypeError, match="positional"):
            build()


def test_the_factory_and_the_loader_are_importable_from_the_top() -> None:
    from hfdriver.config import create_driver as deep_create
    from hfdriver.config import load_config as deep_load

    assert hfdriver.create_driver is deep_create and hfdriver.load_config is deep_load
    assert {"create_driver", "load_config", "RetryDetails"} <= set(hfdriver.__all__)


def test_built_in_providers_are_entry_points_like_plugins() -> None:
    declared = {ep.name: ep.value for ep in metadata.entry_points(group="hfdriver.drivers")}
    assert declared["huggingface"] == "hfdriver.huggingface._provider:ROUTER"
    assert declared["huggingface-endpoint"] == "hfdriver.huggingface._provider:ENDPOINT"
    assert declared["huggingface-local"] == "hfdriver.local._provider:LOCAL"
    # Each provider says itself whether it needs a model.
    assert get_provider("huggingface").requires_model and get_provider("huggingface-endpoint").requires_model
    assert not get_provider("huggingface-local").requires_model


def test_a_registered_provider_says_whether_it_needs_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    import hfdriver.config._registry

    built: list[LLMConfig] = []

    def make(config: LLMConfig, token: object) -> object:
        built.append(config)
        return object()

    monkeypatch.setattr(hfdriver.config._registry, "_REGISTRY", {})
    register_driver("needs-model", make, requires_model=True)
    register_driver("no-model", Provider(create=make))  # type: ignore[arg-type]
    with pytest.raises(HuggingFaceError, match="model is missing") as info:
        create_driver(LLMConfig(provider="needs-model"))
    assert info.value.kind is K.CONFIG and built == []
    create_driver(LLMConfig(provider="no-model"))
    assert built == [LLMConfig(provider="no-model")]


def test_chat_and_serve_local_go_through_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    import hfdriver.config._registry
    from hfdriver._wrapper import core_of
    from hfdriver.cli.chat import chat_driver

    sentinel = object()
    seen: list[LLMConfig] = []

    def local(config: LLMConfig, token: object) -> object:
        seen.append(config)
        return sentinel

    monkeypatch.setitem(hfdriver.config._registry._REGISTRY, "huggingface-local", local)
    args = argparse.Namespace(local=True, config=None, profile=None, model=None)
    assert core_of(chat_driver(args)) is sentinel  # composed: the core is the registry's
    assert seen[0].provider == "huggingface-local"


@pytest.mark.parametrize(
    ("value", "event", "is_error"),
    [
        ({"choices": [{"delta": {"content": "x"}}]}, None, False),
        ({"error": {"message": "no"}}, None, True),
        ({"error": None, "choices": []}, None, False),
        ({"error": "no", "choices": []}, None, True),  # content first, then the error
        ({"error": "", "choices": []}, None, False),
        ({"message": "no"}, "error", True),
        ({"choices": []}, "error", False),  # a mislabelled chunk
        ("overloaded", "error", True),
        ([1, 2], None, False),
    ],
)
def test_one_error_event_rule(value: object, event: str | None, is_error: bool) -> None:
    assert (error_payload(value, event) is not None) is is_error


def test_the_rule_is_used_by_chunks_events_and_whole_answers() -> None:
    body = {"error": {"message": "Model is overloaded", "type": "overloaded"}}
    for parse in (
        lambda: parse_chunk(body, request_id="r1"),
        lambda: parse_event(
            '{"error": {"message": "Model is overloaded", "type": "overloaded"}}', request_id="r1"
        ),
        lambda: parse_response(body, request_id="r1"),
    ):
        with pytest.raises(HuggingFaceError) as info:
            parse()
        assert info.value.kind is K.OVERLOADED and info.value.request_id == "r1"
    with pytest.raises(HuggingFaceError) as plain:
        parse_event("upstream exploded", "error")
    assert plain.value.kind is K.STREAM and "upstream exploded" in plain.value.message
    with pytest.raises(HuggingFaceError) as garbage:
        parse_event("not json")
    assert garbage.value.kind is K.DECODE


SRC = Path(hfdriver.__file__).resolve().parent


def test_no_module_is_past_450_lines() -> None:
    long = {
        str(path.relative_to(SRC)): n
        for path in SRC.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 450
    }
    assert not long, long


def test_no_driver_or_stream_passes_attributes_through() -> None:
    """A wrapper forwards each operation explicitly: a call can never skip it through __getattr__."""
    import ast

    found = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                found += [
                    f"{path.relative_to(SRC)}:{node.name}"
                    for item in node.body
                    if isinstance(item, ast.FunctionDef) and item.name in ("__getattr__", "__getattribute__")
                ]
    assert not found, found


def test_every_wrapper_forwards_every_operation() -> None:
    from hfdriver._wrapper import DriverWrapper
    from hfdriver.driver import Driver, Embedder
    from hfdriver.fallback import FallbackDriver

    operations = {
        name for protocol in (Driver, Embedder) for name in vars(protocol) if not name.startswith("_")
    }
    assert {"generate", "generate_stream", "embed", "aclose"} <= operations
    for cls in (DriverWrapper, FallbackDriver):
        assert all(callable(getattr(cls, name, None)) for name in operations), cls
