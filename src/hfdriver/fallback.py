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
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import attrs

from hfdriver.driver import Driver, ResponseStream
from hfdriver.dto.request import GenerateRequest
from hfdriver.dto.response import GenerateResponse, RouteFailure
from hfdriver.dto.stream import StreamChunk
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.telemetry import start_chat, traced

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
    }
)
"""Failures that another route may not have: the request moves on to the next route."""


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

    def request_for(self, request: GenerateRequest) -> GenerateRequest:
        model = self.model
        if model is None or not isinstance(request, GenerateRequest):
            return request
        # A route that names its provider (`org/model:provider`) takes no other routing.
        routing = None if ":" in model else request.routing
        return attrs.evolve(request, model=model, routing=routing)

    def key(self, request: GenerateRequest) -> str:
        """The model this route sends ``request`` with: what its breaker is kept for."""
        if self.model is not None:
            return self.model
        model = getattr(request, "model", None) or ""
        routing = getattr(request, "routing", None)
        return f"{model}:{routing}" if routing else model

    def cooling(self, key: str, now: float) -> bool:
        state = self.breakers.get(key)
        return state is not None and state[1] > now


class FallbackDriver:
    """Try ``drivers`` in order (see the module docstring).

    Args:
        drivers: the routes, as drivers, or ``(name, driver)`` pairs; a driver's name defaults to
            its ``model`` / ``base_url``.
        cooldown: seconds a tripped route is skipped.
        trip_after: failures in a row that trip a route.
        instrument: make an OpenTelemetry span around the routes' own (when telemetry is on).

    The answer names its route in ``response.route`` and the routes that failed before it in
    ``response.failed_routes``. Closing the driver closes every route's driver.
    """

    def __init__(
        self,
        drivers: Sequence[Driver | tuple[str, Driver] | Route],
        *,
        cooldown: float = 30.0,
        trip_after: int = 2,
        instrument: bool = True,
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
        self._instrument = instrument

    def __repr__(self) -> str:
        return f"FallbackDriver({[r.name for r in self.routes]!r})"

    def __getattr__(self, name: str) -> Any:
        # `model`, `validate_token`... of the first route (the primary one).
        return getattr(self.routes[0].driver, name)

    # ------------------------------------------------------------------ routing
    def order(self, request: GenerateRequest) -> list[Route]:
        """The routes to try for ``request`` now: those not cooling down for the model each would
        send it with, in order (all of them if every one is)."""
        now = time.monotonic()
        ready = [r for r in self.routes if not r.cooling(r.key(request), now)]
        return ready or list(self.routes)

    def succeeded(self, route: Route, request: GenerateRequest) -> None:
        route.breakers.pop(route.key(request), None)

    def failed(
        self, route: Route, request: GenerateRequest, error: HuggingFaceError, following: Route | None
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
        request: GenerateRequest,
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

    # ------------------------------------------------------------------ the Driver protocol
    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        call = (
            start_chat(request, model=self.routes[0].name, base_url="fallback:", provider="hfdriver.fallback")
            if self._instrument
            else None
        )
        return await traced(call, lambda: self._generate(request))  # the routes' spans are its children

    async def _generate(self, request: GenerateRequest) -> GenerateResponse:
        failures: list[RouteFailure] = []
        order = self.order(request)
        for index, route in enumerate(order):
            try:
                response = await route.driver.generate(route.request_for(request))
            except HuggingFaceError as exc:
                self.give_up_or_next(request, failures, order, index, exc)
                continue
            self.succeeded(route, request)
            return attrs.evolve(response, route=route.name, failed_routes=tuple(failures))
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def generate_stream(self, request: GenerateRequest) -> FallbackStream:
        return FallbackStream(self, request)

    async def aclose(self) -> None:
        errors = []
        for route in self.routes:
            try:
                await route.driver.aclose()
            except Exception as exc:  # noqa: PERF203 - close every route, whatever one does
                errors.append(exc)
        if errors:
            raise errors[0]

    async def __aenter__(self) -> FallbackDriver:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def _name_of(driver: Driver, index: int) -> str:
    for attr in ("model", "base_url"):
        value = getattr(driver, attr, None)
        if isinstance(value, str) and value:
            return value
    return f"route {index + 1}"


class FallbackStream:
    """A stream that opens on the first route able to deliver its first chunk."""

    def __init__(self, owner: FallbackDriver, request: GenerateRequest) -> None:
        self._owner = owner
        self._request = request
        self._inner: ResponseStream | None = None
        self._route: Route | None = None
        self._first: StreamChunk | None = None
        self._opened = False
        self._ended = False
        self.failed_routes: tuple[RouteFailure, ...] = ()

    @property
    def route(self) -> str | None:
        """The route that is answering."""
        return self._route.name if self._route is not None else None

    async def _open(self) -> None:
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
            self.failed_routes = tuple(failures)
            return

    def __aiter__(self) -> FallbackStream:
        return self

    async def __anext__(self) -> StreamChunk:
        if not self._opened:
            await self._open()
        first, self._first = self._first, None
        if first is not None:
            return first
        if self._ended or self._inner is None:
            raise StopAsyncIteration
        return await self._inner.__anext__()  # after the first chunk, errors are the caller's

    async def __aenter__(self) -> FallbackStream:
        if not self._opened:
            await self._open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._ended = True
        if self._inner is not None:
            await self._inner.aclose()

    async def collect(self) -> GenerateResponse:
        async for _ in self:
            pass
        assert self._inner is not None
        response = await self._inner.collect()
        return attrs.evolve(response, route=self.route, failed_routes=self.failed_routes)

    def response(self) -> GenerateResponse | None:
        """What the answering route delivered so far, naming the route (None before it opened)."""
        so_far = getattr(self._inner, "response", None)
        if not callable(so_far):
            return None
        response: GenerateResponse = so_far()
        return attrs.evolve(response, route=self.route, failed_routes=self.failed_routes)
