"""Embeddings of a local GGUF model: llama.cpp in embedding mode, off the event loop.

The model is opened a second time with ``embedding=True`` (its weights are memory-mapped, so the
operating system shares them with the chat instance; measured: a second context on the same
weights would need llama-cpp-python's private API for no gain). Each input is one sequence
pooled by the model's own pooling (``{arch}.pooling_type`` in the GGUF metadata), or by the mean
of its tokens where a decoder model declares none. Inputs are packed several to a batch, up to
the batch size, when the model gives the same vectors that way as one at a time; a probe at load
time checks it (llama.cpp mixes the rows of some decoder models, Gemma 3 among them, when
sequences share a batch), and such a model embeds one input per batch.

An input longer than the model's limit (the context size) is cut when ``truncate`` is set and
refused with ``INVALID_REQUEST`` naming the limit otherwise. Vectors are unit length unless
``normalize=False``; ``dimensions`` keeps a prefix (Matryoshka models), re-normalised.
"""

from __future__ import annotations

import asyncio
import math
from array import array
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from hfdriver.dto.embed import EmbedRequest, EmbedResponse, Vectors
from hfdriver.dto.response import Usage
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind, invalid_request
from hfdriver.openai import check_text

__all__ = ["LocalEmbedder"]

K = HuggingFaceErrorKind

# Inputs handed to the worker thread at a time: between slices, a cancelled caller stops the work.
_SLICE = 64
# Largest difference between a vector embedded alone and in a shared batch for the batch to count
# as the same computation (float32 sums in another order differ in the last bits, not more).
_PROBE_TOLERANCE = 1e-3
_PROBE_TEXTS = ("The quick brown fox jumps over the lazy dog.", "Embeddings", "a b c d e f g h")


def _unit(row: Sequence[float]) -> list[float]:
    norm = math.sqrt(math.fsum(v * v for v in row))
    return [v / norm for v in row] if norm > 0 else list(row)


class LocalEmbedder:
    """The embedding side of a :class:`~hfdriver.local.LocalDriver` (see the module docstring)."""

    def __init__(
        self,
        path: Callable[[], Awaitable[str]],
        *,
        model: str,
        context_size: int,
        threads: int,
        n_gpu_layers: Callable[[Any], int],
        llama_cpp: Callable[[], Any],
    ) -> None:
        self._path = path
        self.model = model
        self.context_size = context_size
        self.threads = threads
        self._n_gpu_layers = n_gpu_layers
        self._llama_cpp = llama_cpp
        self._llm: Any = None
        self._batched = False
        self._lock = asyncio.Lock()  # one llama.cpp context: one caller at a time, in arrival order

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    @property
    def batched(self) -> bool:
        """Whether inputs share batches (the load-time probe found it gives the same vectors)."""
        return self._batched

    def _load_sync(self, path: str) -> Any:
        llama_cpp = self._llama_cpp()
        options: dict[str, Any] = {
            "model_path": path,
            "embedding": True,
            "n_ctx": self.context_size,
            "n_batch": self.context_size,
            "n_ubatch": self.context_size,  # one sequence must fit one micro-batch to be pooled
            "n_threads": self.threads,
            "n_gpu_layers": self._n_gpu_layers(llama_cpp),
            "verbose": False,
        }
        try:
            probe = llama_cpp.Llama(**{**options, "vocab_only": True})
            declared = probe.metadata.get(f"{probe.metadata.get('general.architecture', '')}.pooling_type")
            probe.close()
        except (ValueError, RuntimeError, OSError) as exc:
            raise HuggingFaceError(K.CONFIG, f"llama.cpp could not load {path}: {exc}") from None
        if declared in (None, "", "0"):  # no pooling declared (a decoder model): the mean of its tokens
            options["pooling_type"] = llama_cpp.LLAMA_POOLING_TYPE_MEAN
        try:
            llm = llama_cpp.Llama(**options)
        except (ValueError, RuntimeError, OSError) as exc:
            raise HuggingFaceError(
                K.CONFIG, f"llama.cpp could not load {path} for embeddings: {exc}"
            ) from None
        self._batched = self._probe(llm)
        return llm

    @staticmethod
    def _probe(llm: Any) -> bool:
        together = llm.embed(list(_PROBE_TEXTS))
        for text, row in zip(_PROBE_TEXTS, together, strict=True):
            alone = llm.embed(text)
            if max(abs(a - b) for a, b in zip(alone, row, strict=True)) > _PROBE_TOLERANCE * max(
                1.0, max(abs(a) for a in alone)
            ):
                return False
        return True

    async def load(self) -> None:
        if self._llm is None:
            path = await self._path()
            async with self._lock:
                if self._llm is None:
                    self._llm = await asyncio.to_thread(self._load_sync, path)

    async def aclose(self) -> None:
        async with self._lock:
            llm, self._llm = self._llm, None
        if llm is not None:
            await asyncio.to_thread(llm.close)

    # ------------------------------------------------------------------ embedding
    def _tokens(self, llm: Any, inputs: Sequence[str], start: int, truncate: bool) -> int:
        """Tokens the inputs count (as embedded); ``INVALID_REQUEST`` for one over the limit."""
        limit = llm.n_batch
        total = 0
        for offset, text in enumerate(inputs):
            count = len(llm.tokenize(text.encode("utf-8")))
            if count > limit:
                if not truncate:
                    raise invalid_request(
                        f"inputs[{start + offset}]",
                        f"is {count} tokens, over the {limit} this model embeds at once; shorten it, or "
                        "set truncate=True to embed its first tokens",
                    )
                count = limit
            total += count
        return total

    def _embed_sync(
        self, llm: Any, inputs: Sequence[str], start: int, truncate: bool
    ) -> tuple[list[Any], int]:
        tokens = self._tokens(llm, inputs, start, truncate)
        if self._batched:
            rows = llm.embed(list(inputs), truncate=True)
        else:
            rows = [llm.embed(text, truncate=True) for text in inputs]
        return rows, tokens

    async def embed(self, request: EmbedRequest) -> EmbedResponse:
        if not isinstance(request, EmbedRequest):
            raise HuggingFaceError(
                K.INVALID_REQUEST, f"expected an EmbedRequest, got {type(request).__name__}"
            )
        if request.routing is not None:
            raise HuggingFaceError(
                K.INVALID_REQUEST, "routing: a local model has no providers to route between"
            )
        check_text({"inputs": list(request.inputs)})
        await self.load()
        normalize = request.normalize is not False
        truncate = bool(request.truncate)
        data: array[float] = array("f")
        width = 0
        tokens = 0
        async with self._lock:
            llm = self._llm
            if llm is None:
                raise HuggingFaceError(K.CONFIG, "this LocalDriver was closed")
            width = llm.n_embd()
            wanted = request.dimensions
            if wanted is not None and wanted > width:
                raise invalid_request("dimensions", f"{wanted} is more than the {width} this model makes")
            inputs = request.inputs
            for start in range(0, len(inputs), _SLICE):
                rows, counted = await asyncio.to_thread(
                    self._embed_sync, llm, inputs[start : start + _SLICE], start, truncate
                )
                tokens += counted
                for row in rows:
                    cut = row[:wanted] if wanted is not None else row
                    data.extend(_unit(cut) if normalize else cut)
        dims = request.dimensions or width
        return EmbedResponse(
            vectors=Vectors(data, len(request.inputs), dims),
            model=self.model,
            usage=Usage(prompt_tokens=tokens, completion_tokens=0, total_tokens=tokens),
            provider="local",
        )
