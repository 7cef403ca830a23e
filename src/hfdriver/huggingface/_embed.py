"""Embeddings over the router and any OpenAI-compatible server: the providers as a table.

A router request goes to ``{router_url}/{provider}{path}``: the provider comes from the model's
``:provider`` suffix (or ``routing``), else from the Hub's ``inferenceProviderMapping`` for the
model and the ``feature-extraction`` task (the first ``live`` entry, in the token owner's order,
that this table knows; others are skipped). The mapping's ``providerId`` is the model name the
provider is sent. A non-router ``base_url`` (TEI, vLLM, llama.cpp's server, any ``/v1``) is asked
at ``{base_url}/embeddings``, the OpenAI way.

Answers come in two shapes (``../shared/recordings/tasks``): hf-inference returns a bare JSON array
(one vector, a list of vectors, or token-level arrays for a model without pooling, which are
refused: they are not one vector per input); OpenAI-style providers wrap vectors in
``data[].embedding`` (floats, or base64 little-endian float32), ordered by ``index``.
"""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from hfdriver.dto.embed import EmbedRequest, EmbedResponse, Vectors
from hfdriver.dto.response import Usage
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind, redact, scrub
from hfdriver.huggingface._scan import VectorScanner, base64_row, decode_error, token_level, usage_of
from hfdriver.openai import check_text
from hfdriver.transport import ClientResponse, HttpClient, RequestTimeout

__all__ = [
    "EMBED_ROUTES",
    "EMBED_TASK",
    "ENDPOINT_FLOAT_ROUTE",
    "ENDPOINT_ROUTE",
    "EmbedCall",
    "EmbedRoute",
    "SCAN_ABOVE",
    "encode_body",
    "fetch_embeddings",
    "fit_dimensions",
    "openai_payload",
    "parse_nested",
    "parse_openai",
    "refuses_base64",
]

EMBED_TASK = "feature-extraction"
SCAN_ABOVE = 1 << 20
"""Answers larger than this (or of unknown length) are read as they arrive, not parsed whole."""
K = HuggingFaceErrorKind


def _row(values: Any, index: int) -> array[float]:
    if isinstance(values, str):
        return base64_row(values, index)
    if not isinstance(values, list):
        raise decode_error(f"holds vector {index} as something else than a list of numbers")
    try:
        return array("f", values)  # C speed; anything but numbers raises here
    except (TypeError, OverflowError):
        raise decode_error(f"holds vector {index} as something else than a list of numbers") from None


def _stack(rows: list[array[float]], expected: int) -> Vectors:
    if len(rows) != expected:
        raise decode_error(f"has {len(rows)} vectors for {expected} inputs")
    width = len(rows[0]) if rows else 0
    data: array[float] = array("f")
    for index, row in enumerate(rows):
        if len(row) != width:
            raise decode_error(f"has vectors of {width} and {len(row)} values (vector {index})")
        data.extend(row)
    return Vectors(data, len(rows), width)


def _depth(value: Any) -> int:
    depth = 0
    while isinstance(value, list) and value:
        depth += 1
        value = value[0]
    return depth


def parse_nested(data: Any, expected: int, model: str) -> tuple[Vectors, Usage | None, str | None]:
    """hf-inference's bare arrays: ``[d]`` for one input, ``[[d], ...]`` for several. Deeper
    arrays are token-level (a model without pooling): refused, never returned as the wrong shape."""
    depth = _depth(data)
    if depth == 1 and expected == 1:
        return _stack([_row(data, 0)], 1), None, None
    if depth == 2:
        return _stack([_row(row, i) for i, row in enumerate(data)], expected), None, None
    if depth >= 3:
        raise token_level(model)
    raise decode_error(f"is not an array of vectors ({type(data).__name__})")


def parse_openai(data: Any, expected: int, model: str) -> tuple[Vectors, Usage | None, str | None]:
    """``{"data": [{"embedding": [...] | "base64", "index": i}], "model", "usage"}``, in input order."""
    items = data.get("data") if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        raise decode_error('has no "data" list; check that the server speaks the OpenAI embeddings API')
    ordered: list[tuple[int, Any]] = []
    for position, item in enumerate(items):
        if not isinstance(item, Mapping) or "embedding" not in item:
            raise decode_error(f'holds data[{position}] without an "embedding"')
        index = item.get("index", position)
        ordered.append((index if isinstance(index, int) and not isinstance(index, bool) else position, item))
    ordered.sort(key=lambda pair: pair[0])
    if [i for i, _ in ordered] != list(range(len(ordered))):
        raise decode_error("numbers its vectors with repeated or missing indexes")
    vectors = _stack([_row(item["embedding"], i) for i, item in ordered], expected)
    answered = data.get("model")
    return vectors, usage_of(data), answered if isinstance(answered, str) else None


def openai_payload(request: EmbedRequest, model: str | None) -> dict[str, Any]:
    """An OpenAI ``/v1/embeddings`` body (floats: every OpenAI-compatible server reads them)."""
    body: dict[str, Any] = {"input": list(request.inputs)}
    if model is not None:
        body["model"] = model
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    body.update(request.extra)
    return body


def _hf_payload(request: EmbedRequest, model: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"inputs": list(request.inputs)}
    for name in ("normalize", "truncate", "prompt_name", "dimensions"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    body.update(request.extra)
    return body


Parser = Callable[[Any, int, str], tuple[Vectors, Usage | None, str | None]]


@attrs.frozen(slots=True)
class EmbedRoute:
    """How one provider embeds: its path under ``{router_url}/{provider}``, body and answer."""

    path: str
    """With ``{model}`` for the provider's model id."""
    payload: Callable[[EmbedRequest, str | None], dict[str, Any]]
    parse: Parser

    @property
    def nested(self) -> bool:
        """Whether answers are hf-inference's bare arrays (else OpenAI's ``data`` list)."""
        return self.parse is parse_nested


_OPENAI = (openai_payload, parse_openai)

EMBED_ROUTES: dict[str, EmbedRoute] = {
    "hf-inference": EmbedRoute("/models/{model}/pipeline/feature-extraction", _hf_payload, parse_nested),
    "sambanova": EmbedRoute("/v1/embeddings", *_OPENAI),
    "nebius": EmbedRoute("/v1/embeddings", *_OPENAI),
    "scaleway": EmbedRoute("/v1/embeddings", *_OPENAI),
    "together": EmbedRoute("/v1/embeddings", *_OPENAI),
    "deepinfra": EmbedRoute("/v1/openai/embeddings", *_OPENAI),
}
"""The providers that embed through the router (task ``feature-extraction``), and how."""


def _base64_payload(request: EmbedRequest, model: str | None) -> dict[str, Any]:
    body = openai_payload(request, model)
    body.setdefault("encoding_format", "base64")
    return body


ENDPOINT_ROUTE = EmbedRoute("/embeddings", _base64_payload, parse_openai)
"""Any OpenAI-compatible ``/v1`` (TEI, vLLM, llama.cpp's server, Ollama, ``hfdriver serve``): the
vectors asked for as base64 float32, as the openai SDK does (a third of the bytes of JSON numbers,
and decoded at C speed); a server that ignores it answers floats, which read as well."""
ENDPOINT_FLOAT_ROUTE = EmbedRoute("/embeddings", *_OPENAI)
"""The same, for a server that refuses ``encoding_format`` (the driver remembers it)."""


def refuses_base64(error: HuggingFaceError) -> bool:
    """Whether ``error`` is a server refusing ``encoding_format="base64"`` (not another mistake)."""
    if error.kind not in (K.INVALID_REQUEST, K.VALIDATION):
        return False
    said = f"{error.message} {error.body or ''}".lower()
    return "encoding_format" in said or "base64" in said


_encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def encode_body(payload: dict[str, Any]) -> bytes:
    """The JSON body; ``INVALID_REQUEST`` naming the field of text that cannot be sent."""
    try:
        return _encode_json(payload).encode()
    except (TypeError, ValueError) as exc:
        check_text(payload)
        raise HuggingFaceError(
            K.INVALID_REQUEST,
            f"extra: a value cannot be sent as JSON ({exc}); use str, numbers, lists and dicts",
        ) from None


@attrs.frozen(slots=True)
class EmbedCall:
    """One embeddings request, planned: where it goes, what it sends, how its answer reads."""

    url: str
    body: bytes
    route: EmbedRoute
    model: str | None
    """The model answering, as the caller named it (the Hub id on the router)."""
    provider: str | None
    request: EmbedRequest


def _parse_whole(call: EmbedCall, body: bytes, secret: Any) -> tuple[Vectors, Usage | None, str | None]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        snippet = redact(body[:120].decode("utf-8", "replace"), secret)
        raise HuggingFaceError(
            K.DECODE,
            f"the server answered 200 with a body that is not JSON ({snippet!r}); check that it serves "
            "embeddings at this URL",
        ) from None
    return call.route.parse(data, len(call.request.inputs), call.model or "the model")


async def _scan(
    http: HttpClient, resp: ClientResponse, call: EmbedCall, max_body_bytes: int
) -> tuple[Vectors, Usage | None, str | None]:
    expected = len(call.request.inputs)
    # The vectors' own size is bounded by the caller's inputs: 128 KiB of JSON a vector is room
    # for 4096 numbers written long; past that (or max_body_bytes, if larger), the server is wrong.
    limit = max(max_body_bytes, expected * 128 * 1024)
    scanner = VectorScanner(expected, nested=call.route.nested, model=call.model or "the model")
    size = 0
    while True:
        chunk = await http.read_chunk(resp, phase="response")
        if not chunk:
            return scanner.finish()
        size += len(chunk)
        if size > limit:
            raise HuggingFaceError(
                K.DECODE, f"the embeddings answer is larger than {limit:,} bytes for {expected} inputs"
            )
        scanner.feed(chunk)


async def fetch_embeddings(
    http: HttpClient, call: EmbedCall, *, timeout: RequestTimeout, max_body_bytes: int, secret: Any
) -> EmbedResponse:
    """Send ``call`` and read its answer: parsed whole when small and of known length, read as it
    arrives into one float32 buffer otherwise (see :mod:`hfdriver.huggingface._scan`)."""
    resp = await http.open("POST", call.url, data=call.body, timeout=timeout)
    headers = resp.headers
    request_id = scrub(headers.get("x-request-id") or headers.get("x-inference-id"), secret)
    provider = scrub(headers.get("x-inference-provider"), secret) or call.provider
    done = False
    try:
        length = resp.content_length
        if length is not None and length <= SCAN_ABOVE and "Content-Encoding" not in headers:
            body = await http.read_body(resp, phase="response", max_bytes=max_body_bytes)
            done = True
            vectors, usage, answered = _parse_whole(call, body, secret)
        else:
            vectors, usage, answered = await _scan(http, resp, call, max_body_bytes)
            done = True
    except HuggingFaceError as exc:
        raise HuggingFaceError(exc.kind, exc.message, request_id=request_id, provider=provider) from None
    finally:
        if done:
            resp.release()
        else:
            resp.close()
    return EmbedResponse(
        vectors=fit_dimensions(vectors, call.request),
        model=call.model or answered,
        usage=usage,
        provider=provider,
        request_id=request_id,
    )


def fit_dimensions(vectors: Vectors, request: EmbedRequest) -> Vectors:
    """Vectors cut to the ``dimensions`` asked for, when a server returned more (a Matryoshka
    model's prefix); re-normalised when they were unit vectors."""
    wanted = request.dimensions
    if wanted is None or vectors.dimensions <= wanted:
        return vectors
    data: array[float] = array("f")
    for row in vectors:
        cut = [float(v) for v in row[:wanted].tolist()]
        whole = math.fsum(v * v for v in row.tolist())
        if abs(whole - 1.0) < 1e-3:
            norm = math.sqrt(math.fsum(v * v for v in cut)) or 1.0
            cut = [v / norm for v in cut]
        data.extend(cut)
    return Vectors(data, vectors.rows, wanted)
