"""``compose``: the one place that decides how the production wrappers sit around a core driver.

::

    InstrumentedDriver ─▶ FallbackDriver ─▶ CachedDriver ─▶ DefaultsDriver ─▶ core driver

- defaults innermost: every route and every cache key sees the request as it will be sent;
- the cache inside the fallback: each route's answers are cached under its own model, and a hit
  never needs a route;
- the span outermost: one span per call, naming the route that answered and the routes that
  failed, with retries (from any route) as its events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hfdriver._defaults import DefaultsDriver
from hfdriver.cache import Cache, CachedDriver
from hfdriver.driver import Driver, describe
from hfdriver.dto.request import validate_model
from hfdriver.fallback import FallbackDriver, Route
from hfdriver.telemetry import InstrumentedDriver, span_retry
from hfdriver.telemetry._spans import _trace
from hfdriver.transport import add_default_retry_hook

__all__ = ["PRIMARY_ROUTE", "compose"]

PRIMARY_ROUTE = "the request's model"
"""The name of the first route when fallbacks are models (it sends each request's own model)."""

_DEFAULT_KEYS = ("max_tokens", "temperature")


def compose(
    driver: Driver,
    *,
    defaults: Mapping[str, Any] | None = None,
    cache: Cache | None = None,
    fallbacks: Sequence[str | Driver | tuple[str, Driver]] = (),
    telemetry: bool = True,
    primary: str | None = None,
    cooldown: float = 30.0,
) -> Driver:
    """``driver`` with request defaults, a response cache, fallbacks and telemetry, in the order
    the module docstring shows. It embeds when ``driver`` does.

    Args:
        driver: the core driver (``HuggingFaceDriver``, ``LocalDriver``, a plugin).
        defaults: ``{"max_tokens": ..., "temperature": ...}`` for requests that leave them unset.
        cache: a :class:`~hfdriver.cache.Cache` (``MemoryCache()``, ``SQLiteCache(path)``).
        fallbacks: other routes, tried in order when one fails in a way another may not: model ids
            (``"org/model"``, ``"org/model:provider"``: the same driver, cache and defaults with that
            model), drivers, or ``(name, driver)`` pairs (composed as their owner wants them).
        telemetry: OpenTelemetry spans and metrics (nothing is made, at about 0.1 µs a call, until
            a tracer or meter provider is set).
        primary: the first route's name in ``response.route`` (default :data:`PRIMARY_ROUTE`).
        cooldown: seconds a route that failed twice in a row is skipped (for that model).

    >>> driver = compose(HuggingFaceDriver(), cache=MemoryCache(), fallbacks=["Qwen/Qwen2.5-7B-Instruct"])  # doctest: +SKIP
    """
    inner: Driver = driver
    if defaults:
        unknown = sorted(set(defaults) - set(_DEFAULT_KEYS))
        if unknown:
            raise TypeError(f"defaults: {unknown} are not request defaults; use {list(_DEFAULT_KEYS)}")
        if any(value is not None for value in defaults.values()):
            inner = DefaultsDriver(inner, **defaults)
    if cache is not None:
        inner = CachedDriver(inner, cache)
    if fallbacks:
        routes: list[Route] = [Route(primary or PRIMARY_ROUTE, inner)]
        for item in fallbacks:
            if isinstance(item, str):
                routes.append(Route(validate_model(item, "fallbacks"), inner, item))
            elif isinstance(item, tuple):
                routes.append(Route(item[0], item[1]))
            else:
                info = describe(item)
                routes.append(Route(info.model or info.base_url or f"route {len(routes) + 1}", item))
        inner = FallbackDriver(routes, cooldown=cooldown)
    if telemetry:
        if _trace is not None:  # retries of any route become events of the call's span
            add_default_retry_hook(span_retry)
        inner = InstrumentedDriver(inner)
    return inner
