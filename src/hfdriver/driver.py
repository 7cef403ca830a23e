"""The protocols every backend implements: :class:`Driver` and :class:`ResponseStream`."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, runtime_checkable

from hfdriver.dto.request import GenerateRequest
from hfdriver.dto.response import GenerateResponse
from hfdriver.dto.stream import StreamChunk

__all__ = ["Driver", "ResponseStream"]


@runtime_checkable
class ResponseStream(Protocol):
    """A streamed answer: an async iterator of :class:`StreamChunk` and an async context manager.

    Leaving the ``async with`` block (or calling :meth:`aclose`) releases the connection at once,
    whether or not the stream was read to the end.
    """

    def __aiter__(self) -> ResponseStream: ...

    async def __anext__(self) -> StreamChunk: ...

    async def __aenter__(self) -> ResponseStream: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def aclose(self) -> None: ...

    async def collect(self) -> GenerateResponse:
        """Read the rest of the stream into one :class:`GenerateResponse`."""
        ...


@runtime_checkable
class Driver(Protocol):
    """What applications call. ``HuggingFaceDriver`` and ``LocalDriver`` implement it."""

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        """Generate a whole answer."""
        ...

    def generate_stream(self, request: GenerateRequest) -> ResponseStream:
        """Stream an answer; use as ``async with driver.generate_stream(req) as stream``."""
        ...

    async def aclose(self) -> None:
        """Release every resource the driver holds."""
        ...

    async def __aenter__(self) -> Driver: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
