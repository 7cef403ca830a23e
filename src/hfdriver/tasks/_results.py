"""What the tasks answer: frozen values whose field names are the Hugging Face tasks
specification's (the names huggingface_hub's output dataclasses use), so code reading
``.label`` / ``.score`` / ``.box.xmin`` / ``.summary_text`` moves over unchanged.

Readers are tolerant: a field a server leaves out is ``None`` (donut's document answers carry no
score), an unknown field is ignored, and a value of the wrong type is a ``DECODE`` error naming
the task — never a silent wrong answer.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs

from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.tasks._media import Media

__all__ = [
    "AudioClassificationOutputElement",
    "AudioToAudioOutputElement",
    "AutomaticSpeechRecognitionOutput",
    "AutomaticSpeechRecognitionOutputChunk",
    "DocumentQuestionAnsweringOutputElement",
    "FillMaskOutputElement",
    "ImageClassificationOutputElement",
    "ImageSegmentationOutputElement",
    "ImageToTextOutput",
    "ObjectDetectionBoundingBox",
    "ObjectDetectionOutputElement",
    "QuestionAnsweringOutputElement",
    "SummarizationOutput",
    "TableQuestionAnsweringOutputElement",
    "TextClassificationOutputElement",
    "TextGenerationOutput",
    "TextGenerationStreamOutput",
    "TextGenerationStreamOutputToken",
    "TokenClassificationOutputElement",
    "TranslationOutput",
    "VisualQuestionAnsweringOutputElement",
    "ZeroShotClassificationOutputElement",
    "ZeroShotImageClassificationOutputElement",
    "decode_error",
    "read",
    "read_list",
]

T = TypeVar("T")
_frozen = attrs.frozen(slots=True, kw_only=True)


def decode_error(task: str, what: str) -> HuggingFaceError:
    return HuggingFaceError(HuggingFaceErrorKind.DECODE, f"the {task} answer {what}")


@_frozen
class TextClassificationOutputElement:
    label: str
    score: float


@_frozen
class AudioClassificationOutputElement:
    label: str
    score: float


@_frozen
class ImageClassificationOutputElement:
    label: str
    score: float


@_frozen
class ZeroShotClassificationOutputElement:
    label: str
    score: float


@_frozen
class ZeroShotImageClassificationOutputElement:
    label: str
    score: float


@_frozen
class TokenClassificationOutputElement:
    word: str
    score: float
    start: int | None = None
    end: int | None = None
    entity_group: str | None = None
    entity: str | None = None


@_frozen
class FillMaskOutputElement:
    score: float
    sequence: str
    token: int | None = None
    token_str: str | None = None


@_frozen
class QuestionAnsweringOutputElement:
    answer: str
    score: float | None = None
    start: int | None = None
    end: int | None = None


@_frozen
class DocumentQuestionAnsweringOutputElement:
    answer: str
    score: float | None = None
    start: int | None = None
    end: int | None = None


@_frozen
class VisualQuestionAnsweringOutputElement:
    answer: str | None = None
    score: float | None = None


@_frozen
class TableQuestionAnsweringOutputElement:
    answer: str
    cells: list[str] = attrs.field(factory=list)
    coordinates: list[list[int]] = attrs.field(factory=list)
    aggregator: str | None = None


@_frozen
class SummarizationOutput:
    summary_text: str


@_frozen
class TranslationOutput:
    translation_text: str


@_frozen
class ImageToTextOutput:
    generated_text: str


@_frozen
class AutomaticSpeechRecognitionOutputChunk:
    text: str
    timestamp: list[float] | None = None


@_frozen
class AutomaticSpeechRecognitionOutput:
    text: str
    chunks: list[AutomaticSpeechRecognitionOutputChunk] | None = None


@_frozen
class ObjectDetectionBoundingBox:
    xmin: int
    ymin: int
    xmax: int
    ymax: int


@_frozen
class ObjectDetectionOutputElement:
    label: str
    score: float
    box: ObjectDetectionBoundingBox


@_frozen
class ImageSegmentationOutputElement:
    label: str
    score: float | None = None
    mask: Media | None = None
    """The mask image (a PNG) as :class:`Media`: ``.data``, ``.content_type``, ``.save(path)``."""


@_frozen
class AudioToAudioOutputElement:
    label: str
    content_type: str
    blob: bytes

    def save(self, path: Any) -> Any:
        return Media(data=self.blob, content_type=self.content_type).save(path)


@_frozen
class TextGenerationOutput:
    generated_text: str
    details: Mapping[str, Any] | None = None


@_frozen
class TextGenerationStreamOutputToken:
    id: int | None = None
    text: str = ""
    logprob: float | None = None
    special: bool = False


@_frozen
class TextGenerationStreamOutput:
    token: TextGenerationStreamOutputToken
    index: int | None = None
    generated_text: str | None = None
    details: Mapping[str, Any] | None = None


# ---------------------------------------------------------------------------- readers
_NUMBER = (int, float)


def _check(task: str, cls: type, name: str, value: Any, expected: Any) -> None:
    if value is None:
        return
    if expected is float and isinstance(value, _NUMBER) and not isinstance(value, bool):
        return
    if expected is int and isinstance(value, int) and not isinstance(value, bool):
        return
    if expected is str and isinstance(value, str):
        return
    if expected not in (float, int, str):
        return
    raise decode_error(task, f"holds {name}={value!r} in {cls.__name__}, not a {expected.__name__}")


_SIMPLE = {
    "str": str,
    "float": float,
    "int": int,
    "str | None": str,
    "float | None": float,
    "int | None": int,
}


_SPECS: dict[type, tuple[tuple[str, bool, Any], ...]] = {}


def _spec(cls: type) -> tuple[tuple[str, bool, Any], ...]:
    """``(name, required, simple type)`` of each field of ``cls`` (worked out once)."""
    found = _SPECS.get(cls)
    if found is None:
        found = _SPECS[cls] = tuple(
            (f.name, f.default is attrs.NOTHING, _SIMPLE.get(str(f.type))) for f in attrs.fields(cls)
        )
    return found


def read(cls: type[T], data: Any, task: str, **fields: Any) -> T:
    """``cls`` from a JSON object: known fields taken (type-checked), unknown ones ignored;
    ``fields`` given here win."""
    if not isinstance(data, Mapping):
        raise decode_error(task, f"holds {type(data).__name__} where an object ({cls.__name__}) belongs")
    values: dict[str, Any] = {}
    for name, required, expected in _spec(cls):
        if name in fields:
            values[name] = fields[name]
            continue
        if name not in data:
            if required:
                raise decode_error(task, f"has no {name!r} in an answer item ({sorted(data)[:8]})")
            continue
        value = data[name]
        if expected is not None:
            _check(task, cls, name, value, expected)
            if expected is float and value is not None:
                value = float(value)
        values[name] = value
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise decode_error(task, f"does not fit {cls.__name__} ({exc})") from None


def read_list(cls: type[T], data: Any, task: str) -> list[T]:
    """A list of ``cls``; one level of extra nesting (``[[...]]`` for one input) is taken off."""
    if isinstance(data, list) and data and isinstance(data[0], list):
        data = data[0]
    if isinstance(data, Mapping):
        data = [data]
    if not isinstance(data, list):
        raise decode_error(task, f"is {type(data).__name__}, not a list of {cls.__name__}")
    return [read(cls, item, task) for item in data]


def b64_bytes(value: Any, task: str, what: str) -> bytes:
    if not isinstance(value, str):
        raise decode_error(task, f"holds {what} as {type(value).__name__}, not base64 text")
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        raise decode_error(task, f"holds {what} that is not base64") from None
