"""The protocols every backend implements, and what callers may ask of any driver.

- :class:`Driver`: chat (``generate``, ``generate_stream``), the operation every backend has;
- :class:`Embedder`: ``embed``, for backends that compute embeddings;
- :class:`ResponseStream`: everything other code reads from a stream (chunks, ``response()``,
  ``collect()``, ``provider``, ``request_id``, ``cached``, ``pending``, ``route``...);
- :func:`describe`: a driver's :class:`DriverInfo` (what telemetry, batches and ``serve`` need to
  know of it), from its ``describe()`` or, for a plugin without one, its attributes;
- :func:`driver_identity`: what separates its answers from another's in a shared cache.
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Protocol, runtime_checkable

import attrs

from hfdriver.dto.embed import EmbedRequest, EmbedResponse
from hfdriver.dto.request import GenerateRequest
from hfdriver.dto.response import GenerateResponse, RouteFailure
from hfdriver.dto.stream import StreamChunk

__all__ = ["Driver", "DriverInfo", "Embedder", "ResponseStream", "describe", "driver_identity"]


@runtime_checkable
class ResponseStream(Protocol):
    """A streamed answer: an async iterator of :class:`StreamChunk` and an async context manager.

    Leaving the ``async with`` block (or calling :meth:`aclose`) releases the connection at once,
    whether or not the stream was read to the end. :class:`hfdriver.stream.BaseStream` implements
    the shared part; every stream of hfdriver is one.
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
        """Read the rest of the stream into one :class:`GenerateResponse` (priced, when known)."""
        ...

    def response(self) -> GenerateResponse:
        """What the stream delivered so far, as one :class:`GenerateResponse`."""
        ...

    @property
    def provider(self) -> str | None:
        """Who is answering (the ``x-inference-provider`` header), once known."""
        ...

    @property
    def request_id(self) -> str | None:
        """The server's ``x-request-id``, once known."""
        ...

    @property
    def cached(self) -> bool:
        """Whether the answer is replayed from a cache (or shared with an identical call)."""
        ...

    @property
    def pending(self) -> int:
        """Chunks ready now: the next ``__anext__`` returns without waiting."""
        ...

    @property
    def route(self) -> str | None:
        """The fallback route answering (``None`` without fallbacks)."""
        ...

    @property
    def failed_routes(self) -> tuple[RouteFailure, ...]:
        """Fallback routes that failed before the one answering."""
        ...


@runtime_checkable
class Driver(Protocol):
    """Chat: what applications call. ``HuggingFaceDriver``, ``LocalDriver`` and plugins implement it.

    A driver may also define ``describe() -> DriverInfo`` and ``cache_identity() -> str`` (see
    :func:`describe` and :func:`driver_identity`); without them, both are read from its attributes.
    """

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


@runtime_checkable
class Embedder(Protocol):
    """Embeddings: ``HuggingFaceDriver`` (router, endpoints, any OpenAI-compatible ``/v1``),
    ``LocalDriver`` and the wrappers around them implement it."""

    async def embed(self, request: EmbedRequest) -> EmbedResponse:
        """One vector per input, in input order."""
        ...


@attrs.frozen(slots=True, kw_only=True)
class DriverInfo:
    """What a driver says of itself: for span names and attributes, batches' pacing, ``serve``."""

    name: str
    """The driver's class (``HuggingFaceDriver``), for messages."""
    system: str
    """``gen_ai.provider.name``: ``huggingface``, ``llama_cpp``, a plugin's own."""
    model: str | None = None
    """The default model (requests may name another)."""
    routing: str | None = None
    """The default routing suffix (``fastest``, ``together``...)."""
    base_url: str | None = None
    """Where requests go (no credentials), ``None`` for an in-process model."""
    gate_aware: bool = False
    """Every attempt (retries too) passes the transport's attempt gate (a batch's flow control)."""
    max_retry_after: float | None = None
    """The longest ``Retry-After`` its retry policy honours (a batch's longest shared pause)."""
    read_timeout: float | None = None
    """Silence allowed in a stream (a cache's wait for an identical stream in flight)."""
    total_timeout: float | None = None
    """Time allowed for a unary call (a cache's wait for an identical call in flight)."""


def describe(driver: object) -> DriverInfo:
    """``driver.describe()``, or for a driver without one (a plugin), what its attributes say."""
    own = getattr(driver, "describe", None)
    if callable(own):
        info = own()
        if isinstance(info, DriverInfo):
            return info
    model = getattr(driver, "model", None)
    base_url = getattr(driver, "base_url", None)
    return DriverInfo(
        name=type(driver).__name__,
        system=type(driver).__module__.split(".", 1)[0],
        model=model if isinstance(model, str) else None,
        base_url=base_url if isinstance(base_url, str) else None,
    )


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
