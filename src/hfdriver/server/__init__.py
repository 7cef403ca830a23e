"""``hfdriver serve``: any :class:`~hfdriver.Driver` as an OpenAI-compatible HTTP API."""

from hfdriver.server._app import DEFAULT_HOST, DEFAULT_PORT, OpenAIServer, create_app, error_status

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "OpenAIServer", "create_app", "error_status"]
