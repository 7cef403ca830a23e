from __future__ import annotations

import pytest

from hfdriver.auth import TOKEN_ENV_VARS


@pytest.fixture(autouse=True)
def _isolated_token_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees the developer's real token or token file."""
    for name in (*TOKEN_ENV_VARS, "HF_TOKEN_PATH", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path_factory.mktemp("hf_home")))
