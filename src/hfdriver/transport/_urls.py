"""Credentials written into a URL (``https://user:password@host/v1``) are taken out of it.

A URL is shown in logs, errors, ``repr`` and spans; its credentials must never be. They go on
the wire as HTTP Basic auth instead, the way curl and browsers send them.
"""

from __future__ import annotations

import base64
from urllib.parse import unquote, urlsplit, urlunsplit

from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

__all__ = ["split_credentials"]


def split_credentials(url: str) -> tuple[str, str | None]:
    """``(url without credentials, "Basic ..." header value or None)``.

    >>> split_credentials("http://me:pw@127.0.0.1:8000/v1")
    ('http://127.0.0.1:8000/v1', 'Basic bWU6cHc=')
    >>> split_credentials("http://127.0.0.1:8000/v1")
    ('http://127.0.0.1:8000/v1', None)
    """
    if "@" not in url:
        return url, None
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise HuggingFaceError(HuggingFaceErrorKind.CONFIG, f"not a valid URL: {exc}") from None
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at:
        return url, None
    user, _, password = userinfo.partition(":")
    clean = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
    pair = f"{unquote(user)}:{unquote(password)}".encode()
    return clean, "Basic " + base64.b64encode(pair).decode("ascii")
