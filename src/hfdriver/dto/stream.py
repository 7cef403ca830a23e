"""Streaming DTOs and the assembler that turns wire deltas into :class:`StreamChunk` values."""

from __future__ import annotations

from typing import NamedTuple

import attrs

from hfdriver.dto.request import ToolCall
from hfdriver.dto.response import FinishReason, GenerateResponse, Output, Usage

__all__ = ["ChunkCollector", "ChunkDelta", "StreamAssembler", "StreamChunk", "ToolCallDelta"]


@attrs.frozen(slots=True, kw_only=True)
class StreamChunk:
    """A piece of a streamed answer.

    ``text`` and ``reasoning`` are the new characters (never repeated). ``tool_calls`` holds the
    *complete* calls, assembled from their deltas, on the chunk that finishes an output.
    The last chunk carries ``finish_reason`` and, when the server sent it, ``usage``.
    """

    text: str = ""
    reasoning: str = ""
    index: int = 0
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: FinishReason | str | None = None
    usage: Usage | None = None
    model: str | None = None
    id: str | None = None


# The two wire-level values below are created once per streamed chunk: NamedTuples keep that cheap.
class ToolCallDelta(NamedTuple):
    """A fragment of a tool call as the wire sends it (keyed by its ``index`` on the wire)."""

    call_index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class ChunkDelta(NamedTuple):
    """What one choice of one wire chunk said."""

    choice_index: int = 0
    text: str = ""
    reasoning: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    finish_reason: FinishReason | str | None = None


def _carries(delta: ChunkDelta) -> bool:
    """Whether a wire delta says anything: text, reasoning, tool-call fragments or a finish."""
    return bool(delta.text or delta.reasoning or delta.tool_calls or delta.finish_reason is not None)


class _PendingCall:
    __slots__ = ("arguments", "id", "name")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []


# Per output index: text pieces, reasoning pieces, complete tool calls, [finish reason].
_Parts = tuple[list[str], list[str], list[ToolCall], list[FinishReason | str | None]]


def _outputs_of(parts: dict[int, _Parts]) -> tuple[Output, ...]:
    return tuple(
        Output(
            index=i,
            text="".join(text),
            reasoning="".join(reasoning) or None,
            tool_calls=tuple(calls),
            finish_reason=finish[0],
        )
        for i, (text, reasoning, calls, finish) in sorted(parts.items())
    )


class ChunkCollector:
    """Gathers the :class:`StreamChunk` values a caller received into one :class:`GenerateResponse`
    (for any driver's stream: what a cache stores once the stream ended)."""

    __slots__ = ("id", "model", "outputs", "usage")

    def __init__(self) -> None:
        self.outputs: dict[int, _Parts] = {}
        self.usage: Usage | None = None
        self.model: str | None = None
        self.id: str | None = None

    def add(self, chunk: StreamChunk) -> None:
        parts = self.outputs.get(chunk.index)
        if parts is None:
            parts = self.outputs[chunk.index] = ([], [], [], [None])
        if chunk.text:
            parts[0].append(chunk.text)
        if chunk.reasoning:
            parts[1].append(chunk.reasoning)
        if chunk.tool_calls:
            parts[2].extend(chunk.tool_calls)
        if chunk.finish_reason is not None:
            parts[3][0] = chunk.finish_reason
        if chunk.usage is not None:
            self.usage = chunk.usage
        self.model = chunk.model or self.model
        self.id = chunk.id or self.id

    def response(self, *, provider: str | None = None, request_id: str | None = None) -> GenerateResponse:
        return GenerateResponse(
            outputs=_outputs_of(self.outputs),
            usage=self.usage,
            model=self.model,
            id=self.id,
            provider=provider,
            request_id=request_id,
        )


class StreamAssembler:
    """Stateful: feed wire deltas, get chunks; also accumulates a whole response.

    Tool-call deltas are merged by index into complete :class:`ToolCall` values that appear on
    the finishing chunk. A chunk that carries a finish reason is held back one event so that a
    trailing usage-only chunk (``choices: []``) lands on it.
    """

    __slots__ = ("_calls", "_held", "_outputs", "finished", "id", "model", "usage")

    def __init__(self) -> None:
        self._calls: dict[int, dict[int, _PendingCall]] = {}
        self._held: list[StreamChunk] = []
        self._outputs: dict[int, _Parts] = {}
        self.finished = False
        self.model: str | None = None
        self.id: str | None = None
        self.usage: Usage | None = None

    def feed(
        self,
        deltas: tuple[ChunkDelta, ...],
        usage: Usage | None,
        model: str | None,
        id: str | None,
    ) -> list[StreamChunk]:
        """Chunks ready for the caller after one wire event."""
        if model:
            self.model = model
        if id:
            self.id = id
        out: list[StreamChunk] = []
        if usage is not None:
            self.usage = usage
        if self._held:
            if not any(_carries(d) for d in deltas):
                # Nothing new for the caller (no choices, or empty deltas): a trailing usage
                # lands on the finishing chunk still held.
                if usage is not None:
                    self._held = [attrs.evolve(c, usage=usage) for c in self._held]
                return out
            out.extend(self._held)
            self._held = []
        for delta in deltas:
            chunk = self._chunk(delta, usage)
            if chunk is None:
                continue
            if chunk.finish_reason is not None:
                self._held.append(chunk)
            else:
                out.append(chunk)
        return out

    def flush(self) -> list[StreamChunk]:
        """Chunks still held when the stream ends."""
        held, self._held = self._held, []
        return held

    def _chunk(self, delta: ChunkDelta, usage: Usage | None) -> StreamChunk | None:
        index = delta.choice_index
        acc = self._outputs.get(index)
        if acc is None:
            acc = self._outputs[index] = ([], [], [], [None])
        if delta.text:
            acc[0].append(delta.text)
        if delta.reasoning:
            acc[1].append(delta.reasoning)
        for tc in delta.tool_calls:
            pending = self._calls.setdefault(index, {}).setdefault(tc.call_index, _PendingCall())
            if tc.id:
                pending.id = tc.id
            if tc.name and not pending.name:
                pending.name = tc.name
            if tc.arguments:
                pending.arguments.append(tc.arguments)
        calls: tuple[ToolCall, ...] = ()
        if delta.finish_reason is not None:
            self.finished = True
            acc[3][0] = delta.finish_reason
            calls = self._complete_calls(index)
            acc[2].extend(calls)
        if not (delta.text or delta.reasoning or delta.finish_reason is not None or calls):
            return None
        return StreamChunk(
            text=delta.text,
            reasoning=delta.reasoning,
            index=index,
            tool_calls=calls,
            finish_reason=delta.finish_reason,
            # usage seen earlier on an empty chunk still reaches the finishing chunk
            usage=usage if usage is not None or delta.finish_reason is None else self.usage,
            model=self.model,
            id=self.id,
        )

    def _complete_calls(self, index: int) -> tuple[ToolCall, ...]:
        pending = self._calls.pop(index, {})
        return tuple(
            ToolCall(p.id or f"call_{i}", p.name, "".join(p.arguments) or "{}")
            for i, p in sorted(pending.items())
        )

    def end_of_stream(self) -> list[StreamChunk]:
        """Tool calls that never got a finish reason still surface (marked as tool_calls)."""
        out = self.flush()
        for index in list(self._calls):
            calls = self._complete_calls(index)
            if calls:
                self._outputs[index][2].extend(calls)
                out.append(StreamChunk(index=index, tool_calls=calls, model=self.model, id=self.id))
        return out

    def response(self, *, provider: str | None = None, request_id: str | None = None) -> GenerateResponse:
        """Everything seen so far as one :class:`GenerateResponse`."""
        return GenerateResponse(
            outputs=_outputs_of(self._outputs),
            usage=self.usage,
            model=self.model,
            id=self.id,
            provider=provider,
            request_id=request_id,
        )
