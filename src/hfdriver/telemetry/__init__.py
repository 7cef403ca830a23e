"""OpenTelemetry GenAI spans and metrics (extra ``otel``: ``opentelemetry-api`` only).

:class:`InstrumentedDriver` (which :func:`hfdriver.compose` and ``create_driver`` put around every
driver) makes a CLIENT span per operation — ``chat {model}``, ``embeddings {model}`` — with the
GenAI semantic conventions' attributes (operation, provider, request model and parameters,
response model, id and finish reasons, token usage, ``error.type``), retries as ``hfdriver.retry``
span events (the retry hook :func:`span_retry`, installed with the wrapper), and records
``gen_ai.client.operation.duration``, ``gen_ai.client.token.usage`` and, for streams,
``gen_ai.client.operation.time_to_first_chunk``. ``hfdriver serve`` opens a SERVER span per request
around it. Prompt and completion text are recorded only when
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``.

Nothing happens — no span object, no attribute built — when ``opentelemetry-api`` is not
installed or when neither a tracer provider nor a meter provider has been set.
"""

from hfdriver.telemetry._driver import InstrumentedDriver, InstrumentedStream
from hfdriver.telemetry._spans import (
    CAPTURE_CONTENT_ENV,
    Call,
    ChatCall,
    current_call,
    enabled,
    span_retry,
    start_call,
    start_chat,
    traced,
)
from hfdriver.telemetry._spans import _instruments as _instruments
from hfdriver.telemetry._spans import _state as _state

__all__ = [
    "CAPTURE_CONTENT_ENV",
    "Call",
    "ChatCall",
    "InstrumentedDriver",
    "InstrumentedStream",
    "current_call",
    "enabled",
    "span_retry",
    "start_call",
    "start_chat",
    "traced",
]
