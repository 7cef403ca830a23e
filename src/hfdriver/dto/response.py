"""Provider-neutral response DTOs."""

from __future__ import annotations

import enum

import attrs

from hfdriver.dto.request import Message, ToolCall

__all__ = [
    "Cost",
    "FinishReason",
    "RouteFailure",
    "GenerateResponse",
    "Output",
    "Usage",
    "finish_reason_of",
    "format_money",
]


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


def _money(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"a cost must be a finite number >= 0, got {value!r}")
    if value == float("inf"):
        raise ValueError("a cost must be finite")
    return float(value)


@attrs.frozen(slots=True, kw_only=True)
class Cost:
    """What one answer cost: ``input`` (prompt tokens) + ``output`` (completion tokens) = ``total``.

    Amounts are in ``currency`` (US dollars for the router's prices). ``Cost.zero()`` is an
    answer that cost nothing (local inference, a cache hit). Costs add up with ``+``.
    """

    input: float = attrs.field(converter=_money)
    output: float = attrs.field(converter=_money)
    currency: str = "USD"
    total: float = attrs.field(init=False)

    @total.default
    def _total(self) -> float:
        return self.input + self.output

    @classmethod
    def zero(cls, currency: str = "USD") -> Cost:
        return cls(input=0.0, output=0.0, currency=currency)

    @classmethod
    def of(
        cls,
        usage: Usage,
        *,
        input_per_million: float,
        output_per_million: float,
        currency: str = "USD",
    ) -> Cost:
        """Usage priced per million tokens (how the router lists prices)."""
        return cls(
            input=usage.prompt_tokens * input_per_million / 1e6,
            output=usage.completion_tokens * output_per_million / 1e6,
            currency=currency,
        )

    def __add__(self, other: object) -> Cost:
        if not isinstance(other, Cost):
            return NotImplemented
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Cost(input=self.input + other.input, output=self.output + other.output, currency=self.currency)

    def __str__(self) -> str:
        return format_money(self.total, self.currency)


def format_money(amount: float, currency: str = "USD") -> str:
    """``$0.0021`` style: enough significant digits for sub-cent amounts."""
    sign = "$" if currency == "USD" else f"{currency} "
    if amount == 0:
        return f"{sign}0"
    if amount >= 0.01:
        return f"{sign}{amount:,.4f}"
    return f"{sign}{amount:.3g}" if amount < 1e-4 else f"{sign}{amount:.6f}"


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
class RouteFailure:
    """A route a fallback tried before the one that answered, and why it failed."""

    route: str
    kind: str
    message: str


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
    cost: Cost | None = None
    """What this answer cost, when the provider's prices are known (``None`` is "unknown", never a guess)."""
    cached: bool = False
    """True when the answer came from a response cache (then ``cost`` is zero: nothing was spent)."""
    route: str | None = None
    """With fallbacks: the route (model, ``model:provider`` or profile) that answered."""
    failed_routes: tuple[RouteFailure, ...] = ()
    """With fallbacks: the routes tried before, each with the kind and message of its failure."""

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
