"""Embeddings: :class:`EmbedRequest` (with a builder) and :class:`EmbedResponse`, whose vectors are
held compactly as float32 (:class:`Vectors`).

100,000 vectors of 384 dimensions are 150 MB as float32 in one buffer, and about 1.2 GB as lists
of Python floats: :class:`Vectors` keeps the buffer and hands out rows as zero-copy views.
``to_numpy()`` works when numpy is installed (it is not a dependency).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, overload

import attrs

from hfdriver.dto.request import validate_model, validate_routing
from hfdriver.dto.response import Cost, Usage
from hfdriver.dto.tools import freeze_mapping
from hfdriver.errors import invalid_request

__all__ = ["EmbedRequest", "EmbedRequestBuilder", "EmbedResponse", "Vectors"]


def _inputs(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (bytes, bytearray)) or not isinstance(value, Iterable):
        raise invalid_request("inputs", f"must be a string or a list of strings, got {type(value).__name__}")
    return tuple(value)


def _check_inputs(_inst: object, _attr: object, value: tuple[Any, ...]) -> None:
    if not value:
        raise invalid_request("inputs", "is empty; give at least one text to embed")
    for index, text in enumerate(value):
        if not isinstance(text, str):
            raise invalid_request(f"inputs[{index}]", f"must be a string, got {type(text).__name__}")
        if not text:
            raise invalid_request(f"inputs[{index}]", "is an empty string; servers refuse those")


def _check_dimensions(_inst: object, _attr: object, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise invalid_request("dimensions", f"must be an integer >= 1, got {value!r}")


def _check_model(_inst: object, _attr: object, value: str | None) -> None:
    if value is not None:
        validate_model(value)


def _check_routing(_inst: object, _attr: object, value: str | None) -> None:
    if value is not None:
        validate_routing(value)


@attrs.frozen(slots=True, kw_only=True)
class EmbedRequest:
    """Texts to embed, validated on creation (``INVALID_REQUEST`` naming the field).

    >>> EmbedRequest(inputs="hello", model="BAAI/bge-small-en-v1.5").inputs
    ('hello',)
    """

    inputs: tuple[str, ...] = attrs.field(converter=_inputs, validator=_check_inputs)
    """One string or several; answered in the same order."""
    model: str | None = attrs.field(default=None, validator=_check_model)
    """``org/name``, optionally ``:provider`` (as chat); the driver's default when unset."""
    dimensions: int | None = attrs.field(default=None, validator=_check_dimensions)
    """Fewer dimensions, for models that can truncate their vectors (Matryoshka)."""
    normalize: bool | None = None
    """Unit-length vectors (servers that take the flag: hf-inference, TEI)."""
    truncate: bool | None = None
    """Cut inputs longer than the model's limit instead of refusing them."""
    prompt_name: str | None = None
    """A prompt of the model's configuration to prepend (sentence-transformers ``prompts``)."""
    routing: str | None = attrs.field(default=None, validator=_check_routing)
    """A provider (``together``...) or policy, appended to the model as ``:<routing>``."""
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=freeze_mapping)
    """Provider-specific fields, sent as they are."""

    @staticmethod
    def builder() -> EmbedRequestBuilder:
        return EmbedRequestBuilder()


class EmbedRequestBuilder:
    """Build an :class:`EmbedRequest`; ``build()`` validates.

    >>> EmbedRequest.builder().input("a").input("b").model("org/m").dimensions(64).build().inputs
    ('a', 'b')
    """

    def __init__(self) -> None:
        self._inputs: list[str] = []
        self._fields: dict[str, Any] = {}
        self._extra: dict[str, Any] = {}

    def input(self, text: str) -> EmbedRequestBuilder:
        self._inputs.append(text)
        return self

    def inputs(self, texts: Iterable[str]) -> EmbedRequestBuilder:
        self._inputs.extend(texts)
        return self

    def model(self, model: str) -> EmbedRequestBuilder:
        return self._set("model", model)

    def dimensions(self, value: int) -> EmbedRequestBuilder:
        return self._set("dimensions", value)

    def normalize(self, value: bool = True) -> EmbedRequestBuilder:
        return self._set("normalize", value)

    def truncate(self, value: bool = True) -> EmbedRequestBuilder:
        return self._set("truncate", value)

    def prompt_name(self, name: str) -> EmbedRequestBuilder:
        return self._set("prompt_name", name)

    def routing(self, routing: str) -> EmbedRequestBuilder:
        return self._set("routing", routing)

    def extra(self, **params: Any) -> EmbedRequestBuilder:
        self._extra.update(params)
        return self

    def _set(self, name: str, value: Any) -> EmbedRequestBuilder:
        self._fields[name] = value
        return self

    def build(self) -> EmbedRequest:
        return EmbedRequest(inputs=tuple(self._inputs), extra=dict(self._extra), **self._fields)


_LITTLE = sys.byteorder == "little"


class Vectors(Sequence[Sequence[float]]):
    """``rows`` vectors of ``dimensions`` float32 values in one buffer.

    A row is a zero-copy ``memoryview`` of floats (``len``, indexing, ``tolist()``).

    >>> v = Vectors.from_rows([[1.0, 2.0], [3.0, 4.0]])
    >>> len(v), v.dimensions, v[1].tolist()
    (2, 2, [3.0, 4.0])
    """

    __slots__ = ("_data", "_view", "dimensions", "rows")

    def __init__(self, data: array[float], rows: int, dimensions: int) -> None:
        if data.typecode != "f" or len(data) != rows * dimensions:
            raise ValueError(f"{len(data)} float32 values are not {rows} x {dimensions}")
        self._data = data
        self._view = memoryview(data)
        self.rows = rows
        self.dimensions = dimensions

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[float]]) -> Vectors:
        """Vectors from sequences of numbers, which must all have the same length."""
        data: array[float] = array("f")
        count, width = 0, None
        for row in rows:
            if width is None:
                width = len(row)
            elif len(row) != width:
                raise ValueError(f"vector {count} has {len(row)} values, the first had {width}")
            data.extend(row)
            count += 1
        return cls(data, count, width or 0)

    @classmethod
    def from_bytes(cls, raw: bytes, rows: int, dimensions: int) -> Vectors:
        """Little-endian float32 bytes (OpenAI's ``encoding_format="base64"`` payload, decoded)."""
        data: array[float] = array("f")
        data.frombytes(raw)
        if not _LITTLE:  # pragma: no cover - big-endian machines
            data.byteswap()
        return cls(data, rows, dimensions)

    def tobytes(self) -> bytes:
        """Little-endian float32 bytes, row after row."""
        if _LITTLE:
            return self._data.tobytes()
        copy = array("f", self._data)  # pragma: no cover - big-endian machines
        copy.byteswap()  # pragma: no cover
        return copy.tobytes()  # pragma: no cover

    def __len__(self) -> int:
        return self.rows

    @overload
    def __getitem__(self, index: int) -> memoryview: ...

    @overload
    def __getitem__(self, index: slice) -> list[memoryview]: ...

    def __getitem__(self, index: int | slice) -> memoryview | list[memoryview]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.rows))]
        if index < 0:
            index += self.rows
        if not 0 <= index < self.rows:
            raise IndexError("vector index out of range")
        start = index * self.dimensions
        return self._view[start : start + self.dimensions]

    def __iter__(self) -> Iterator[memoryview]:
        for index in range(self.rows):
            yield self[index]

    def tolist(self) -> list[list[float]]:
        """Lists of Python floats (large: prefer rows, ``tobytes()`` or ``to_numpy()``)."""
        return [list(self._data[i * self.dimensions : (i + 1) * self.dimensions]) for i in range(self.rows)]

    def to_numpy(self) -> Any:
        """A ``(rows, dimensions)`` float32 numpy array sharing this buffer (needs numpy)."""
        try:
            import numpy
        except ImportError:
            raise ImportError("Vectors.to_numpy() needs numpy: pip install numpy") from None
        return numpy.frombuffer(self._data, dtype=numpy.float32).reshape(self.rows, self.dimensions)

    @property
    def nbytes(self) -> int:
        return self.rows * self.dimensions * 4

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vectors):
            return NotImplemented
        return (self.rows, self.dimensions) == (other.rows, other.dimensions) and self._data == other._data

    def __hash__(self) -> int:
        return hash((self.rows, self.dimensions, self._data.tobytes()[:64]))

    def __repr__(self) -> str:
        return f"Vectors({self.rows} x {self.dimensions})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Vectors.from_bytes, (self.tobytes(), self.rows, self.dimensions))


@attrs.frozen(slots=True, kw_only=True)
class EmbedResponse:
    """One vector per input, in input order."""

    vectors: Vectors
    model: str | None = None
    usage: Usage | None = None
    """Input tokens as ``prompt_tokens`` (and ``total_tokens``), when the server counted them."""
    provider: str | None = None
    request_id: str | None = None
    cost: Cost | None = None
    cached: bool = False

    @property
    def dimensions(self) -> int:
        return self.vectors.dimensions

    def to_numpy(self) -> Any:
        """The vectors as a ``(len(inputs), dimensions)`` float32 numpy array (needs numpy)."""
        return self.vectors.to_numpy()
