"""Redaction: secrets never reach a message, a log line or an error body.

It lives with the errors because every error is built here from text a server sent, and that
text may echo the token back. ``hfdriver.auth`` holds the token; it imports this, never the reverse.
"""

from __future__ import annotations

import logging
import re
from typing import Protocol

__all__ = ["LOGGERS", "RedactingFilter", "Secret", "mask", "redact", "strip_url_credentials"]

# Anything shaped like a Hugging Face token is scrubbed from text we show, even if it is not ours.
_TOKEN_SHAPE = re.compile(r"\bhf_[A-Za-z0-9]{8,}\b")
# The user-information part of a URL (`scheme://user:password@host`): a proxy's or a server's
# credentials. The host stays, so a message still says where; the credentials never show.
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)(?:([^/?#@\s'\"<>:]*):)?[^/?#@\s'\"<>]*@")


class Secret(Protocol):
    """Anything holding a secret that it shows only through :meth:`reveal` (``hfdriver.Token``)."""

    def reveal(self) -> str: ...


def mask(secret: str) -> str:
    """``hf_****abcd``: enough to tell tokens apart, never enough to use one."""
    if len(secret) <= 8:
        return "****"
    prefix = "hf_" if secret.startswith("hf_") else ""
    return f"{prefix}****{secret[-4:]}"


def strip_url_credentials(text: str) -> str:
    """``http://user:pass@proxy:3128`` -> ``http://user:****@proxy:3128`` (a lone user name, which
    may be a token, -> ``****@``), wherever a URL is in ``text``.

    >>> strip_url_credentials("proxy http://me:secret@10.0.0.1:3128 refused")
    'proxy http://me:****@10.0.0.1:3128 refused'
    """
    if "@" not in text or "://" not in text:
        return text
    return _URL_CREDENTIALS.sub(_mask_credentials, text)


def _mask_credentials(match: re.Match[str]) -> str:
    user = match.group(2)
    return f"{match.group(1)}{user}:****@" if user is not None else f"{match.group(1)}****@"


def redact(text: str, token: str | Secret | None = None) -> str:
    """Replace ``token``, anything that looks like an ``hf_`` token, and the credentials of any
    URL (``scheme://user:password@``) in ``text``.

    >>> redact("bad token hf_abcdefghijklmnop")
    'bad token hf_****mnop'
    """
    if token is not None:
        secret = token if isinstance(token, str) else token.reveal()
        if secret and secret in text:
            text = text.replace(secret, mask(secret))
    if "hf_" in text:
        text = _TOKEN_SHAPE.sub(lambda m: mask(m.group(0)), text)
    return strip_url_credentials(text)


class RedactingFilter(logging.Filter):
    """Scrubs token-shaped text and URL credentials from every record of hfdriver's loggers,
    whatever a message was built from (a proxy URL, a base URL, an exception's text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a broken format string: logging reports it itself
            return True
        clean = redact(text)
        if clean != text:
            record.msg, record.args = clean, None
        return True


LOGGERS = ("hfdriver", "hfdriver.http", "hfdriver.llama_cpp", "hfdriver.access")
"""The loggers hfdriver writes to; each carries a :class:`RedactingFilter` (a logger's filters do
not apply to its children's records, so every one needs its own)."""

_FILTER = RedactingFilter()
for _name in LOGGERS:
    logging.getLogger(_name).addFilter(_FILTER)
