"""Token resolution: where the Hugging Face token comes from, held so that it never shows.

Order: the explicit argument, then ``HF_TOKEN``, ``HUGGING_FACE_HUB_TOKEN``,
``HUGGINGFACE_API_TOKEN``, ``HUGGINGFACE_HUB_TOKEN``, then the token file
(``$HF_TOKEN_PATH``, else ``$HF_HOME/token``, else ``$XDG_CACHE_HOME/huggingface/token``,
else ``~/.cache/huggingface/token``). Whitespace is stripped; an empty value counts as unset.
``redact`` is re-exported from :mod:`hfdriver.errors`, where it lives.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind, mask, redact

__all__ = [
    "TOKEN_ENV_VARS",
    "Token",
    "redact",
    "require_token",
    "resolve_token",
    "token_file_path",
]

TOKEN_ENV_VARS = (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HUGGINGFACE_API_TOKEN",
    "HUGGINGFACE_HUB_TOKEN",
)


class Token:
    """A secret whose ``repr``/``str`` never show it: ``hf_****abcd``.

    ``source`` says where it came from (``"argument"``, ``"env:HF_TOKEN"``, ``"file:/path"``).
    Call :meth:`reveal` only where the secret must go on the wire.

    >>> Token("hf_abcdefghijklmnop")
    Token('hf_****mnop')
    """

    __slots__ = ("_secret", "source")

    def __init__(self, secret: str, source: str = "argument") -> None:
        self._secret = secret
        self.source = source

    def reveal(self) -> str:
        """The secret itself: for the ``Authorization`` header, nothing else."""
        return self._secret

    @property
    def masked(self) -> str:
        return mask(self._secret)

    def __repr__(self) -> str:
        return f"Token({self.masked!r})"

    def __str__(self) -> str:
        return self.masked

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Token):
            return self._secret == other._secret
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._secret)

    def __reduce__(self) -> tuple[object, ...]:
        return (Token, (self._secret, self.source))


def token_file_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the standard token file lives (whether or not it exists)."""
    env = os.environ if env is None else env
    explicit = env.get("HF_TOKEN_PATH", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    hf_home = env.get("HF_HOME", "").strip()
    if hf_home:
        return Path(hf_home).expanduser() / "token"
    xdg = env.get("XDG_CACHE_HOME", "").strip()
    if xdg:
        return Path(xdg).expanduser() / "huggingface" / "token"
    return Path.home() / ".cache" / "huggingface" / "token"


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def resolve_token(
    explicit: str | Token | None = None, *, env: Mapping[str, str] | None = None
) -> Token | None:
    """Find a token the standard way, or ``None``. Never raises for a missing token."""
    if isinstance(explicit, Token):
        return explicit
    value = _clean(explicit)
    if value:
        return Token(value, "argument")
    env = os.environ if env is None else env
    for name in TOKEN_ENV_VARS:
        value = _clean(env.get(name))
        if value:
            return Token(value, f"env:{name}")
    path = token_file_path(env)
    try:
        value = _clean(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
    return Token(value, f"file:{path}") if value else None


def missing_token_message(env: Mapping[str, str] | None = None) -> str:
    path = token_file_path(env)
    return (
        "no Hugging Face token found: looked at the token argument, the environment variables "
        f"{', '.join(TOKEN_ENV_VARS)}, and the token file {path}. Set HF_TOKEN (create a "
        "fine-grained token with 'Make calls to Inference Providers' at "
        "https://huggingface.co/settings/tokens) or run `hfdriver login`"
    )


def require_token(explicit: str | Token | None = None, *, env: Mapping[str, str] | None = None) -> Token:
    """Like :func:`resolve_token`, but a missing token is ``HuggingFaceError(kind=CONFIG)``."""
    token = resolve_token(explicit, env=env)
    if token is None:
        raise HuggingFaceError(HuggingFaceErrorKind.CONFIG, missing_token_message(env))
    return token
