from __future__ import annotations

import email.utils
import json
import pickle
import time

import pytest

from hfdriver import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.errors import error_from_response, error_from_stream_event, parse_retry_after

K = HuggingFaceErrorKind


def err(status: int, body: object, headers: dict[str, str] | None = None, **kw: object) -> HuggingFaceError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return error_from_response(status, headers or {}, raw, **kw)  # type: ignore[arg-type]


def test_every_documented_kind_exists() -> None:
    names = {k.name for k in K}
    assert names >= {
        "INVALID_REQUEST", "AUTHENTICATION", "PERMISSION", "PAYMENT_REQUIRED", "NOT_FOUND",
        "MODEL_NOT_SUPPORTED", "BAD_REQUEST", "VALIDATION", "RATE_LIMITED", "MODEL_LOADING",
        "OVERLOADED", "SERVER", "GONE", "TIMEOUT", "CONNECTION", "STREAM", "DECODE", "CONFIG",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("status", "body", "kind", "words"),
    [
        (400, {"error": "bad thing"}, K.BAD_REQUEST, "bad thing"),
        (401, {"error": "Invalid username or password."}, K.AUTHENTICATION, "Invalid username"),
        (402, {"error": "You have exceeded your monthly included credits"}, K.PAYMENT_REQUIRED, "credits"),
        (403, {"error": {"message": "no scope", "type": "permission"}}, K.PERMISSION, "no scope"),
        (404, {"error": "Model x does not exist"}, K.NOT_FOUND, "does not exist"),
        (410, {"error": "gone"}, K.GONE, "router"),
        (
            422,
            {"error": "Input validation error: `top_p` must be > 0.0", "error_type": "validation"},
            K.VALIDATION,
            "top_p",
        ),
        (
            422,
            {"error": "Template error: template not found", "error_type": "template_error"},
            K.MODEL_NOT_SUPPORTED,
            "template not found",
        ),
        (429, {"error": "Rate limit reached."}, K.RATE_LIMITED, "Rate limit"),
        (
            429,
            {"error": {"message": "quota", "type": "insufficient_quota", "code": "insufficient_quota"}},
            K.PAYMENT_REQUIRED,
            "quota",
        ),
        (503, {"error": "Model m is currently loading", "estimated_time": 20.0}, K.MODEL_LOADING, "loading"),
        (503, {"error": "overloaded"}, K.OVERLOADED, "overloaded"),
        (529, {"error": "busy"}, K.OVERLOADED, "busy"),
        (500, {"error": "boom"}, K.SERVER, "boom"),
        (502, b"", K.SERVER, "HTTP 502"),
        (
            400,
            {
                "error": {
                    "message": "The requested model 'x' is not supported by any provider you have enabled.",
                    "type": "invalid_request_error",
                    "param": "model",
                    "code": "model_not_supported",
                }
            },
            K.MODEL_NOT_SUPPORTED,
            "not supported by any provider",
        ),
        (
            400,
            {"error": "The requested model 'x' is not supported by any provider you have enabled."},
            K.MODEL_NOT_SUPPORTED,
            "any provider",
        ),
        (
            422,
            {"detail": [{"type": "missing", "loc": ["body", "messages"], "msg": "Field required"}]},
            K.VALIDATION,
            "body.messages: Field required",
        ),
        (401, {"message": "No API key found in request", "request_id": "ab"}, K.AUTHENTICATION, "No API key"),
        (
            400,
            {
                "object": "error",
                "message": "maximum context length is 2048",
                "type": "BadRequestError",
                "code": 400,
            },
            K.BAD_REQUEST,
            "maximum context",
        ),
        (400, {"error": [{"message": "first"}, {"message": "second"}]}, K.BAD_REQUEST, "first; second"),
        (
            422,
            b"Failed to deserialize the JSON body into the target type: missing field `messages`",
            K.VALIDATION,
            "deserialize",
        ),
        (418, b"", K.BAD_REQUEST, "HTTP 418"),
    ],
)
def test_status_and_body_map_to_kinds(status: int, body: object, kind: K, words: str) -> None:
    error = err(status, body)
    assert error.kind is kind
    assert words in error.message
    assert error.status == status


def test_headers_are_read() -> None:
    error = err(
        429,
        {"error": "slow"},
        {"X-Request-Id": "req-1", "x-inference-provider": "together", "Retry-After": "7"},
    )
    assert (error.request_id, error.provider, error.retry_after) == ("req-1", "together", 7.0)
    assert error.retryable


def test_retry_after_http_date_and_estimated_time() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= err(503, {"error": "busy"}, {"Retry-After": when}).retry_after <= 31  # type: ignore[operator]
    assert err(503, {"error": "Model is currently loading", "estimated_time": 12.5}).retry_after == 12.5
    assert (
        parse_retry_after("-3") is None
        and parse_retry_after("soon") is None
        and parse_retry_after("nan") is None
    )


def test_hub_ratelimit_header() -> None:
    assert err(429, {"error": "x"}, {"RateLimit": '"api";r=0;t=55'}).retry_after == 55.0


def test_html_pages_do_not_flood_the_message() -> None:
    page = (
        b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>"
        + b"x" * 100_000
        + b"</body></html>"
    )
    error = err(502, page)
    assert error.kind is K.SERVER
    assert "502 Bad Gateway" in error.message and len(error.message) < 600
    long_text = err(400, b"y" * 50_000)
    assert len(long_text.message) <= 500 + 300 and len(long_text.body or "") <= 4000


def test_the_token_never_appears() -> None:
    token = "hf_abcdefghijklmnopqrstuvwxyz"
    error = err(401, {"error": f"token {token} is invalid"}, token=token)
    assert token not in error.message and token not in (error.body or "") and token not in str(error)
    assert "hf_****wxyz" in error.message
    # Even without being told, anything shaped like a token is scrubbed.
    assert "hf_zyxwvutsrqponmlkjihg" not in err(400, {"error": "hf_zyxwvutsrqponmlkjihg"}).message


def test_advice_in_messages() -> None:
    assert "HF_TOKEN" in err(401, {"error": "x"}).message
    assert "credits" in err(402, {"error": "x"}).message
    assert "Instruct" in err(400, {"error": {"code": "model_not_supported", "message": "no"}}).message


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (400, False),
        (401, False),
        (402, False),
        (403, False),
        (404, False),
        (422, False),
        (429, True),
        (500, True),
        (501, False),
        (502, True),
        (503, True),
        (504, True),
    ],
)
def test_retryable_by_status(status: int, retryable: bool) -> None:
    assert err(status, {"error": "x"}).retryable is retryable


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        ({"error": "Input validation error: too long", "error_type": "validation"}, K.VALIDATION),
        ({"error": "overloaded", "error_type": "overloaded"}, K.OVERLOADED),
        ({"error": "Request failed during generation: boom", "error_type": "generation"}, K.STREAM),
        ({"error": {"message": "bad input", "http_status_code": 422}}, K.VALIDATION),
        (
            {"error": {"code": 500, "message": "Context size has been exceeded.", "type": "server_error"}},
            K.SERVER,
        ),
        ({"error": "something"}, K.STREAM),
    ],
)
def test_stream_error_events(event: dict[str, object], kind: K) -> None:
    error = error_from_stream_event(event)
    assert error.kind is kind
    assert isinstance(event["error"], dict) or str(event["error"])[:10] in error.message


def test_error_pickles_and_prints() -> None:
    error = err(429, {"error": "slow"}, {"Retry-After": "3", "x-request-id": "r"})
    clone = pickle.loads(pickle.dumps(error))
    assert (clone.kind, clone.message, clone.retry_after, clone.request_id) == (
        error.kind,
        error.message,
        3.0,
        "r",
    )
    assert str(error).startswith("RATE_LIMITED: slow") and "request id r" in str(error)
