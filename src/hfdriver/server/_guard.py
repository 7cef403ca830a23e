"""What a request to ``hfdriver serve`` must show before it reaches a driver.

A local server that spends the user's credits must not be drivable by any web page the user
visits. Browsers can send a "simple" cross-site POST (``text/plain``) without asking first, and a
DNS-rebinding page can reach 127.0.0.1 under its own host name. So, as Ollama does:

- ``Host`` must be a loopback name, an IP literal (a rebinding page needs a domain name), or a
  name the user allowed (``--allowed-host``; ``*`` allows any);
- an ``Origin`` header, which browsers add to cross-site requests, must be a loopback origin or
  one the user allowed (``--allowed-origin``; ``*`` allows any);
- a POST must declare ``Content-Type: application/json``, which a page cannot send cross-site
  without a CORS preflight this server never grants.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

__all__ = ["Guard"]

_KEY_SHAPE = re.compile(r"[\x21-\x7e]+")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _hostname(host_header: str) -> str:
    """``127.0.0.1:9231`` -> ``127.0.0.1``; ``[::1]:9231`` -> ``::1``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """The checks; each ``check_*`` returns ``None`` when the request may pass, else why not."""

    __slots__ = ("_hosts_seen", "allowed_hosts", "allowed_origins", "api_key")

    def __init__(
        self,
        *,
        allowed_hosts: Iterable[str] = (),
        allowed_origins: Iterable[str] = (),
        api_key: str | None = None,
    ) -> None:
        self.allowed_hosts = frozenset(h.strip().lower() for h in allowed_hosts)
        self.allowed_origins = frozenset(o.strip().lower().rstrip("/") for o in allowed_origins)
        if api_key is not None and not _KEY_SHAPE.fullmatch(api_key):
            # "" (an unset $KEY in a script) would let anyone in who sends "Bearer ": refuse it,
            # as a key a client could never send (spaces, line breaks, non-ASCII text).
            raise HuggingFaceError(
                HuggingFaceErrorKind.CONFIG,
                "the API key is empty or holds spaces, control characters or non-ASCII text; "
                "give a key of printable ASCII characters (or none, to serve without one)",
            )
        self.api_key = api_key
        self._hosts_seen: dict[str, str | None] = {}  # Host header -> verdict: clients repeat theirs

    def check_host(self, host_header: str | None) -> str | None:
        try:
            return self._hosts_seen[host_header or ""]
        except KeyError:
            verdict = self._check_host(host_header)
            if len(self._hosts_seen) < 1024:
                self._hosts_seen[host_header or ""] = verdict
            return verdict

    def _check_host(self, host_header: str | None) -> str | None:
        if "*" in self.allowed_hosts:
            return None
        host = _hostname(host_header or "").rstrip(".")
        if not host:
            return None  # browsers always send Host: a request without one is no rebinding attempt
        if _is_loopback(host) or _is_ip(host) or host in self.allowed_hosts:
            return None
        return (
            f"host {host!r} is not allowed (a protection against DNS rebinding): "
            "start the server with --allowed-host NAME to accept it"
        )

    def check_origin(self, origin: str | None) -> str | None:
        if origin is None or "*" in self.allowed_origins:
            return None
        origin = origin.strip().lower().rstrip("/")
        if origin in self.allowed_origins:
            return None
        parts = urlsplit(origin)
        if parts.scheme in ("http", "https") and parts.hostname and _is_loopback(parts.hostname):
            return None
        return (
            f"origin {origin!r} is not allowed: a web page cannot call this server unless it is started "
            "with --allowed-origin ORIGIN"
        )

    @staticmethod
    def check_content_type(content_type: str | None) -> str | None:
        media = (content_type or "").split(";", 1)[0].strip().lower()
        if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
            return None
        return f"send the body as JSON with 'Content-Type: application/json' (got {media or 'none'!r})"

    def check_key(self, authorization: str | None) -> bool:
        if self.api_key is None:
            return True
        given = (authorization or "").encode("utf-8", "surrogateescape")
        return hmac.compare_digest(given, f"Bearer {self.api_key}".encode())
