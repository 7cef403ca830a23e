"""``TaskClient``: every Hugging Face task of the router, with the method names, positional inputs
and keyword parameters of huggingface_hub's ``AsyncInferenceClient`` (code moves over by renaming
the client). Images and sounds come back as :class:`~hfdriver.tasks.Media` (bytes with a content
type and ``save``), not PIL images or numpy arrays: hfdriver adds no dependency for them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

from hfdriver.errors import invalid_request
from hfdriver.tasks._call import params
from hfdriver.tasks._media_tasks import MediaTasks
from hfdriver.tasks._results import (
    FillMaskOutputElement,
    QuestionAnsweringOutputElement,
    SummarizationOutput,
    TableQuestionAnsweringOutputElement,
    TextClassificationOutputElement,
    TextGenerationOutput,
    TextGenerationStreamOutput,
    TextGenerationStreamOutputToken,
    TokenClassificationOutputElement,
    TranslationOutput,
    ZeroShotClassificationOutputElement,
    read,
)

__all__ = ["TaskClient"]


class TaskClient(MediaTasks):
    """The Hugging Face tasks through the router (or a dedicated endpoint given as ``model``).

    Args:
        model: the default model (``org/name``, optionally ``:provider``), or an endpoint URL.
        token: as ``HuggingFaceDriver`` (``HF_TOKEN`` & co., then the token file).
        provider: a provider for every call (``fal-ai``, ``replicate``...), or ``auto`` (the
            default): the model's ``:provider`` suffix, else the Hub's mapping for the task.
        router_url: the router's root (``$HF_ROUTER_URL``, else ``https://router.huggingface.co``);
            the Hub is ``$HF_ENDPOINT``.
        bill_to, timeouts, retry, session, headers, max_body_bytes: as ``HuggingFaceDriver``
            (answers up to 256 MiB: videos).
        poll_interval: seconds between two polls of a queued job (default: the pace of the
            provider's own client: fal 0.5 s, Replicate 1 s, together 2 s, Z.ai 5 s...).
        job_timeout: seconds a queued job may take (600); past it, ``TIMEOUT`` naming the job,
            and the job is cancelled on the provider where it can be.
        on_progress: ``on_progress(status, elapsed_seconds)`` at each poll of a queued job.

    >>> async with TaskClient() as hf:  # doctest: +SKIP
    ...     image = await hf.text_to_image("a cat", model="black-forest-labs/FLUX.1-schnell")
    ...     image.save("cat.png")
    """

    # ------------------------------------------------------------------ text
    async def text_classification(
        self,
        text: str,
        *,
        model: str | None = None,
        top_k: int | None = None,
        function_to_apply: str | None = None,
    ) -> list[TextClassificationOutputElement]:
        p = params(top_k=top_k, function_to_apply=function_to_apply)
        result: list[TextClassificationOutputElement] = await self._call(
            "text-classification", text, model=model, parameters=p
        )
        return result

    async def token_classification(
        self,
        text: str,
        *,
        model: str | None = None,
        aggregation_strategy: str | None = None,
        ignore_labels: list[str] | None = None,
        stride: int | None = None,
    ) -> list[TokenClassificationOutputElement]:
        p = params(aggregation_strategy=aggregation_strategy, ignore_labels=ignore_labels, stride=stride)
        result: list[TokenClassificationOutputElement] = await self._call(
            "token-classification", text, model=model, parameters=p
        )
        return result

    async def zero_shot_classification(
        self,
        text: str,
        candidate_labels: list[str],
        *,
        multi_label: bool | None = False,
        hypothesis_template: str | None = None,
        model: str | None = None,
    ) -> list[ZeroShotClassificationOutputElement]:
        p = params(
            candidate_labels=candidate_labels,
            multi_label=multi_label,
            hypothesis_template=hypothesis_template,
        )
        result: list[ZeroShotClassificationOutputElement] = await self._call(
            "zero-shot-classification", text, model=model, parameters=p
        )
        return result

    async def summarization(
        self,
        text: str,
        *,
        model: str | None = None,
        clean_up_tokenization_spaces: bool | None = None,
        generate_parameters: Mapping[str, Any] | None = None,
        truncation: str | None = None,
    ) -> SummarizationOutput:
        p = params(
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            generate_parameters=generate_parameters,
            truncation=truncation,
        )
        result: SummarizationOutput = await self._call("summarization", text, model=model, parameters=p)
        return result

    async def translation(
        self,
        text: str,
        *,
        model: str | None = None,
        src_lang: str | None = None,
        tgt_lang: str | None = None,
        clean_up_tokenization_spaces: bool | None = None,
        truncation: str | None = None,
        generate_parameters: Mapping[str, Any] | None = None,
    ) -> TranslationOutput:
        if (src_lang is None) != (tgt_lang is None):
            raise invalid_request("src_lang", "give both src_lang and tgt_lang, or neither")
        p = params(
            src_lang=src_lang,
            tgt_lang=tgt_lang,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            truncation=truncation,
            generate_parameters=generate_parameters,
        )
        result: TranslationOutput = await self._call("translation", text, model=model, parameters=p)
        return result

    async def fill_mask(
        self,
        text: str,
        *,
        model: str | None = None,
        targets: list[str] | None = None,
        top_k: int | None = None,
    ) -> list[FillMaskOutputElement]:
        result: list[FillMaskOutputElement] = await self._call(
            "fill-mask", text, model=model, parameters=params(targets=targets, top_k=top_k)
        )
        return result

    async def question_answering(
        self,
        question: str,
        context: str,
        *,
        model: str | None = None,
        align_to_words: bool | None = None,
        doc_stride: int | None = None,
        handle_impossible_answer: bool | None = None,
        max_answer_len: int | None = None,
        max_question_len: int | None = None,
        max_seq_len: int | None = None,
        top_k: int | None = None,
    ) -> QuestionAnsweringOutputElement:
        p = params(
            align_to_words=align_to_words,
            doc_stride=doc_stride,
            handle_impossible_answer=handle_impossible_answer,
            max_answer_len=max_answer_len,
            max_question_len=max_question_len,
            max_seq_len=max_seq_len,
            top_k=top_k,
        )
        inputs = {"question": question, "context": context}
        result: QuestionAnsweringOutputElement = await self._call(
            "question-answering", inputs, model=model, parameters=p
        )
        return result

    async def table_question_answering(
        self,
        table: Mapping[str, Any],
        query: str,
        *,
        model: str | None = None,
        padding: str | None = None,
        sequential: bool | None = None,
        truncation: bool | None = None,
    ) -> TableQuestionAnsweringOutputElement:
        p = params(padding=padding, sequential=sequential, truncation=truncation)
        inputs = {"query": query, "table": dict(table)}
        result: TableQuestionAnsweringOutputElement = await self._call(
            "table-question-answering", inputs, model=model, parameters=p
        )
        return result

    async def sentence_similarity(
        self, sentence: str, other_sentences: list[str], *, model: str | None = None
    ) -> list[float]:
        inputs = {"source_sentence": sentence, "sentences": list(other_sentences)}
        result: list[float] = await self._call("sentence-similarity", inputs, model=model)
        return result

    async def feature_extraction(
        self,
        text: str,
        *,
        normalize: bool | None = None,
        prompt_name: str | None = None,
        truncate: bool | None = None,
        truncation_direction: Literal["Left", "Right"] | None = None,
        model: str | None = None,
    ) -> Any:
        """The arrays as the server computed them (nested lists of floats; token-level ones too).
        For one vector per text, use ``HuggingFaceDriver.embed``."""
        p = params(
            normalize=normalize,
            prompt_name=prompt_name,
            truncate=truncate,
            truncation_direction=truncation_direction,
        )
        return await self._call("feature-extraction", text, model=model, parameters=p)

    async def text_generation(
        self,
        prompt: str,
        *,
        details: bool = False,
        stream: bool = False,
        model: str | None = None,
        adapter_id: str | None = None,
        best_of: int | None = None,
        decoder_input_details: bool | None = None,
        do_sample: bool | None = None,
        frequency_penalty: float | None = None,
        grammar: Any = None,
        max_new_tokens: int | None = None,
        repetition_penalty: float | None = None,
        return_full_text: bool | None = None,
        seed: int | None = None,
        stop: list[str] | None = None,
        stop_sequences: list[str] | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_n_tokens: int | None = None,
        top_p: float | None = None,
        truncate: int | None = None,
        typical_p: float | None = None,
        watermark: bool | None = None,
    ) -> Any:
        """The non-chat route (TGI's ``/models/{id}``, together's completions): the text, a
        :class:`TextGenerationOutput` with ``details=True``, or with ``stream=True`` an async
        iterator of tokens' text (of :class:`TextGenerationStreamOutput` with ``details=True``)."""
        p = params(
            adapter_id=adapter_id,
            best_of=best_of,
            decoder_input_details=decoder_input_details,
            do_sample=do_sample,
            frequency_penalty=frequency_penalty,
            grammar=grammar,
            max_new_tokens=max_new_tokens,
            repetition_penalty=repetition_penalty,
            return_full_text=return_full_text,
            seed=seed,
            stop=stop,
            stop_sequences=stop_sequences,
            temperature=temperature,
            top_k=top_k,
            top_n_tokens=top_n_tokens,
            top_p=top_p,
            truncate=truncate,
            typical_p=typical_p,
            watermark=watermark,
            details=True if details else None,
        )
        if stream:
            return self._generation_stream(prompt, model, p, details)
        output: TextGenerationOutput = await self._call("text-generation", prompt, model=model, parameters=p)
        return output if details else output.generated_text

    async def _generation_stream(
        self, prompt: str, model: str | None, parameters: Mapping[str, Any], details: bool
    ) -> AsyncIterator[Any]:
        async for event in self._stream("text-generation", prompt, model=model, parameters=parameters):
            token = read(TextGenerationStreamOutputToken, event.get("token") or {}, "text-generation")
            if details:
                yield read(TextGenerationStreamOutput, event, "text-generation", token=token)
            elif not token.special:
                yield token.text

    # ------------------------------------------------------------------ tables
    async def tabular_classification(
        self, table: Mapping[str, Any], *, model: str | None = None
    ) -> list[Any]:
        result: list[Any] = await self._call("tabular-classification", dict(table), model=model)
        return result

    async def tabular_regression(self, table: Mapping[str, Any], *, model: str | None = None) -> list[float]:
        result: list[float] = await self._call("tabular-regression", dict(table), model=model)
        return result
