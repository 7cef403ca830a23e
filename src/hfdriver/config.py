"""TOML configuration and the provider factory.

A file looks like this (``hfdriver config init`` writes a commented one)::

    [llm]
    provider = "huggingface"          # or "huggingface-endpoint", "huggingface-local", a plugin
    model = "meta-llama/Llama-3.2-1B-Instruct"
    routing = "fastest"               # optional: fastest | cheapest | preferred | <provider>
    max_tokens = 512                  # defaults applied to requests that leave them unset
    temperature = 0.7

    [llm.auth]
    api_key_env = "HUGGINGFACE_API_TOKEN"   # or token_file = "~/.cache/huggingface/token"

    [llm.retry]                      # RetryPolicy fields
    attempts = 4

    [llm.timeouts]                   # Timeouts fields
    read = 120

    [profiles.local-vllm]            # inherits [llm], overrides what it sets
    provider = "huggingface-endpoint"
    base_url = "http://127.0.0.1:8000/v1"

:func:`load_config` finds the file; :func:`create_driver` turns it into a :class:`Driver`.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs

from hfdriver.auth import Token, resolve_token
from hfdriver.driver import Driver
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]

__all__ = [
    "AuthConfig",
    "Config",
    "DriverFactory",
    "ENTRY_POINT_GROUP",
    "LLMConfig",
    "config_search_paths",
    "create_driver",
    "driver_factories",
    "load_config",
    "parse_config",
    "register_driver",
]

ENTRY_POINT_GROUP = "hfdriver.drivers"


@attrs.frozen(slots=True, kw_only=True)
class AuthConfig:
    """Where the token comes from: an environment variable, a file, or the standard lookup."""

    api_key_env: str | None = None
    token_file: str | None = None


@attrs.frozen(slots=True, kw_only=True)
class LLMConfig:
    """The resolved settings of ``[llm]`` or of one profile (already merged over ``[llm]``)."""

    provider: str = "huggingface"
    model: str | None = None
    base_url: str | None = None
    routing: str | None = None
    bill_to: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    auth: AuthConfig = AuthConfig()
    retry: Mapping[str, Any] = attrs.field(factory=dict)
    timeouts: Mapping[str, Any] = attrs.field(factory=dict)
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
            raise _config_error(self.path, f"profile {name!r} is not defined (profiles: {known})") from None


# ---------------------------------------------------------------------------- schema

_SCALARS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "provider": (str, "a string"),
    "model": (str, "a string such as 'meta-llama/Llama-3.2-1B-Instruct'"),
    "base_url": (str, "an http(s):// URL"),
    "routing": (str, "'fastest', 'cheapest', 'preferred' or a provider name"),
    "bill_to": (str, "an organisation name"),
    "max_tokens": (int, "an integer >= 1"),
    "temperature": ((int, float), "a number between 0 and 2"),
}
_TABLES: dict[str, dict[str, tuple[type | tuple[type, ...], str]]] = {
    "auth": {"api_key_env": (str, "an environment variable name"), "token_file": (str, "a file path")},
    "retry": {
        "attempts": (int, "an integer >= 1"),
        "deadline": ((int, float), "seconds"),
        "initial_backoff": ((int, float), "seconds"),
        "max_backoff": ((int, float), "seconds"),
        "jitter": ((int, float), "seconds"),
        "max_retry_after": ((int, float), "seconds"),
    },
    "timeouts": {
        "connect": ((int, float), "seconds"),
        "read": ((int, float), "seconds"),
        "total": ((int, float), "seconds"),
    },
}


def _config_error(path: Path | None, problem: str) -> HuggingFaceError:
    where = str(path) if path is not None else "hfdriver configuration (no file found)"
    return HuggingFaceError(HuggingFaceErrorKind.CONFIG, f"{where}: {problem}")


def _unknown(path: Path | None, table: str, key: str, known: Any) -> HuggingFaceError:
    close = (
        difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
        or [k for k in known if k.startswith(key)][:1]
    )
    hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(known))}"
    return _config_error(path, f"[{table}] key {key!r} is not known{hint}")


def _check_type(
    path: Path | None, table: str, key: str, value: Any, spec: tuple[type | tuple[type, ...], str]
) -> None:
    expected, words = spec
    if isinstance(value, bool) and bool not in (expected if isinstance(expected, tuple) else (expected,)):
        ok = False
    else:
        ok = isinstance(value, expected)
    if not ok:
        raise _config_error(path, f"[{table}] {key} must be {words}, got {type(value).__name__} {value!r}")


def _parse_llm(path: Path | None, table: str, data: Any, base: LLMConfig | None) -> LLMConfig:
    if not isinstance(data, dict):
        raise _config_error(path, f"[{table}] must be a table")
    fields: dict[str, Any] = {}
    for key, value in data.items():
        if key in _SCALARS:
            _check_type(path, table, key, value, _SCALARS[key])
            fields[key] = value
        elif key in _TABLES:
            if not isinstance(value, dict):
                raise _config_error(path, f"[{table}.{key}] must be a table")
            for sub, sub_value in value.items():
                if sub not in _TABLES[key]:
                    raise _unknown(path, f"{table}.{key}", sub, _TABLES[key])
                _check_type(path, f"{table}.{key}", sub, sub_value, _TABLES[key][sub])
            fields[key] = value
        elif key == "options":
            if not isinstance(value, dict):
                raise _config_error(path, f"[{table}.options] must be a table")
            fields[key] = value
        else:
            raise _unknown(path, table, key, [*_SCALARS, *_TABLES, "options"])
    start = base or LLMConfig()
    auth = fields.pop("auth", None)
    merged: dict[str, Any] = {}
    for name in ("retry", "timeouts", "options"):
        if name in fields:
            merged[name] = {**getattr(start, name), **fields.pop(name)}
    if auth is not None:
        merged["auth"] = attrs.evolve(start.auth, **auth)
        if "api_key_env" in auth and "token_file" not in auth:
            merged["auth"] = attrs.evolve(merged["auth"], token_file=None)
        elif "token_file" in auth and "api_key_env" not in auth:
            merged["auth"] = attrs.evolve(merged["auth"], api_key_env=None)
    config = attrs.evolve(start, **fields, **merged)
    _validate(path, table, config)
    return config


def _validate(path: Path | None, table: str, config: LLMConfig) -> None:
    if config.max_tokens is not None and config.max_tokens < 1:
        raise _config_error(path, f"[{table}] max_tokens must be an integer >= 1, got {config.max_tokens}")
    if config.temperature is not None and not 0 <= config.temperature <= 2:
        raise _config_error(path, f"[{table}] temperature must be between 0 and 2, got {config.temperature}")
    if config.base_url is not None and not config.base_url.startswith(("http://", "https://")):
        raise _config_error(path, f"[{table}] base_url must be an http(s):// URL, got {config.base_url!r}")
    if config.auth.api_key_env and config.auth.token_file:
        raise _config_error(path, f"[{table}.auth] set api_key_env or token_file, not both")
    if config.routing is not None:
        from hfdriver.dto.request import validate_routing

        try:
            validate_routing(config.routing)
        except HuggingFaceError as exc:
            raise _config_error(path, f"[{table}] {exc.message}") from None
    for name, cls in (("retry", "RetryPolicy"), ("timeouts", "Timeouts")):
        values = getattr(config, name)
        if values:
            try:
                _build(cls, values)
            except HuggingFaceError as exc:
                raise _config_error(path, f"[{table}.{name}] {exc.message}") from None


def _build(cls: str, values: Mapping[str, Any]) -> Any:
    from hfdriver.huggingface import RetryPolicy, Timeouts

    target = {"RetryPolicy": RetryPolicy, "Timeouts": Timeouts}[cls]
    try:
        return target(**values)
    except ValueError as exc:  # attrs' ge() validator
        raise HuggingFaceError(HuggingFaceErrorKind.CONFIG, str(exc)) from None


def parse_config(data: Mapping[str, Any], path: Path | None = None) -> Config:
    """Validate a parsed TOML document (``[llm]`` and ``[profiles.*]``)."""
    for key in data:
        if key not in ("llm", "profiles"):
            raise _unknown(path, "top level", key, ["llm", "profiles"])
    llm = _parse_llm(path, "llm", data.get("llm", {}), None)
    profiles_data = data.get("profiles", {})
    if not isinstance(profiles_data, dict):
        raise _config_error(path, "[profiles] must hold tables such as [profiles.fast]")
    profiles = {name: _parse_llm(path, f"profiles.{name}", body, llm) for name, body in profiles_data.items()}
    return Config(llm=llm, profiles=profiles, path=path)


def config_search_paths(explicit: str | os.PathLike[str] | None = None) -> list[Path]:
    """Where :func:`load_config` looks, in order."""
    paths = []
    if explicit is not None:
        paths.append(Path(explicit).expanduser())
    env = os.environ.get("HFDRIVER_CONFIG", "").strip()
    if env:
        paths.append(Path(env).expanduser())
    paths.append(Path.cwd() / "hfdriver.toml")
    xdg = os.environ.get("XDG_CONFIG_HOME", "").strip()
    paths.append((Path(xdg) if xdg else Path.home() / ".config") / "hfdriver" / "config.toml")
    return paths


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load the first configuration found: ``path``, ``$HFDRIVER_CONFIG``, ``./hfdriver.toml``,
    ``~/.config/hfdriver/config.toml``. No file at all gives the defaults; an explicit ``path``
    (or ``$HFDRIVER_CONFIG``) that does not exist is a ``CONFIG`` error."""
    candidates = config_search_paths(path)
    explicit_count = (path is not None) + bool(os.environ.get("HFDRIVER_CONFIG", "").strip())
    for index, candidate in enumerate(candidates):
        if not candidate.is_file():
            if index < explicit_count:
                raise _config_error(candidate, "no such file")
            continue
        try:
            data = tomllib.loads(candidate.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise _config_error(candidate, f"not valid TOML: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise _config_error(candidate, f"cannot be read: {exc}") from None
        return parse_config(data, candidate)
    return Config()


# ---------------------------------------------------------------------------- registry

DriverFactory = Callable[[LLMConfig, Token | None], Driver]
_REGISTRY: dict[str, DriverFactory] = {}


def register_driver(name: str, factory: DriverFactory) -> None:
    """Make ``provider = name`` create drivers with ``factory(config, token)``."""
    _REGISTRY[name] = factory


def _plugin_factories() -> dict[str, Callable[[], DriverFactory]]:
    return {ep.name: ep.load for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def driver_factories() -> list[str]:
    """Every provider name ``create_driver`` knows: built-in, registered and plugins."""
    return sorted({*_REGISTRY, *_plugin_factories()})


def _timeouts_and_retry(config: LLMConfig) -> dict[str, Any]:
    from hfdriver.huggingface import RetryPolicy, Timeouts

    return {
        "timeouts": _build("Timeouts", config.timeouts) if config.timeouts else Timeouts(),
        "retry": _build("RetryPolicy", config.retry) if config.retry else RetryPolicy(),
    }


def _router_factory(config: LLMConfig, token: Token | None) -> Driver:
    from hfdriver.huggingface import ROUTER_URL, HuggingFaceDriver

    return HuggingFaceDriver(
        token=token,
        model=config.model,
        base_url=config.base_url or ROUTER_URL,
        routing=config.routing,
        bill_to=config.bill_to,
        **_timeouts_and_retry(config),
    )


def _endpoint_factory(config: LLMConfig, token: Token | None) -> Driver:
    from hfdriver.huggingface import HuggingFaceDriver

    if not config.base_url:
        raise HuggingFaceError(
            HuggingFaceErrorKind.CONFIG,
            "provider 'huggingface-endpoint' needs base_url, e.g. 'http://127.0.0.1:8000/v1' (vLLM), "
            "'http://127.0.0.1:8080/v1' (TGI, llama.cpp) or 'http://127.0.0.1:11434/v1' (Ollama)",
        )
    return HuggingFaceDriver(
        token=token,
        model=config.model,
        base_url=config.base_url,
        routing=config.routing,
        bill_to=config.bill_to,
        **_timeouts_and_retry(config),
    )


_LOCAL_OPTIONS = ("file", "quantization", "device", "context_size", "threads", "chat_format", "chat_template")


def _local_factory(config: LLMConfig, token: Token | None) -> Driver:
    from hfdriver.local import LocalDriver

    for key in config.options:
        if key not in _LOCAL_OPTIONS:
            raise _unknown(None, "llm.options", key, _LOCAL_OPTIONS)
    options = dict(config.options)
    if not config.model or config.model == "default":
        return LocalDriver.default(**options)
    return LocalDriver(config.model, **options)


register_driver("huggingface", _router_factory)
register_driver("huggingface-endpoint", _endpoint_factory)
register_driver("huggingface-local", _local_factory)


def _token_for(config: LLMConfig, path: Path | None, table: str) -> Token | None:
    auth = config.auth
    if auth.api_key_env:
        value = os.environ.get(auth.api_key_env, "").strip()
        if not value:
            raise _config_error(
                path,
                f"[{table}.auth] api_key_env names {auth.api_key_env}, which is not set; export it or remove api_key_env",
            )
        return Token(value, f"env:{auth.api_key_env}")
    if auth.token_file:
        file = Path(auth.token_file).expanduser()
        try:
            value = file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise _config_error(
                path, f"[{table}.auth] token_file {file} cannot be read ({exc.strerror})"
            ) from None
        if not value:
            raise _config_error(path, f"[{table}.auth] token_file {file} is empty")
        return Token(value, f"file:{file}")
    return resolve_token()


def create_driver(
    config: Config | LLMConfig | None = None, profile: str | None = None, **overrides: Any
) -> Driver:
    """A :class:`Driver` for ``config`` (default: :func:`load_config`) and ``profile``.

    ``overrides`` replace settings (``create_driver(config, model="org/name")``). Defaults for
    ``max_tokens`` / ``temperature`` are applied to requests that leave them unset.
    """
    if config is None:
        config = load_config()
    path = config.path if isinstance(config, Config) else None
    llm = config.profile(profile) if isinstance(config, Config) else config
    table = f"profiles.{profile}" if profile else "llm"
    if overrides:
        llm = attrs.evolve(llm, **{k: v for k, v in overrides.items() if v is not None})
    if not llm.model and llm.provider in ("huggingface", "huggingface-endpoint"):
        raise _config_error(
            path,
            f'[{table}] model is missing; set model = "org/name" (e.g. "meta-llama/Llama-3.2-1B-Instruct") in hfdriver.toml, or pass --model',
        )
    factory = _REGISTRY.get(llm.provider)
    if factory is None:
        plugin = _plugin_factories().get(llm.provider)
        if plugin is None:
            raise _config_error(
                path,
                f"[{table}] provider {llm.provider!r} is not known; known providers: {', '.join(driver_factories())}",
            )
        try:
            factory = plugin()
        except Exception as exc:
            raise _config_error(
                path, f"[{table}] the plugin for provider {llm.provider!r} failed to load: {exc}"
            ) from exc
    driver = factory(llm, _token_for(llm, path, table))
    if llm.max_tokens is not None or llm.temperature is not None:
        from hfdriver._defaults import DefaultsDriver

        return DefaultsDriver(driver, max_tokens=llm.max_tokens, temperature=llm.temperature)
    return driver
