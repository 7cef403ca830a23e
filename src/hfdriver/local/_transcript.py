"""The plain-transcript rendering, for models without a chat template (base models).

A base model has never seen chat markup, but it continues text well. A conversation rendered as
a transcript, after a one-line description and a short example exchange, is continued as the
assistant's next turn; generation stops when the model starts the next ``User:`` turn::

    A conversation between a User and a helpful Assistant. The Assistant answers each question
    correctly and briefly.

    User: What is the largest planet in the Solar System?
    Assistant: The largest planet in the Solar System is Jupiter.
    User: What is the capital of France?
    Assistant:

The embedded Gemma 3 270M answers "The capital of France is Paris." to that. A system message
replaces the description line. ``chat_format="transcript"`` selects this rendering explicitly;
it is also what a model with no template and no ``chat_format`` gets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hfdriver.dto.message import Message, Role, Text
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

__all__ = [
    "EXAMPLE_EXCHANGE",
    "PREAMBLE",
    "TRANSCRIPT",
    "TRANSCRIPT_STOP",
    "MarkerGuard",
    "as_chat_chunk",
    "render_transcript",
]

TRANSCRIPT = "transcript"
"""The ``chat_format`` name of this rendering."""

PREAMBLE = (
    "A conversation between a User and a helpful Assistant. "
    "The Assistant answers each question correctly and briefly."
)
EXAMPLE_EXCHANGE = (
    ("What is the largest planet in the Solar System?", "The largest planet in the Solar System is Jupiter."),
)
TRANSCRIPT_STOP = ("\nUser:", "\nAssistant:", "\n\n")
"""Where the assistant's turn ends: the model starting the next turn, or a blank line."""


def _text(message: Message, index: int) -> str:
    parts = []
    for item in message.content:
        if not isinstance(item, Text):
            raise HuggingFaceError(
                HuggingFaceErrorKind.INVALID_REQUEST,
                f"messages[{index}]: the transcript rendering carries text only, not {type(item).__name__}; "
                "use a model with a chat template (or chat_format) for tools and images",
            )
        parts.append(item.text)
    return " ".join(" ".join(parts).split())  # one line per turn: a newline would end the turn


def render_transcript(messages: Sequence[Message]) -> str:
    """The prompt text for ``messages``, ending where the assistant's answer begins."""
    system = [_text(m, i) for i, m in enumerate(messages) if m.role is Role.SYSTEM]
    lines = [" ".join(system) if system else PREAMBLE, ""]
    for question, answer in EXAMPLE_EXCHANGE:
        lines += [f"User: {question}", f"Assistant: {answer}"]
    for index, message in enumerate(messages):
        if message.role is Role.USER:
            lines.append(f"User: {_text(message, index)}")
        elif message.role is Role.ASSISTANT:
            lines.append(f"Assistant: {_text(message, index)}")
        elif message.role is Role.TOOL:
            raise HuggingFaceError(
                HuggingFaceErrorKind.INVALID_REQUEST,
                f"messages[{index}]: tool results need a function-calling chat format, not the transcript rendering",
            )
    return "\n".join(lines) + "\nAssistant:"


def as_chat_chunk(chunk: dict[str, Any], *, first: bool) -> dict[str, Any]:
    """A llama.cpp text-completion chunk in the chat-completion chunk shape the parser reads."""
    out = []
    for choice in chunk.get("choices") or ():
        text = choice.get("text") or ""
        out.append(
            {
                "index": choice.get("index", 0),
                "delta": {"content": text.lstrip() if first else text},
                "finish_reason": choice.get("finish_reason"),
            }
        )
    return {"id": chunk.get("id"), "model": chunk.get("model"), "choices": out}


class MarkerGuard:
    """Holds back the end of the streamed text while it could still be the start of a stop marker
    (``"\nUs"`` of ``"\nUser:"``), and drops it when the generation ends there: an answer cut by
    ``max_tokens`` mid-marker never shows a piece of the transcript's next turn."""

    __slots__ = ("held", "stops")

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(stops)
        self.held = ""

    def feed(self, text: str, *, finished: bool) -> str:
        text = self.held + text
        keep = self._partial(text)
        self.held = "" if finished else text[len(text) - keep :]
        return text[: len(text) - keep]

    def _partial(self, text: str) -> int:
        """The length of the longest end of ``text`` that begins some stop marker."""
        for size in range(min(len(text), max(map(len, self.stops), default=0)), 0, -1):
            tail = text[-size:]
            if any(stop.startswith(tail) for stop in self.stops):
                return size
        return 0
