from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("HUGGINGFACE_API_TOKEN", "").strip():
        return
    skip = pytest.mark.skip(
        reason="HUGGINGFACE_API_TOKEN is not set: the api smoke tests call the real router and need a token"
    )
    for item in items:
        if "api" in item.keywords:
            item.add_marker(skip)
