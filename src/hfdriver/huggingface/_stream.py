"""The object :meth:`HuggingFaceDriver.generate_stream` returns."""

from __future__ import annotations

import contextlib
import json
from collections import deque
from types import TracebackType
from typing import TYPE_CHECKING, Any

from hfdriver.dto.convert import parse_chunk, parse_response, structure_chunk
from hfdriver.dto.response import GenerateResponse
from hfdriver.dto.stream import ChunkDelta, StreamAssembler, StreamChunk, ToolCallDelta
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind, error_from_stream_event
from hfdriver.huggingface._retry import call_with_retries
from hfdriver.huggingface.sse import SseDecoder, SseEvent

if TYPE_CHECKING:
    import aiohttp

    from hfdriver.huggingface._driver import HuggingFaceDriver

__all__ = ["HuggingFaceStream"]

# Bytes read after [DONE] so the connection can go back to the pool; past this, close it.
_DRAIN_LIMIT = 64 * 1024


class HuggingFaceStream:
    """A streamed chat completion: ``async for chunk in stream`` / ``async with ... as stream``.

    The request is sent (and retried) on ``__aenter__`` or the first ``__anext__``, up to the
    moment the first chunk is ready; after a chunk reached the caller nothing is retried.
    Leaving the ``async with`` block, :meth:`aclose`, a ``break`` that drops the last reference,
    an exception or a cancellation all release the connection at once.
    """

    __slots__ = (
        "__weakref__",
        "_assembler",
        "_body",
        "_decoder",
        "_driver",
        "_error",
        "_finished",
        "_headers",
        "_opened",
        "_ready",
        "_resp",
        "provider",
        "request_id",
    )

    def __init__(self, driver: HuggingFaceDriver, body: bytes, headers: dict[str, str]) -> None:
        self._driver = driver
        self._body = body
        self._headers = headers
        self._resp: aiohttp.ClientResponse | None = None
        self._decoder = SseDecoder()
        self._assembler = StreamAssembler()
        self._ready: deque[StreamChunk] = deque()
        self._error: HuggingFaceError | None = None
        self._opened = False
        self._finished = False
        self.provider: str | None = None
        self.request_id: str | None = None

    # ------------------------------------------------------------------ iteration
    def __aiter__(self) -> HuggingFaceStream:
        return self

    async def __anext__(self) -> StreamChunk:
        ready = self._ready
        if ready:
            return ready.popleft()
        if not self._opened:
            await self._open()
        while not ready:
            if self._error is not None:
                error, self._error = self._error, None
                self._finished = True
                raise error
            if self._finished:
                raise StopAsyncIteration
            try:
                await self._pump()
            except BaseException:
                self._abort()
                raise
        return ready.popleft()

    async def __aenter__(self) -> HuggingFaceStream:
        if not self._opened:
            await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop reading and release the connection now. Safe to call twice."""
        self._finished = True
        self._abort()

    def __del__(self) -> None:
        # A caller that breaks out of a bare `async for` drops the stream: free the socket now.
        resp = getattr(self, "_resp", None)
        if resp is not None:
            # A finalizer must not raise: the loop may already be closed at interpreter exit.
            with contextlib.suppress(Exception):
                resp.close()

    async def collect(self) -> GenerateResponse:
        """Read the rest and return everything the stream delivered as one response."""
        async for _ in self:
            pass
        return self.response()

    def response(self) -> GenerateResponse:
        """What the stream has delivered so far, as a :class:`GenerateResponse`."""
        return self._assembler.response(provider=self.provider, request_id=self.request_id)

    # ------------------------------------------------------------------ opening (retried)
    async def _open(self) -> None:
        self._opened = True
        driver = self._driver
        try:
            await call_with_retries(driver.retry, "stream", self._open_once)
        except BaseException:
            self._finished = True
            self._abort()
            raise

    async def _open_once(self) -> None:
        self._abort()
        self._decoder = SseDecoder()
        self._assembler = StreamAssembler()
        self._ready.clear()
        self._reset_state()
        resp = await self._driver._post(self._body, self._headers)
        self._resp = resp
        headers = resp.headers
        self.provider = headers.get("x-inference-provider")
        self.request_id = headers.get("x-request-id")
        if resp.content_type == "application/json":
            await self._whole_body(resp)
            return
        while not self._ready and not self._finished:
            error = self._error
            if error is not None:
                if error.retryable:  # nothing reached the caller yet: let tenacity retry
                    self._error = None
                    raise error
                return
            await self._pump(phase="open")

    def _reset_state(self) -> None:
        self._error = None
        self._finished = False

    async def _whole_body(self, resp: aiohttp.ClientResponse) -> None:
        # Some servers ignore stream=true and answer with one JSON completion: replay it.
        raw = await self._driver._read(resp, phase="open")
        self._release()
        try:
            data = json.loads(raw)
        except ValueError:
            raise self._decode_error(raw.decode("utf-8", "replace")) from None
        response = parse_response(data)
        for out in response.outputs:
            calls = tuple(ToolCallDelta(i, c.id, c.name, c.arguments) for i, c in enumerate(out.tool_calls))
            delta = ChunkDelta(out.index, out.text, out.reasoning or "", calls, out.finish_reason)
            self._ready.extend(self._assembler.feed((delta,), None, response.model, response.id))
        self._ready.extend(self._assembler.feed((), response.usage, None, None))
        self._ready.extend(self._assembler.end_of_stream())
        self._finished = True

    # ------------------------------------------------------------------ reading
    async def _pump(self, phase: str = "stream") -> None:
        resp = self._resp
        assert resp is not None
        data = await self._driver._read_chunk(resp, phase=phase)
        if not data:
            self._end_without_done()
            return
        try:
            for event in self._decoder.feed(data):
                if self._event(event):
                    await self._drain_and_release()
                    return
        except HuggingFaceError as exc:
            self._error = exc
            self._ready.extend(self._assembler.flush())
            self._abort()

    def _event(self, event: SseEvent) -> bool:
        """Handle one event; True when it was the end-of-stream marker."""
        text = event.data
        if text == "[DONE]":
            self._ready.extend(self._assembler.end_of_stream())
            self._finished = True
            return True
        try:
            obj: Any = json.loads(text)
        except ValueError:
            if event.event == "error":
                raise error_from_stream_event(
                    {"error": text}, request_id=self.request_id, provider=self.provider
                ) from None
            raise self._decode_error(text) from None
        if event.event == "error" and not (isinstance(obj, dict) and "choices" in obj):
            raise error_from_stream_event(
                obj if isinstance(obj, dict) and "error" in obj else {"error": obj},
                request_id=self.request_id,
                provider=self.provider,
            )
        if type(obj) is not dict:
            parsed = parse_chunk(obj)  # raises DECODE, naming what came instead
        elif obj.get("error") and "choices" not in obj:
            raise error_from_stream_event(obj, request_id=self.request_id, provider=self.provider)
        else:
            parsed = structure_chunk(obj)
        chunks = self._assembler.feed(parsed.deltas, parsed.usage, parsed.model, parsed.id)
        if chunks:
            self._ready.extend(chunks)
        return False

    def _end_without_done(self) -> None:
        self._decoder.close()
        self._ready.extend(self._assembler.end_of_stream())
        self._finished = True
        self._release()
        if not self._assembler.finished:
            self._error = HuggingFaceError(
                HuggingFaceErrorKind.STREAM,
                "the stream ended early: the server closed it before a finish reason or [DONE]; "
                "the answer is incomplete",
                request_id=self.request_id,
                provider=self.provider,
                retryable=False,
            )

    async def _drain_and_release(self) -> None:
        resp = self._resp
        if resp is None:
            return
        content = resp.content
        drained = 0
        try:
            while not content.at_eof() and drained <= _DRAIN_LIMIT:
                more = await content.readany()
                if not more:
                    break
                drained += len(more)
        except Exception:
            self._abort()
            return
        if content.at_eof():
            self._release()
        else:
            self._abort()

    def _decode_error(self, text: str) -> HuggingFaceError:
        return HuggingFaceError(
            HuggingFaceErrorKind.DECODE,
            f"the stream sent an event that is not JSON: {text[:200]!r}",
            request_id=self.request_id,
            provider=self.provider,
        )

    def _release(self) -> None:
        resp, self._resp = self._resp, None
        if resp is not None:
            resp.release()

    def _abort(self) -> None:
        resp, self._resp = self._resp, None
        if resp is not None:
            resp.close()
