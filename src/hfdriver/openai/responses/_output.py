"""Responses API answers out: the ``response`` object and, for a stream, its events in order."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from hfdriver.dto.request import ToolCall
from hfdriver.dto.response import FinishReason, GenerateResponse, Output, Usage
from hfdriver.dto.stream import StreamChunk

__all__ = ["ResponseEvents", "ResponseShell", "dumps", "new_id", "output_items", "responses_usage"]

dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def new_id(prefix: str) -> str:
    """``resp_…``, ``msg_…``, ``fc_…``, ``rs_…``: OpenAI's id shapes, 24 random bytes as hex."""
    return f"{prefix}_{os.urandom(24).hex()}"


def responses_usage(usage: Usage | None) -> dict[str, Any] | None:
    """``usage`` in the Responses API's shape."""
    if usage is None:
        return None
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }


_INCOMPLETE = {FinishReason.LENGTH: "max_output_tokens", FinishReason.CONTENT_FILTER: "content_filter"}


def _incomplete(finish: FinishReason | str | None) -> str | None:
    return _INCOMPLETE.get(finish) if isinstance(finish, FinishReason) else None


def _message(text: str, status: str, item_id: str | None = None) -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id or new_id("msg"),
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def _reasoning(text: str, status: str, item_id: str | None = None) -> dict[str, Any]:
    return {
        "type": "reasoning",
        "id": item_id or new_id("rs"),
        "status": status,
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
    }


def _function_call(call: ToolCall, arguments: str, status: str, item_id: str | None = None) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id or new_id("fc"),
        "status": status,
        "call_id": call.id,
        "name": call.name,
        "arguments": arguments,
    }


def output_items(output: Output | None) -> list[dict[str, Any]]:
    """The output items of one chat answer: its reasoning, its text (also when empty and there is
    no tool call, so a client always finds a message), then its function calls."""
    if output is None:
        return [_message("", "completed")]
    status = "incomplete" if _incomplete(output.finish_reason) else "completed"
    items = []
    if output.reasoning:
        items.append(_reasoning(output.reasoning, status))
    if output.text or not output.tool_calls:
        items.append(_message(output.text, status))
    items.extend(_function_call(call, call.arguments, "completed") for call in output.tool_calls)
    return items


class ResponseShell:
    """The ``response`` object of one request, from ``in_progress`` to its final state."""

    __slots__ = ("body",)

    def __init__(self, response_id: str, model: str, echo: Mapping[str, Any], created_at: int) -> None:
        self.body: dict[str, Any] = {
            "id": response_id,
            "object": "response",
            "created_at": created_at,
            "status": "in_progress",
            "error": None,
            "incomplete_details": None,
            "model": model,
            "output": [],
            "usage": None,
            **echo,
        }

    def snapshot(self) -> dict[str, Any]:
        return dict(self.body)

    def finish(
        self,
        output: list[dict[str, Any]],
        finish: FinishReason | str | None,
        usage: Usage | None,
        model: str | None,
    ) -> dict[str, Any]:
        """The final object: ``completed``, or ``incomplete`` with the reason when the answer was cut."""
        reason = _incomplete(finish)
        self.body.update(
            status="incomplete" if reason else "completed",
            incomplete_details={"reason": reason} if reason else None,
            output=output,
            usage=responses_usage(usage),
        )
        if model:
            self.body["model"] = model
        return self.snapshot()

    def completed(self, response: GenerateResponse) -> dict[str, Any]:
        output = response.outputs[0] if response.outputs else None
        finish = output.finish_reason if output is not None else None
        return self.finish(output_items(output), finish, response.usage, response.model)

    def failed(self, code: str, message: str, output: list[dict[str, Any]]) -> dict[str, Any]:
        self.body.update(status="failed", error={"code": code, "message": message}, output=output)
        return self.snapshot()


# ---------------------------------------------------------------------------- streaming
class _Item:
    """The output item being streamed: a message, or reasoning, and its text so far."""

    __slots__ = ("delta_prefix", "id", "index", "kind", "parts")

    def __init__(self, kind: str, index: int) -> None:
        self.kind = kind
        self.index = index
        self.id = new_id("msg" if kind == "message" else "rs")
        self.parts: list[str] = []
        event = "response.output_text.delta" if kind == "message" else "response.reasoning_text.delta"
        # The one event of the hot path, written from a prefix made once per item.
        self.delta_prefix = (
            f'event: {event}\ndata: {{"type":"{event}","item_id":"{self.id}","output_index":{index},'
            f'"content_index":0,{"" if kind != "message" else chr(34) + "logprobs" + chr(34) + ":[],"}"delta":'
        ).encode()


class ResponseEvents:
    """The Server-Sent Events of one streamed response, numbered in order.

    Text and reasoning deltas go out as they arrive; a tool call (which a driver's stream delivers
    whole) is one ``function_call_arguments.delta`` and its ``.done``. Each method returns the
    bytes to write.
    """

    __slots__ = ("_item", "output", "seq", "shell")

    def __init__(self, shell: ResponseShell) -> None:
        self.shell = shell
        self.seq = 0
        self.output: list[dict[str, Any]] = []
        self._item: _Item | None = None

    def _event(self, kind: str, body: dict[str, Any]) -> bytes:
        body["sequence_number"] = self.seq
        self.seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + dumps({"type": kind, **body}).encode() + b"\n\n"

    def start(self) -> bytes:
        return self._event("response.created", {"response": self.shell.snapshot()}) + self._event(
            "response.in_progress", {"response": self.shell.snapshot()}
        )

    def chunk(self, chunk: StreamChunk) -> bytes:
        if chunk.index:
            return b""  # a Responses answer has one choice
        out = b""
        if chunk.reasoning:
            out += self._delta("reasoning", chunk.reasoning)
        if chunk.text:
            out += self._delta("message", chunk.text)
        for call in chunk.tool_calls:
            out += self._close() + self._call(call)
        return out

    def _delta(self, kind: str, text: str) -> bytes:
        item = self._item
        out = b""
        if item is None or item.kind != kind:
            out = self._close() + self._open(kind)
            item = self._item
            assert item is not None
        item.parts.append(text)
        seq = self.seq
        self.seq += 1
        return (
            out
            + item.delta_prefix
            + dumps(text).encode()
            + b',"sequence_number":'
            + str(seq).encode()
            + b"}\n\n"
        )

    def _open(self, kind: str) -> bytes:
        item = self._item = _Item(kind, len(self.output))
        shape = (
            _message("", "in_progress", item.id)
            if kind == "message"
            else _reasoning("", "in_progress", item.id)
        )
        shape["content"] = []
        part = shape_part(kind, "")
        where = {"item_id": item.id, "output_index": item.index, "content_index": 0}
        return self._event(
            "response.output_item.added", {"output_index": item.index, "item": shape}
        ) + self._event("response.content_part.added", {**where, "part": part})

    def _close(self, status: str = "completed") -> bytes:
        item, self._item = self._item, None
        if item is None:
            return b""
        text = "".join(item.parts)
        where = {"item_id": item.id, "output_index": item.index, "content_index": 0}
        done = "response.output_text.done" if item.kind == "message" else "response.reasoning_text.done"
        extra: dict[str, Any] = {"logprobs": []} if item.kind == "message" else {}
        whole = (
            _message(text, status, item.id) if item.kind == "message" else _reasoning(text, status, item.id)
        )
        self.output.append(whole)
        return (
            self._event(done, {**where, "text": text, **extra})
            + self._event("response.content_part.done", {**where, "part": shape_part(item.kind, text)})
            + self._event("response.output_item.done", {"output_index": item.index, "item": whole})
        )

    def _call(self, call: ToolCall) -> bytes:
        index = len(self.output)
        item = _function_call(call, "", "in_progress")
        whole = _function_call(call, call.arguments, "completed", item["id"])
        self.output.append(whole)
        where = {"item_id": item["id"], "output_index": index}
        return (
            self._event("response.output_item.added", {"output_index": index, "item": item})
            + self._event("response.function_call_arguments.delta", {**where, "delta": call.arguments})
            + self._event(
                "response.function_call_arguments.done",
                {**where, "name": call.name, "arguments": call.arguments},
            )
            + self._event("response.output_item.done", {"output_index": index, "item": whole})
        )

    def finish(self, finish: FinishReason | str | None, usage: Usage | None, model: str | None) -> bytes:
        """Close the open item and send ``response.completed`` (``response.incomplete`` when cut)."""
        status = "incomplete" if _incomplete(finish) else "completed"
        out = self._close(status)
        if not self.output:
            out += self._open("message") + self._close(status)
        body = self.shell.finish(self.output, finish, usage, model)
        return out + self._event(f"response.{body['status']}", {"response": body})

    def fail(self, code: str, message: str) -> bytes:
        """Close the open item and send ``response.failed`` with the error."""
        out = self._close("incomplete")
        return out + self._event(
            "response.failed", {"response": self.shell.failed(code, message, self.output)}
        )


def shape_part(kind: str, text: str) -> dict[str, Any]:
    if kind == "message":
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {"type": "reasoning_text", "text": text}
