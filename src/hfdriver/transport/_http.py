"""``HttpClient``: the one owner of aiohttp for every client in hfdriver.

The router driver and its stream, ``HubClient``, ``ModelStore``'s listings and the Ollama
client all send through it. It creates the session (pool limits, DNS cache), or borrows a
caller's (and then never closes it); it checks statuses, bounds what it reads, and maps every
transport failure to :class:`HuggingFaceError` once, in :mod:`._errors`. Nothing above this
module catches an aiohttp exception.
"""

from __future__ import annotations

import logging
import platform
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, NamedTuple

import aiohttp

from hfdriver._version import __version__
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind, Secret, error_from_response, redact, scrub
from hfdriver.transport._errors import TRANSPORT_ERRORS, map_transport_error
from hfdriver.transport._policy import Timeouts
from hfdriver.transport._proxy import ProxyResolver
from hfdriver.transport._retry import ATTEMPT, observe_limits
from hfdriver.transport._urls import split_credentials

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "ERROR_BODY_BYTES",
    "USER_AGENT",
    "ClientResponse",
    "ClientSession",
    "HttpClient",
    "Reply",
    "RequestTimeout",
    "request_timeout",
    "stream_timeout",
    "unary_timeout",
]

USER_AGENT = f"hfdriver/{__version__} aiohttp/{aiohttp.__version__} python/{platform.python_version()}"

# Re-exported so that modules above the transport can name these types without importing aiohttp.
ClientSession = aiohttp.ClientSession
ClientResponse = aiohttp.ClientResponse
RequestTimeout = aiohttp.ClientTimeout

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
"""The largest body read whole (a unary answer, a Hub listing): generous, but finite."""
ERROR_BODY_BYTES = 1024 * 1024
"""An error body is read up to this much; the rest is dropped before parsing it."""

_CONTENT_ENCODING = "Content-Encoding"
_debug = logging.getLogger("hfdriver.http")
_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")
_REL = re.compile(r"""rel\s*=\s*"?([^";]+)"?""")


def request_timeout(
    *, total: float | None = None, connect: float | None = None, read: float | None = None
) -> RequestTimeout:
    """A per-request time limit: ``total`` for the whole call, ``connect`` (including waiting for a
    free pooled connection), ``read`` for the silence between two reads."""
    return aiohttp.ClientTimeout(total=total, connect=connect, sock_read=read)


def unary_timeout(timeouts: Timeouts) -> RequestTimeout:
    """A unary answer arrives only once fully generated: ``total`` bounds it, not read silence."""
    return request_timeout(total=timeouts.total, connect=timeouts.connect)


def stream_timeout(timeouts: Timeouts) -> RequestTimeout:
    """A stream may run for minutes: ``read`` (silence between bytes) bounds it, no total."""
    return request_timeout(connect=timeouts.connect, read=timeouts.read)


class Reply(NamedTuple):
    """A whole answer with a status below 300."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def link(self, rel: str = "next") -> str | None:
        """The URL of the ``Link`` header entry with ``rel`` (pagination), if any."""
        value = self.headers.get("Link")
        if not value:
            return None
        for match in _LINK.finditer(value):
            params = _REL.search(match.group(2))
            if params is not None and rel in params.group(1).split():
                return match.group(1)
        return None


def _too_large(limit: int, what: str) -> HuggingFaceError:
    return HuggingFaceError(
        HuggingFaceErrorKind.DECODE,
        f"the {what} is larger than {limit:,} bytes, the limit for one body; "
        "check that the URL is the API you meant",
    )


class HttpClient:
    """Sends requests, maps failures. One per driver or client.

    Args:
        session: a caller's ``aiohttp.ClientSession`` (never closed here); by default one is
            created on first use, with ``limit`` / ``limit_per_host`` pooled connections, that
            honours ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``NO_PROXY``.
        headers: sent with every request (``User-Agent`` is added).
        secret: the token: redacted from every error built here.
        service, hint: what is being called and what to check, for connection-error messages;
            ``unreachable`` replaces "could not reach <service>" in them.
        owner: the name of the object that owns this client, for the "closed" message.
    """

    __slots__ = (
        "_closed",
        "_limit",
        "_limit_per_host",
        "_owns_session",
        "_proxy",
        "_session",
        "headers",
        "hint",
        "owner",
        "secret",
        "service",
        "unreachable",
    )

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        headers: Mapping[str, str] | None = None,
        secret: str | Secret | None = None,
        limit: int = 100,
        limit_per_host: int = 0,
        service: str = "the server",
        hint: str = "check the base_url and your network",
        unreachable: str | None = None,
        owner: str = "client",
    ) -> None:
        self._session = session
        self._owns_session = session is None
        self._closed = False
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._proxy = ProxyResolver()
        self.headers: dict[str, str] = {"User-Agent": USER_AGENT, **(headers or {})}
        self.secret = secret
        self.service = service
        self.hint = hint
        self.unreachable = unreachable
        self.owner = owner

    # ------------------------------------------------------------------ lifecycle
    @property
    def session(self) -> aiohttp.ClientSession:
        """The session, created on first use."""
        session = self._session
        if session is not None:
            return session
        if self._closed:
            raise HuggingFaceError(
                HuggingFaceErrorKind.CONFIG, f"this {self.owner} was closed; create a new {self.owner}"
            )
        connector = aiohttp.TCPConnector(
            limit=self._limit, limit_per_host=self._limit_per_host, ttl_dns_cache=300
        )
        self._session = aiohttp.ClientSession(connector=connector, raise_for_status=False)
        return self._session

    async def aclose(self) -> None:
        """Close the session if this client created it; later calls raise ``CONFIG``."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session and not session.closed:
            await session.close()

    def _log(
        self,
        method: str,
        url: str,
        status: int | None,
        started: float,
        headers: Mapping[str, str] | None,
        error: HuggingFaceError | None = None,
    ) -> None:
        """One DEBUG line per request (``hfdriver --debug``): never a header value but the request id."""
        elapsed = (time.perf_counter() - started) * 1000
        request_id = scrub(headers.get("x-request-id"), self.secret) if headers is not None else None
        outcome = f"{status}" if error is None else f"failed: {error.kind.name}"
        _debug.debug(
            "%s %s -> %s in %.0f ms (attempt %d%s)",
            method,
            redact(url.split("?", 1)[0], self.secret),
            outcome,
            elapsed,
            ATTEMPT.get(),
            f", request id {request_id}" if request_id else "",
        )

    def _map(
        self, exc: BaseException, phase: str, service: str | None = None, hint: str | None = None
    ) -> HuggingFaceError:
        return map_transport_error(
            exc,
            phase=phase,
            secret=self.secret,
            service=service or self.service,
            hint=hint or self.hint,
            unreachable=None if service else self.unreachable,
        )

    async def _error(self, resp: aiohttp.ClientResponse) -> HuggingFaceError:
        """The mapped error for an answer with an error status (its body read up to a bound)."""
        pieces: list[bytes] = []
        size = 0
        try:
            while size < ERROR_BODY_BYTES:
                piece = await resp.content.read(ERROR_BODY_BYTES - size)
                if not piece:
                    break
                pieces.append(piece)
                size += len(piece)
        except TRANSPORT_ERRORS:
            pass  # what arrived is enough to report the status
        return error_from_response(resp.status, resp.headers, b"".join(pieces), token=self.secret)

    def _credentials(self, url: str, headers: Mapping[str, str] | None) -> tuple[str, Mapping[str, str]]:
        """A URL with ``user:password@`` in it: the credentials leave the URL (which is shown in
        logs and errors) and go as Basic auth, unless a token is sent already (one line, no guess)."""
        clean, basic = split_credentials(url)
        sent = self.headers if headers is None else headers
        if basic is None:
            return clean, sent
        if any(name.lower() == "authorization" for name in sent):
            raise HuggingFaceError(
                HuggingFaceErrorKind.CONFIG,
                f"{clean} was given with a user name and password in it, and a token is sent too: both "
                "cannot go in the Authorization header; remove the credentials from the URL, or send no token",
            )
        return clean, {**sent, "Authorization": basic}

    # ------------------------------------------------------------------ whole answers
    async def fetch(
        self,
        method: str,
        url: str,
        *,
        data: bytes | None = None,
        json: Any = None,
        params: Sequence[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: RequestTimeout | None = None,
        max_bytes: int = DEFAULT_MAX_BODY_BYTES,
        service: str | None = None,
        hint: str | None = None,
    ) -> Reply:
        """Send a request and read the whole answer; a status of 300 or more raises its mapped kind.

        ``service`` / ``hint`` name what this one call reaches, when it is not the client's usual
        service (the Hub client also asks the router for its catalogue)."""
        if "@" in url:
            url, headers = self._credentials(url, headers)
        session = self._session or self.session
        started = time.perf_counter() if _debug.isEnabledFor(logging.DEBUG) else 0.0
        try:
            async with session.request(
                method,
                url,
                data=data,
                json=json,
                params=params,
                headers=self.headers if headers is None else headers,
                timeout=timeout,
                proxy=self._proxy(url),
            ) as resp:
                status = resp.status
                if started:
                    self._log(method, url, status, started, resp.headers)
                observe_limits(resp.headers)
                if status >= 300:
                    raise await self._error(resp)
                headers = resp.headers
                length = resp.content_length
                if length is not None and length <= max_bytes and _CONTENT_ENCODING not in headers:
                    return Reply(status, headers, await resp.read())  # the common case, inline
                return Reply(status, headers, await self._read_body(resp, max_bytes, "response"))
        except TRANSPORT_ERRORS as exc:
            error = self._map(exc, "request", service, hint)
            if started:
                self._log(method, url, None, started, None, error)
            raise error from exc

    async def _read_body(self, resp: aiohttp.ClientResponse, limit: int, what: str) -> bytes:
        length = resp.content_length
        if length is not None and _CONTENT_ENCODING not in resp.headers:
            if length > limit:
                raise _too_large(limit, what)
            return await resp.read()  # the common case: a known, bounded length
        # Unknown or compressed length: read in pieces, so a huge or endless body stops at the limit.
        pieces: list[bytes] = []
        size = 0
        async for piece in resp.content.iter_any():
            size += len(piece)
            if size > limit:
                resp.close()
                raise _too_large(limit, what)
            pieces.append(piece)
        return b"".join(pieces)

    # ------------------------------------------------------------------ streamed answers
    async def open(
        self,
        method: str,
        url: str,
        *,
        data: bytes | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: RequestTimeout | None = None,
    ) -> aiohttp.ClientResponse:
        """Send a request and return the open response (status below 300) to read from.

        The caller releases it (``release()`` when read to the end, ``close()`` otherwise).
        """
        if "@" in url:
            url, headers = self._credentials(url, headers)
        session = self._session or self.session
        started = time.perf_counter() if _debug.isEnabledFor(logging.DEBUG) else 0.0
        try:
            resp = await session.request(
                method,
                url,
                data=data,
                json=json,
                headers=self.headers if headers is None else headers,
                timeout=timeout,
                proxy=self._proxy(url),
            )
        except TRANSPORT_ERRORS as exc:
            error = self._map(exc, "request")
            if started:
                self._log(method, url, None, started, None, error)
            raise error from exc
        if started:
            self._log(method, url, resp.status, started, resp.headers)
        observe_limits(resp.headers)
        if resp.status >= 300:
            try:
                error = await self._error(resp)
            finally:
                resp.release()
            raise error
        return resp

    async def read_body(
        self, resp: aiohttp.ClientResponse, *, phase: str, max_bytes: int = DEFAULT_MAX_BODY_BYTES
    ) -> bytes:
        """The rest of an open response, up to ``max_bytes``."""
        try:
            return await self._read_body(resp, max_bytes, "response")
        except TRANSPORT_ERRORS as exc:
            raise self._map(exc, phase) from exc

    async def read_chunk(self, resp: aiohttp.ClientResponse, *, phase: str) -> bytes:
        """Whatever bytes have arrived (waiting for some); ``b""`` at the end of the body."""
        try:
            return await resp.content.readany()
        except TRANSPORT_ERRORS as exc:
            raise self._map(exc, phase) from exc

    async def finish(self, resp: aiohttp.ClientResponse, *, drain: int) -> None:
        """Done with ``resp``: read what is left (up to ``drain`` bytes) so its connection can go
        back to the pool, or close the connection if more is left or reading fails."""
        content = resp.content
        drained = 0
        try:
            while not content.at_eof() and drained <= drain:
                more = await content.readany()
                if not more:
                    break
                drained += len(more)
        except Exception:
            resp.close()  # the answer is complete already; a failure here only costs the connection
            return
        except BaseException:
            resp.close()
            raise
        if content.at_eof():
            resp.release()
        else:
            resp.close()

    async def lines(self, resp: aiohttp.ClientResponse, *, phase: str = "stream") -> AsyncIterator[bytes]:
        """The lines of an open response (newline-delimited JSON), each stripped."""
        content = resp.content
        while True:
            try:
                line = await content.readline()
            except (ValueError, aiohttp.http_exceptions.LineTooLong):  # past aiohttp's line buffer
                raise HuggingFaceError(
                    HuggingFaceErrorKind.DECODE,
                    f"{self.service} sent a line that is too long (over {content.get_read_buffer_limits()[1]:,} bytes)",
                ) from None
            except TRANSPORT_ERRORS as exc:
                raise self._map(exc, phase) from exc
            if not line:
                return
            yield line.strip()
