"""``DriverWrapper``: the one base of every driver that wraps another (defaults, cache, fallback,
spans). It forwards each operation explicitly — chat, stream, embeddings, ``describe``,
``cache_identity``, closing — and nothing else: there is no attribute pass-through, so a call can
never skip a wrapper silently, and an operation the inner driver lacks is a clear error.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

from hfdriver._closing import Closing
from hfdriver.driver import Driver, DriverInfo, ResponseStream, describe, driver_identity
from hfdriver.dto.embed import EmbedRequest, EmbedResponse
from hfdriver.dto.request import GenerateRequest
from hfdriver.dto.response import GenerateResponse
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

__all__ = ["DriverWrapper", "core_of", "embed_with", "layers"]

_W = TypeVar("_W", bound="DriverWrapper")


async def embed_with(driver: object, request: EmbedRequest) -> EmbedResponse:
    """``driver.embed(request)``; ``MODEL_NOT_SUPPORTED`` naming the driver when it has no
    ``embed`` (a fallback then moves on to a route that has)."""
    embed = getattr(driver, "embed", None)
    if not callable(embed):
        info = describe(driver)
        raise HuggingFaceError(
            HuggingFaceErrorKind.MODEL_NOT_SUPPORTED,
            f"{info.name} does not compute embeddings; use a driver that does (HuggingFaceDriver, "
            "LocalDriver)",
        )
    response: EmbedResponse = await embed(request)
    return response


class DriverWrapper(Closing):
    """A driver around ``inner``; subclasses override the operations they change."""

    def __init__(self, inner: Driver) -> None:
        self.inner = inner

    # ------------------------------------------------------------------ operations
    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        return await self.inner.generate(request)

    def generate_stream(self, request: GenerateRequest) -> ResponseStream:
        return self.inner.generate_stream(request)

    async def embed(self, request: EmbedRequest) -> EmbedResponse:
        return await embed_with(self.inner, request)

    # ------------------------------------------------------------------ what it is
    def describe(self) -> DriverInfo:
        return describe(self.inner)

    def cache_identity(self) -> str:
        return driver_identity(self.inner)

    @property
    def model(self) -> str | None:
        """The default model of the driver inside."""
        return self.describe().model

    # ------------------------------------------------------------------ lifecycle
    async def aclose(self) -> None:
        await self.inner.aclose()


def layers(driver: object) -> Iterator[object]:
    """The drivers of a composition from the outside in: every wrapper, through a fallback's
    first route, down to the core driver."""
    for _ in range(64):
        yield driver
        if isinstance(driver, DriverWrapper):
            driver = driver.inner
            continue
        routes = getattr(driver, "routes", None)
        if isinstance(routes, list) and routes and hasattr(routes[0], "driver"):
            driver = routes[0].driver
            continue
        return


def core_of(driver: object) -> object:
    """The core driver inside a composition: what ``create_driver`` built from the provider."""
    *_, core = layers(driver)
    return core
