"""The protocols every backend implements: :class:`Driver` and :class:`ResponseStream`."""

from __future__ import annotations

import json
from types import TracebackType
from typing import Protocol, runtime_checkable

from hfdriver.dto.request import GenerateRequest
from hfdriver.dto.response import GenerateResponse
from hfdriver.dto.stream import StreamChunk

__all__ = ["Driver", "ResponseStream", "driver_identity"]


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


_SECRET_NAMES = ("token", "key", "secret", "password", "auth", "credential")
_Simple = (str, int, float, bool, type(None))


def _settings(driver: object) -> dict[str, object]:
    """A driver's public settings of plain types (no secret-sounding names): what tells two
    instances of a class that does not say its own identity apart."""
    names: list[str] = list(getattr(driver, "__dict__", {}))
    for cls in type(driver).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        names.extend([slots] if isinstance(slots, str) else slots)
    found: dict[str, object] = {}
    for name in names:
        if name.startswith("_") or any(word in name.lower() for word in _SECRET_NAMES):
            continue
        value = getattr(driver, name, None)
        if isinstance(value, _Simple) or (
            isinstance(value, tuple) and all(isinstance(v, _Simple) for v in value)
        ):
            found[name] = value
    return found


def driver_identity(driver: object) -> str:
    """What separates one driver's answers from another's in a shared cache.

    A driver that defines ``cache_identity()`` says it (hfdriver's drivers do: the server, the
    model file and the settings that shape an answer); for any other driver (a plugin), its class
    and every public setting of a plain type. Never the token.
    """
    cls = type(driver)
    name = f"{cls.__module__}.{cls.__qualname__}"
    own = getattr(driver, "cache_identity", None)
    if callable(own):
        return f"{name} {own()}"
    return f"{name} {json.dumps(_settings(driver), sort_keys=True, default=str)}"
