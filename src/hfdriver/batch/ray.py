"""The batch on a Ray cluster (extra ``ray``): a pool of worker actors, one rate limit for all.

>>> from hfdriver.batch.ray import run_batch_on_ray
>>> summary = run_batch_on_ray("requests.jsonl", "answers.jsonl", llm=load_config().profile(None))  # doctest: +SKIP

- **Input**: a JSONL file in the formats of ``hfdriver batch``, split into ranges of lines that
  the workers take from one :class:`~hfdriver.batch._shared.WorkQueue` actor as they go and read
  themselves (so an error names its line number); or any ``ray.data.Dataset`` whose rows have
  the same fields (``custom_id`` with ``body``, ``prompt`` or ``messages``), or a ``text`` column
  of such JSON lines (run with ``map_batches``).
- **Workers**: ``workers`` actors (:class:`~hfdriver.batch._cluster.QueueWorker`, importing only
  hfdriver: up in under a second), each with one driver built from the configuration (an
  :class:`~hfdriver.config.LLMConfig`: names of environment variables and files, never a token),
  running rows with asyncio. The program that starts the batch works too, from its first second
  (while the actors start), with the same configuration, when it can build that driver itself.
- **One rate limit for the cluster**: a :class:`~hfdriver.batch._shared.SharedLimit` actor that
  every attempt of every worker asks before sending; a 429's ``Retry-After`` pauses all of them;
  an ``AUTHENTICATION`` / ``PAYMENT_REQUIRED`` / ``CONFIG`` failure stops them all.
- **Output**: OpenAI Batch output lines, each appended by its worker to the worker's own part
  file as the row finishes (:mod:`hfdriver.batch._parts`), so a kill loses at most the requests
  in flight. ``output`` is a ``.jsonl`` file (the parts are merged into it atomically at the end)
  or a directory (of part files). Resume by ``custom_id``: a rerun keeps the answered rows and
  sends the rest. An actor that dies is restarted by Ray; rows it had taken and not written are
  sent again at the end of the run, and the merge keeps one line per row.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import attrs

from hfdriver.batch._cluster import (
    DatasetWorker,
    HandoverPacer,
    RaySettings,
    WorkerCore,
    line_ranges,
)
from hfdriver.batch._cluster import (
    QueueWorker as _QueueWorkerCore,
)
from hfdriver.batch._files import IdSet, row_ids, written_ids
from hfdriver.batch._flow import DEFAULT_MAX_PAUSE
from hfdriver.batch._parts import PartedOutput
from hfdriver.batch._run import BatchSummary, batch_stopped
from hfdriver.batch._shared import SharedLimit, WorkQueue
from hfdriver.driver import describe
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

try:
    import ray
    import ray.data
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(f"the Ray engine needs the ray extra: pip install 'hfdriver[ray]' ({exc})") from None

__all__ = ["RaySettings", "SharedLimit", "run_batch_on_ray"]

logger = logging.getLogger("hfdriver")

_REDO_ROWS = 64  # rows per piece of work when rows a dead actor had taken are sent again
_ROUNDS = 3  # the first pass, then rounds that send again what dead actors had taken


def _name(what: str) -> str:
    return f"hfdriver-{what}-{os.urandom(8).hex()}"


class _Held:
    """An actor holding one value for the others: the done set, one copy for every worker.

    The pool's workers are restartable, and an actor handle or an object reference among a
    restartable actor's constructor arguments makes Ray's core worker print a warning on every
    run (``--quiet`` must show none): they are given the limit and the done set by *name*, which
    serves a restart as well."""

    def __init__(self, value: Any) -> None:
        self._value = value

    def get(self) -> Any:
        return self._value


class QueueWorker(_QueueWorkerCore):
    """The pool's actor (Ray titles its process ``ray::QueueWorker``): the core's
    :class:`~hfdriver.batch._cluster.QueueWorker`, built from the names of the cluster's limit and
    of the done set."""

    def __init__(self, settings: RaySettings, limit: str, done: str) -> None:
        super().__init__(settings, ray.get_actor(limit), ray.get(ray.get_actor(done).get.remote()))


def _ensure_ray(address: str | None, workers: int, *, quiet: bool) -> bool:
    """Connect to ``address`` or start a local instance; True when this call started it."""
    if ray.is_initialized():
        return False
    level = logging.ERROR if quiet else logging.WARNING
    if quiet:  # Ray and Ray Data log through their own handlers: quiet them at the source
        for name in ("ray", "ray.data", "ray.serve", "ray.train"):
            logging.getLogger(name).setLevel(logging.ERROR)
        context = ray.data.DataContext.get_current()
        for flag in ("print_on_execution_start", "enable_auto_log_stats", "verbose_stats_logs"):
            if hasattr(context, flag):
                setattr(context, flag, False)
        os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=level)
        return True
    ray.init(num_cpus=max(2, workers), include_dashboard=False, log_to_driver=False, logging_level=level)
    return True


def run_batch_on_ray(
    source: str | Path | Any,
    output: str | Path,
    *,
    llm: Any,
    workers: int = 2,
    concurrency: int = 32,
    rpm: float | None = None,
    tpm: float | None = None,
    adaptive: bool = True,
    address: str | None = None,
    batch_size: int = 256,
    restart: bool = False,
    progress: bool = False,
    max_pause: float = DEFAULT_MAX_PAUSE,
    local_worker: bool = True,
) -> BatchSummary:
    """Run ``source`` (a JSONL path or a ``ray.data.Dataset``) on Ray; answers go to ``output``
    (a ``.jsonl`` file, or a directory of part files; see :mod:`hfdriver.batch._parts`). Returns
    the totals read back from the output; raises the stopping error when an ``AUTHENTICATION`` /
    ``PAYMENT_REQUIRED`` / ``CONFIG`` failure stopped the batch.

    ``batch_size``: rows per piece of work a worker takes at a time. ``local_worker``: this
    program sends rows too (from its first second, while the actors start), when it can build the
    configuration's driver itself. Call it from synchronous code (or ``asyncio.to_thread``).
    """
    if workers < 1 or concurrency < 1 or batch_size < 1:
        raise HuggingFaceError(
            HuggingFaceErrorKind.CONFIG, "workers, concurrency and batch_size must be >= 1"
        )
    file_source = Path(source).resolve() if isinstance(source, (str, Path)) else None
    target = PartedOutput(Path(output), source=file_source, restart=restart)
    done = target.open()
    try:
        summary = BatchSummary(skipped=len(done))
        started_here = _ensure_ray(address, workers, quiet=not progress)
        try:
            limit_name = _name("limit")
            limit: Any = (
                ray.remote(SharedLimit)
                # An async actor: every waiting attempt is a coroutine on its loop, not a thread. If it
                # dies, Ray restarts it (the rate is learned again) and retries the calls in flight.
                # Named: the pool's restartable workers find it by name (see _Held).
                .options(
                    num_cpus=0, max_concurrency=100_000, max_restarts=-1, max_task_retries=-1, name=limit_name
                )
                .remote(rpm, adaptive, max_pause)
            )
            settings = RaySettings(
                llm=llm,
                concurrency=concurrency,
                tpm=tpm,
                workers=workers,
                parts=str(target.parts_dir.resolve()),
                source=str(file_source) if file_source is not None else None,
            )
            if file_source is not None:
                _File(
                    file_source,
                    target,
                    done,
                    settings,
                    limit,
                    limit_name=limit_name,
                    batch_size=batch_size,
                    rpm=rpm,
                    adaptive=adaptive,
                    max_pause=max_pause,
                ).run(local_worker, progress)
            else:
                _run_dataset(source, settings, limit, done, batch_size, progress)
            state: dict[str, Any] = ray.get(limit.state.remote())
        finally:
            if started_here:
                ray.shutdown()
        target.finish()
        for raw in target.lines():
            summary.add_line(json.loads(raw))
    finally:
        target.close()
    summary.rows -= summary.skipped  # totals of this run; skipped rows were answered before
    summary.succeeded -= summary.skipped
    stopped = state["stopped"]
    if stopped is not None:
        kind, message = stopped
        raise batch_stopped(HuggingFaceErrorKind[kind], message)
    summary.attempts = int(state["sent"])
    summary.rate_limited = int(state["rate_limited"])
    return summary


class _File:
    """A file source: a pool of queue workers (and this program) over ranges of its lines."""

    def __init__(
        self,
        source: Path,
        target: PartedOutput,
        done: IdSet,
        settings: RaySettings,
        limit: Any,
        *,
        limit_name: str,
        batch_size: int,
        rpm: float | None,
        adaptive: bool,
        max_pause: float,
    ) -> None:
        self.source, self.target, self.done, self.limit = source, target, done, limit
        self.limit_name = limit_name
        self.settings = settings
        self.batch_size = batch_size
        self._pacing = {"rpm": rpm, "adaptive": adaptive, "max_pause": max_pause}

    def run(self, local_worker: bool, progress: bool) -> None:
        asyncio.run(self._run(local_worker, progress))

    async def _local(self, settings: RaySettings) -> WorkerCore | None:
        """This program as a worker, when it can build the driver (its token, its extras) and the
        driver sends through the gate (an HTTP driver: a local model would load here too). Its
        pacer paces by itself until the cluster's limit is up (:class:`HandoverPacer`)."""
        from hfdriver.config import create_driver

        try:
            driver = create_driver(settings.llm, telemetry=False)
        except HuggingFaceError as exc:
            logger.debug("hfdriver: this program sends no rows itself (%s)", exc.message)
            return None
        if not describe(driver).gate_aware:
            await driver.aclose()
            return None
        pacer = HandoverPacer(self.limit, **self._pacing)  # type: ignore[arg-type]
        return WorkerCore(settings, self.limit, self.done, driver=driver, pacer=pacer)

    async def _run(self, local_worker: bool, progress: bool) -> None:
        settings = self.settings
        with self.source.open("rb") as handle:
            lines = sum(1 for _ in handle)
        per_range = max(1, min(self.batch_size, -(-lines // (settings.workers * 4))))
        work = line_ranges(self.source, per_range)
        actors = settings.workers
        if local_worker:  # one more share of the token budget
            settings = attrs.evolve(settings, workers=actors + 1)
        local = await self._local(settings) if local_worker else None
        if local is None:
            settings = attrs.evolve(settings, workers=actors)
        # This program starts on the first ranges at once, pacing by itself; the queue actor gets
        # the rest. Once the limit and the queue answer (their processes take half a second or
        # more), it hands over what it learned and the pool starts.
        first, work = (work[:2], work[2:]) if local is not None else ([], work)
        queue: Any = ray.remote(WorkQueue).options(num_cpus=0).remote(work)
        runs: list[Awaitable[Any]] = [local.run_queue(queue, first)] if local is not None else []
        local_run = asyncio.ensure_future(runs[0]) if runs else None
        pool: list[Any] = []
        holder: Any = None
        bar = _Bar(max(0, lines - len(self.done)) if progress else None)
        failures: list[BaseException] = []
        try:
            await asyncio.gather(_awaited(self.limit.state.remote()), _awaited(queue.progress.remote()))
            if local is not None and isinstance(local.pacer, HandoverPacer):
                await local.pacer.handover()
            done_name = _name("done")
            holder = ray.remote(_Held).options(num_cpus=0, name=done_name).remote(self.done)
            pool = [
                ray.remote(QueueWorker)
                .options(num_cpus=0.25, max_restarts=-1, max_task_retries=-1)
                .remote(settings, self.limit_name, done_name)
                for _ in range(actors)
            ]
            for round_ in range(_ROUNDS):
                if round_:
                    queue = ray.remote(WorkQueue).options(num_cpus=0).remote(work)
                    local_run = asyncio.ensure_future(local.run_queue(queue)) if local is not None else None
                runs = [_awaited(worker.run.remote(queue)) for worker in pool]
                if local_run is not None:
                    runs.append(local_run)
                ticker = bar.follow(queue)
                results = await asyncio.gather(*runs, return_exceptions=True)
                ticker.cancel()
                failures = [r for r in results if isinstance(r, BaseException)]
                for failure in failures:
                    logger.warning("hfdriver: a worker of the batch failed: %s", failure)
                if (await self.limit.state.remote())["stopped"] is not None:
                    return
                work = self._unwritten()
                if not work:
                    return
                logger.info(
                    "hfdriver: sending again %d rows that workers took and did not answer",
                    sum(len(piece["rows"]) for piece in work),
                )
            if failures:
                raise failures[0]
        finally:
            bar.close()
            if local_run is not None and not local_run.done():
                local_run.cancel()
                await asyncio.gather(local_run, return_exceptions=True)
            for worker in pool:
                await _quietly(worker.aclose.remote())
                ray.kill(worker)
            if holder is not None:
                ray.kill(holder)
            if local is not None:
                await local.aclose()

    def _unwritten(self) -> list[dict[str, Any]]:
        """Rows of the input no worker wrote (an actor died with them): pieces of work to redo."""
        written = written_ids(self.target.parts())
        missing = [
            [number, text]
            for number, custom_id, text in row_ids(self.source)
            if custom_id not in self.done and custom_id not in written
        ]
        return [{"rows": missing[i : i + _REDO_ROWS]} for i in range(0, len(missing), _REDO_ROWS)]


async def _awaited(run: Awaitable[Any]) -> Any:
    return await run


async def _quietly(call: Awaitable[Any]) -> None:
    try:
        await call
    except Exception:  # an actor already gone: nothing to close
        logger.debug("hfdriver: closing a worker failed", exc_info=True)


class _Bar:
    """A tqdm bar of rows written, when asked for and installed."""

    def __init__(self, total: int | None) -> None:
        self._bar: Any = None
        if total is None:
            return
        try:
            from tqdm.auto import tqdm  # type: ignore[import-untyped,unused-ignore]
        except ImportError:
            return
        self._bar = tqdm(total=total, unit="row", file=sys.stderr, dynamic_ncols=True)
        self._shown = 0
        self._base = 0

    def follow(self, queue: Any) -> asyncio.Task[None]:
        async def tick() -> None:
            while self._bar is not None:
                written = self._base + int(await queue.progress.remote())
                self._bar.update(written - self._shown)
                self._shown = written
                await asyncio.sleep(0.5)

        if self._bar is not None:
            self._base = self._shown
        return asyncio.ensure_future(tick())

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _run_dataset(
    source: Any, settings: RaySettings, limit: Any, done: IdSet, batch_size: int, progress: bool
) -> None:
    """A ``ray.data.Dataset`` source: Ray Data's actor pool runs its batches."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = progress
    answers = source.map_batches(
        DatasetWorker,
        fn_constructor_args=(settings, limit, done),
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=settings.workers),
        num_cpus=0.25,  # the actors wait on the network; Ray Data restarts one that dies
    )
    for _ in answers.iter_batches(batch_size=None):
        pass  # the rows are in the part files; this only drives the pool
