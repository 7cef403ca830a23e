"""OpenTelemetry GenAI spans and metrics (extra ``otel``: ``opentelemetry-api`` only).

Every ``generate`` / ``generate_stream`` of :class:`~hfdriver.HuggingFaceDriver` makes a CLIENT span
named ``chat {model}`` with the GenAI semantic conventions' attributes (operation, provider,
request model and parameters, response model, id and finish reasons, token usage, ``error.type``),
retries as ``hfdriver.retry`` span events carrying what the retry hooks receive, and records
``gen_ai.client.operation.duration``, ``gen_ai.client.token.usage`` and, for streams,
``gen_ai.client.operation.time_to_first_chunk``. Prompt and completion text are recorded only when
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`` (span events ``gen_ai.<role>.message``
and ``gen_ai.choice``).

Nothing happens — no span object, no attribute built — when ``opentelemetry-api`` is not
installed or when neither a tracer provider nor a meter provider has been set.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from hfdriver._version import __version__
from hfdriver.dto.request import GenerateRequest
from hfdriver.dto.response import GenerateResponse
from hfdriver.errors import HuggingFaceError

__all__ = ["ChatCall", "InstrumentedStream", "current_call", "enabled", "start_chat", "traced"]

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


def _capture_content() -> bool:
    return os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() in ("1", "true", "yes")


_MAX_VALUE = 256  # characters of a server-chosen string kept on a span (an id, a model, a provider)
_MAX_REASONS = 16  # finish reasons kept on a span (one per output; a server may send thousands)


def _clip(value: str) -> str:
    return value if len(value) <= _MAX_VALUE else value[: _MAX_VALUE - 1] + "…"


_CURRENT: contextvars.ContextVar[ChatCall | None] = contextvars.ContextVar("hfdriver_otel_call", default=None)
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
    arguments to :func:`start_chat` when it is False)."""
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


def current_call() -> ChatCall | None:
    """The call in progress in this context (retry events attach to its span)."""
    return _CURRENT.get()


class ChatCall:
    """One instrumented chat operation: its span and what its metrics need."""

    __slots__ = ("_attributes", "_capture", "_context", "_ended", "_started", "_token", "span", "streaming")

    def __init__(self, span: Any, attributes: dict[str, Any], streaming: bool) -> None:
        self.span = span
        self._attributes = attributes
        self._started = time.perf_counter()
        self._ended = False
        self.streaming = streaming
        self._token: contextvars.Token[ChatCall | None] | None = None
        self._context: Any = None
        self._capture = False

    def enter(self) -> None:
        """Make this the context's current call and span (retries report to it, spans started
        inside — a fallback's routes, serve's driver — are its children) until :meth:`leave`."""
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
                **({"hfdriver.request_id": details.request_id} if details.request_id else {}),
                **({"hfdriver.inference_provider": details.provider} if details.provider else {}),
            },
        )

    def first_chunk(self) -> None:
        elapsed = time.perf_counter() - self._started
        self.span.set_attribute("hfdriver.time_to_first_chunk_s", elapsed)
        _instrument("first_chunk").record(elapsed, self._attributes)

    def end(
        self,
        response: GenerateResponse | None = None,
        error: BaseException | None = None,
        *,
        abandoned: bool = False,
    ) -> None:
        if self._ended:
            return
        self._ended = True
        self.leave()
        span = self.span
        attributes = dict(self._attributes)
        if response is not None:
            # What a server chose (id, model, provider, finish reasons) is clipped and capped on the
            # span; metrics keep the request's model only, so a server cannot explode their cardinality.
            if response.model:
                span.set_attribute("gen_ai.response.model", _clip(response.model))
            if response.id:
                span.set_attribute("gen_ai.response.id", _clip(response.id))
            reasons = [
                _clip(str(o.finish_reason))
                for o in response.outputs[:_MAX_REASONS]
                if o.finish_reason is not None
            ]
            if reasons:
                span.set_attribute("gen_ai.response.finish_reasons", reasons)
            if response.provider:
                span.set_attribute("hfdriver.inference_provider", _clip(response.provider))
            if response.route:
                span.set_attribute("hfdriver.route", _clip(response.route))
                span.set_attribute(
                    "hfdriver.failed_routes", [_clip(f.route) for f in response.failed_routes[:_MAX_REASONS]]
                )
            if response.cached:
                span.set_attribute("hfdriver.cached", True)
            usage = response.usage
            if usage is not None:
                span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
                span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
                tokens = _instrument("tokens")
                tokens.record(usage.prompt_tokens, {**attributes, "gen_ai.token.type": "input"})
                tokens.record(usage.completion_tokens, {**attributes, "gen_ai.token.type": "output"})
        if self._capture and response is not None:
            for out in response.outputs:
                span.add_event(
                    "gen_ai.choice",
                    {"index": out.index, "finish_reason": str(out.finish_reason or ""), "message": out.text},
                )
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


async def traced(
    call: ChatCall | None, operation: Callable[[], Awaitable[GenerateResponse]]
) -> GenerateResponse:
    """Run ``operation`` as ``call``'s span (just run it when ``call`` is None: telemetry off)."""
    if call is None:
        return await operation()
    call.enter()
    try:
        response = await operation()
    except BaseException as exc:
        call.end(error=exc)
        raise
    call.end(response)
    return response


def start_chat(
    request: GenerateRequest,
    *,
    model: str,
    base_url: str,
    provider: str = "huggingface",
    stream: bool = False,
    server: bool = False,
) -> ChatCall | None:
    """Begin instrumenting one chat call (``server``: one ``hfdriver serve`` received);
    ``None`` (and no cost) when telemetry is off."""
    if not _enabled() or not isinstance(request, GenerateRequest):
        return None  # not a request: the driver refuses it (INVALID_REQUEST), nothing to trace
    url = urlsplit(base_url)
    model = _clip(model)  # a client of `hfdriver serve` chooses it
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
    }
    if url.hostname:
        attributes["server.address"] = url.hostname
        attributes["server.port"] = url.port or (443 if url.scheme == "https" else 80)
    parameters = (
        ("gen_ai.request.max_tokens", request.max_tokens),
        ("gen_ai.request.temperature", request.temperature),
        ("gen_ai.request.top_p", request.top_p),
        ("gen_ai.request.seed", request.seed),
        ("gen_ai.request.frequency_penalty", request.frequency_penalty),
        ("gen_ai.request.presence_penalty", request.presence_penalty),
    )
    span_attributes = {**attributes, **{key: value for key, value in parameters if value is not None}}
    if request.stop:
        span_attributes["gen_ai.request.stop_sequences"] = list(request.stop)
    if stream:
        span_attributes["hfdriver.stream"] = True
    kind = _trace.SpanKind.SERVER if server else _trace.SpanKind.CLIENT
    span = _instrument("tracer").start_span(f"chat {model}", kind=kind, attributes=span_attributes)
    call = ChatCall(span, attributes, stream)
    if _capture_content():  # opted in: the prompt and the answer as span events
        call._capture = True
        for message in request.messages:
            span.add_event(
                f"gen_ai.{message.role.value}.message",
                {"role": message.role.value, "content": json.dumps(message.text, ensure_ascii=False)},
            )
    return call


class InstrumentedStream:
    """A stream whose chunks, end, error or abandonment close its :class:`ChatCall`."""

    def __init__(self, inner: Any, call: ChatCall) -> None:
        self._inner = inner
        self._call = call
        self._first = True

    def __getattr__(self, name: str) -> Any:  # cached, route, provider, request_id, response()...
        return getattr(self._inner, name)

    @property
    def pending(self) -> int:
        return int(getattr(self._inner, "pending", 0))

    def _so_far(self) -> GenerateResponse | None:
        response = getattr(self._inner, "response", None)
        return response() if callable(response) else None

    def __aiter__(self) -> InstrumentedStream:
        return self

    async def __anext__(self) -> Any:
        call = self._call
        call.enter()
        try:
            chunk = await self._inner.__anext__()
        except StopAsyncIteration:
            call.end(self._so_far())
            raise
        except BaseException as exc:
            call.end(self._so_far(), error=exc)
            raise
        finally:
            call.leave()
        if self._first:
            self._first = False
            call.first_chunk()
        return chunk

    async def __aenter__(self) -> InstrumentedStream:
        call = self._call
        call.enter()
        try:
            await self._inner.__aenter__()
        except BaseException as exc:
            call.end(error=exc)
            raise
        finally:
            call.leave()
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if not self._call._ended:
            self._call.end(self._so_far(), abandoned=True)
        await self._inner.aclose()

    async def collect(self) -> GenerateResponse:
        async for _ in self:
            pass
        response: GenerateResponse = await self._inner.collect()
        return response

    def __del__(self) -> None:
        call = getattr(self, "_call", None)
        if call is not None and not call._ended:
            call.end(abandoned=True)
