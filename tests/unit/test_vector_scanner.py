"""VectorScanner (large embeddings answers read as they arrive) gives what the whole-body parsers
give — vectors, usage, model, and the same errors — however the body is cut into chunks."""

from __future__ import annotations

import base64
import json
from array import array
from typing import Any

import pytest

from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.huggingface._embed import parse_nested, parse_openai
from hfdriver.huggingface._scan import VectorScanner
from tests.task_corpus import answered_steps, body_of, cases

K = HuggingFaceErrorKind


def b64(values: list[float]) -> str:
    return base64.b64encode(array("f", values).tobytes()).decode()


OPENAI_BODIES: list[tuple[str, bytes, int]] = [
    ("floats", json.dumps({"object": "list", "data": [
        {"object": "embedding", "index": 0, "embedding": [0.5, -1.25, 3e-8]},
        {"object": "embedding", "index": 1, "embedding": [1, 2, 3]},
    ], "model": "m", "usage": {"prompt_tokens": 4, "total_tokens": 4}}).encode(), 2),
    ("base64 and out of order, index after the vector", json.dumps({"data": [
        {"embedding": b64([9.0, 8.0]), "index": 1, "object": "embedding"},
        {"embedding": [1.0, 2.0], "index": 0, "object": "embedding"},
    ], "model": "text-embedding-x"}).encode(), 2),
    ("pretty printed", json.dumps({"data": [{"embedding": [1.5, 2.5], "index": 0}]}, indent=3).encode(), 1),
    ("too few", json.dumps({"data": [{"embedding": [1.0], "index": 0}]}).encode(), 2),
    ("ragged", json.dumps({"data": [{"embedding": [1.0], "index": 0}, {"embedding": [1.0, 2.0], "index": 1}]}).encode(), 2),
    ("bad base64", json.dumps({"data": [{"embedding": "%%%", "index": 0}]}).encode(), 1),
    ("strings in the list", json.dumps({"data": [{"embedding": ["x"], "index": 0}]}).encode(), 1),
    ("repeated index", json.dumps({"data": [{"embedding": [1.0], "index": 0}, {"embedding": [2.0], "index": 0}]}).encode(), 2),
    ("no data", b'{"object": "list"}', 1),
]  # fmt: skip
NESTED_BODIES: list[tuple[str, bytes, int]] = [
    ("rows", b"[[0.1, 0.2, 0.3], [1e-3, -2, 4.5]]", 2),
    ("one bare vector", b" [0.25,0.5]\n", 1),
    ("token level", b"[[[0.1, 0.2], [0.3, 0.4]]]", 1),
    ("too many", b"[[1.0], [2.0]]", 1),
    ("not an array", b'{"error": "x"}', 1),
]
for name, case in cases("feature-extraction"):
    for step in answered_steps(case):
        if step["response"]["status"] == 200:
            body = body_of(step["response"])
            sent = step["request"].get("json") or {}
            value = sent.get("inputs", sent.get("input"))
            count = len(value) if isinstance(value, list) else 1
            target = NESTED_BODIES if case["provider"] == "hf-inference" else OPENAI_BODIES
            target.append((f"recorded {name}", body, count))


def whole(body: bytes, expected: int, nested: bool) -> Any:
    parse = parse_nested if nested else parse_openai
    try:
        vectors, usage, model = parse(json.loads(body), expected, "org/model")
    except HuggingFaceError as exc:
        return exc.kind
    return vectors.tolist(), usage, model


def scanned(body: bytes, expected: int, nested: bool, size: int) -> Any:
    scanner = VectorScanner(expected, nested=nested, model="org/model")
    try:
        for start in range(0, len(body), size):
            scanner.feed(body[start : start + size])
        vectors, usage, model = scanner.finish()
    except HuggingFaceError as exc:
        return exc.kind
    return vectors.tolist(), usage, model


@pytest.mark.parametrize("size", [1, 3, 7, 64, 1 << 30])
@pytest.mark.parametrize(
    ("body", "expected", "nested"),
    [pytest.param(b, n, False, id=f"openai {name}") for name, b, n in OPENAI_BODIES]
    + [pytest.param(b, n, True, id=f"nested {name}") for name, b, n in NESTED_BODIES],
)
def test_scanning_equals_parsing_whole(body: bytes, expected: int, nested: bool, size: int) -> None:
    assert scanned(body, expected, nested, size) == whole(body, expected, nested)


def test_token_level_is_refused_naming_the_model() -> None:
    scanner = VectorScanner(1, nested=True, model="facebook/bart-base")
    with pytest.raises(HuggingFaceError) as caught:
        scanner.feed(b"[[[0.1]]]")
    assert caught.value.kind is K.MODEL_NOT_SUPPORTED and "facebook/bart-base" in caught.value.message


def test_memory_stays_at_the_vectors_size() -> None:
    import tracemalloc

    rows, width = 2000, 384
    row = b64([0.5] * width)
    body = (
        b'{"object":"list","data":['
        + b",".join(
            b'{"object":"embedding","index":%d,"embedding":"%s"}' % (i, row.encode()) for i in range(rows)
        )
        + b'],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}'
    )
    tracemalloc.start()
    scanner = VectorScanner(rows, nested=False, model="m")
    for start in range(0, len(body), 65536):
        scanner.feed(body[start : start + 65536])
    vectors, _, _ = scanner.finish()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert vectors.rows == rows and vectors[rows - 1].tolist() == [0.5] * width
    assert peak < 1.5 * rows * width * 4 + 2 * 65536 + 200_000, peak


def test_a_vector_wider_than_any_model_is_refused_before_allocating() -> None:
    scanner = VectorScanner(1_000_000, nested=True, model="m")
    with pytest.raises(HuggingFaceError) as caught:
        scanner.feed(b"[[" + b",".join([b"0"] * 70_000) + b"]")
    assert caught.value.kind is K.DECODE and "more than any embedding model" in caught.value.message


@pytest.mark.parametrize(
    "body", [b'{"data":[{"embedding":[null],"index":0}]}', b'{"data":[{"embedding":[{}],"index":0}]}']
)
def test_values_that_are_not_numbers_are_decode_errors(body: bytes) -> None:
    assert whole(body, 1, False) is K.DECODE
    assert scanned(body, 1, False, 5) is K.DECODE
