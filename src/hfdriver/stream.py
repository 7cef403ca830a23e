"""One base for every stream: iteration, ``async with``, ``aclose``, ``collect`` and abandonment.

:class:`BaseStream` is what each backend's stream subclasses: it only decodes its own chunks
(``__anext__``), says how it opens (``_open``), closes (``aclose``), and what to free when it is
dropped unread (``_abandon``). :class:`WrappedStream` is the base of the wrappers' streams
(cache replay, fallback, spans): everything passes to the inner stream explicitly, so a wrapper
overrides only what it changes.
"""

from __future__ import annotations

import contextlib
from types import TracebackType
from typing import TypeVar

from hfdriver.driver import ResponseStream
from hfdriver.dto.response import GenerateResponse, RouteFailure
from hfdriver.dto.stream import StreamChunk

__all__ = ["BaseStream", "WrappedStream"]

_S = TypeVar("_S", bound="BaseStream")


class BaseStream:
    """The shared part of a :class:`~hfdriver.driver.ResponseStream` (see the module docstring).

    Subclasses implement ``__anext__``, ``aclose`` and ``response``; they may override ``_open``
    (sending the request: ``async with`` opens the stream before the block runs, so an error
    surfaces there), ``_completed`` (what ``collect`` adds, a price) and ``_abandon`` (what to
    free at once when the stream is dropped without ``aclose``).
    """

    __slots__ = ()

    # ------------------------------------------------------------------ what every stream says
    @property
    def provider(self) -> str | None:
        return None

    @property
    def request_id(self) -> str | None:
        return None

    @property
    def cached(self) -> bool:
        return False

    @property
    def pending(self) -> int:
        return 0

    @property
    def route(self) -> str | None:
        return None

    @property
    def failed_routes(self) -> tuple[RouteFailure, ...]:
        return ()

    def response(self) -> GenerateResponse:  # pragma: no cover - every stream defines it
        raise NotImplementedError

    # ------------------------------------------------------------------ iteration and lifecycle
    def __aiter__(self: _S) -> _S:
        return self

    async def __anext__(self) -> StreamChunk:  # pragma: no cover - every stream defines it
        raise NotImplementedError

    async def _open(self) -> None:
        """Send the request (once); a stream that opens lazily does nothing here."""

    async def __aenter__(self: _S) -> _S:
        await self._open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:  # pragma: no cover - every stream defines it
        raise NotImplementedError

    async def collect(self) -> GenerateResponse:
        """Read the rest and return everything the stream delivered as one response."""
        async for _ in self:
            pass
        return await self._completed(self.response())

    async def _completed(self, response: GenerateResponse) -> GenerateResponse:
        return response

    def _abandon(self) -> None:
        """Free what the stream holds, synchronously (it was dropped without ``aclose``)."""

    def __del__(self) -> None:
        # A caller that breaks out of a bare `async for` drops the stream: free it now. A
        # finalizer must not raise (the loop may already be closed at interpreter exit).
        with contextlib.suppress(Exception):
            self._abandon()


class WrappedStream(BaseStream):
    """A stream around another: every member passes to ``inner`` unless the wrapper overrides it."""

    __slots__ = ("inner",)

    def __init__(self, inner: ResponseStream) -> None:
        self.inner = inner

    @property
    def provider(self) -> str | None:
        return self.inner.provider

    @property
    def request_id(self) -> str | None:
        return self.inner.request_id

    @property
    def cached(self) -> bool:
        return self.inner.cached

    @property
    def pending(self) -> int:
        return self.inner.pending

    @property
    def route(self) -> str | None:
        return self.inner.route

    @property
    def failed_routes(self) -> tuple[RouteFailure, ...]:
        return self.inner.failed_routes

    def response(self) -> GenerateResponse:
        return self.inner.response()

    async def __anext__(self) -> StreamChunk:
        return await self.inner.__anext__()

    async def _open(self) -> None:
        await self.inner.__aenter__()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def collect(self) -> GenerateResponse:
        async for _ in self:
            pass
        return await self._completed(await self.inner.collect())
