"""The console of ``hfdriver serve``: one page in the browser (chat with Stop, local models with
pull progress and remove, Hub search, the router catalogue, hardware and caches) and the JSON
API under ``/api/`` behind it. Shipped inside the package: no network at run time, no build step.

``build_console(...)`` gives the :class:`Console`; ``hfdriver serve`` passes its routes to the
server (``--no-console`` leaves them out).
"""

from hfdriver.auth import Token
from hfdriver.console._api import PAGE_HEADERS, Console
from hfdriver.console._pulls import Pull, PullManager
from hfdriver.console._system import format_info, system_info

__all__ = ["PAGE_HEADERS", "Console", "Pull", "PullManager", "build_console", "format_info", "system_info"]


def build_console(config: dict[str, str], token: Token | None = None) -> Console:
    """The console with hfdriver's own model store, Hub client and system report; ``token`` (a
    :class:`~hfdriver.auth.Token`, or None) reaches the Hub and the router's catalogue."""
    from hfdriver.auth import resolve_token
    from hfdriver.hub import HubClient

    def store() -> object:
        from hfdriver.local import ModelStore

        return ModelStore(token=token) if token is not None else ModelStore()

    def hub() -> object:
        return HubClient(token) if token is not None else HubClient()

    configured = resolve_token(token) is not None
    return Console(config=config, store=store, hub=hub, system=system_info, token_configured=configured)
