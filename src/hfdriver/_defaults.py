"""``DefaultsDriver``: the one way request defaults are applied.

A thin :class:`Driver` wrapper: configured ``max_tokens`` / ``temperature`` fill requests that
leave them unset, for any driver (plugins included). ``create_driver`` adds it when the
configuration sets either.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, TypeVar

import attrs

from hfdriver.driver import Driver, ResponseStream, driver_identity
from hfdriver.dto.request import GenerateRequest
from hfdriver.dto.response import GenerateResponse

__all__ = ["DefaultsDriver", "DriverWrapper"]

_W = TypeVar("_W", bound="DriverWrapper")


class DriverWrapper:
    """The base of drivers that wrap another: ``async with``, ``aclose`` and every attribute they
    do not define (``validate_token``, ``model``...) pass through to ``inner``."""

    def __init__(self, inner: Driver) -> None:
        self.inner = inner

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        return await self.inner.generate(request)

    def generate_stream(self, request: GenerateRequest) -> ResponseStream:
        return self.inner.generate_stream(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def __aenter__(self: _W) -> _W:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class DefaultsDriver(DriverWrapper):
    """Fills configured request defaults, for any driver."""

    def __init__(
        self, inner: Driver, *, max_tokens: int | None = None, temperature: float | None = None
    ) -> None:
        super().__init__(inner)
        self._defaults = {
            k: v for k, v in (("max_tokens", max_tokens), ("temperature", temperature)) if v is not None
        }

    def _apply(self, request: GenerateRequest) -> GenerateRequest:
        missing: dict[str, Any] = {
            k: v for k, v in self._defaults.items() if getattr(request, k, None) is None
        }
        return (
            attrs.evolve(request, **missing) if missing and isinstance(request, GenerateRequest) else request
        )

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        return await self.inner.generate(self._apply(request))

    def generate_stream(self, request: GenerateRequest) -> ResponseStream:
        return self.inner.generate_stream(self._apply(request))

    def __repr__(self) -> str:
        return f"DefaultsDriver({self.inner!r}, {self._defaults})"

    def cache_identity(self) -> str:
        """The inner driver's identity and these defaults (they shape every answer)."""
        return f"{driver_identity(self.inner)} defaults={sorted(self._defaults.items())}"
