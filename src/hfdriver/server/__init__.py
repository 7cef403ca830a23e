"""``hfdriver serve``: any :class:`~hfdriver.Driver` as an OpenAI-compatible HTTP API.

``_app`` holds the routes and error answers, ``_guard`` what a request must show first (Host,
Origin, content type, API key), ``_server`` the socket and lifecycle (timeouts, shutdown).
"""

from hfdriver.server._app import DEFAULT_MAX_REQUEST_BYTES, create_app, error_status
from hfdriver.server._server import DEFAULT_HOST, DEFAULT_IDLE_TIMEOUT, DEFAULT_PORT, OpenAIServer

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_REQUEST_BYTES",
    "DEFAULT_PORT",
    "OpenAIServer",
    "create_app",
    "error_status",
]
