"""Fallback across providers and models: :class:`FallbackDriver`, itself a :class:`Driver`.

Routes are tried in order. A route that fails in a way another route may not (out of credits,
rate-limited after its own retries, overloaded, loading, a server error, a timeout, a connection
failure, the model not served or not found) hands the request to the next one, with one WARNING.
A failure that would happen everywhere (``INVALID_REQUEST``, ``AUTHENTICATION``, ``VALIDATION``,
``BAD_REQUEST``, ``PERMISSION``, content errors) is raised at once. A stream falls back only
while nothing has reached the caller; after its first chunk an error is the caller's.

A route that failed ``trip_after`` times in a row for a model is skipped for ``cooldown`` seconds
for that model (a small circuit breaker, one per route and model: a failing model never sends a
healthy one's requests elsewhere) and tried again after it; when every route is cooling down for
a request they are all tried.
When every route fails, one error of the last kind lists each route and why it failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import attrs

from hfdriver._closing import Closing
from hfdriver._wrapper import embed_with
from hfdriver.driver import Driver, DriverInfo, ResponseStream, describe, driver_identity
from hfdriver.dto.embed import EmbedRequest, EmbedResponse
from hfdriver.dto.request import GenerateRequest
from hfdriver.dto.response import GenerateResponse, RouteFailure
from hfdriver.dto.stream import StreamChunk
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.stream import BaseStream

__all__ = ["FALLBACK_KINDS", "FallbackDriver", "FallbackStream", "Route"]

logger = logging.getLogger("hfdriver")

K = HuggingFaceErrorKind
FALLBACK_KINDS = frozenset(
    {
        K.PAYMENT_REQUIRED,
        K.RATE_LIMITED,
        K.OVERLOADED,
        K.MODEL_LOADING,
        K.SERVER,
        K.TIMEOUT,
        K.CONNECTION,
        K.MODEL_NOT_SUPPORTED,
        K.NOT_FOUND,
        K.CONFIG,  # a route that cannot run here (no token for it, a missing extra): the next may
    }
)
"""Failures that another route may not have: the request moves on to the next route."""


_Req = TypeVar("_Req", GenerateRequest, EmbedRequest)
T = TypeVar("T")

_MAX_BREAKERS = 1024  # models with a failure remembered per route (the oldest forgotten first)


@attrs.define(slots=True)
class Route:
    """One route: a name (for logs and errors), the driver that serves it and, optionally, the
    model it sends every request with (the same driver, another model); with its breakers."""

    name: str
    driver: Driver
    model: str | None = None
    """Requests go with this model (``org/name`` or ``org/name:provider``) instead of their own."""
    breakers: dict[str, tuple[int, float]] = attrs.field(factory=dict)
    """Per model this route was asked for: failures in a row, and until when it is skipped."""

    def request_for(self, request: _Req) -> _Req:
        model = self.model
        if model is None or not isinstance(request, (GenerateRequest, EmbedRequest)):
            return request
        # A route that names its provider (`org/model:provider`) takes no other routing.
        routing = None if ":" in model else request.routing
        return attrs.evolve(request, model=model, routing=routing)

    def key(self, request: GenerateRequest | EmbedRequest) -> str:
        """The model this route sends ``request`` with: what its breaker is kept for."""
        if self.model is not None:
            return self.model
        model = getattr(request, "model", None) or ""
        routing = getattr(request, "routing", None)
        return f"{model}:{routing}" if routing else model

    def cooling(self, key: str, now: float) -> bool:
        state = self.breakers.get(key)
        return state is not None and state[1] > now


class FallbackDriver(Closing):
    """Try ``drivers`` in order (see the module docstring). Chat, streams and embeddings fall back
    alike.

    Args:
        drivers: the routes, as drivers, ``(name, driver)`` pairs or :class:`Route` values (the
            same driver with another ``model``); a driver's name defaults to its model or base URL.
        cooldown: seconds a tripped route is skipped (for the model it failed for).
        trip_after: failures in a row that trip a route.

    The answer names its route in ``response.route`` and the routes that failed before it in
    ``response.failed_routes``. Closing the driver closes every route's driver (once each).
    """

    def __init__(
        self,
        drivers: Sequence[Driver | tuple[str, Driver] | Route],
        *,
        cooldown: float = 30.0,
        trip_after: int = 2,
    ) -> None:
        if not drivers:
            raise HuggingFaceError(K.CONFIG, "FallbackDriver needs at least one driver")
        if not cooldown >= 0 or trip_after < 1:
            raise HuggingFaceError(K.CONFIG, "cooldown must be >= 0 seconds and trip_after >= 1")
        self.routes = [
            item
            if isinstance(item, Route)
            else Route(*item)
            if isinstance(item, tuple)
            else Route(_name_of(item, index), item)
            for index, item in enumerate(drivers)
        ]
        self.cooldown = cooldown
        self.trip_after = trip_after

    def __repr__(self) -> str:
        return f"FallbackDriver({[r.name for r in self.routes]!r})"

    def _drivers(self) -> list[Driver]:
        """Each distinct driver once (model routes share one)."""
        seen: dict[int, Driver] = {}
        for route in self.routes:
            seen.setdefault(id(route.driver), route.driver)
        return list(seen.values())

    def describe(self) -> DriverInfo:
        """The first route's driver; for routes over different drivers, the system is
        ``hfdriver.fallback`` (a span names the answering route in ``hfdriver.route``)."""
        info = describe(self.routes[0].driver)
        if len(self._drivers()) == 1:
            return info
        return attrs.evolve(
            info, name="FallbackDriver", system="hfdriver.fallback", model=self.routes[0].name
        )

    def cache_identity(self) -> str:
        return " | ".join(f"{r.name}={driver_identity(r.driver)}" for r in self.routes)

    @property
    def model(self) -> str | None:
        return describe(self.routes[0].driver).model

    # ------------------------------------------------------------------ routing
    def order(self, request: GenerateRequest | EmbedRequest) -> list[Route]:
        """The routes to try for ``request`` now: those not cooling down for the model each would
        send it with, in order (all of them if every one is)."""
        now = time.monotonic()
        ready = [r for r in self.routes if not r.cooling(r.key(request), now)]
        return ready or list(self.routes)

    def succeeded(self, route: Route, request: GenerateRequest | EmbedRequest) -> None:
        route.breakers.pop(route.key(request), None)

    def failed(
        self,
        route: Route,
        request: GenerateRequest | EmbedRequest,
        error: HuggingFaceError,
        following: Route | None,
    ) -> None:
        key = route.key(request)
        breakers = route.breakers
        failures = breakers.pop(key, (0, 0.0))[0] + 1
        open_until = time.monotonic() + self.cooldown if failures >= self.trip_after else 0.0
        breakers[key] = (failures, open_until)  # re-inserted: the most recent comes last
        if len(breakers) > _MAX_BREAKERS:
            del breakers[next(iter(breakers))]
        if following is not None:
            logger.warning(
                "hfdriver: route %s failed with %s (%s); falling back to %s",
                route.name,
                error.kind.name,
                error.message,
                following.name,
                extra={"hf_kind": error.kind.name, "hf_route": route.name, "hf_next_route": following.name},
            )

    def give_up_or_next(
        self,
        request: GenerateRequest | EmbedRequest,
        failures: list[RouteFailure],
        order: list[Route],
        index: int,
        error: HuggingFaceError,
    ) -> None:
        """Record that ``order[index]`` failed with ``error``; raise unless a route follows it."""
        if not self.falls_back(error):
            raise error
        route = order[index]
        failures.append(RouteFailure(route=route.name, kind=error.kind.name, message=error.message))
        following = order[index + 1] if index + 1 < len(order) else None
        self.failed(route, request, error, following)
        if following is None:
            raise self.exhausted(failures, error) from error

    @staticmethod
    def falls_back(error: BaseException) -> bool:
        return isinstance(error, HuggingFaceError) and error.kind in FALLBACK_KINDS

    @staticmethod
    def exhausted(failures: list[RouteFailure], last: HuggingFaceError) -> HuggingFaceError:
        listing = "; ".join(f"{f.route}: {f.kind} ({f.message})" for f in failures)
        return HuggingFaceError(
            last.kind,
            f"every route failed: {listing}",
            status=last.status,
            request_id=last.request_id,
            provider=last.provider,
            retry_after=last.retry_after,
            retryable=last.retryable,
        )

    async def _first_answer(
        self, request: _Req, call: Callable[[Route, _Req], Awaitable[T]]
    ) -> tuple[T, Route, tuple[RouteFailure, ...]]:
        failures: list[RouteFailure] = []
        order = self.order(request)
        for index, route in enumerate(order):
            try:
                answer = await call(route, route.request_for(request))
            except HuggingFaceError as exc:
                self.give_up_or_next(request, failures, order, index, exc)
                continue
            self.succeeded(route, request)
            return answer, route, tuple(failures)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    # ------------------------------------------------------------------ operations
    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        response, route, failures = await self._first_answer(
            request, lambda route, routed: route.driver.generate(routed)
        )
        return attrs.evolve(response, route=route.name, failed_routes=failures)

    def generate_stream(self, request: GenerateRequest) -> FallbackStream:
        return FallbackStream(self, request)

    async def embed(self, request: EmbedRequest) -> EmbedResponse:
        response, _, _ = await self._first_answer(
            request, lambda route, routed: embed_with(route.driver, routed)
        )
        return response

    async def aclose(self) -> None:
        errors = []
        for driver in self._drivers():
            try:
                await driver.aclose()
            except Exception as exc:  # noqa: PERF203 - close every route, whatever one does
                errors.append(exc)
        if errors:
            raise errors[0]


def _name_of(driver: Driver, index: int) -> str:
    info = describe(driver)
    return info.model or info.base_url or f"route {index + 1}"


class FallbackStream(BaseStream):
    """A stream that opens on the first route able to deliver its first chunk."""

    def __init__(self, owner: FallbackDriver, request: GenerateRequest) -> None:
        self._owner = owner
        self._request = request
        self._inner: ResponseStream | None = None
        self._route: Route | None = None
        self._first: StreamChunk | None = None
        self._opened = False
        self._ended = False
        self._failed: tuple[RouteFailure, ...] = ()

    @property
    def route(self) -> str | None:
        """The route that is answering."""
        return self._route.name if self._route is not None else None

    @property
    def failed_routes(self) -> tuple[RouteFailure, ...]:
        return self._failed

    @property
    def provider(self) -> str | None:
        return self._inner.provider if self._inner is not None else None

    @property
    def request_id(self) -> str | None:
        return self._inner.request_id if self._inner is not None else None

    @property
    def cached(self) -> bool:
        return self._inner.cached if self._inner is not None else False

    @property
    def pending(self) -> int:
        return (self._first is not None) + (self._inner.pending if self._inner is not None else 0)

    async def _open(self) -> None:
        if self._opened:
            return
        self._opened = True
        owner = self._owner
        failures: list[RouteFailure] = []
        request = self._request
        order = owner.order(request)
        for index, route in enumerate(order):
            stream = route.driver.generate_stream(route.request_for(request))
            try:
                await stream.__aenter__()
                try:
                    first: StreamChunk | None = await stream.__anext__()
                except StopAsyncIteration:
                    first = None
            except HuggingFaceError as exc:
                await stream.aclose()
                owner.give_up_or_next(request, failures, order, index, exc)
                continue
            except BaseException:
                await stream.aclose()
                raise
            owner.succeeded(route, request)
            self._inner, self._route, self._first = stream, route, first
            self._ended = first is None
            self._failed = tuple(failures)
            return

    async def __anext__(self) -> StreamChunk:
        if not self._opened:
            await self._open()
        first, self._first = self._first, None
        if first is not None:
            return first
        if self._ended or self._inner is None:
            raise StopAsyncIteration
        return await self._inner.__anext__()  # after the first chunk, errors are the caller's

    async def aclose(self) -> None:
        self._ended = True
        if self._inner is not None:
            await self._inner.aclose()

    async def collect(self) -> GenerateResponse:
        async for _ in self:
            pass
        assert self._inner is not None
        response = await self._inner.collect()
        return attrs.evolve(response, route=self.route, failed_routes=self._failed)

    def response(self) -> GenerateResponse:
        """What the answering route delivered so far, naming the route."""
        if self._inner is None:
            return GenerateResponse(outputs=(), route=None)
        return attrs.evolve(self._inner.response(), route=self.route, failed_routes=self._failed)
