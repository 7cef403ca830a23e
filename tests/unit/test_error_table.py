"""The kind table: one complete row per kind, read by the mapping, the retry rule, the server and the docs.

A newcomer adding a kind adds an enum member and a row; these tests fail until both exist and
the HUGGINGFACE.md table is regenerated (`just docs`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import hfdriver.errors
from hfdriver import GenerateRequest, HuggingFaceError, HuggingFaceErrorKind
from hfdriver.errors import GROUPS, KINDS, error_from_response, kinds_markdown_table
from hfdriver.server import error_status

DOCS = Path(__file__).resolve().parents[2] / "HUGGINGFACE.md"
ALL_KINDS = list(HuggingFaceErrorKind)


def test_every_kind_has_a_row_and_every_row_a_kind() -> None:
    missing = [k.name for k in HuggingFaceErrorKind if k not in KINDS]
    assert not missing, f"add a row to hfdriver/errors/_table.py KINDS for {missing}"
    assert list(KINDS) == [k for k in KINDS if isinstance(k, HuggingFaceErrorKind)]


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.name)
def test_each_row_is_complete(kind: HuggingFaceErrorKind) -> None:
    row = KINDS[kind]
    assert row.group in GROUPS
    assert row.brief.strip() and row.cause.strip() and row.remedy.strip()
    assert 400 <= row.served_status <= 599 and row.openai_type.strip()
    assert isinstance(row.retryable, bool)
    assert all(isinstance(s, int) and 400 <= s <= 599 for s in row.statuses)
    assert all(c and c == c.lower() for c in row.codes)
    assert row.advice is None or row.advice.strip()


def test_statuses_and_codes_claim_one_kind_each() -> None:
    statuses = [s for row in KINDS.values() for s in row.statuses]
    codes = [c for row in KINDS.values() for c in row.codes]
    assert len(statuses) == len(set(statuses)) and len(codes) == len(set(codes))


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.name)
def test_the_retry_rule_is_the_rows(kind: HuggingFaceErrorKind) -> None:
    assert HuggingFaceError(kind, "x").retryable is KINDS[kind].retryable


@pytest.mark.parametrize(
    ("kind", "status"),
    [(k, s) for k, row in KINDS.items() for s in row.statuses],
    ids=lambda v: getattr(v, "name", str(v)),
)
def test_the_mapping_reads_the_statuses(kind: HuggingFaceErrorKind, status: int) -> None:
    assert error_from_response(status, {}, b'{"error": "no"}').kind is kind


@pytest.mark.parametrize(
    ("kind", "code"), [(k, c) for k, row in KINDS.items() for c in row.codes], ids=lambda v: str(v)
)
def test_the_mapping_reads_the_codes(kind: HuggingFaceErrorKind, code: str) -> None:
    body = json.dumps({"error": {"message": "no", "type": code}}).encode()
    assert error_from_response(400, {}, body).kind is kind


@pytest.mark.parametrize(
    "kind", [k for k, row in KINDS.items() if row.advice and row.statuses], ids=lambda k: k.name
)
def test_the_advice_is_appended(kind: HuggingFaceErrorKind) -> None:
    row = KINDS[kind]
    assert row.advice is not None
    message = error_from_response(row.statuses[0], {}, b'{"error": "server says no"}').message
    assert message.startswith("server says no. ") and row.advice[1:] in message


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.name)
async def test_serve_answers_with_the_rows_status_and_type(kind: HuggingFaceErrorKind) -> None:
    import aiohttp

    from hfdriver.server import OpenAIServer

    class Failing:
        model = "m/x"

        async def generate(self, request: GenerateRequest) -> None:
            raise HuggingFaceError(kind, "it failed")

        async def aclose(self) -> None: ...

    payload = {"messages": [{"role": "user", "content": "hi"}]}
    async with (
        OpenAIServer(Failing(), port=0) as server,  # type: ignore[arg-type]
        aiohttp.ClientSession() as http,
        http.post(f"{server.base_url}/chat/completions", json=payload) as resp,
    ):
        body = await resp.json()
    row = KINDS[kind]
    assert resp.status == row.served_status == error_status(kind)
    assert body["error"]["type"] == row.openai_type and body["error"]["code"] == kind.value


def test_the_docstring_tree_and_the_docs_table_are_drawn_from_the_table() -> None:
    doc = hfdriver.errors.__doc__ or ""
    assert all(f"── {k.name}" in doc for k in KINDS)
    assert kinds_markdown_table() in DOCS.read_text(encoding="utf-8"), (
        "HUGGINGFACE.md's error table is out of date: run `just docs` and commit the result"
    )
