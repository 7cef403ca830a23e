"""The async context manager every client and driver of hfdriver is: ``async with X(...) as x``
returns ``x`` and calls ``x.aclose()`` on the way out, however the block ends."""

from __future__ import annotations

from types import TracebackType
from typing import TypeVar

__all__ = ["Closing"]

_C = TypeVar("_C", bound="Closing")


class Closing:
    """A base for classes with ``async def aclose()``; ``__slots__`` stay available to them."""

    __slots__ = ()

    async def aclose(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    async def __aenter__(self: _C) -> _C:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
