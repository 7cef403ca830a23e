"""``LocalStream``: a streamed local answer, fed token by token from llama.cpp's worker thread.

It mirrors :class:`~hfdriver.huggingface.HuggingFaceStream`: an async iterator and async
context manager of :class:`StreamChunk`. llama.cpp's OpenAI-shaped chunks go through the same
parser (:func:`hfdriver.openai.parse_chunk`) and the same :class:`StreamAssembler` as the router's.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from types import TracebackType
from typing import Any

from hfdriver.dto.response import GenerateResponse
from hfdriver.dto.stream import StreamAssembler, StreamChunk
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.openai import parse_chunk

__all__ = ["END", "LocalStream", "generate_sync"]

END = object()
"""The last item a generation hands over."""


def generate_sync(llm: Any, kwargs: dict[str, Any], stream: LocalStream) -> None:
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
            stream.push(chunk)
        if not stream.stop.is_set():
            total = int(getattr(llm, "n_tokens", 0) or 0)
            stream.push(
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
        stream.push(HuggingFaceError(HuggingFaceErrorKind.SERVER, f"llama.cpp failed: {exc}"))
    finally:
        if chunks is not None and hasattr(chunks, "close"):
            with contextlib.suppress(Exception):
                chunks.close()
        stream.generated_chunks = produced
        stream.push(END)


class LocalStream:
    """A streamed local answer; an async iterator and async context manager, like the router's."""

    def __init__(
        self, run: Callable[[LocalStream], Coroutine[Any, Any, None]], *, model: str | None = None
    ) -> None:
        self._run = run
        self._model = model
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
            self._task = asyncio.create_task(self._run(self))
            self._task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.deliver(task.exception())
            self.deliver(END)

    def push(self, item: Any) -> None:
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

    def deliver(self, item: Any) -> None:
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
            if item is END:
                self._ready.extend(self._assembler.end_of_stream())
                self._finished = True
            elif isinstance(item, BaseException):
                self._finished = True
                self.stop.set()
                raise item
            else:
                parsed = parse_chunk(item, provider=self.provider)
                # llama.cpp names the model by its file path; report the driver's model name.
                self._ready.extend(self._assembler.feed(parsed.deltas, parsed.usage, self._model, parsed.id))
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
