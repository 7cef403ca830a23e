"""Every recorded 200 chat body and every recorded error body in ../shared/conformance."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hfdriver import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.errors import error_from_response, error_from_stream_event
from hfdriver.openai import parse_response
from tests.corpus import (
    SKIP_REASON,
    Recording,
    chat_json_200,
    error_bodies,
    params,
    recordings,
    secondary_items,
)

K = HuggingFaceErrorKind

# Bodies whose right kind is not the plain status mapping.
KIND_OVERRIDES = {
    "router_tgi_422_template_error_json": K.MODEL_NOT_SUPPORTED,  # no chat template
    "hyperbolic_400_object_error_code40301": K.MODEL_NOT_SUPPORTED,  # "Only ... allowed now, your model X"
    "openai_429_insufficient_quota": K.PAYMENT_REQUIRED,
    "api-inference_503_model_loading_b": K.MODEL_LOADING,
    "api-inference_503_model_loading_estimated_time": K.MODEL_LOADING,
    "api-inference_503_overloaded": K.OVERLOADED,
}
STATUS_KINDS = {
    400: K.BAD_REQUEST,
    401: K.AUTHENTICATION,
    402: K.PAYMENT_REQUIRED,
    403: K.PERMISSION,
    404: K.NOT_FOUND,
    422: K.VALIDATION,
    429: K.RATE_LIMITED,
}


def expected_kind(rec_id: str, status: int) -> HuggingFaceErrorKind:
    return KIND_OVERRIDES.get(rec_id) or STATUS_KINDS.get(status) or K.SERVER


def server_words(body: bytes) -> str:
    """A distinctive fragment of what the server said, to find in our message."""
    text = body.decode("utf-8", "replace")
    try:
        data: Any = json.loads(text)
    except ValueError:
        return text.strip()[:40]
    if isinstance(data, dict):
        err = data.get("error", data.get("message", data.get("detail")))
        if isinstance(err, dict):
            err = err.get("message")
        if isinstance(err, list):
            err = err[0].get("msg") if isinstance(err[0], dict) else err[0]
        return str(err)[:40]
    return ""


def normalise_calls(calls: Any) -> list[tuple[str, Any]]:
    if calls is None:
        return []
    if isinstance(calls, dict):
        calls = [calls]
    out = []
    for call in calls:
        fn = call["function"]
        args = fn.get("arguments", fn.get("parameters"))
        out.append((fn["name"], json.loads(args) if isinstance(args, str) else args))
    return out


@pytest.mark.parametrize("rec", params(chat_json_200()))
def test_every_200_chat_body_parses(rec: Recording) -> None:
    data = json.loads(rec.body)
    response = parse_response(data)
    message = data["choices"][0]["message"]
    assert response.text == (message.get("content") or "")
    assert [(c.name, c.parsed_arguments()) for c in response.tool_calls] == normalise_calls(
        message.get("tool_calls")
    )
    if "reasoning_content" in message or "reasoning" in message:
        assert response.reasoning == (message.get("reasoning_content") or message.get("reasoning") or None)


@pytest.mark.parametrize(
    "rec", params(tuple(r for r in recordings() if r.status == 200 and not r.is_sse and not r.is_chat))
)
def test_non_chat_200_bodies_are_decode_errors_not_crashes(rec: Recording) -> None:
    with pytest.raises(HuggingFaceError) as info:
        parse_response(json.loads(rec.body))
    assert info.value.kind in (K.DECODE, K.BAD_REQUEST, K.STREAM)


@pytest.mark.parametrize("rec", params(error_bodies()))
def test_every_error_body_maps_to_its_kind(rec: Recording) -> None:
    error = error_from_response(rec.status, rec.response_headers(), rec.body)
    assert error.kind is expected_kind(rec.id, rec.status), error.message
    assert server_words(rec.body) in error.message
    assert error.status == rec.status


SECONDARY = secondary_items()


@pytest.mark.skipif(not SECONDARY, reason=SKIP_REASON)
@pytest.mark.parametrize("item", SECONDARY, ids=[i["id"] for i in SECONDARY])
def test_secondary_error_bodies(item: dict[str, Any]) -> None:
    expected = {
        "hf_apiinf_503_loading": K.MODEL_LOADING,
        "hf_apiinf_400_bad_token": K.BAD_REQUEST,
        "hf_apiinf_422_tgi_validation": K.VALIDATION,
        "hf_apiinf_429_free_rate_limit": K.RATE_LIMITED,
        "hf_router_402_credits": K.PAYMENT_REQUIRED,
        "hf_router_v1_400_model_not_supported": K.MODEL_NOT_SUPPORTED,
        "hf_hub_401_invalid_credentials": K.AUTHENTICATION,
        "llamacpp_exceed_context_size_error": K.BAD_REQUEST,
        "vllm_error_flat_pre_0.10.1": K.BAD_REQUEST,
        "vllm_error_nested_0.10.1_plus": K.BAD_REQUEST,
    }
    body = item["body"].encode()
    if item["status"] != 200:
        error = error_from_response(item["status"], item.get("headers", {}), body)
        assert error.kind is expected[item["id"]]
        assert server_words(body) in error.message
        return
    # In-stream error events (200): the data line's JSON maps through the stream mapping.
    for line in item["body"].splitlines():
        if line.startswith("data:") and "error" in line:
            event = json.loads(line[5:])
            error = error_from_stream_event(event)
            assert isinstance(error, HuggingFaceError)
            assert error.kind in (K.STREAM, K.VALIDATION, K.SERVER)


def _shape_files(folder: str, suffixes: tuple[str, ...]) -> list[Any]:
    from tests.corpus import corpus_dir

    root = corpus_dir()
    if root is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_REASON), id="no-corpus")]
    files = sorted(
        p
        for p in (root / folder).iterdir()
        if p.name.endswith(suffixes) and not p.name.endswith(".source.json") and p.name != "PROVENANCE.json"
    )
    return [pytest.param(p, id=p.name) for p in files]


def _objects(path: Any) -> list[Any]:
    text = path.read_text()
    if path.name.endswith(".sse"):
        return [
            json.loads(line[5:])
            for line in text.splitlines()
            if line.startswith("data:") and line[5:].strip() != "[DONE]"
        ]
    data = json.loads(text)
    return data if isinstance(data, list) else [data]


@pytest.mark.parametrize(
    "path",
    _shape_files("tgi_snapshots", (".json",)) + _shape_files("llamacpp_vllm_quotes", (".json", ".sse")),
)
def test_snapshot_and_quote_shapes_parse(path: Any) -> None:
    from hfdriver.openai import parse_chunk

    for obj in _objects(path):
        choices = obj.get("choices") or []
        if choices and "message" in choices[0]:
            response = parse_response(obj)
            raw_calls = choices[0]["message"].get("tool_calls")
            assert [(c.name, c.parsed_arguments()) for c in response.tool_calls] == normalise_calls(raw_calls)
        elif choices and "text" in choices[0] and "delta" not in choices[0]:
            with pytest.raises(HuggingFaceError):  # /v1/completions, not chat
                parse_response(obj)
        else:
            chunk = parse_chunk(obj)
            for delta, choice in zip(chunk.deltas, choices, strict=True):
                assert delta.text == (choice["delta"].get("content") or "")
