"""Retries for every client: a :class:`RetryPolicy` run by tenacity, with hooks and a testing switch.

Retried: ``RATE_LIMITED``, ``MODEL_LOADING``, ``OVERLOADED``, ``SERVER`` 5xx (not 501/505),
``CONNECTION`` and connect timeouts. Never: 400/401/402/403/404/422, read or total timeouts.
A server's ``Retry-After`` / ``estimated_time`` is the wait when given, up to
``max_retry_after``; beyond it the error is raised at once. Otherwise exponential backoff with
jitter.

Each scheduled retry is reported to the retry hooks as a frozen :class:`RetryDetails`; the
default hook logs it at WARNING on the ``hfdriver`` logger. :func:`set_on_retry_hooks` replaces
the hooks (telemetry, metrics, your own logging). :func:`set_testing` turns every wait to zero.
"""

from __future__ import annotations

import contextvars
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Protocol, TypeVar

import attrs
import tenacity

from hfdriver.errors import HuggingFaceError
from hfdriver.transport._policy import RetryPolicy
from hfdriver.transport._ratelimit import stated_rate

__all__ = [
    "AttemptGate",
    "RetryDetails",
    "RetryHook",
    "build_retrying",
    "call_with_retries",
    "get_on_retry_hooks",
    "instant_retries",
    "is_retryable",
    "is_testing",
    "log_retry",
    "quiet_retry_log",
    "reset_retry_log",
    "set_on_retry_hooks",
    "reset_attempt_gate",
    "set_testing",
    "use_attempt_gate",
]

T = TypeVar("T")

ATTEMPT: contextvars.ContextVar[int] = contextvars.ContextVar("hfdriver_attempt", default=1)
"""The attempt in progress (1 for the first), for the transport's debug log."""

logger = logging.getLogger("hfdriver")


@attrs.frozen(slots=True, kw_only=True)
class RetryDetails:
    """One scheduled retry, as the retry hooks receive it.

    Attributes:
        what: the call being retried (``"generate"``, ``"stream"``, ``"hub request"``...).
        attempt: the attempt that just failed (1 for the first).
        attempts: the policy's attempts in all.
        wait: seconds until the next attempt (0 under :func:`set_testing`).
        elapsed: seconds since the first attempt started.
        error: the failure that caused the retry.
    """

    what: str
    attempt: int
    attempts: int
    wait: float
    elapsed: float
    error: HuggingFaceError

    @property
    def kind(self) -> str:
        """The error kind's name (``"RATE_LIMITED"``...)."""
        return self.error.kind.name

    @property
    def status(self) -> int | None:
        return self.error.status

    @property
    def request_id(self) -> str | None:
        return self.error.request_id

    @property
    def provider(self) -> str | None:
        return self.error.provider


RetryHook = Callable[[RetryDetails], None]


_retry_log_quiet: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "hfdriver_retry_log_quiet", default=False
)


def quiet_retry_log(quiet: bool = True) -> contextvars.Token[bool]:
    """Silence :func:`log_retry` in this context (and the tasks it starts) without touching the
    hook list: a progress bar that counts retries itself. Undo with :func:`reset_retry_log`."""
    return _retry_log_quiet.set(quiet)


def reset_retry_log(token: contextvars.Token[bool]) -> None:
    """Undo :func:`quiet_retry_log`."""
    _retry_log_quiet.reset(token)


def log_retry(details: RetryDetails) -> None:
    """The default hook: one WARNING line on the ``hfdriver`` logger per scheduled retry."""
    if _retry_log_quiet.get():
        return
    status = f" (status {details.status})" if details.status else ""
    logger.warning(
        "hfdriver: %s failed with %s%s on attempt %d of %d; retrying in %.2fs",
        details.what,
        details.kind,
        status,
        details.attempt,
        details.attempts,
        details.wait,
        extra={"hf_kind": details.kind, "hf_attempt": details.attempt, "hf_wait": details.wait},
    )


_defaults: list[RetryHook] = [log_retry]
_custom: tuple[RetryHook, ...] | None = None


def set_on_retry_hooks(hooks: Iterable[RetryHook] | None) -> None:
    """Replace the retry hooks. ``None`` restores the defaults (:func:`log_retry`, and the span
    event once telemetry is in use); ``[]`` silences.

    A hook that raises is logged and ignored: instrumentation never breaks a call.
    """
    global _custom
    _custom = None if hooks is None else tuple(hooks)


def add_default_retry_hook(hook: RetryHook) -> None:
    """Add ``hook`` to the default hooks (once): what a layer above the transport installs when it
    is in use (telemetry's span events). Hooks set with :func:`set_on_retry_hooks` stay as set."""
    if hook not in _defaults:
        _defaults.append(hook)


def get_on_retry_hooks() -> tuple[RetryHook, ...]:
    """The hooks in effect."""
    return _custom if _custom is not None else tuple(_defaults)


def _run_hooks(details: RetryDetails) -> None:
    for hook in get_on_retry_hooks():
        try:
            hook(details)
        except Exception:  # noqa: PERF203 - each hook is isolated from the others
            logger.exception("hfdriver: retry hook %r failed", hook)


class AttemptGate(Protocol):
    """Flow control around every attempt of every call made in a context (a batch uses one).

    ``before_attempt`` waits for a slot (concurrency, rate budget, a global pause after a 429);
    ``after_attempt`` gives the slot back with the outcome: ``None`` for success, the error
    otherwise (a :class:`HuggingFaceError`, or anything else that ended the attempt). A gate may
    also have ``stated_rate(limit)``: the transport calls it when an answer's headers state the
    server's limit (requests/s; :func:`hfdriver.transport.stated_rate` reads the dialects).
    """

    async def before_attempt(self) -> None: ...

    def after_attempt(self, error: BaseException | None) -> None: ...


_GATE: contextvars.ContextVar[AttemptGate | None] = contextvars.ContextVar(
    "hfdriver_attempt_gate", default=None
)


def use_attempt_gate(gate: AttemptGate | None) -> contextvars.Token[AttemptGate | None]:
    """Route every attempt started in this context (and tasks created from it) through ``gate``.

    Returns the token to restore the previous gate with ``reset_attempt_gate``.
    """
    return _GATE.set(gate)


def reset_attempt_gate(token: contextvars.Token[AttemptGate | None]) -> None:
    _GATE.reset(token)


def _gated(gate: AttemptGate, attempt: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
    async def gated() -> T:
        await gate.before_attempt()
        try:
            result = await attempt()
        except BaseException as exc:
            gate.after_attempt(exc)
            raise
        gate.after_attempt(None)
        return result

    return gated


class _Testing:
    """What :func:`set_testing` returns: the switch is already flipped; ``with`` restores it."""

    __slots__ = ("_previous",)

    def __init__(self, previous: bool) -> None:
        self._previous = previous

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        global _testing
        _testing = self._previous


_testing = False


def set_testing(enabled: bool) -> _Testing:
    """Testing switch: when on, every retry wait is zero (attempt counts are unchanged).

    It takes effect at once; used as ``with set_testing(True):`` it is restored on leaving the
    block, whatever happened inside, so a test cannot leak it into the next one.
    """
    global _testing
    previous, _testing = _testing, bool(enabled)
    return _Testing(previous)


def is_testing() -> bool:
    """Whether retry waits are zeroed."""
    return _testing


def instant_retries() -> _Testing:
    """``with instant_retries():`` zero retry waits inside the block (for tests)."""
    return set_testing(True)


def is_retryable(exc: BaseException, policy: RetryPolicy) -> bool:
    if not isinstance(exc, HuggingFaceError) or not exc.retryable:
        return False
    return exc.retry_after is None or exc.retry_after <= policy.max_retry_after


class _Wait(tenacity.wait.wait_base):
    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        if _testing:
            return 0.0
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, HuggingFaceError) and exc.retry_after is not None:
            return float(exc.retry_after)
        policy = self.policy
        backoff = min(policy.max_backoff, policy.initial_backoff * 2.0 ** (retry_state.attempt_number - 1))
        return backoff + random.uniform(0, policy.jitter)


def _before_sleep_factory(policy: RetryPolicy, what: str) -> Callable[[tenacity.RetryCallState], None]:
    def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if not isinstance(exc, HuggingFaceError):  # pragma: no cover - only HuggingFaceError is retried
            return
        _run_hooks(
            RetryDetails(
                what=what,
                attempt=retry_state.attempt_number,
                attempts=policy.attempts,
                wait=retry_state.next_action.sleep if retry_state.next_action else 0.0,
                elapsed=time.monotonic() - retry_state.start_time,
                error=exc,
            )
        )

    return before_sleep


def build_retrying(policy: RetryPolicy, what: str = "request") -> tenacity.AsyncRetrying:
    """A fresh ``AsyncRetrying`` for one call (tenacity keeps per-call state on it)."""
    return tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(policy.attempts) | tenacity.stop_before_delay(policy.deadline),
        wait=_Wait(policy),
        retry=tenacity.retry_if_exception(lambda exc: is_retryable(exc, policy)),
        before_sleep=_before_sleep_factory(policy, what),
        reraise=True,
    )


async def call_with_retries(policy: RetryPolicy, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
    """Run ``attempt`` under ``policy``.

    The first attempt runs directly: a call that succeeds (the common case) pays nothing for
    tenacity's machinery. Once an attempt fails retryably, tenacity takes over, starting from
    that failure, so waits, hooks, attempt counts and the deadline all follow the policy.
    """
    start = time.monotonic()
    gate = _GATE.get()
    if gate is not None:
        attempt = _gated(gate, attempt)
    try:
        return await attempt()
    except HuggingFaceError as exc:
        if policy.attempts <= 1 or not is_retryable(exc, policy):
            raise
        first_error = exc
    replay_first = True
    async for managed in build_retrying(policy, what):
        with managed:
            if replay_first:
                replay_first = False
                managed.retry_state.start_time = start  # the deadline counts from the first try
                raise first_error
            ATTEMPT.set(managed.retry_state.attempt_number)
            return await attempt()
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover


def observe_limits(headers: Mapping[str, str]) -> None:
    """Tell the attempt gate in effect (a batch's flow control) the limit ``headers`` state, if any."""
    gate = _GATE.get()
    if gate is None:
        return
    observe = getattr(gate, "stated_rate", None)
    if observe is not None:
        limit = stated_rate(headers)
        if limit is not None:
            observe(limit)
