"""``LocalStream``: a streamed local answer, fed token by token from llama.cpp's worker thread.

It mirrors :class:`~hfdriver.huggingface.HuggingFaceStream`: an async iterator and async
context manager of :class:`StreamChunk`. llama.cpp's OpenAI-shaped chunks go through the same
parser (:func:`hfdriver.openai.parse_chunk`) and the same :class:`StreamAssembler` as the router's.

The worker thread and the generation task hold only a :class:`Channel`, never the stream itself:
a consumer that drops the stream (a ``break`` out of a bare ``async for``, an exception, plain
garbage collection) lets it be collected at once, and its finalizer stops the generation within
a token, so the next request does not wait for an answer nobody reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import attrs

from hfdriver.dto.response import Cost, GenerateResponse
from hfdriver.dto.stream import StreamAssembler, StreamChunk
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.openai import parse_chunk
from hfdriver.stream import BaseStream

__all__ = ["END", "Channel", "LocalStream", "generate_sync"]

END = object()
"""The last item a generation hands over."""


class Channel:
    """Between the worker thread and the consumer: items one way, a stop flag the other."""

    __slots__ = ("_loop", "_waiting", "generated_chunks", "items", "stop", "wakeup")

    def __init__(self) -> None:
        self.items: deque[Any] = deque()
        self.stop = threading.Event()
        self.wakeup = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._waiting = False
        self.generated_chunks = 0

    def push(self, item: Any) -> None:
        """From the worker thread: hand an item to the consumer.

        ``deque.append`` is thread-safe; the event loop is woken (a self-pipe write) only when
        the consumer is actually waiting, not once per token, so llama.cpp keeps its cores.
        """
        self.items.append(item)
        if self._waiting:
            self._waiting = False
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(self.wakeup.set)

    def deliver(self, item: Any) -> None:
        """On the event loop: hand an item to the consumer."""
        self.items.append(item)
        self.wakeup.set()

    async def wait(self) -> None:
        """Until the worker hands something over."""
        self.wakeup.clear()
        self._waiting = True
        if self.items:  # the worker appended between the caller's check and the flag
            self._waiting = False
            return
        await self.wakeup.wait()

    def task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.deliver(task.exception())
            self.deliver(END)


def generate_sync(start: Callable[[], Iterator[dict[str, Any]]], llm: Any, channel: Channel) -> None:
    """Runs in the worker thread: feeds OpenAI-shaped chunks to the channel until done or stopped."""
    produced = 0
    chunks: Iterator[dict[str, Any]] | None = None
    try:
        chunks = start()
        for chunk in chunks:
            if channel.stop.is_set():
                break
            choices = chunk.get("choices") or ()
            if choices and (choices[0].get("delta") or {}).get("content"):
                produced += 1  # one content chunk per generated token
            channel.push(chunk)
        if not channel.stop.is_set():
            total = int(getattr(llm, "n_tokens", 0) or 0)
            channel.push(
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
        channel.push(HuggingFaceError(HuggingFaceErrorKind.SERVER, f"llama.cpp failed: {exc}"))
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()
        channel.generated_chunks = produced
        channel.push(END)


class LocalStream(BaseStream):
    """A streamed local answer; an async iterator and async context manager, like the router's."""

    def __init__(
        self, run: Callable[[Channel], Coroutine[Any, Any, None]], *, model: str | None = None
    ) -> None:
        self._run = run
        self._model = model
        self._channel: Channel | None = None
        self._task: asyncio.Task[None] | None = None
        self._assembler = StreamAssembler()
        self._ready: deque[StreamChunk] = deque()
        self._finished = False
        self._provider = "local"

    @property
    def provider(self) -> str:
        return self._provider

    def _start(self) -> Channel:
        channel = self._channel
        if channel is None:
            channel = self._channel = Channel()
            self._task = asyncio.create_task(self._run(channel))
            self._task.add_done_callback(channel.task_done)
        return channel

    async def __anext__(self) -> StreamChunk:
        channel = self._start()
        items = channel.items
        while not self._ready:
            if self._finished:
                raise StopAsyncIteration
            if not items:
                try:
                    await channel.wait()
                except BaseException:
                    channel.stop.set()
                    raise
                continue
            item = items.popleft()
            if item is END:
                self._ready.extend(self._assembler.end_of_stream())
                self._finished = True
            elif isinstance(item, BaseException):
                self._finished = True
                channel.stop.set()
                raise item
            else:
                parsed = parse_chunk(item, provider=self._provider)
                # llama.cpp names the model by its file path; report the driver's model name.
                self._ready.extend(self._assembler.feed(parsed.deltas, parsed.usage, self._model, parsed.id))
        return self._ready.popleft()

    async def _open(self) -> None:
        self._start()

    async def aclose(self) -> None:
        """Stop generating (within a token or two) and wait for the worker to let go."""
        self._finished = True
        if self._channel is not None:
            self._channel.stop.set()
        task = self._task
        if task is not None and not task.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(task)

    def _abandon(self) -> None:
        # Dropped without aclose (a `break` out of a bare `async for`): stop the worker now.
        channel = getattr(self, "_channel", None)
        if channel is not None:
            channel.stop.set()

    @property
    def generated_chunks(self) -> int:
        """Content chunks (tokens) the worker produced, once it has finished."""
        return self._channel.generated_chunks if self._channel is not None else 0

    @property
    def pending(self) -> int:
        """Chunks that are ready now: the next ``__anext__`` returns without waiting."""
        return len(self._ready)

    def response(self) -> GenerateResponse:
        """What was generated so far; local inference costs nothing (``cost`` is zero)."""
        return attrs.evolve(self._assembler.response(provider=self.provider), cost=Cost.zero())
