"""The cluster's one rate limit and its queue of work, as plain classes the Ray engine runs as
actors.

They live apart from :mod:`hfdriver.batch.ray` so that the actors' processes import only the flow
control (not Ray): the limit is up, and the first rows sent, about a second sooner.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from hfdriver.batch._pacer import LocalPacer
from hfdriver.errors import HuggingFaceErrorKind

__all__ = ["SharedLimit", "WorkQueue"]


class SharedLimit:
    """The cluster's one rate limit (an async Ray actor): every attempt of every worker waits
    here for its turn, from one :class:`~hfdriver.batch._pacer.LocalPacer` — the same pacing and
    learning as in one process, so the cluster stays under the limit one process would."""

    def __init__(self, rpm: float | None = None, adaptive: bool = True, max_pause: float = 60.0) -> None:
        self.pacer = LocalPacer(rpm=rpm, adaptive=adaptive, max_pause=max_pause)
        self.stopped: tuple[str, str] | None = None
        self.sent = 0

    async def adopt(self, learner: Any, sent_at: float) -> None:
        """Take over what the program that started the batch learned while this actor started
        (its :class:`RateLearner`, read at ``sent_at`` on that program's monotonic clock)."""
        self.pacer.adopt(learner.shifted(time.monotonic() - sent_at))

    async def report(self, successes: int) -> None:
        """Answers a worker got that no later ``acquire`` will report (the end of its batch)."""
        if successes:
            self.pacer.succeeded(time.monotonic(), successes)

    async def acquire(self, successes: int = 0) -> bool:
        """Report the answers a worker got since its last call; wait for a turn. False: stopped."""
        if successes:
            self.pacer.succeeded(time.monotonic(), successes)
        if self._stopped():
            return False
        await self.pacer.turn()
        if self._stopped():  # stopped while waiting
            return False
        self.sent += 1
        return True

    def _stopped(self) -> bool:
        return self.stopped is not None

    async def congestion(self, kind: str, retry_after: float | None, started_ago: float) -> None:
        self.pacer.refused(HuggingFaceErrorKind[kind], retry_after, time.monotonic() - started_ago)

    async def stated(self, limit: float) -> None:
        self.pacer.stated(limit)

    async def stop(self, kind: str, message: str) -> None:
        if self.stopped is None:
            self.stopped = (kind, message)

    async def state(self) -> dict[str, Any]:
        learner = self.pacer.learner
        return {
            "stopped": self.stopped,
            "rate": learner.rate,
            "rate_limited": learner.rate_limited,
            "pauses": learner.pauses,
            "sent": self.sent,
        }


class WorkQueue:
    """The work of a batch (ranges of lines of the input file, or rows to redo), handed to the
    workers one piece at a time as they ask (an async Ray actor); counts the rows written."""

    def __init__(self, work: list[dict[str, Any]]) -> None:
        self._todo = deque(work)
        self.written = 0

    async def take(self) -> dict[str, Any] | None:
        """The next piece of work, or None when there is none left."""
        return self._todo.popleft() if self._todo else None

    async def wrote(self, rows: int) -> None:
        self.written += rows

    async def progress(self) -> int:
        """Rows written so far."""
        return self.written
