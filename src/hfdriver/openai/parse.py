"""Answers in: OpenAI chat-completions JSON as provider-neutral DTOs.

One parser for everything that arrives: :func:`parse_response` for a whole answer,
:func:`parse_event` / :func:`parse_chunk` for stream events (the router stream, a replayed
unary body, llama.cpp's chunks in the local driver). One rule, :func:`error_payload`, says
whether what arrived is an error report rather than an answer. They accept every shape recorded
in the conformance corpus and raise nothing but ``HuggingFaceError``: ``DECODE`` for a body that
is not a chat completion, the mapped kind for an error report.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from hfdriver.dto.request import ToolCall
from hfdriver.dto.response import GenerateResponse, Output, Usage, finish_reason_of
from hfdriver.dto.stream import ChunkDelta, ToolCallDelta
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind, Secret, error_from_stream_event, redact
from hfdriver.openai.payload import converter

__all__ = [
    "ParsedChunk",
    "error_payload",
    "parse_chunk",
    "parse_event",
    "parse_response",
    "structure_chunk",
]


# What malformed JSON values raise while being read: wrong types, absurd numbers (1e400 tokens),
# nesting deeper than the interpreter's stack. Each becomes DECODE, never a raw exception.
_MALFORMED = (AttributeError, KeyError, TypeError, ValueError, OverflowError, RecursionError)


def _decode_error(what: str, detail: str) -> HuggingFaceError:
    return HuggingFaceError(
        HuggingFaceErrorKind.DECODE,
        f"the server's {what} is not a chat completion ({detail}); check that base_url points at an "
        "OpenAI-compatible /v1 endpoint",
    )


def _opt_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"expected a string, got {type(value).__name__}")


def _text_of(content: Any) -> str:
    if type(content) is str:
        return content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    raise TypeError(f"content is a {type(content).__name__}")


def _arguments(function: dict[str, Any]) -> str:
    args = function.get("arguments")
    if args is None:
        args = function.get("parameters")  # TGI 1.4.5 named them "parameters"
    if args is None:
        return ""
    if isinstance(args, str):
        return args
    return json.dumps(args, ensure_ascii=False)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):  # TGI 1.x/2.x send a single object instead of a list
        return [value]
    raise TypeError(f"tool_calls is a {type(value).__name__}")


def _tool_calls(value: Any) -> tuple[ToolCall, ...]:
    calls = []
    for i, raw in enumerate(_as_list(value)):
        function = raw.get("function") or {}
        calls.append(
            ToolCall(
                _opt_str(raw.get("id")) or f"call_{i}",
                function.get("name") or "",
                _arguments(function),
            )
        )
    return tuple(calls)


def _usage(value: Any) -> Usage | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError("usage is not an object")
    prompt = int(value.get("prompt_tokens") or 0)
    completion = int(value.get("completion_tokens") or 0)
    total = int(value.get("total_tokens") or (prompt + completion))
    return Usage(prompt, completion, total)


def _reasoning(message: dict[str, Any]) -> str:
    value = message.get("reasoning_content")
    if value is None:
        value = message.get("reasoning")
    return _text_of(value) if value is not None else ""


def error_payload(obj: Any, event: str | None = None) -> Any | None:
    """The one rule for "this is an error report"; returns the report or None.

    A JSON object with a non-empty ``error`` is one, whether it came as a whole body or as a
    stream event, and whether or not it also carries ``choices`` (the content before the error
    is delivered first, then the error is raised). An ``event: error`` stream event is one too,
    unless it is an ordinary chunk (``choices`` and no ``error``) with the wrong event name.
    """
    if type(obj) is dict:
        if obj.get("error"):
            return obj
        if event == "error" and "choices" not in obj:
            return obj if "error" in obj else {"error": obj}
        return None
    return {"error": obj} if event == "error" else None


def _structure_response(data: Any, _cls: type[GenerateResponse]) -> GenerateResponse:
    return _response(data)


def _response(data: Any, provider: str | None = None, request_id: str | None = None) -> GenerateResponse:
    if not isinstance(data, dict):
        raise _decode_error("answer", f"a JSON {type(data).__name__}, not an object")
    choices = data.get("choices")
    if not isinstance(choices, list):
        raise _decode_error("answer", "no 'choices' list")
    try:
        outputs = []
        for position, choice in enumerate(choices):
            message = choice.get("message")
            if message is None:
                message = choice.get("delta")
            if not isinstance(message, dict):
                what = (
                    "a text completion (/v1/completions)"
                    if "text" in choice
                    else "a choice without a message"
                )
                raise TypeError(f"{what}, not a chat completion")
            index = choice.get("index")
            reasoning = _reasoning(message)
            outputs.append(
                Output(
                    index=index if isinstance(index, int) else position,
                    text=_text_of(message.get("content")),
                    reasoning=reasoning or None,
                    tool_calls=_tool_calls(message.get("tool_calls")),
                    finish_reason=finish_reason_of(choice.get("finish_reason")),
                )
            )
        created = data.get("created")
        return GenerateResponse(
            outputs=tuple(outputs),
            usage=_usage(data.get("usage")),
            model=_opt_str(data.get("model")),
            id=_opt_str(data.get("id")),
            created=created if isinstance(created, int) and not isinstance(created, bool) else None,
            provider=provider,
            request_id=request_id,
        )
    except _MALFORMED as exc:
        raise _decode_error("answer", str(exc) or type(exc).__name__) from None


converter.register_structure_hook(GenerateResponse, _structure_response)


def parse_response(
    data: Any,
    *,
    provider: str | None = None,
    request_id: str | None = None,
    token: str | Secret | None = None,
) -> GenerateResponse:
    """A chat-completion JSON object as a :class:`GenerateResponse`.

    A body that is an error report (see :func:`error_payload`) raises its mapped kind.
    """
    report = error_payload(data)
    if report is not None:
        raise error_from_stream_event(report, request_id=request_id, provider=provider, token=token)
    return _response(
        data, provider, request_id
    )  # what converter.structure(data, GenerateResponse) does, plus the headers


class ParsedChunk(NamedTuple):
    """One ``chat.completion.chunk`` event, parsed (a NamedTuple: one is made per chunk).

    ``error`` is set when the event carried content *and* an error report: deliver the content,
    then raise it.
    """

    deltas: tuple[ChunkDelta, ...]
    usage: Usage | None = None
    model: str | None = None
    id: str | None = None
    error: HuggingFaceError | None = None


def _tool_call_deltas(value: Any) -> tuple[ToolCallDelta, ...]:
    out = []
    for position, raw in enumerate(_as_list(value)):
        function = raw.get("function") or {}
        index = raw.get("index")
        out.append(
            ToolCallDelta(
                index if isinstance(index, int) and not isinstance(index, bool) else position,
                _opt_str(raw.get("id")),
                function.get("name") or None,
                _arguments(function),
            )
        )
    return tuple(out)


def _chunk_delta(position: int, choice: dict[str, Any]) -> ChunkDelta:
    delta = choice.get("delta")
    if delta is None:
        delta = choice.get("message") or {}
    content = delta.get("content")
    text = content if type(content) is str else _text_of(content)
    reasoning = delta.get("reasoning_content")
    if reasoning is None:
        reasoning = delta.get("reasoning")
    calls = delta.get("tool_calls")
    index = choice.get("index")
    finish = choice.get("finish_reason")
    return ChunkDelta(
        index if type(index) is int else position,
        text,
        "" if reasoning is None else _text_of(reasoning),
        _tool_call_deltas(calls) if calls else (),
        None if finish is None else finish_reason_of(finish),
    )


def structure_chunk(data: dict[str, Any]) -> ParsedChunk:
    """The hot path for one stream event already known to be a JSON object without ``error``."""
    try:
        choices = data.get("choices")
        if choices:
            deltas = tuple([_chunk_delta(i, c) for i, c in enumerate(choices)])
        elif choices is None and "usage" not in data:
            raise TypeError("no 'choices' in the event")
        else:
            deltas = ()
        usage = data.get("usage")
        model = data.get("model")
        id_ = data.get("id")
        return ParsedChunk(
            deltas,
            None if usage is None else _usage(usage),
            model if type(model) is str and model else _opt_str(model),
            id_ if type(id_) is str and id_ else _opt_str(id_),
        )
    except _MALFORMED as exc:
        raise _decode_error("stream event", str(exc) or type(exc).__name__) from None


def parse_chunk(
    data: Any,
    *,
    event: str | None = None,
    request_id: str | None = None,
    provider: str | None = None,
    token: str | Secret | None = None,
) -> ParsedChunk:
    """A ``chat.completion.chunk`` JSON value as a :class:`ParsedChunk`.

    ``event`` is the SSE event type when there was one. An error report raises its mapped kind
    (with ``request_id`` / ``provider``, ``token`` redacted); anything else that is not a
    chunk raises ``DECODE``.
    """
    if type(data) is dict and event is None and not data.get("error"):
        return structure_chunk(data)  # the hot path: an ordinary chunk
    report = error_payload(data, event)
    if report is not None:
        error = error_from_stream_event(report, request_id=request_id, provider=provider, token=token)
        if type(data) is dict and data.get("choices"):
            return structure_chunk(data)._replace(error=error)  # content first, then the error
        raise error
    if not isinstance(data, dict):
        raise _decode_error("stream event", f"a JSON {type(data).__name__}, not an object")
    return structure_chunk(data)


def parse_event(
    data: str,
    event: str | None = None,
    *,
    request_id: str | None = None,
    provider: str | None = None,
    token: str | Secret | None = None,
) -> ParsedChunk:
    """One SSE event's ``data`` (JSON text) as a :class:`ParsedChunk`; see :func:`parse_chunk`."""
    try:
        obj: Any = json.loads(data)
    except (ValueError, RecursionError):
        if event == "error":
            raise error_from_stream_event(
                {"error": data}, request_id=request_id, provider=provider, token=token
            ) from None
        raise HuggingFaceError(
            HuggingFaceErrorKind.DECODE,
            f"the stream sent an event that is not JSON: {redact(data[:200], token)!r}",
            request_id=request_id,
            provider=provider,
        ) from None
    if type(obj) is dict and event is None and not obj.get("error"):
        return structure_chunk(obj)  # the hot path, inline: one call less per streamed event
    return parse_chunk(obj, event=event, request_id=request_id, provider=provider, token=token)
