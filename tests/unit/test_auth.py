from __future__ import annotations

from pathlib import Path

import pytest

from hfdriver import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.auth import Token, redact, require_token, resolve_token, token_file_path


def test_explicit_argument_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_fromenv1234")
    token = resolve_token("  hf_explicit5678 \n")
    assert token is not None and token.reveal() == "hf_explicit5678" and token.source == "argument"


@pytest.mark.parametrize(
    "name", ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_API_TOKEN", "HUGGINGFACE_HUB_TOKEN"]
)
def test_each_env_var(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "hf_env_value_0001")
    token = resolve_token()
    assert token is not None and token.reveal() == "hf_env_value_0001" and token.source == f"env:{name}"


def test_env_order_and_empty_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "   ")
    monkeypatch.setenv("HUGGINGFACE_API_TOKEN", "hf_third_in_line_1")
    monkeypatch.setenv("HUGGINGFACE_HUB_TOKEN", "hf_fourth_in_line_")
    token = resolve_token("")
    assert token is not None and token.reveal() == "hf_third_in_line_1"


def test_token_file_locations(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HF_HOME", str(home))
    assert token_file_path() == home / "token"
    home.mkdir()
    (home / "token").write_text("hf_from_file_abcd\n")
    token = resolve_token()
    assert token is not None and token.reveal() == "hf_from_file_abcd" and token.source.startswith("file:")

    explicit = tmp_path / "elsewhere"
    explicit.write_text("hf_from_token_path")
    monkeypatch.setenv("HF_TOKEN_PATH", str(explicit))
    assert resolve_token().reveal() == "hf_from_token_path"  # type: ignore[union-attr]

    monkeypatch.delenv("HF_TOKEN_PATH")
    monkeypatch.delenv("HF_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert token_file_path() == tmp_path / "xdg" / "huggingface" / "token"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert token_file_path() == Path.home() / ".cache" / "huggingface" / "token"


def test_empty_token_file_is_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    (tmp_path / "token").write_text("  \n")
    assert resolve_token() is None


def test_missing_token_is_a_config_error_saying_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(HuggingFaceError) as info:
        require_token()
    assert info.value.kind is HuggingFaceErrorKind.CONFIG
    for words in ("HF_TOKEN", "HUGGINGFACE_API_TOKEN", str(tmp_path / "token"), "hfdriver login"):
        assert words in info.value.message


def test_token_is_redacted_everywhere() -> None:
    token = Token("hf_supersecretvalue9876")
    assert repr(token) == "Token('hf_****9876')" and str(token) == "hf_****9876"
    assert "supersecret" not in f"{token} {token!r} {[token]}"
    assert redact("Bearer hf_supersecretvalue9876 failed", token) == "Bearer hf_****9876 failed"
    assert redact("short abc", "abc") == "short ****"
