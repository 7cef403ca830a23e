"""The driver registry: ``provider = "name"`` -> a :class:`Driver`.

Providers come from the ``hfdriver.drivers`` entry-point group, the built-in ones included:
hfdriver's own ``pyproject.toml`` declares ``huggingface``, ``huggingface-endpoint`` and
``huggingface-local`` there, pointing at a :class:`Provider` in each driver's own package, the
way a plugin declares its own. :func:`register_driver` adds one at run time. An entry point may
name a :class:`Provider` or a bare factory ``(config, token) -> Driver``.

This module never imports a driver package: a provider is loaded by name when it is asked for.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs

from hfdriver._compose import compose
from hfdriver.auth import NO_TOKEN, NoToken, Token, read_token_file, resolve_token
from hfdriver.cache import Cache, MemoryCache, SQLiteCache
from hfdriver.config._files import load_config
from hfdriver.config._schema import CacheConfig, Config, LLMConfig, config_error
from hfdriver.driver import Driver
from hfdriver.errors import HuggingFaceError

__all__ = [
    "ENTRY_POINT_GROUP",
    "DriverFactory",
    "Provider",
    "create_driver",
    "driver_factories",
    "get_provider",
    "register_driver",
    "token_for",
]

ENTRY_POINT_GROUP = "hfdriver.drivers"

DriverFactory = Callable[[LLMConfig, Token | NoToken | None], Driver]


@attrs.frozen(slots=True, kw_only=True)
class Provider:
    """A named way to build a driver from an :class:`LLMConfig`.

    Args:
        create: ``(config, token) -> Driver``.
        requires_model: whether ``model`` must be set (the router and endpoints need one; a
            local driver has a default).
        description: one line for listings.
    """

    create: DriverFactory
    requires_model: bool = False
    description: str = ""


_REGISTRY: dict[str, Provider | DriverFactory] = {}


def register_driver(name: str, factory: Provider | DriverFactory, *, requires_model: bool = False) -> None:
    """Make ``provider = name`` create drivers with ``factory`` (a :class:`Provider` or a
    ``(config, token) -> Driver`` callable); it takes precedence over an entry point of that name."""
    if not isinstance(factory, Provider) and requires_model:
        factory = Provider(create=factory, requires_model=True)
    _REGISTRY[name] = factory


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def driver_factories() -> list[str]:
    """Every provider name ``create_driver`` knows: built-in, registered and plugins."""
    return sorted({*_REGISTRY, *_entry_points()})


def _as_provider(value: Any) -> Provider:
    if isinstance(value, Provider):
        return value
    if callable(value):
        return Provider(create=value)
    raise TypeError(f"{value!r} is neither a Provider nor a (config, token) -> Driver callable")


def get_provider(name: str, *, path: Path | None = None, table: str = "llm") -> Provider:
    """The :class:`Provider` called ``name``; ``CONFIG`` naming the known ones when there is none."""
    registered = _REGISTRY.get(name)
    if registered is not None:
        return _as_provider(registered)
    entry = _entry_points().get(name)
    if entry is None:
        raise config_error(
            path,
            f"[{table}] provider {name!r} is not known; known providers: {', '.join(driver_factories())}",
        )
    try:
        return _as_provider(entry.load())
    except Exception as exc:
        raise config_error(path, f"[{table}] the plugin for provider {name!r} failed to load: {exc}") from exc


def token_for(config: LLMConfig, path: Path | None = None, table: str = "llm") -> Token | NoToken | None:
    """The token ``config`` asks for: ``[auth] api_key_env`` or ``token_file``, else the standard
    lookup; :data:`~hfdriver.auth.NO_TOKEN` for ``anonymous = true`` (drivers then look nowhere)."""
    auth = config.auth
    if auth.anonymous:
        return NO_TOKEN
    if auth.api_key_env:
        value = os.environ.get(auth.api_key_env, "").strip()
        if not value:
            raise config_error(
                path,
                f"[{table}.auth] api_key_env names {auth.api_key_env}, which is not set; export it or remove api_key_env",
            )
        return Token(value, f"env:{auth.api_key_env}")
    if auth.token_file:
        file = Path(auth.token_file).expanduser()
        try:
            value = (read_token_file(file) or "").strip()
        except HuggingFaceError as exc:
            raise config_error(path, f"[{table}.auth] {exc.message}") from None
        if not value:
            raise config_error(path, f"[{table}.auth] token_file {file} is empty")
        return Token(value, f"file:{file}")
    return resolve_token()


def build_cache(config: CacheConfig) -> Cache | None:
    """The cache ``[llm.cache]`` describes, or ``None`` when it is off."""
    if not config.enabled:
        return None
    if config.backend == "memory":
        return MemoryCache(ttl=config.ttl, max_bytes=config.max_size or 64 * 1024 * 1024)
    kwargs: dict[str, Any] = {"ttl": config.ttl}
    if config.max_size is not None:
        kwargs["max_bytes"] = config.max_size
    return SQLiteCache(config.path, **kwargs)


def create_driver(
    config: Config | LLMConfig | None = None,
    profile: str | None = None,
    *,
    telemetry: bool = True,
    **overrides: Any,
) -> Driver:
    """A :class:`Driver` for ``config`` (default: :func:`load_config`) and ``profile``.

    ``overrides`` replace settings (``create_driver(config, model="org/name")``). The provider
    builds the core driver; :func:`hfdriver.compose` puts the configuration's request defaults
    (``max_tokens`` / ``temperature``), ``[llm.cache]``, ``fallbacks`` and, with ``telemetry``,
    OpenTelemetry spans around it — for every provider, plugins included.
    """
    if config is None:
        config = load_config()
    path = config.path if isinstance(config, Config) else None
    llm = config.profile(profile) if isinstance(config, Config) else config
    table = f"profiles.{profile}" if profile else "llm"
    if overrides:
        llm = attrs.evolve(llm, **{k: v for k, v in overrides.items() if v is not None})
    provider = get_provider(llm.provider, path=path, table=table)
    if provider.requires_model and not llm.model:
        raise config_error(
            path,
            f'[{table}] model is missing; set model = "org/name" (e.g. "meta-llama/Llama-3.2-1B-Instruct") in hfdriver.toml, or pass --model',
        )
    core = provider.create(llm, token_for(llm, path, table))
    fallbacks = _fallback_routes(llm, config if isinstance(config, Config) else None)
    return compose(
        core,
        defaults={"max_tokens": llm.max_tokens, "temperature": llm.temperature},
        cache=build_cache(llm.cache),
        fallbacks=fallbacks,
        telemetry=telemetry,
        primary=llm.model or profile or "llm",
    )


def _fallback_routes(llm: LLMConfig, config: Config | None) -> list[str | tuple[str, Driver]]:
    """``[llm] fallbacks``: each a profile name (its own driver, composed as that profile says,
    without a span of its own: the composition's span covers it) or a model / route (this
    profile's driver with that model). Fallbacks of fallbacks are not followed."""
    routes: list[str | tuple[str, Driver]] = []
    for name in llm.fallbacks:
        if config is not None and name in config.profiles:
            other = attrs.evolve(config.profile(name), fallbacks=())
            routes.append((f"profile {name}", create_driver(other, telemetry=False)))
        else:
            routes.append(name)
    return routes
