"""The object :meth:`HuggingFaceDriver.generate_stream` returns."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Awaitable, Callable, Mapping

from hfdriver.dto.response import GenerateResponse
from hfdriver.dto.stream import ChunkDelta, StreamAssembler, StreamChunk, ToolCallDelta
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind, redact, scrub
from hfdriver.openai import DEFAULT_MAX_EVENT_BYTES, SseDecoder, SseEvent, parse_event, parse_response
from hfdriver.stream import BaseStream
from hfdriver.transport import (
    DEFAULT_MAX_BODY_BYTES,
    ClientResponse,
    HttpClient,
    RequestTimeout,
    RetryPolicy,
    call_with_retries,
)

__all__ = ["HuggingFaceStream"]

# Bytes read after [DONE] so the connection can go back to the pool; past this, close it.
_DRAIN_LIMIT = 64 * 1024


class HuggingFaceStream(BaseStream):
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
        "_error",
        "_finished",
        "_headers",
        "_http",
        "_max_body",
        "_max_event",
        "_opened",
        "_pricer",
        "_ready",
        "_resp",
        "_retry",
        "_timeout",
        "_url",
        "provider",
        "request_id",
    )

    def __init__(
        self,
        http: HttpClient,
        url: str,
        body: bytes,
        *,
        headers: Mapping[str, str],
        timeout: RequestTimeout,
        retry: RetryPolicy,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        pricer: Callable[[GenerateResponse], Awaitable[GenerateResponse]] | None = None,
    ) -> None:
        self._http = http
        self._pricer = pricer
        self._url = url
        self._body = body
        self._headers = headers
        self._timeout = timeout
        self._retry = retry
        self._max_event = max_event_bytes
        self._max_body = max_body_bytes
        self._resp: ClientResponse | None = None
        self._decoder = SseDecoder(max_event_bytes=max_event_bytes)
        self._assembler = StreamAssembler()
        self._ready: deque[StreamChunk] = deque()
        self._error: HuggingFaceError | None = None
        self._opened = False
        self._finished = False
        self.provider: str | None = None
        self.request_id: str | None = None

    # ------------------------------------------------------------------ iteration
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

    async def aclose(self) -> None:
        """Stop reading and release the connection now. Safe to call twice."""
        self._finished = True
        self._abort()

    def _abandon(self) -> None:
        # A caller that breaks out of a bare `async for` drops the stream: free the socket now.
        resp = getattr(self, "_resp", None)
        if resp is not None:
            resp.close()

    async def _completed(self, response: GenerateResponse) -> GenerateResponse:
        """``collect``'s answer, with its cost when the driver knows the provider's prices."""
        if self._pricer is not None:
            response = await self._pricer(response)
        return response

    @property
    def pending(self) -> int:
        """Chunks that are ready now: the next ``__anext__`` returns without waiting."""
        return len(self._ready)

    def response(self) -> GenerateResponse:
        """What the stream has delivered so far, as a :class:`GenerateResponse`."""
        return self._assembler.response(provider=self.provider, request_id=self.request_id)

    # ------------------------------------------------------------------ opening (retried)
    async def _open(self) -> None:
        if self._opened:
            return
        self._opened = True
        try:
            await call_with_retries(self._retry, "stream", self._open_once)
        except BaseException:
            self._finished = True
            self._abort()
            raise

    async def _open_once(self) -> None:
        self._abort()
        self._decoder = SseDecoder(max_event_bytes=self._max_event)
        self._assembler = StreamAssembler()
        self._ready.clear()
        self._reset_state()
        resp = await self._http.open(
            "POST", self._url, data=self._body, headers=self._headers, timeout=self._timeout
        )
        self._resp = resp
        headers = resp.headers
        self.provider = scrub(headers.get("x-inference-provider"), self._http.secret)
        self.request_id = scrub(headers.get("x-request-id"), self._http.secret)
        if resp.content_type == "application/json":
            await self._whole_body(resp)
            return
        while not self._ready and not self._finished:
            error = self._error
            if error is not None:
                # Nothing reached the caller yet: the error surfaces when the stream opens
                # (tenacity retries it if it is retryable), so `serve` can still answer it
                # with an HTTP status instead of a broken 200 stream.
                self._error = None
                raise error
            await self._pump(phase="open")

    def _reset_state(self) -> None:
        self._error = None
        self._finished = False

    async def _whole_body(self, resp: ClientResponse) -> None:
        # Some servers ignore stream=true and answer with one JSON completion: replay it.
        raw = await self._http.read_body(resp, phase="open", max_bytes=self._max_body)
        self._release()
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise self._decode_error(
                redact(raw[:200].decode("utf-8", "replace"), self._http.secret)
            ) from None
        response = parse_response(
            data, provider=self.provider, request_id=self.request_id, token=self._http.secret
        )
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
        data = await self._http.read_chunk(resp, phase=phase)
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
        parsed = parse_event(
            text, event.event, request_id=self.request_id, provider=self.provider, token=self._http.secret
        )
        chunks = self._assembler.feed(parsed.deltas, parsed.usage, parsed.model, parsed.id)
        if chunks:
            self._ready.extend(chunks)
        if parsed.error is not None:
            raise parsed.error  # after the content that came with it (see _pump)
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
        resp, self._resp = self._resp, None
        if resp is not None:
            await self._http.finish(resp, drain=_DRAIN_LIMIT)

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
