"""``DefaultsDriver``: the one way request defaults are applied.

A thin wrapper: configured ``max_tokens`` / ``temperature`` fill requests that leave them unset,
for any driver (plugins included). :func:`hfdriver.compose` adds it when defaults are given (the
configuration's ``max_tokens`` / ``temperature``).
"""

from __future__ import annotations

from typing import Any

import attrs

from hfdriver._wrapper import DriverWrapper
from hfdriver.driver import Driver, ResponseStream, driver_identity
from hfdriver.dto.request import GenerateRequest
from hfdriver.dto.response import GenerateResponse

__all__ = ["DefaultsDriver", "DriverWrapper"]


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
