"""Test helpers: a real local router and Hub to point clients at, and scripted answers.

``FakeRouter`` is a real aiohttp server on 127.0.0.1 (random port) emulating the router's
``/v1/chat/completions`` (unary and SSE), ``/v1/models`` and the embedding routes (the router's
per provider, and an endpoint's ``/v1/embeddings``); ``FakeHub`` the Hub's API (whoami, search,
files, the provider mapping of models). Script it with
:class:`FakeResponse` values (status, headers, JSON bodies or SSE events, network chunk
splitting, per-chunk delays, stalls and disconnects), or let it echo.

``instant_retries()`` / ``set_testing(True)`` (from :mod:`hfdriver.transport`) keep retry
attempts but make every wait zero; both restore the previous setting when used with ``with``.
"""

from hfdriver.testing._fake_embeddings import DEFAULT_MAPPINGS, embedding_vector
from hfdriver.testing._fake_hub import FakeHub, default_hub_models, default_repo_files, whoami_body
from hfdriver.testing._fake_ollama import FakeOllama
from hfdriver.testing._fake_router import DEFAULT_MODELS, FakeRouter, RecordedRequest
from hfdriver.testing._responses import FakeResponse, completion_body, split_bytes, stream_events
from hfdriver.transport import instant_retries, set_testing

__all__ = [
    "DEFAULT_MAPPINGS",
    "DEFAULT_MODELS",
    "FakeHub",
    "FakeOllama",
    "FakeResponse",
    "FakeRouter",
    "RecordedRequest",
    "completion_body",
    "default_hub_models",
    "default_repo_files",
    "embedding_vector",
    "instant_retries",
    "set_testing",
    "split_bytes",
    "stream_events",
    "whoami_body",
]
