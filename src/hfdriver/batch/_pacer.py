"""When an attempt may go: the :class:`Pacer` protocol and :class:`LocalPacer`, one process's.

A :class:`~hfdriver.batch.FlowControl` holds the concurrency and the token budget; its pacer
decides the moment each attempt leaves and learns from what comes back. One process paces with a
:class:`LocalPacer`; the workers of the Ray engine ask the cluster's limit actor, which paces with a
:class:`LocalPacer` too (:class:`~hfdriver.batch._cluster.ClusterPacer`,
:class:`~hfdriver.batch._cluster.HandoverPacer`). No pacer subclasses another.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Protocol

from hfdriver.batch._learner import DEFAULT_MAX_PAUSE, RateLearner
from hfdriver.errors import HuggingFaceErrorKind

__all__ = ["LocalPacer", "Pacer"]


class Pacer(Protocol):
    """What :class:`~hfdriver.batch.FlowControl` asks of a pacer."""

    async def turn(self) -> None:
        """Wait until an attempt may be sent (a pause, the rate); raise when the batch stopped."""
        ...

    def succeeded(self, now: float) -> None:
        """An attempt was answered."""
        ...

    def refused(self, kind: HuggingFaceErrorKind, retry_after: float | None, started: float) -> None:
        """A rate-limit or overload answer to an attempt let go at ``started`` (monotonic clock)."""
        ...

    def stated(self, limit: float) -> None:
        """An answer stated the server's limit: ``limit`` requests/s (its rate-limit headers)."""
        ...

    def stop(self, kind: HuggingFaceErrorKind, message: str) -> None:
        """A failure that would hit every row: no more turns (for every worker of a cluster)."""
        ...

    async def flush(self) -> None:
        """Report what is not reported yet (a cluster pacer batches its reports)."""
        ...

    @property
    def learner(self) -> RateLearner:
        """The state of what was learned (for progress and the summary)."""
        ...


class LocalPacer:
    """Attempts leave one by one, ``1/rate`` apart, in arrival order, after any pause; nothing is
    booked ahead, so a changed rate or a pause applies at once. The rate is ``rpm`` and, when
    ``adaptive``, what the :class:`RateLearner` learns."""

    def __init__(
        self, *, rpm: float | None = None, adaptive: bool = True, max_pause: float = DEFAULT_MAX_PAUSE
    ) -> None:
        self.learner = RateLearner(rpm=rpm, adaptive=adaptive, max_pause=float(max_pause))
        self._next_send = 0.0
        self._queue: deque[asyncio.Future[None]] = deque()  # waiting for a send time
        self._timer: asyncio.TimerHandle | None = None

    @property
    def adaptive(self) -> bool:
        return self.learner.adaptive

    def adopt(self, learner: RateLearner) -> None:
        """Go on from another pacer's learner (the Ray engine's hand-over)."""
        self.learner = learner
        self.reschedule()

    # ------------------------------------------------------------------ the Pacer protocol
    async def turn(self) -> None:
        await self.wait_for_turn()
        if self.learner.adaptive:  # send times serve only the learning
            self.learner.on_sent(time.monotonic())

    def succeeded(self, now: float, count: int = 1) -> None:
        self.learner.on_success(now, count)

    def refused(self, kind: HuggingFaceErrorKind, retry_after: float | None, started: float) -> None:
        if self.learner.refused(time.monotonic(), kind, retry_after, started):
            self.reschedule()

    def stated(self, limit: float) -> None:
        if self.learner.stated(limit, time.monotonic()):
            self.reschedule()

    def stop(self, kind: HuggingFaceErrorKind, message: str) -> None:
        return None  # one process: run_batch stops pulling rows itself

    async def flush(self) -> None:
        return None

    # ------------------------------------------------------------------ pacing
    async def wait_for_turn(self) -> None:
        """The pause, then the rate: attempts leave in arrival order."""
        now = time.monotonic()
        learner = self.learner
        if not self._queue and now >= learner.paused_until:
            rate = learner.effective_rate()
            if rate is None:
                return
            if now >= self._next_send:
                self._advance(now, rate)
                return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(waiter)
        self._schedule()
        try:
            await waiter
        except BaseException:
            if waiter in self._queue:
                self._queue.remove(waiter)
            elif not waiter.cancelled():
                self._next_send = time.monotonic()  # its turn was given and not used
            raise

    def _schedule(self) -> None:
        if self._timer is not None or not self._queue:
            return
        when = max(self._next_send, self.learner.paused_until)
        self._timer = asyncio.get_running_loop().call_later(
            max(0.0, when - time.monotonic()), self._release_one
        )

    def _release_one(self) -> None:
        self._timer = None
        now = time.monotonic()
        if now >= self.learner.paused_until and now >= self._next_send:
            while self._queue:
                waiter = self._queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    rate = self.learner.effective_rate()
                    if rate:
                        self._advance(now, rate)
                    else:
                        self._next_send = now
                    break
        self._schedule()

    def _advance(self, now: float, rate: float) -> None:
        """An attempt leaves at ``now``: when may the next one go? A timer that fired late (by less
        than an interval) keeps the schedule, so the rate holds; anything later (an idle spell,
        a pause) starts afresh, one interval on: never two at once, which a limiter without a
        burst allowance would refuse."""
        interval = 1.0 / rate
        following = self._next_send + interval
        self._next_send = following if following > now else now + interval

    def reschedule(self) -> None:
        """Re-arm the timer after the rate or a pause changed."""
        self._schedule()
