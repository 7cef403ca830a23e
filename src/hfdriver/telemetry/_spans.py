"""Spans and metrics of one call, following the OpenTelemetry GenAI semantic conventions.

Nothing happens — no span object, no attribute built — when ``opentelemetry-api`` is not
installed or when neither a tracer provider nor a meter provider has been set (:func:`enabled`,
checked in about 0.1 µs).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from hfdriver._version import __version__
from hfdriver.dto.embed import EmbedRequest, EmbedResponse
from hfdriver.dto.request import GenerateRequest
from hfdriver.dto.response import GenerateResponse
from hfdriver.errors import HuggingFaceError

__all__ = [
    "CAPTURE_CONTENT_ENV",
    "Call",
    "ChatCall",
    "current_call",
    "enabled",
    "start_call",
    "start_chat",
    "traced",
]

_trace: Any
_metrics: Any
_context: Any
try:  # the API only: the SDK (exporters, processors) is the application's choice
    from opentelemetry import context as _context
    from opentelemetry import metrics as _metrics
    from opentelemetry import trace as _trace
except ImportError:  # pragma: no cover - exercised without the extra
    _trace = _metrics = _context = None

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
"""Set to ``true`` to record prompts and answers as span events (off by default: they may be private)."""

_MAX_VALUE = 256  # characters of a server-chosen string kept on a span (an id, a model, a provider)
_MAX_REASONS = 16  # finish reasons kept on a span (one per output; a server may send thousands)

T = TypeVar("T")


def _clip(value: str) -> str:
    return value if len(value) <= _MAX_VALUE else value[: _MAX_VALUE - 1] + "…"


def _capture_content() -> bool:
    return os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() in ("1", "true", "yes")


_CURRENT: contextvars.ContextVar[Call | None] = contextvars.ContextVar("hfdriver_otel_call", default=None)
_instruments: dict[str, Any] = {}
_state = {"enabled": False, "checked": -1.0}


def _enabled() -> bool:
    """Whether a tracer or meter provider is set. Providers are set once per process and never
    unset: once on, it stays on; while off, it is looked at again at most once a second."""
    if _trace is None:
        return False
    state = _state
    if state["enabled"]:
        return True
    now = time.monotonic()
    if now - state["checked"] < 1.0:
        return False
    state["checked"] = now
    tracing = type(_trace.get_tracer_provider()).__name__ != "ProxyTracerProvider"
    metering = type(_metrics.get_meter_provider()).__name__ != "_ProxyMeterProvider"
    state["enabled"] = bool(tracing or metering)
    return bool(state["enabled"])


def enabled() -> bool:
    """Whether spans and metrics are being made (a cheap check: callers skip building their
    arguments to :func:`start_call` when it is False)."""
    return _enabled()


def _instrument(name: str) -> Any:
    found = _instruments.get(name)
    if found is None:
        meter = _metrics.get_meter("hfdriver", __version__)
        tracer = _trace.get_tracer("hfdriver", __version__)
        _instruments.update(
            tracer=tracer,
            duration=meter.create_histogram(
                "gen_ai.client.operation.duration", unit="s", description="GenAI operation duration"
            ),
            tokens=meter.create_histogram(
                "gen_ai.client.token.usage", unit="{token}", description="Tokens used by GenAI operations"
            ),
            first_chunk=meter.create_histogram(
                "gen_ai.client.operation.time_to_first_chunk",
                unit="s",
                description="Time to the first chunk of a streamed answer",
            ),
        )
        found = _instruments[name]
    return found


def current_call() -> Call | None:
    """The call in progress in this context (retry events attach to its span)."""
    return _CURRENT.get()


# ---------------------------------------------------------------------------- per operation


def _chat_parameters(request: GenerateRequest) -> dict[str, Any]:
    found: dict[str, Any] = {
        key: value
        for key, value in (
            ("gen_ai.request.max_tokens", request.max_tokens),
            ("gen_ai.request.temperature", request.temperature),
            ("gen_ai.request.top_p", request.top_p),
            ("gen_ai.request.seed", request.seed),
            ("gen_ai.request.frequency_penalty", request.frequency_penalty),
            ("gen_ai.request.presence_penalty", request.presence_penalty),
        )
        if value is not None
    }
    if request.stop:
        found["gen_ai.request.stop_sequences"] = list(request.stop)
    return found


def _embed_parameters(request: EmbedRequest) -> dict[str, Any]:
    found: dict[str, Any] = {"hfdriver.embeddings.inputs": len(request.inputs)}
    if request.dimensions is not None:
        found["gen_ai.embeddings.dimension.count"] = request.dimensions
    return found


_PARAMETERS: Mapping[str, Callable[[Any], dict[str, Any]]] = {
    "chat": _chat_parameters,
    "embeddings": _embed_parameters,
}
"""What each operation's request says on its span (``gen_ai.operation.name`` -> attributes)."""


class Call:
    """One instrumented operation: its span and what its metrics need."""

    __slots__ = ("_attributes", "_capture", "_context", "_ended", "_started", "_token", "span", "streaming")

    def __init__(self, span: Any, attributes: dict[str, Any], streaming: bool) -> None:
        self.span = span
        self._attributes = attributes
        self._started = time.perf_counter()
        self._ended = False
        self.streaming = streaming
        self._token: contextvars.Token[Call | None] | None = None
        self._context: Any = None
        self._capture = False

    @property
    def ended(self) -> bool:
        return self._ended

    def describe_request(self, operation: str, request: Any, model: str) -> None:
        """Name the span after the request (a server span starts before the body is read)."""
        model = _clip(model)
        self.span.update_name(f"{operation} {model}")
        self.span.set_attribute("gen_ai.request.model", model)
        self._attributes["gen_ai.request.model"] = model
        parameters = _PARAMETERS.get(operation)
        if parameters is not None and isinstance(request, (GenerateRequest, EmbedRequest)):
            for key, value in parameters(request).items():
                self.span.set_attribute(key, value)

    def enter(self) -> None:
        """Make this the context's current call and span (retries report to it, spans started
        inside — serve's driver, a fallback's routes — are its children) until :meth:`leave`."""
        self._token = _CURRENT.set(self)
        self._context = _context.attach(_trace.set_span_in_context(self.span))

    def leave(self) -> None:
        token, self._token = self._token, None
        if token is not None:
            try:
                _CURRENT.reset(token)
            except ValueError:  # left from another context (a stream closed elsewhere)
                _CURRENT.set(None)
        attached, self._context = self._context, None
        if attached is not None:
            with contextlib.suppress(Exception):  # another context: nothing of ours is attached there
                _context.detach(attached)

    def retry(self, details: Any) -> None:
        self.span.add_event(
            "hfdriver.retry",
            {
                "hfdriver.retry.what": details.what,
                "hfdriver.retry.attempt": details.attempt,
                "hfdriver.retry.attempts": details.attempts,
                "hfdriver.retry.wait_s": details.wait,
                "hfdriver.retry.elapsed_s": details.elapsed,
                "error.type": details.kind.lower(),
                **({"http.response.status_code": details.status} if details.status else {}),
                **({"hfdriver.request_id": _clip(details.request_id)} if details.request_id else {}),
                **({"hfdriver.inference_provider": _clip(details.provider)} if details.provider else {}),
            },
        )

    def first_chunk(self) -> None:
        elapsed = time.perf_counter() - self._started
        self.span.set_attribute("hfdriver.time_to_first_chunk_s", elapsed)
        _instrument("first_chunk").record(elapsed, self._attributes)

    def end(
        self, response: Any = None, error: BaseException | None = None, *, abandoned: bool = False
    ) -> None:
        """End the span with what the answer (a chat answer or embeddings) or the error says."""
        if self._ended:
            return
        self._ended = True
        self.leave()
        span = self.span
        attributes = dict(self._attributes)
        if isinstance(response, GenerateResponse):
            self._chat_answer(response, attributes)
        elif isinstance(response, EmbedResponse):
            span.set_attribute("gen_ai.embeddings.dimension.count", response.dimensions)
            self._common(response.model, None, response.provider, response.cached)
            self._usage(response.usage.prompt_tokens if response.usage else None, None, attributes)
        if abandoned:
            span.set_attribute("hfdriver.stream.abandoned", True)
        if error is not None:
            kind = error.kind.value if isinstance(error, HuggingFaceError) else type(error).__qualname__
            span.set_attribute("error.type", kind)
            attributes["error.type"] = kind
            span.set_status(_trace.Status(_trace.StatusCode.ERROR, str(error)[:200]))
            if isinstance(error, HuggingFaceError):
                if error.status is not None:
                    span.set_attribute("http.response.status_code", error.status)
                if error.request_id:
                    span.set_attribute("hfdriver.request_id", _clip(error.request_id))
        _instrument("duration").record(time.perf_counter() - self._started, attributes)
        span.end()

    def _common(self, model: str | None, id_: str | None, provider: str | None, cached: bool) -> None:
        # What a server chose (id, model, provider) is clipped on the span; metrics keep the
        # request's model only, so a server cannot explode their cardinality.
        span = self.span
        if model:
            span.set_attribute("gen_ai.response.model", _clip(model))
        if id_:
            span.set_attribute("gen_ai.response.id", _clip(id_))
        if provider:
            span.set_attribute("hfdriver.inference_provider", _clip(provider))
        if cached:
            span.set_attribute("hfdriver.cached", True)

    def _usage(self, input_tokens: int | None, output_tokens: int | None, attributes: dict[str, Any]) -> None:
        tokens = _instrument("tokens")
        for name, value in (("input", input_tokens), ("output", output_tokens)):
            if value is not None:
                self.span.set_attribute(f"gen_ai.usage.{name}_tokens", value)
                tokens.record(value, {**attributes, "gen_ai.token.type": name})

    def _chat_answer(self, response: GenerateResponse, attributes: dict[str, Any]) -> None:
        span = self.span
        self._common(response.model, response.id, response.provider, response.cached)
        reasons = [
            _clip(str(o.finish_reason))
            for o in response.outputs[:_MAX_REASONS]
            if o.finish_reason is not None
        ]
        if reasons:
            span.set_attribute("gen_ai.response.finish_reasons", reasons)
        if response.route:
            span.set_attribute("hfdriver.route", _clip(response.route))
            span.set_attribute(
                "hfdriver.failed_routes", [_clip(f.route) for f in response.failed_routes[:_MAX_REASONS]]
            )
        usage = response.usage
        if usage is not None:
            self._usage(usage.prompt_tokens, usage.completion_tokens, attributes)
        if self._capture:
            for out in response.outputs:
                span.add_event(
                    "gen_ai.choice",
                    {"index": out.index, "finish_reason": str(out.finish_reason or ""), "message": out.text},
                )


ChatCall = Call
"""The former name of :class:`Call` (chat was the only operation)."""


async def traced(call: Call | None, operation: Callable[[], Awaitable[T]]) -> T:
    """Run ``operation`` as ``call``'s span (just run it when ``call`` is None: telemetry off)."""
    if call is None:
        return await operation()
    call.enter()
    try:
        result = await operation()
    except BaseException as exc:
        call.end(error=exc)
        raise
    call.end(result)
    return result


def start_call(
    operation: str,
    request: Any,
    *,
    model: str,
    base_url: str | None,
    provider: str = "huggingface",
    stream: bool = False,
    server: bool = False,
) -> Call | None:
    """Begin instrumenting one ``operation`` (``gen_ai.operation.name``: ``chat``, ``embeddings``,
    a task) of ``request``; ``server``: one ``hfdriver serve`` received. ``None`` (and no cost)
    when telemetry is off or ``request`` is no request (the driver then refuses it)."""
    parameters = _PARAMETERS.get(operation)
    if not _enabled():
        return None
    if (
        request is not None
        and parameters is not None
        and not isinstance(request, (GenerateRequest, EmbedRequest))
    ):
        return None  # not a request: the driver refuses it (INVALID_REQUEST), nothing to trace
    model = _clip(model)  # a client of `hfdriver serve` chooses it
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
    }
    url = urlsplit(base_url or "")
    if url.hostname:
        attributes["server.address"] = url.hostname
        attributes["server.port"] = url.port or (443 if url.scheme == "https" else 80)
    span_attributes = {
        **attributes,
        **(parameters(request) if parameters is not None and request is not None else {}),
    }
    if stream:
        span_attributes["hfdriver.stream"] = True
    kind = _trace.SpanKind.SERVER if server else _trace.SpanKind.CLIENT
    span = _instrument("tracer").start_span(f"{operation} {model}", kind=kind, attributes=span_attributes)
    call = Call(span, attributes, stream)
    if _capture_content() and isinstance(request, GenerateRequest):  # opted in: prompt and answer
        call._capture = True
        for message in request.messages:
            span.add_event(
                f"gen_ai.{message.role.value}.message",
                {"role": message.role.value, "content": json.dumps(message.text, ensure_ascii=False)},
            )
    return call


def start_chat(
    request: GenerateRequest,
    *,
    model: str,
    base_url: str,
    provider: str = "huggingface",
    stream: bool = False,
    server: bool = False,
) -> Call | None:
    """:func:`start_call` for a chat request."""
    return start_call(
        "chat", request, model=model, base_url=base_url, provider=provider, stream=stream, server=server
    )


def span_retry(details: Any) -> None:
    """The retry hook telemetry installs: a retry of the call in progress is an event on its span."""
    call = _CURRENT.get()
    if call is not None:
        call.retry(details)
