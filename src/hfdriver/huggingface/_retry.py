"""Turns a :class:`RetryPolicy` into a tenacity ``AsyncRetrying``.

Retried: ``RATE_LIMITED``, ``MODEL_LOADING``, ``OVERLOADED``, ``SERVER`` 5xx (not 501/505),
``CONNECTION`` and connect timeouts. Never: 400/401/402/403/404/422, read or total timeouts.
A server's ``Retry-After`` / ``estimated_time`` is the wait when given, up to
``max_retry_after``; beyond it the error is raised at once. Otherwise exponential backoff with
jitter. Each scheduled retry is logged at WARNING on the ``hfdriver`` logger.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import tenacity

from hfdriver.errors._error import HuggingFaceError
from hfdriver.huggingface._config import RetryPolicy

__all__ = ["build_retrying", "call_with_retries", "instant_retries", "is_retryable", "set_testing"]

T = TypeVar("T")

logger = logging.getLogger("hfdriver")

_testing = False


def set_testing(enabled: bool) -> None:
    """Testing switch: when on, every retry wait is zero (attempt counts are unchanged)."""
    global _testing
    _testing = enabled


@contextlib.contextmanager
def instant_retries() -> Iterator[None]:
    """``with instant_retries():`` — zero retry waits inside the block (for tests)."""
    previous = _testing
    set_testing(True)
    try:
        yield
    finally:
        set_testing(previous)


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
        wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
        kind = exc.kind.name if isinstance(exc, HuggingFaceError) else type(exc).__name__
        status = f" (status {exc.status})" if isinstance(exc, HuggingFaceError) and exc.status else ""
        logger.warning(
            "hfdriver: %s failed with %s%s on attempt %d of %d; retrying in %.2fs",
            what,
            kind,
            status,
            retry_state.attempt_number,
            policy.attempts,
            wait,
            extra={"hf_kind": kind, "hf_attempt": retry_state.attempt_number, "hf_wait": wait},
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
    that failure, so waits, logging, attempt counts and the deadline all follow the policy.
    """
    start = time.monotonic()
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
            return await attempt()
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover
