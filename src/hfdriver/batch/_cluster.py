"""What runs inside the Ray engine's workers — and in the program that starts the batch.

Nothing here imports Ray (an actor's process starts in well under a second when it imports only
hfdriver): actor handles arrive as arguments and are called with ``.remote()``.

- :class:`WorkerCore`: one driver, one :class:`~hfdriver.batch.FlowControl` (concurrency here)
  whose pacer asks the cluster's one :class:`~hfdriver.batch._shared.SharedLimit`, rows through
  :func:`~hfdriver.batch.run_batch`, each finished row appended to the worker's own part file.
- :class:`QueueWorker`: an actor that takes work from a :class:`~hfdriver.batch._shared.WorkQueue`
  until it is empty (ranges of lines of the input file, which it reads itself, so errors name
  their line numbers; or rows to redo); :class:`DatasetWorker` runs the batches of a
  ``ray.data.Dataset`` (``map_batches``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs

from hfdriver.batch._files import IdSet, parse_line, parse_row, result_line
from hfdriver.batch._flow import FlowControl
from hfdriver.batch._learner import RateLearner
from hfdriver.batch._pacer import LocalPacer
from hfdriver.batch._parts import PartWriter
from hfdriver.batch._run import FATAL_KINDS, BatchItem, batch_stopped, run_batch
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

__all__ = [
    "ClusterPacer",
    "DatasetWorker",
    "HandoverPacer",
    "QueueWorker",
    "RaySettings",
    "WorkerCore",
    "dataset_rows",
    "line_ranges",
    "work_items",
]


@attrs.frozen(slots=True, kw_only=True)
class RaySettings:
    """What every worker needs: the configuration (no token), and its share of the work."""

    llm: Any
    """An :class:`~hfdriver.config.LLMConfig` (tokens are resolved on the worker)."""
    concurrency: int = 32
    """Rows in flight per worker."""
    tpm: float | None = None
    """Tokens per minute for the whole batch (split evenly between the workers)."""
    workers: int = 2
    """Workers that share ``tpm``."""
    parts: str = ""
    """The folder of part files the workers append their rows to."""
    source: str | None = None
    """The input file ranges of lines are read from."""


class ClusterPacer:
    """A worker's pacer: every turn from the cluster's :class:`SharedLimit` actor; answers are
    reported with the next turn (one call, not two), refusals and stops at once."""

    def __init__(self, limit: Any) -> None:
        self._limit = limit
        self._successes = 0
        self.stopped = False
        self._learner = RateLearner(adaptive=False)  # nothing is learned here: the actor learns
        self._stated: float | None = None

    @property
    def learner(self) -> RateLearner:
        return self._learner

    async def turn(self) -> None:
        successes, self._successes = self._successes, 0
        if not await self._limit.acquire.remote(successes):
            self.stopped = True
            state = await self._limit.state.remote()
            kind, message = state["stopped"] or ("CONFIG", "stopped")
            raise batch_stopped(HuggingFaceErrorKind[kind], message, sent=False)

    def succeeded(self, now: float) -> None:
        self._successes += 1

    def refused(self, kind: HuggingFaceErrorKind, retry_after: float | None, started: float) -> None:
        self._learner.rate_limited += 1
        self._limit.congestion.remote(kind.name, retry_after, max(0.0, time.monotonic() - started))

    def stated(self, limit: float) -> None:
        if limit != self._stated:  # every answer says it: tell the cluster's limit when it changes
            self._stated = limit
            self._limit.stated.remote(limit)

    def stop(self, kind: HuggingFaceErrorKind, message: str) -> None:
        self._limit.stop.remote(kind.name, message)

    async def flush(self) -> None:
        """Report the answers not reported yet (the learner counts them)."""
        successes, self._successes = self._successes, 0
        if successes:
            await self._limit.report.remote(successes)


class HandoverPacer(ClusterPacer):
    """The pacer of the program that starts the batch: it paces and learns by itself
    (a :class:`LocalPacer`) from its first moment, while the cluster's limit starts;
    :meth:`handover` then gives the limit what it learned, and from then on it asks the limit
    like every worker."""

    def __init__(self, limit: Any, *, rpm: float | None, adaptive: bool, max_pause: float) -> None:
        super().__init__(limit)
        self._alone: LocalPacer | None = LocalPacer(rpm=rpm, adaptive=adaptive, max_pause=max_pause)

    @property
    def learner(self) -> RateLearner:
        return self._alone.learner if self._alone is not None else self._learner

    async def handover(self) -> None:
        """The cluster's limit is up: give it this program's learner; ask it from now on."""
        alone, self._alone = self._alone, None
        if alone is not None:
            await self._limit.adopt.remote(alone.learner, time.monotonic())

    async def turn(self) -> None:
        alone = self._alone
        if alone is not None:
            await alone.wait_for_turn()
            if self._alone is alone:  # still alone: the turn is this program's to give
                if alone.adaptive:
                    alone.learner.on_sent(time.monotonic())
                return
            # Handed over while it waited: the cluster's limit decides (it may be paused).
        await super().turn()

    def succeeded(self, now: float) -> None:
        alone = self._alone
        if alone is None:
            super().succeeded(now)
        else:
            alone.succeeded(now)

    def refused(self, kind: HuggingFaceErrorKind, retry_after: float | None, started: float) -> None:
        alone = self._alone
        if alone is None:
            super().refused(kind, retry_after, started)
        else:
            alone.refused(kind, retry_after, started)

    def stated(self, limit: float) -> None:
        alone = self._alone
        if alone is None:
            super().stated(limit)
        else:
            alone.stated(limit)


# ---------------------------------------------------------------------------- the input


def line_ranges(path: Path, lines_per_range: int) -> list[dict[str, Any]]:
    """The input file as ranges of lines: byte offsets and the number of each range's first line."""
    ranges: list[dict[str, Any]] = []
    start = offset = 0
    first = number = 1
    with path.open("rb") as handle:
        for raw in handle:
            offset += len(raw)
            if number - first + 1 >= lines_per_range:
                ranges.append({"start": start, "end": offset, "line": first})
                start, first = offset, number + 1
            number += 1
    if offset > start:
        ranges.append({"start": start, "end": offset, "line": first})
    return ranges


def _line_item(raw: bytes, number: int) -> BatchItem | None:
    if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a byte-order mark some editors write
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return BatchItem(
            custom_id=f"line-{number}",
            error=HuggingFaceError(
                HuggingFaceErrorKind.INVALID_REQUEST, f"input line {number}: is not UTF-8 text"
            ),
            line=number,
        )
    return parse_line(text, number)


def work_items(work: dict[str, Any], source: str | None) -> Iterator[BatchItem]:
    """The rows of one piece of work: a range of the input file (read here, numbered as in the
    file), or explicit ``(line number, text)`` rows to redo."""
    if "rows" in work:
        lines: Iterable[tuple[int, bytes]] = ((int(n), text.encode()) for n, text in work["rows"])
    else:
        assert source is not None, "a range of lines needs the input file"
        with open(source, "rb") as handle:
            handle.seek(int(work["start"]))
            data = handle.read(int(work["end"]) - int(work["start"]))
        lines = enumerate(data.splitlines(keepends=True), start=int(work["line"]))
    for number, raw in lines:
        item = _line_item(raw, number)
        if item is not None:
            yield item


def dataset_rows(batch: dict[str, Any]) -> Iterator[BatchItem]:
    """The rows of a ``ray.data.Dataset`` batch (numpy columns) as :class:`BatchItem` values."""
    columns = list(batch)
    count = len(batch[columns[0]]) if columns else 0
    lines = batch.get("line")
    if "text" in batch:
        for index in range(count):
            item = parse_line(str(batch["text"][index]), int(lines[index]) if lines is not None else None)
            if item is not None:
                yield item
        return
    for index in range(count):
        row = {name: _plain(batch[name][index]) for name in columns if name != "line"}
        row = {k: v for k, v in row.items() if v is not None}
        line = int(lines[index]) if lines is not None else None
        yield parse_row(row, line, json.dumps(row, default=str)[:200])


def _plain(value: Any) -> Any:
    """numpy values and arrays as plain Python (Ray Data hands columns over as numpy)."""
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------------------- the workers


class WorkerCore:
    """One worker: a driver from the configuration, a flow control asking the cluster's limit,
    its own part file."""

    def __init__(
        self,
        settings: RaySettings,
        limit: Any,
        done: IdSet,
        driver: Any = None,
        pacer: ClusterPacer | None = None,
    ) -> None:
        from hfdriver.config import create_driver

        self.settings = settings
        self._done = done
        # No span per row on a worker: the batch is the unit a user traces.
        self.driver = driver if driver is not None else create_driver(settings.llm, telemetry=False)
        self.pacer = pacer or ClusterPacer(limit)
        tpm = settings.tpm / settings.workers if settings.tpm else None
        self.gate = FlowControl(
            max_concurrency=settings.concurrency, tpm=tpm, adaptive=False, pacer=self.pacer
        )
        self._part = PartWriter(Path(settings.parts))

    async def run(self, items: Iterable[BatchItem] | AsyncIterator[BatchItem], queue: Any = None) -> int:
        """Run ``items`` (those not answered before); every finished row is written at once,
        except a row stopped by a failure that hits every row (a rerun sends it)."""
        written = 0
        async for result in run_batch(
            self.driver, _skipping(items, self._done), flow=self.gate, concurrency=self.settings.concurrency,
            stop_on=frozenset(),
        ):  # fmt: skip
            error = result.error
            if error is not None and error.kind in FATAL_KINDS:
                continue
            self._part.write(result_line(result))
            written += 1
            if queue is not None:
                queue.wrote.remote(1)  # progress; fire and forget
        await self.pacer.flush()
        return written

    async def run_queue(self, queue: Any, first: Iterable[dict[str, Any]] = ()) -> int:
        """Do the pieces of work ``first`` (given here, so that nothing waits for an actor to
        start), then take work from ``queue`` until it is empty (or the batch stopped), as one
        stream of rows: no pause between two pieces of work."""
        settings = self.settings
        pacer = self.pacer

        async def items() -> AsyncIterator[BatchItem]:
            for work in first:
                for item in work_items(work, settings.source):
                    yield item
            while not pacer.stopped:
                work = await queue.take.remote()
                if work is None:
                    return
                for item in work_items(work, settings.source):
                    yield item

        return await self.run(items(), queue)

    async def aclose(self) -> None:
        self._part.close()
        await self.driver.aclose()


async def _skipping(
    items: Iterable[BatchItem] | AsyncIterator[BatchItem], done: IdSet
) -> AsyncIterator[BatchItem]:
    if isinstance(items, AsyncIterator):
        async for item in items:
            if item.custom_id not in done:
                yield item
    else:
        for item in items:
            if item.custom_id not in done:
                yield item


class QueueWorker:
    """An actor of the pool (an async actor: its methods run on its own event loop)."""

    def __init__(self, settings: RaySettings, limit: Any, done: IdSet) -> None:
        self._core = WorkerCore(settings, limit, done)

    async def run(self, queue: Any) -> int:
        """Work from ``queue`` until it is empty; the rows written."""
        return await self._core.run_queue(queue)

    async def aclose(self) -> None:
        await self._core.aclose()


class DatasetWorker:
    """A ``map_batches`` actor for a ``ray.data.Dataset`` source: rows through a :class:`WorkerCore`."""

    def __init__(self, settings: RaySettings, limit: Any, done: IdSet) -> None:
        self._loop = asyncio.new_event_loop()
        self._core = WorkerCore(settings, limit, done)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[int]]:
        return {"written": [self._loop.run_until_complete(self._core.run(dataset_rows(batch)))]}

    def __del__(self) -> None:
        loop, core = getattr(self, "_loop", None), getattr(self, "_core", None)
        if loop is not None and core is not None and not loop.is_closed():
            try:
                loop.run_until_complete(core.aclose())
            finally:
                loop.close()
