"""``OpenAIServer``: :func:`create_app` on a real socket, with bounded connections and a clean shutdown."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Iterable
from types import TracebackType

from aiohttp import web

from hfdriver.driver import Driver
from hfdriver.server._app import DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_REQUEST_BYTES, STATE, Route, create_app
from hfdriver.server._store import ResponseStore

__all__ = ["DEFAULT_HOST", "DEFAULT_IDLE_TIMEOUT", "DEFAULT_PORT", "OpenAIServer"]

logger = logging.getLogger("hfdriver")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9231
DEFAULT_IDLE_TIMEOUT = 15.0
"""Seconds a connection may sit without a request: idle keep-alives and slow request headers
(slowloris) are closed after it."""


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OpenAIServer:
    """Run :func:`create_app` on a real socket: ``async with OpenAIServer(driver) as server``.

    - ``grace``: how long requests in flight may run on once a shutdown starts (new connections
      are refused at once, new requests on open ones get a 503); streams still running then end
      with an error event and ``[DONE]``.
    - ``idle_timeout``: a connection without a request for this long is closed (slow headers too);
      ``body_timeout``: a request body must arrive within this long.
    - ``response_store``: where the Responses API keeps stored responses (default: in memory;
      :class:`~hfdriver.server.SQLiteResponseStore` keeps them across restarts). Closed with the server.
    - A client that hangs up cancels its request, and so the upstream call it was waiting for.
    """

    def __init__(
        self,
        driver: Driver,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        api_key: str | None = None,
        model_name: str | None = None,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        grace: float = 10.0,
        allowed_hosts: Iterable[str] = (),
        allowed_origins: Iterable[str] = (),
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        response_store: ResponseStore | None = None,
        routes: Iterable[Route] = (),
    ) -> None:
        self.driver = driver
        self.response_store = response_store
        self.host = host
        self.port = port
        self.grace = grace
        self.idle_timeout = idle_timeout
        self.app = create_app(
            driver,
            model_name=model_name,
            api_key=api_key,
            max_request_bytes=max_request_bytes,
            allowed_hosts=(*allowed_hosts, *([host] if host and not _is_loopback(host) else [])),
            allowed_origins=tuple(allowed_origins),
            body_timeout=body_timeout,
            response_store=response_store,
            routes=routes,
        )
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def warn_if_exposed(self) -> bool:
        """Log a WARNING when the server is reachable from other machines; True if it is."""
        if _is_loopback(self.host):
            return False
        logger.warning(
            "hfdriver serve: listening on %s, reachable from other machines; set --api-key, or bind 127.0.0.1",
            self.host or "all interfaces",
        )
        return True

    async def start(self) -> OpenAIServer:
        self.warn_if_exposed()
        runner = web.AppRunner(
            self.app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=1.0,  # close() has drained or cancelled every request by then
            handler_cancellation=True,  # a client that leaves cancels its request
            keepalive_timeout=self.idle_timeout,  # also bounds a connection that never sends a request
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        return self

    async def close(self) -> None:
        """Stop accepting, let requests in flight finish for ``grace`` seconds, end the rest, close."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        state = self.app[STATE]
        state.begin_shutdown()
        for site in list(runner.sites):  # no new connections from now on
            await site.stop()
        if state.inflight:
            _done, pending = await asyncio.wait(set(state.inflight), timeout=self.grace)
            for task in pending:
                task.cancel()  # streams end with an error event and [DONE]; others answer 503
            if pending:
                await asyncio.wait(pending, timeout=5.0)
        await runner.cleanup()
        if self.response_store is not None:
            await self.response_store.aclose()

    async def __aenter__(self) -> OpenAIServer:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
