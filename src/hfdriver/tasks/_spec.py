"""The tasks themselves: their names, and how an answer in the Hugging Face tasks specification's
shape (what hf-inference sends, and what the other providers' answers are converted to) reads
into hfdriver's result values."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from hfdriver.tasks._media import Media
from hfdriver.tasks._results import (
    AudioClassificationOutputElement,
    AudioToAudioOutputElement,
    AutomaticSpeechRecognitionOutput,
    AutomaticSpeechRecognitionOutputChunk,
    DocumentQuestionAnsweringOutputElement,
    FillMaskOutputElement,
    ImageClassificationOutputElement,
    ImageSegmentationOutputElement,
    ImageToTextOutput,
    ObjectDetectionBoundingBox,
    ObjectDetectionOutputElement,
    QuestionAnsweringOutputElement,
    SummarizationOutput,
    TableQuestionAnsweringOutputElement,
    TextClassificationOutputElement,
    TextGenerationOutput,
    TokenClassificationOutputElement,
    TranslationOutput,
    VisualQuestionAnsweringOutputElement,
    ZeroShotClassificationOutputElement,
    ZeroShotImageClassificationOutputElement,
    b64_bytes,
    decode_error,
    read,
    read_list,
)

__all__ = ["MEDIA_TASKS", "TASKS", "Task", "task_named"]

Reader = Callable[[Any, str], Any]


def _first(data: Any, task: str) -> Any:
    """One object, also when a server wrapped it in a list (one input's answer)."""
    if isinstance(data, list):
        if not data:
            raise decode_error(task, "is an empty list")
        return data[0]
    return data


def _listing(cls: type) -> Reader:
    return lambda data, task: read_list(cls, data, task)


def _single(cls: type) -> Reader:
    return lambda data, task: read(cls, _first(data, task), task)


def _asr(data: Any, task: str) -> AutomaticSpeechRecognitionOutput:
    data = _first(data, task)
    chunks = data.get("chunks") if isinstance(data, Mapping) else None
    return read(
        AutomaticSpeechRecognitionOutput,
        data,
        task,
        chunks=[read(AutomaticSpeechRecognitionOutputChunk, c, task) for c in chunks]
        if isinstance(chunks, list)
        else None,
    )


def _detections(data: Any, task: str) -> list[ObjectDetectionOutputElement]:
    if not isinstance(data, list):
        raise decode_error(task, f"is {type(data).__name__}, not a list of detections")
    return [
        read(
            ObjectDetectionOutputElement,
            item,
            task,
            box=read(ObjectDetectionBoundingBox, _get(item, "box", task), task),
        )
        for item in data
    ]


def _get(item: Any, name: str, task: str) -> Any:
    if not isinstance(item, Mapping) or name not in item:
        raise decode_error(task, f"has an item without {name!r}")
    return item[name]


def _segments(data: Any, task: str) -> list[ImageSegmentationOutputElement]:
    if not isinstance(data, list):
        raise decode_error(task, f"is {type(data).__name__}, not a list of segments")
    found = []
    for item in data:
        mask = item.get("mask") if isinstance(item, Mapping) else None
        if isinstance(mask, Media) or mask is None:  # fal sends the mask as an image of its own
            media = mask
        else:
            media = Media.of(b64_bytes(mask, task, "a mask"), "image/png")
        found.append(read(ImageSegmentationOutputElement, item, task, mask=media))
    return found


def _audio_list(data: Any, task: str) -> list[AudioToAudioOutputElement]:
    if not isinstance(data, list):
        raise decode_error(task, f"is {type(data).__name__}, not a list of sounds")
    found = []
    for item in data:
        blob = b64_bytes(_get(item, "blob", task), task, "a sound")
        declared = item.get("content-type") or item.get("content_type")
        media = Media.of(blob, declared if isinstance(declared, str) else None)
        found.append(read(AudioToAudioOutputElement, item, task, blob=blob, content_type=media.content_type))
    return found


def _zero_shot(data: Any, task: str) -> list[ZeroShotClassificationOutputElement]:
    data = _first(data, task)
    if isinstance(data, Mapping) and "labels" in data:  # hf-inference: parallel lists, sorted
        labels, scores = data.get("labels"), data.get("scores")
        if not isinstance(labels, list) or not isinstance(scores, list) or len(labels) != len(scores):
            raise decode_error(task, "holds labels and scores that do not pair up")
        return [
            read(ZeroShotClassificationOutputElement, {"label": lb, "score": s}, task)
            for lb, s in zip(labels, scores, strict=True)
        ]
    return read_list(ZeroShotClassificationOutputElement, data, task)


def _numbers(data: Any, task: str) -> list[float]:
    data = data[0] if isinstance(data, list) and data and isinstance(data[0], list) else data
    if not isinstance(data, list) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in data
    ):
        raise decode_error(task, "is not a list of numbers")
    return [float(v) for v in data]


def _values(data: Any, task: str) -> list[Any]:
    if not isinstance(data, list) or not all(
        isinstance(v, (int, float, str)) and not isinstance(v, bool) for v in data
    ):
        raise decode_error(task, "is not a list of values")
    return list(data)


def _arrays(data: Any, task: str) -> Any:
    """feature-extraction: the arrays as the server sent them (any depth), checked to be numbers."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(value)
        elif not isinstance(value, (int, float)) or isinstance(value, bool):
            raise decode_error(task, f"holds {type(value).__name__} among its numbers")
    if not isinstance(data, list):
        raise decode_error(task, "is not an array")
    return data


def _generated(data: Any, task: str) -> TextGenerationOutput:
    return read(TextGenerationOutput, _first(data, task), task)


def _media(data: Any, task: str) -> Media:
    if isinstance(data, Media):
        return data
    raise decode_error(task, "is not media")


@attrs.frozen(slots=True)
class Task:
    """A Hugging Face task: its name (``text-to-image``), its ``TaskClient`` method and how an
    answer in the specification's shape reads."""

    name: str
    read: Reader
    media_input: bool = False
    """The input is an image or a sound (bytes, a path or a URL)."""
    media_output: bool = False
    """The answer is bytes (an image, a sound, a video)."""

    @property
    def method(self) -> str:
        return self.name.replace("-", "_")


TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task("audio-classification", _listing(AudioClassificationOutputElement), media_input=True),
        Task("audio-to-audio", _audio_list, media_input=True),
        Task("automatic-speech-recognition", _asr, media_input=True),
        Task(
            "document-question-answering", _listing(DocumentQuestionAnsweringOutputElement), media_input=True
        ),
        Task("feature-extraction", _arrays),
        Task("fill-mask", _listing(FillMaskOutputElement)),
        Task("image-classification", _listing(ImageClassificationOutputElement), media_input=True),
        Task("image-segmentation", _segments, media_input=True),
        Task("image-to-image", _media, media_input=True, media_output=True),
        Task("image-to-text", _single(ImageToTextOutput), media_input=True),
        Task("image-to-video", _media, media_input=True, media_output=True),
        Task("object-detection", _detections, media_input=True),
        Task("question-answering", _single(QuestionAnsweringOutputElement)),
        Task("sentence-similarity", _numbers),
        Task("summarization", _single(SummarizationOutput)),
        Task("table-question-answering", _single(TableQuestionAnsweringOutputElement)),
        Task("tabular-classification", _values),
        Task("tabular-regression", _numbers),
        Task("text-classification", _listing(TextClassificationOutputElement)),
        Task("text-generation", _generated),
        Task("text-to-image", _media, media_output=True),
        Task("text-to-speech", _media, media_output=True),
        Task("text-to-video", _media, media_output=True),
        Task("token-classification", _listing(TokenClassificationOutputElement)),
        Task("translation", _single(TranslationOutput)),
        Task("visual-question-answering", _listing(VisualQuestionAnsweringOutputElement), media_input=True),
        Task("zero-shot-classification", _zero_shot),
        Task(
            "zero-shot-image-classification",
            _listing(ZeroShotImageClassificationOutputElement),
            media_input=True,
        ),
    )
}
"""Every task of :class:`~hfdriver.tasks.TaskClient`, by its Hugging Face name."""
MEDIA_TASKS = frozenset(name for name, task in TASKS.items() if task.media_output)


def task_named(name: str) -> Task:
    found = TASKS.get(name.replace("_", "-"))
    if found is None:
        from hfdriver.errors import invalid_request

        raise invalid_request("task", f"{name!r} is not a task hfdriver knows; one of: {', '.join(TASKS)}")
    return found
