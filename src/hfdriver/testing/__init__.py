"""Test helpers: a real local router to point drivers at, and scripted answers.

``FakeRouter`` is a real aiohttp server on 127.0.0.1 (random port) emulating the router's
``/v1/chat/completions`` (unary and SSE) and ``/v1/models``. Script it with
:class:`FakeResponse` values (status, headers, JSON bodies or SSE events, network chunk
splitting, per-chunk delays, stalls and disconnects), or let it echo.
"""

from hfdriver.huggingface._retry import instant_retries
from hfdriver.testing._fake_router import DEFAULT_MODELS, FakeRouter, RecordedRequest
from hfdriver.testing._responses import FakeResponse, completion_body, split_bytes, stream_events

__all__ = [
    "DEFAULT_MODELS",
    "FakeResponse",
    "FakeRouter",
    "RecordedRequest",
    "completion_body",
    "instant_retries",
    "split_bytes",
    "stream_events",
]
