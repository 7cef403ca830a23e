"""The console ships inside the package: small, self-contained (no CDN, no other origin)."""

from __future__ import annotations

import re
from importlib import resources

ASSETS = ("index.html", "app.js", "app.css")


def read(name: str) -> str:
    return resources.files("hfdriver.console").joinpath("static").joinpath(name).read_text(encoding="utf-8")


def test_the_page_is_under_200_kb_and_loads_nothing_from_elsewhere() -> None:
    total = sum(len(read(name).encode()) for name in ASSETS)
    assert total < 200 * 1024, total
    for name in ASSETS:
        text = read(name)
        assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", text), name
        assert "@import" not in text and "url(http" not in text, name
    page = read("index.html")
    assert 'src="/console/app.js"' in page and 'href="/console/app.css"' in page


def test_the_controls_have_the_names_users_and_tests_find_them_by() -> None:
    page = read("index.html")
    for label in ("Message", "System prompt", "Temperature", "Max tokens", "Search models", "API key"):
        assert f">{label}</label>" in page, label
    for tab in ("Chat", "Models", "System"):
        assert 'role="tab"' in page and f">{tab}</button>" in page, tab
