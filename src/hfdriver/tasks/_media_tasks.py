"""The tasks of ``TaskClient`` whose input or answer is media: images, sounds and videos (as
:class:`~hfdriver.tasks.Media`, never PIL images or numpy arrays)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hfdriver.errors import invalid_request
from hfdriver.tasks._base import TaskClientBase
from hfdriver.tasks._call import params
from hfdriver.tasks._media import Media, MediaInput
from hfdriver.tasks._results import (
    AudioClassificationOutputElement,
    AudioToAudioOutputElement,
    AutomaticSpeechRecognitionOutput,
    DocumentQuestionAnsweringOutputElement,
    ImageClassificationOutputElement,
    ImageSegmentationOutputElement,
    ImageToTextOutput,
    ObjectDetectionOutputElement,
    VisualQuestionAnsweringOutputElement,
    ZeroShotImageClassificationOutputElement,
)

__all__ = ["MediaTasks"]

Extra = Mapping[str, Any] | None


class MediaTasks(TaskClientBase):
    """Images, sounds and videos in or out (part of :class:`~hfdriver.tasks.TaskClient`)."""

    # ------------------------------------------------------------------ media out
    async def text_to_image(
        self,
        prompt: str,
        *,
        negative_prompt: str | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        model: str | None = None,
        scheduler: str | None = None,
        seed: int | None = None,
        extra_body: Extra = None,
    ) -> Media:
        p = params(
            negative_prompt=negative_prompt,
            height=height,
            width=width,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            scheduler=scheduler,
            seed=seed,
        )
        result: Media = await self._call(
            "text-to-image", prompt, model=model, parameters=p, extra_body=extra_body
        )
        return result

    async def text_to_video(
        self,
        prompt: str,
        *,
        model: str | None = None,
        guidance_scale: float | None = None,
        negative_prompt: list[str] | None = None,
        num_frames: float | None = None,
        num_inference_steps: int | None = None,
        seed: int | None = None,
        extra_body: Extra = None,
    ) -> Media:
        p = params(
            guidance_scale=guidance_scale,
            negative_prompt=negative_prompt,
            num_frames=num_frames,
            num_inference_steps=num_inference_steps,
            seed=seed,
        )
        result: Media = await self._call(
            "text-to-video", prompt, model=model, parameters=p, extra_body=extra_body
        )
        return result

    async def text_to_speech(
        self, text: str, *, model: str | None = None, extra_body: Extra = None, **generation: Any
    ) -> Media:
        """Speech for ``text``; ``generation`` takes the generation parameters (``do_sample``,
        ``max_new_tokens``, ``temperature``, ``top_k``...) as huggingface_hub does."""
        result: Media = await self._call(
            "text-to-speech", text, model=model, parameters=params(**generation), extra_body=extra_body
        )
        return result

    async def image_to_image(
        self,
        image: MediaInput,
        prompt: str | None = None,
        *,
        negative_prompt: str | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        model: str | None = None,
        target_size: Mapping[str, int] | None = None,
        extra_body: Extra = None,
    ) -> Media:
        p = params(
            prompt=prompt,
            negative_prompt=negative_prompt,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            target_size=target_size,
        )
        result: Media = await self._call(
            "image-to-image", image, model=model, parameters=p, extra_body=extra_body
        )
        return result

    async def image_to_video(
        self,
        image: MediaInput,
        *,
        model: str | None = None,
        prompt: str | None = None,
        negative_prompt: str | None = None,
        num_frames: float | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        seed: int | None = None,
        target_size: Mapping[str, int] | None = None,
        extra_body: Extra = None,
    ) -> Media:
        p = params(
            prompt=prompt,
            negative_prompt=negative_prompt,
            num_frames=num_frames,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            seed=seed,
            target_size=target_size,
        )
        result: Media = await self._call(
            "image-to-video", image, model=model, parameters=p, extra_body=extra_body
        )
        return result

    # ------------------------------------------------------------------ media in
    async def automatic_speech_recognition(
        self, audio: MediaInput, *, model: str | None = None, extra_body: Extra = None
    ) -> AutomaticSpeechRecognitionOutput:
        result: AutomaticSpeechRecognitionOutput = await self._call(
            "automatic-speech-recognition", audio, model=model, extra_body=extra_body
        )
        return result

    async def audio_classification(
        self,
        audio: MediaInput,
        *,
        model: str | None = None,
        top_k: int | None = None,
        function_to_apply: str | None = None,
    ) -> list[AudioClassificationOutputElement]:
        p = params(top_k=top_k, function_to_apply=function_to_apply)
        result: list[AudioClassificationOutputElement] = await self._call(
            "audio-classification", audio, model=model, parameters=p
        )
        return result

    async def audio_to_audio(
        self, audio: MediaInput, *, model: str | None = None
    ) -> list[AudioToAudioOutputElement]:
        result: list[AudioToAudioOutputElement] = await self._call("audio-to-audio", audio, model=model)
        return result

    async def image_classification(
        self,
        image: MediaInput,
        *,
        model: str | None = None,
        function_to_apply: str | None = None,
        top_k: int | None = None,
    ) -> list[ImageClassificationOutputElement]:
        p = params(function_to_apply=function_to_apply, top_k=top_k)
        result: list[ImageClassificationOutputElement] = await self._call(
            "image-classification", image, model=model, parameters=p
        )
        return result

    async def image_segmentation(
        self,
        image: MediaInput,
        *,
        model: str | None = None,
        mask_threshold: float | None = None,
        overlap_mask_area_threshold: float | None = None,
        subtask: str | None = None,
        threshold: float | None = None,
    ) -> list[ImageSegmentationOutputElement]:
        p = params(
            mask_threshold=mask_threshold,
            overlap_mask_area_threshold=overlap_mask_area_threshold,
            subtask=subtask,
            threshold=threshold,
        )
        result: list[ImageSegmentationOutputElement] = await self._call(
            "image-segmentation", image, model=model, parameters=p
        )
        return result

    async def image_to_text(self, image: MediaInput, *, model: str | None = None) -> ImageToTextOutput:
        result: ImageToTextOutput = await self._call("image-to-text", image, model=model)
        return result

    async def object_detection(
        self, image: MediaInput, *, model: str | None = None, threshold: float | None = None
    ) -> list[ObjectDetectionOutputElement]:
        result: list[ObjectDetectionOutputElement] = await self._call(
            "object-detection", image, model=model, parameters=params(threshold=threshold)
        )
        return result

    async def visual_question_answering(
        self, image: MediaInput, question: str, *, model: str | None = None, top_k: int | None = None
    ) -> list[VisualQuestionAnsweringOutputElement]:
        result: list[VisualQuestionAnsweringOutputElement] = await self._call(
            "visual-question-answering", (question, image), model=model, parameters=params(top_k=top_k)
        )
        return result

    async def document_question_answering(
        self,
        image: MediaInput,
        question: str,
        *,
        model: str | None = None,
        doc_stride: int | None = None,
        handle_impossible_answer: bool | None = None,
        lang: str | None = None,
        max_answer_len: int | None = None,
        max_question_len: int | None = None,
        max_seq_len: int | None = None,
        top_k: int | None = None,
        word_boxes: list[Any] | None = None,
    ) -> list[DocumentQuestionAnsweringOutputElement]:
        p = params(
            doc_stride=doc_stride,
            handle_impossible_answer=handle_impossible_answer,
            lang=lang,
            max_answer_len=max_answer_len,
            max_question_len=max_question_len,
            max_seq_len=max_seq_len,
            top_k=top_k,
            word_boxes=word_boxes,
        )
        result: list[DocumentQuestionAnsweringOutputElement] = await self._call(
            "document-question-answering", (question, image), model=model, parameters=p
        )
        return result

    async def zero_shot_image_classification(
        self,
        image: MediaInput,
        candidate_labels: list[str],
        *,
        model: str | None = None,
        hypothesis_template: str | None = None,
    ) -> list[ZeroShotImageClassificationOutputElement]:
        if not isinstance(candidate_labels, list) or len(candidate_labels) < 2:
            raise invalid_request("candidate_labels", "give at least 2 labels to choose between")
        p = params(candidate_labels=candidate_labels, hypothesis_template=hypothesis_template)
        result: list[ZeroShotImageClassificationOutputElement] = await self._call(
            "zero-shot-image-classification", image, model=model, parameters=p
        )
        return result
