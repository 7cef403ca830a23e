"""``hfdriver serve``: any :class:`~hfdriver.Driver` as an OpenAI-compatible HTTP API.

``_app`` holds the route table and the chat and embeddings handlers, ``_responses`` the Responses
API's, ``_store`` where stored responses live, ``_wire`` what they share (errors, the body reader,
the SSE pump), ``_guard`` what a request must show first (Host, Origin, content type, API key),
``_server`` the socket and lifecycle (timeouts, shutdown).
"""

from hfdriver.server._app import DEFAULT_MAX_REQUEST_BYTES, ROUTES, Route, create_app, error_status
from hfdriver.server._server import DEFAULT_HOST, DEFAULT_IDLE_TIMEOUT, DEFAULT_PORT, OpenAIServer
from hfdriver.server._store import (
    MemoryResponseStore,
    ResponseStore,
    SQLiteResponseStore,
    StoredResponse,
    default_store_path,
)

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_REQUEST_BYTES",
    "DEFAULT_PORT",
    "MemoryResponseStore",
    "OpenAIServer",
    "ResponseStore",
    "ROUTES",
    "Route",
    "SQLiteResponseStore",
    "StoredResponse",
    "create_app",
    "default_store_path",
    "error_status",
]
