"""Redaction: secrets never reach a message, a log line or an error body.

It lives with the errors because every error is built here from text a server sent, and that
text may echo the token back. ``hfdriver.auth`` holds the token; it imports this, never the reverse.
"""

from __future__ import annotations

import re
from typing import Protocol

__all__ = ["Secret", "mask", "redact"]

# Anything shaped like a Hugging Face token is scrubbed from text we show, even if it is not ours.
_TOKEN_SHAPE = re.compile(r"\bhf_[A-Za-z0-9]{8,}\b")


class Secret(Protocol):
    """Anything holding a secret that it shows only through :meth:`reveal` (``hfdriver.Token``)."""

    def reveal(self) -> str: ...


def mask(secret: str) -> str:
    """``hf_****abcd``: enough to tell tokens apart, never enough to use one."""
    if len(secret) <= 8:
        return "****"
    prefix = "hf_" if secret.startswith("hf_") else ""
    return f"{prefix}****{secret[-4:]}"


def redact(text: str, token: str | Secret | None = None) -> str:
    """Replace ``token`` (and anything that looks like an ``hf_`` token) in ``text``.

    >>> redact("bad token hf_abcdefghijklmnop")
    'bad token hf_****mnop'
    """
    if token is not None:
        secret = token if isinstance(token, str) else token.reveal()
        if secret and secret in text:
            text = text.replace(secret, mask(secret))
    if "hf_" in text:
        text = _TOKEN_SHAPE.sub(lambda m: mask(m.group(0)), text)
    return text
