from __future__ import annotations

import os

import pytest

# Read when the tests are collected: the suite's autouse fixture clears every token variable
# before each test, so that no other test ever sees a real token.
TOKEN_NAMES = ("HUGGINGFACE_API_TOKEN", "HF_TOKEN")
API_TOKEN = next((os.environ[n].strip() for n in TOKEN_NAMES if os.environ.get(n, "").strip()), None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if API_TOKEN:
        return
    skip = pytest.mark.skip(
        reason="neither HUGGINGFACE_API_TOKEN nor HF_TOKEN is set: the api smoke tests call the real router "
        "and need a token"
    )
    for item in items:
        if "api" in item.keywords:
            item.add_marker(skip)
