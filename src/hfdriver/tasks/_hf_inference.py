"""hf-inference, Hugging Face's own provider: every task, at ``/hf-inference/models/{id}``
(``/pipeline/{task}`` for feature-extraction and sentence-similarity), answering in the task
specification's shape itself.

Bodies (as huggingface_hub sends them): ``{"inputs": ..., "parameters": {...}}``;
feature-extraction puts its parameters at the root; an image or a sound goes as the raw body when
there are no parameters, else base64 in ``inputs``; document QA sends ``{"inputs": {"question",
"image"}}``, visual QA the question and image at the root as well.
Media answers (text-to-image, text-to-speech, image-to-image) are the bytes themselves.
"""

from __future__ import annotations

import base64
from typing import Any

import attrs

from hfdriver.tasks._call import Answer, Done, Outcome, Send, TaskCall
from hfdriver.tasks._media import Media, sniff

__all__ = ["HF_INFERENCE_TASKS", "hf_inference_read", "hf_inference_send"]

_PIPELINE = frozenset({"feature-extraction", "sentence-similarity"})
_IMAGES = frozenset({"text-to-image", "image-to-image"})
_TABULAR = frozenset({"tabular-classification", "tabular-regression"})

HF_INFERENCE_TASKS = frozenset(
    {
        "audio-classification", "audio-to-audio", "automatic-speech-recognition",
        "document-question-answering", "feature-extraction", "fill-mask", "image-classification",
        "image-segmentation", "image-to-image", "image-to-text", "object-detection",
        "question-answering", "sentence-similarity", "summarization", "table-question-answering",
        "tabular-classification", "tabular-regression", "text-classification", "text-generation",
        "text-to-image", "text-to-speech", "token-classification", "translation",
        "visual-question-answering", "zero-shot-classification", "zero-shot-image-classification",
    }
)  # fmt: skip
"""What hf-inference serves (not video)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def path_for(call: TaskCall) -> str:
    if call.model.startswith(("http://", "https://")):
        return call.model  # a dedicated endpoint, as given
    if call.name in _PIPELINE:
        return f"/models/{call.provider_model}/pipeline/{call.name}"
    return f"/models/{call.provider_model}"


def hf_inference_send(call: TaskCall) -> Send:
    """The request of ``call`` to hf-inference (or a dedicated endpoint that speaks its protocol)."""
    send = _send(call)
    return attrs.evolve(send, auth=True) if call.model.startswith(("http://", "https://")) else send


def _send(call: TaskCall) -> Send:
    path = path_for(call)
    # huggingface_hub puts extra_body among the parameters (feature-extraction: at the root).
    parameters = {**call.parameters, **call.extra_body}
    inputs = call.inputs
    headers = {"Accept": "image/png"} if call.name in _IMAGES else {}
    body: dict[str, Any]
    if call.name == "feature-extraction":
        body = {"inputs": inputs, **parameters}
    elif call.name == "visual-question-answering":
        question, image = inputs
        encoded = _b64(image)
        body = {"inputs": encoded, "parameters": parameters, "question": question, "image": encoded}
    elif call.name == "document-question-answering":
        question, image = inputs
        body = {"inputs": {"question": question, "image": _b64(image)}, "parameters": parameters}
    elif call.name in _TABULAR:
        body = {"inputs": {"data": inputs}}
    elif call.task.media_input:
        if not parameters:
            return Send(path=path, data=inputs, content_type=sniff(inputs), headers=headers)
        body = {"inputs": _b64(inputs), "parameters": parameters}
    else:
        body = {"inputs": inputs, "parameters": parameters}
        if call.stream:
            body["stream"] = True
    return Send(path=path, json=body, headers=headers)


def hf_inference_read(answer: Answer, call: TaskCall) -> Outcome:
    if call.task.media_output:
        return Done(Media.of(answer.body, answer.content_type))
    return Done(answer.json())
