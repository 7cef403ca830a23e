"""Provider-neutral response DTOs."""

from __future__ import annotations

import enum

import attrs

from hfdriver.dto.request import Message, ToolCall

__all__ = ["FinishReason", "GenerateResponse", "Output", "Usage", "finish_reason_of"]


class FinishReason(str, enum.Enum):
    """Why generation stopped. Unknown server values are kept as plain strings."""

    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"

    def __str__(self) -> str:
        return self.value


_FINISH_REASONS: dict[str, FinishReason | str] = {r.value: r for r in FinishReason}
# TGI and older servers name the same outcomes differently.
_FINISH_REASONS.update(
    {
        "eos_token": FinishReason.STOP,
        "eos": FinishReason.STOP,
        "stop_sequence": FinishReason.STOP,
        "end_turn": FinishReason.STOP,
        "max_tokens": FinishReason.LENGTH,
        "model_length": FinishReason.LENGTH,
        "function_call": FinishReason.TOOL_CALLS,
        "tool_call": FinishReason.TOOL_CALLS,
    }
)


def finish_reason_of(value: str | None) -> FinishReason | str | None:
    """Normalise a server finish reason; unknown values come back unchanged."""
    if value is None:
        return None
    return _FINISH_REASONS.get(value, value)


@attrs.frozen(slots=True)
class Usage:
    """Token counts for one call."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


@attrs.frozen(slots=True, kw_only=True)
class Output:
    """One generated answer (a "choice")."""

    index: int = 0
    text: str = ""
    reasoning: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: FinishReason | str | None = None

    @property
    def message(self) -> Message:
        """This output as an assistant message, to append to the conversation."""
        return Message.assistant(self.text or None, tool_calls=self.tool_calls)


@attrs.frozen(slots=True, kw_only=True)
class GenerateResponse:
    """The result of :meth:`Driver.generate`.

    ``text``, ``reasoning``, ``tool_calls`` and ``finish_reason`` read the first output.
    """

    outputs: tuple[Output, ...]
    usage: Usage | None = None
    model: str | None = None
    id: str | None = None
    created: int | None = None
    provider: str | None = None
    request_id: str | None = None

    @property
    def output(self) -> Output:
        return self.outputs[0] if self.outputs else _EMPTY

    @property
    def text(self) -> str:
        return self.output.text

    @property
    def reasoning(self) -> str | None:
        return self.output.reasoning

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return self.output.tool_calls

    @property
    def finish_reason(self) -> FinishReason | str | None:
        return self.output.finish_reason

    @property
    def message(self) -> Message:
        return self.output.message


_EMPTY = Output()
