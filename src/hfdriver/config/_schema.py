"""The configuration's schema: what ``[llm]`` and ``[profiles.*]`` may hold, checked once.

(The package docstring, :mod:`hfdriver.config`, shows a whole file.)

:func:`parse_config` validates a parsed document into frozen values; ``retry`` and ``timeouts``
are held as the :class:`RetryPolicy` and :class:`Timeouts` every client takes.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from hfdriver.dto.request import validate_routing
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.transport import RetryPolicy, Timeouts

__all__ = [
    "AuthConfig",
    "CacheConfig",
    "Config",
    "LLMConfig",
    "config_error",
    "parse_config",
    "unknown_key_error",
]


@attrs.frozen(slots=True, kw_only=True)
class AuthConfig:
    """Where the token comes from: an environment variable, a file, the standard lookup, or
    nowhere (``anonymous = true``: a local server that takes no token)."""

    api_key_env: str | None = None
    token_file: str | None = None
    anonymous: bool = False


@attrs.frozen(slots=True, kw_only=True)
class CacheConfig:
    """``[llm.cache]``: a response cache in front of the driver (on when the table is present)."""

    enabled: bool = False
    backend: str = "sqlite"
    """``sqlite`` (a file shared by processes) or ``memory`` (this process only)."""
    path: str | None = None
    """The SQLite file; defaults to ``$HF_HOME/hfdriver/cache.sqlite``."""
    ttl: float | None = None
    """Seconds an answer stays valid; unset: until evicted."""
    max_size: int | None = None
    """Bytes kept at most (``max_size = "512MB"`` works too); least recently used go first."""


_SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def parse_size(value: Any) -> int:
    """``1048576``, ``"512MB"``, ``"1 GiB"`` -> bytes; ``ValueError`` otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        number, unit = float(value), ""
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        digits = text.rstrip("kmgib")
        number, unit = float(digits), text[len(digits) :]
    else:
        raise ValueError(value)
    if unit not in _SIZE_UNITS or not number > 0:
        raise ValueError(value)
    size = int(number * _SIZE_UNITS[unit])
    if size < 1:  # "0.5" bytes: a cache that can hold nothing
        raise ValueError(value)
    return size


@attrs.frozen(slots=True, kw_only=True)
class LLMConfig:
    """The resolved settings of ``[llm]`` or of one profile (already merged over ``[llm]``)."""

    provider: str = "huggingface"
    model: str | None = None
    embedding_model: str | None = None
    """The model ``embed`` uses when a request names none (``hfdriver embed``, ``serve``'s
    ``/v1/embeddings``); the chat ``model`` otherwise."""
    base_url: str | None = None
    routing: str | None = None
    bill_to: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    costs: bool | None = None
    """Fill ``response.cost`` from the router's prices (default: on for the router)."""
    fallbacks: tuple[str, ...] = ()
    """Routes tried in order when this one fails in a way they may not: models, ``model:provider``
    routes, or names of profiles."""
    auth: AuthConfig = AuthConfig()
    cache: CacheConfig = CacheConfig()
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    timeouts: Timeouts = attrs.field(factory=Timeouts)
    options: Mapping[str, Any] = attrs.field(factory=dict)
    """Free-form settings for third-party drivers (``[llm.options]``)."""


@attrs.frozen(slots=True, kw_only=True)
class Config:
    """A loaded configuration file (``path`` is None when no file was found)."""

    llm: LLMConfig = LLMConfig()
    profiles: Mapping[str, LLMConfig] = attrs.field(factory=dict)
    path: Path | None = None

    def profile(self, name: str | None = None) -> LLMConfig:
        """``[llm]``, or profile ``name`` merged over it."""
        if name is None:
            return self.llm
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles)) or "none defined"
            raise config_error(self.path, f"profile {name!r} is not defined (profiles: {known})") from None


# ---------------------------------------------------------------------------- schema

_SCALARS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "provider": (str, "a string"),
    "model": (str, "a string such as 'meta-llama/Llama-3.2-1B-Instruct'"),
    "embedding_model": (str, "a string such as 'BAAI/bge-small-en-v1.5'"),
    "base_url": (str, "an http(s):// URL"),
    "routing": (str, "'fastest', 'cheapest', 'preferred' or a provider name"),
    "bill_to": (str, "an organisation name"),
    "max_tokens": (int, "an integer >= 1"),
    "temperature": ((int, float), "a number between 0 and 2"),
    "costs": (bool, "true or false"),
    "fallbacks": (list, "a list of models, 'model:provider' routes or profile names"),
}
_TABLES: dict[str, dict[str, tuple[type | tuple[type, ...], str]]] = {
    "auth": {
        "api_key_env": (str, "an environment variable name"),
        "token_file": (str, "a file path"),
        "anonymous": (bool, "true (send no token) or false"),
    },
    "retry": {
        "attempts": (int, "an integer >= 1"),
        "deadline": ((int, float), "seconds"),
        "initial_backoff": ((int, float), "seconds"),
        "max_backoff": ((int, float), "seconds"),
        "jitter": ((int, float), "seconds"),
        "max_retry_after": ((int, float), "seconds"),
    },
    "cache": {
        "enabled": (bool, "true or false"),
        "backend": (str, "'sqlite' or 'memory'"),
        "path": (str, "a file path"),
        "ttl": ((int, float), "seconds"),
        "max_size": ((int, str), "bytes, or a size such as '512MB'"),
    },
    "timeouts": {
        "connect": ((int, float), "seconds"),
        "read": ((int, float), "seconds"),
        "total": ((int, float), "seconds"),
    },
}


def config_error(path: Path | None, problem: str) -> HuggingFaceError:
    """A ``CONFIG`` error naming the file (or that none was found) and the problem."""
    where = str(path) if path is not None else "hfdriver configuration (no file found)"
    return HuggingFaceError(HuggingFaceErrorKind.CONFIG, f"{where}: {problem}")


def unknown_key_error(path: Path | None, table: str, key: str, known: Iterable[str]) -> HuggingFaceError:
    """``[table] key 'x' is not known; did you mean 'y'?`` (or the known keys)."""
    known = list(known)
    close = (
        difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
        or [k for k in known if k.startswith(key)][:1]
    )
    hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(known))}"
    return config_error(path, f"[{table}] key {key!r} is not known{hint}")


def _check_type(
    path: Path | None, table: str, key: str, value: Any, spec: tuple[type | tuple[type, ...], str]
) -> None:
    expected, words = spec
    if isinstance(value, bool) and bool not in (expected if isinstance(expected, tuple) else (expected,)):
        ok = False
    else:
        ok = isinstance(value, expected)
    if not ok:
        raise config_error(path, f"[{table}] {key} must be {words}, got {type(value).__name__} {value!r}")


def _parse_llm(path: Path | None, table: str, data: Any, base: LLMConfig | None) -> LLMConfig:
    if not isinstance(data, dict):
        raise config_error(path, f"[{table}] must be a table")
    fields: dict[str, Any] = {}
    for key, value in data.items():
        if key in _SCALARS:
            _check_type(path, table, key, value, _SCALARS[key])
            if key == "fallbacks":
                if not all(isinstance(item, str) and item.strip() for item in value):
                    raise config_error(
                        path, f"[{table}] fallbacks must be a list of non-empty strings, got {value!r}"
                    )
                value = tuple(value)
            fields[key] = value
        elif key in _TABLES:
            if not isinstance(value, dict):
                raise config_error(path, f"[{table}.{key}] must be a table")
            for sub, sub_value in value.items():
                if sub not in _TABLES[key]:
                    raise unknown_key_error(path, f"{table}.{key}", sub, _TABLES[key])
                _check_type(path, f"{table}.{key}", sub, sub_value, _TABLES[key][sub])
            fields[key] = value
        elif key == "options":
            if not isinstance(value, dict):
                raise config_error(path, f"[{table}.options] must be a table")
            fields[key] = value
        else:
            raise unknown_key_error(path, table, key, [*_SCALARS, *_TABLES, "options"])
    start = base or LLMConfig()
    if base is not None and fields.get("provider") == "huggingface-local" != start.provider:
        # A local profile does not inherit what belongs to [llm]'s provider: its model (a router
        # model id is no GGUF: no model means the embedded one), base_url, routing and options.
        start = attrs.evolve(start, model=None, base_url=None, routing=None, options={})
    auth = fields.pop("auth", None)
    merged: dict[str, Any] = {}
    if "options" in fields:
        merged["options"] = {**start.options, **fields.pop("options")}
    for name in ("retry", "timeouts"):
        if name in fields:
            try:  # the values validate themselves, once: a profile's table merges over [llm]'s
                merged[name] = attrs.evolve(getattr(start, name), **fields.pop(name))
            except HuggingFaceError as exc:
                raise config_error(path, f"[{table}.{name}] {exc.message}") from None
    if "cache" in fields:
        merged["cache"] = _parse_cache(path, table, start.cache, fields.pop("cache"))
    if auth is not None:
        # A profile's auth table names one source, which replaces the inherited one.
        sources = {"api_key_env": None, "token_file": None, "anonymous": False}
        merged["auth"] = AuthConfig(**(sources | auth)) if set(auth) & set(sources) else start.auth
    config = attrs.evolve(start, **fields, **merged)
    _validate(path, table, config)
    return config


def _parse_cache(path: Path | None, table: str, start: CacheConfig, data: dict[str, Any]) -> CacheConfig:
    where = f"[{table}.cache]"
    values = dict(data)
    values.setdefault("enabled", True)  # the table's presence turns the cache on
    if "max_size" in values:
        try:
            values["max_size"] = parse_size(values["max_size"])
        except (ValueError, OverflowError):
            raise config_error(
                path,
                f"{where} max_size must be a whole number of bytes (at least 1) or a size such as '512MB', "
                f"got {values['max_size']!r}",
            ) from None
    if "ttl" in values and not values["ttl"] > 0:
        raise config_error(path, f"{where} ttl must be seconds > 0, got {values['ttl']!r}")
    if values.get("backend", start.backend) not in ("sqlite", "memory"):
        raise config_error(path, f"{where} backend must be 'sqlite' or 'memory', got {values['backend']!r}")
    return attrs.evolve(start, **values)


def _validate(path: Path | None, table: str, config: LLMConfig) -> None:
    if config.max_tokens is not None and config.max_tokens < 1:
        raise config_error(path, f"[{table}] max_tokens must be an integer >= 1, got {config.max_tokens}")
    if config.temperature is not None and not 0 <= config.temperature <= 2:
        raise config_error(path, f"[{table}] temperature must be between 0 and 2, got {config.temperature}")
    if config.base_url is not None and not config.base_url.startswith(("http://", "https://")):
        raise config_error(path, f"[{table}] base_url must be an http(s):// URL, got {config.base_url!r}")
    if sum((bool(config.auth.api_key_env), bool(config.auth.token_file), config.auth.anonymous)) > 1:
        raise config_error(
            path, f"[{table}.auth] set api_key_env or token_file, not both (or anonymous = true alone)"
        )
    if config.routing is not None:
        try:
            validate_routing(config.routing)
        except HuggingFaceError as exc:
            raise config_error(path, f"[{table}] {exc.message}") from None


def parse_config(data: Mapping[str, Any], path: Path | None = None) -> Config:
    """Validate a parsed TOML document (``[llm]`` and ``[profiles.*]``)."""
    for key in data:
        if key not in ("llm", "profiles"):
            raise unknown_key_error(path, "top level", key, ["llm", "profiles"])
    llm = _parse_llm(path, "llm", data.get("llm", {}), None)
    profiles_data = data.get("profiles", {})
    if not isinstance(profiles_data, dict):
        raise config_error(path, "[profiles] must hold tables such as [profiles.fast]")
    profiles = {name: _parse_llm(path, f"profiles.{name}", body, llm) for name, body in profiles_data.items()}
    return Config(llm=llm, profiles=profiles, path=path)
