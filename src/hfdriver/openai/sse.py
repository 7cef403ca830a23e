"""An incremental Server-Sent Events decoder that follows the WHATWG event-stream spec.

Bytes in, events out, in time linear in the stream length: partial lines are kept as a list
of pieces and joined once, when their line ends. Line ends may be LF, CR or CRLF, including a
CR at the end of one network chunk whose LF starts the next. Work happens on bytes, so a
multi-byte UTF-8 character split across chunks, or U+2028 inside JSON, is never a line break.

>>> d = SseDecoder()
>>> d.feed(b'data: {"a":1}\\n\\ndata:x\\n')
[SseEvent(data='{"a":1}', event=None, id=None, retry=None)]
>>> d.feed(b'\\n')
[SseEvent(data='x', event=None, id=None, retry=None)]
"""

from __future__ import annotations

from typing import NamedTuple

from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "SseDecoder", "SseEvent"]

DEFAULT_MAX_EVENT_BYTES = 16 * 1024 * 1024
"""The longest line, and the largest event, a stream may send: generous, but finite."""

_BOM = b"\xef\xbb\xbf"


class SseEvent(NamedTuple):
    """One dispatched event. ``event`` is ``None`` when no ``event:`` field was given
    (the spec's default type ``message``); ``id`` is the last event id seen so far."""

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None


class SseDecoder:
    """Feed network chunks with :meth:`feed`; call :meth:`close` at the end of the stream.

    As the spec says, a block without any ``data:`` line is not dispatched, and an event not
    terminated by a blank line when the stream ends is discarded. ``emit_empty=True`` also
    dispatches blocks that set only ``event``/``id``/``retry`` (what openai-python does).
    A line or an event larger than ``max_event_bytes`` raises ``STREAM``: a server that never
    ends its line cannot make the decoder hold more than that.
    """

    __slots__ = (
        "_data",
        "_event",
        "_fields_seen",
        "_id",
        "_pending",
        "_pending_size",
        "_retry",
        "_skip_lf",
        "_started",
        "emit_empty",
        "max_event_bytes",
    )

    def __init__(self, *, emit_empty: bool = False, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self.emit_empty = emit_empty
        self.max_event_bytes = max_event_bytes
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._data: list[bytes] = []
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None
        self._fields_seen = False
        self._skip_lf = False
        self._started = False

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Decode one network chunk; returns the events it completed (often none or one)."""
        events: list[SseEvent] = []
        if not chunk:
            return events
        if self._skip_lf:
            self._skip_lf = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
                if not chunk:
                    return events
        if b"\r" in chunk:
            last = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
            if last < 0:  # pragma: no cover - a CR is a terminator, so last >= 0
                self._hold(chunk)
                return events
            if chunk[last] == 0x0D:
                # A CR ending the chunk may be the first half of a CRLF split across chunks.
                self._skip_lf = last == len(chunk) - 1
                end = last
            else:
                end = last - 1 if last > 0 and chunk[last - 1] == 0x0D else last
            head = chunk[:end].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        else:
            last = chunk.rfind(b"\n")
            if last < 0:
                self._hold(chunk)
                return events
            head = chunk[:last]
        if self._pending:
            self._pending.append(head)
            head = b"".join(self._pending)
            self._pending.clear()
            self._pending_size = 0
        tail = chunk[last + 1 :]
        if tail:
            self._hold(tail)
        if not self._started:
            self._started = True
            if head.startswith(_BOM):
                head = head[3:]
        data = self._data
        for line in head.split(b"\n"):
            # Inline fast path for the two lines every chat event has: "data: ..." and "".
            if line[:6] == b"data: ":
                data.append(line[6:])
            elif not line and data and not self._fields_seen:
                payload = data[0] if len(data) == 1 else b"\n".join(data)
                events.append(SseEvent(payload.decode("utf-8", "replace"), None, self._id, self._retry))
                data.clear()
            else:
                self._line(line, events)
        if len(data) > 1 and sum(map(len, data)) > self.max_event_bytes:
            raise self._too_large("an event")
        return events

    def _hold(self, piece: bytes) -> None:
        """Keep the start of a line that has not ended yet, up to the limit."""
        self._pending.append(piece)
        self._pending_size += len(piece)
        if self._pending_size > self.max_event_bytes:
            self._pending.clear()
            self._pending_size = 0
            raise self._too_large("a line")

    def _too_large(self, what: str) -> HuggingFaceError:
        return HuggingFaceError(
            HuggingFaceErrorKind.STREAM,
            f"the stream sent {what} larger than {self.max_event_bytes:,} bytes, the limit for one "
            "event; the server is broken, or raise max_event_bytes",
            retryable=False,
        )

    def close(self) -> None:
        """End of stream: per the spec, an unterminated event is dropped. Resets the decoder."""
        self._pending.clear()
        self._pending_size = 0
        self._reset_block()
        self._skip_lf = False

    def _reset_block(self) -> None:
        self._data.clear()
        self._event = None
        self._fields_seen = False

    def _line(self, line: bytes, events: list[SseEvent]) -> None:
        if not line:
            if self._data:
                data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
                events.append(SseEvent(data.decode("utf-8", "replace"), self._event, self._id, self._retry))
            elif self.emit_empty and self._fields_seen:
                events.append(SseEvent("", self._event, self._id, self._retry))
            self._reset_block()
            return
        if line[0] == 0x3A:  # ":" comment / keep-alive
            return
        colon = line.find(b":")
        if colon < 0:
            field, value = line, b""
        else:
            field = line[:colon]
            value = line[colon + 1 :]
            if value[:1] == b" ":
                value = value[1:]
        if field == b"data":
            self._data.append(value)
        elif field == b"event":
            self._event = value.decode("utf-8", "replace")
            self._fields_seen = True
        elif field == b"id":
            if b"\0" not in value:
                self._id = value.decode("utf-8", "replace")
            self._fields_seen = True
        elif field == b"retry":
            if value.isdigit():
                self._retry = int(value)
            self._fields_seen = True
        # Any other field name is ignored, as the spec requires.
