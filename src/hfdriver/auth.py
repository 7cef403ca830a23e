"""Token resolution: where the Hugging Face token comes from, held so that it never shows.

Order: the explicit argument (:data:`NO_TOKEN` says "send none, look nowhere"), then ``HF_TOKEN``, ``HUGGING_FACE_HUB_TOKEN``,
``HUGGINGFACE_API_TOKEN``, ``HUGGINGFACE_HUB_TOKEN``, then the token file
(``$HF_TOKEN_PATH``, else ``$HF_HOME/token``, else ``$XDG_CACHE_HOME/huggingface/token``,
else ``~/.cache/huggingface/token``). Whitespace is stripped; an empty value counts as unset.
``redact`` is re-exported from :mod:`hfdriver.errors`, where it lives.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path

from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind, mask, redact

__all__ = [
    "MAX_TOKEN_FILE_BYTES",
    "NO_TOKEN",
    "NoToken",
    "TOKEN_ENV_VARS",
    "Token",
    "read_token_file",
    "redact",
    "require_token",
    "resolve_token",
    "token_file_path",
]

MAX_TOKEN_FILE_BYTES = 64 * 1024
"""A token file larger than this is not a token file."""

_PRINTABLE = re.compile(r"[\x21-\x7e]+")

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
        if not isinstance(secret, str) or not _PRINTABLE.fullmatch(secret):
            # A header value cannot hold a line break (aiohttp would refuse it deep in a request)
            # or non-ASCII text: say so now, without showing the secret.
            raise HuggingFaceError(
                HuggingFaceErrorKind.CONFIG,
                f"the token from {source} is not a token: it holds a line break, a space, a control "
                "character or non-ASCII text; copy it again from https://huggingface.co/settings/tokens",
            )
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


class NoToken:
    """The type of :data:`NO_TOKEN`: an explicit "no token", never looked up elsewhere."""

    __slots__ = ()
    _instance: NoToken | None = None

    def __new__(cls) -> NoToken:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_TOKEN"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "NO_TOKEN"  # unpickles as this module's NO_TOKEN (a Ray worker, a subprocess)


NO_TOKEN = NoToken()
"""Pass as ``token=`` to send no token at all: not the argument, the environment or the token
file (``[llm.auth] anonymous = true``). ``None`` means "look it up the standard way".

>>> resolve_token(NO_TOKEN) is None
True
"""


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
    explicit: str | Token | NoToken | None = None, *, env: Mapping[str, str] | None = None
) -> Token | None:
    """Find a token the standard way, or ``None``. Never raises for a missing token.

    :data:`NO_TOKEN` is ``None`` at once: no variable and no file is read."""
    if isinstance(explicit, Token):
        return explicit
    if isinstance(explicit, NoToken):
        return None
    value = _clean(explicit)
    if value:
        return Token(value, "argument")
    env = os.environ if env is None else env
    for name in TOKEN_ENV_VARS:
        value = _clean(env.get(name))
        if value:
            return Token(value, f"env:{name}")
    path = token_file_path(env)
    value = _clean(read_token_file(path, missing_ok=True))
    return Token(value, f"file:{path}") if value else None


def read_token_file(path: str | os.PathLike[str], *, missing_ok: bool = False) -> str | None:
    """The text of a token file: a regular file of at most 64 KiB of UTF-8.

    A missing file is ``None`` with ``missing_ok``; anything else that is not a readable token
    file (a FIFO, a device such as /dev/zero, a directory, a huge or binary file) is ``CONFIG``
    naming the path, never a hang or a memory blow-up.
    """
    where = os.fspath(path)
    try:
        fd = os.open(where, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        if missing_ok:
            return None
        raise HuggingFaceError(HuggingFaceErrorKind.CONFIG, f"token file {where} does not exist") from None
    except OSError as exc:
        raise HuggingFaceError(
            HuggingFaceErrorKind.CONFIG, f"token file {where} cannot be read ({exc.strerror})"
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise HuggingFaceError(
                HuggingFaceErrorKind.CONFIG,
                f"token file {where} is not a regular file; point at the file itself",
            )
        raw = os.read(fd, MAX_TOKEN_FILE_BYTES + 1)
    except OSError as exc:
        raise HuggingFaceError(
            HuggingFaceErrorKind.CONFIG, f"token file {where} cannot be read ({exc.strerror})"
        ) from None
    finally:
        os.close(fd)
    if len(raw) > MAX_TOKEN_FILE_BYTES:
        raise HuggingFaceError(
            HuggingFaceErrorKind.CONFIG,
            f"token file {where} is larger than {MAX_TOKEN_FILE_BYTES // 1024} KiB: that is not a token file",
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HuggingFaceError(HuggingFaceErrorKind.CONFIG, f"token file {where} is not UTF-8 text") from None


def missing_token_message(env: Mapping[str, str] | None = None) -> str:
    path = token_file_path(env)
    return (
        "no Hugging Face token found: looked at the token argument, the environment variables "
        f"{', '.join(TOKEN_ENV_VARS)}, and the token file {path}. Set HF_TOKEN (create a "
        "fine-grained token with 'Make calls to Inference Providers' at "
        "https://huggingface.co/settings/tokens) or run `hfdriver login`"
    )


def require_token(
    explicit: str | Token | NoToken | None = None, *, env: Mapping[str, str] | None = None
) -> Token:
    """Like :func:`resolve_token`, but a missing token is ``HuggingFaceError(kind=CONFIG)``."""
    token = resolve_token(explicit, env=env)
    if token is None:
        raise HuggingFaceError(HuggingFaceErrorKind.CONFIG, missing_token_message(env))
    return token
