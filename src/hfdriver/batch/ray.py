"""The batch on a Ray cluster (extra ``ray``): Ray Data reads and writes, an actor pool sends.

>>> from hfdriver.batch.ray import run_batch_on_ray
>>> summary = run_batch_on_ray("requests.jsonl", "answers/", llm=load_config().profile(None))  # doctest: +SKIP

- **Input**: a JSONL file in the formats of ``hfdriver batch`` (read with ``ray.data.read_text``), or
  any ``ray.data.Dataset`` whose rows have the same fields (``custom_id`` with ``body``, ``prompt``
  or ``messages``), or a ``text`` column of such JSON lines.
- **Workers**: ``map_batches`` over an actor pool. Each actor builds one driver from the
  configuration (an :class:`~hfdriver.config.LLMConfig`: names of environment variables and
  files, never a token), so tokens come from the workers' environment, and runs its rows with
  :func:`hfdriver.batch.run_batch` (asyncio concurrency).
- **One rate limit for the cluster**: a :class:`SharedLimit` actor that every attempt of every
  worker asks before sending (the same :class:`~hfdriver.batch.RateLearner` as on one machine);
  a 429's ``Retry-After`` pauses all of them; an ``AUTHENTICATION`` / ``PAYMENT_REQUIRED`` /
  ``CONFIG`` failure stops them all.
- **Output**: OpenAI Batch output lines, written by Ray's file datasink into a directory (one
  ``.jsonl`` file per block). Resume by ``custom_id``: a rerun keeps the answered rows of the
  directory and sends the rest. An actor that dies is restarted and its block retried: the
  block's file is written once, when the block is done, so no row is written twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from hfdriver.batch._files import IdSet, compact_outputs, parse_line, parse_row, result_line
from hfdriver.batch._flow import FlowControl
from hfdriver.batch._run import FATAL_KINDS, BatchItem, BatchSummary, run_batch
from hfdriver.batch._shared import SharedLimit
from hfdriver.dto.response import Cost
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

try:
    import ray
    import ray.data
    from ray.data.block import BlockAccessor
    from ray.data.datasource import BlockBasedFileDatasink
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(f"the Ray engine needs the ray extra: pip install 'hfdriver[ray]' ({exc})") from None

__all__ = ["RaySettings", "SharedLimit", "run_batch_on_ray"]

logger = logging.getLogger("hfdriver")


class _ClusterGate(FlowControl):
    """A worker's gate: local concurrency, the send slot from the :class:`SharedLimit` actor."""

    def __init__(self, limit: Any, *, max_concurrency: int, tpm: float | None) -> None:
        super().__init__(max_concurrency=max_concurrency, tpm=tpm, adaptive=False)
        self._limit = limit
        self._successes = 0

    async def wait_for_turn(self) -> None:
        successes, self._successes = self._successes, 0
        if not await self._limit.acquire.remote(successes):
            state = await self._limit.state.remote()
            kind, message = state["stopped"] or ("CONFIG", "stopped")
            raise HuggingFaceError(HuggingFaceErrorKind[kind], f"not sent: the batch stopped ({message})")

    def _on_success(self, now: float) -> None:
        self._successes += 1
        super()._on_success(now)

    async def flush(self) -> None:
        """Report the answers not reported yet (the learner counts them)."""
        successes, self._successes = self._successes, 0
        if successes:
            await self._limit.report.remote(successes)

    def after_attempt(self, error: BaseException | None) -> None:
        if isinstance(error, HuggingFaceError) and error.kind in (
            HuggingFaceErrorKind.RATE_LIMITED,
            HuggingFaceErrorKind.OVERLOADED,
        ):
            started = _started_ago()
            self._limit.congestion.remote(error.kind.name, error.retry_after, started)
        if isinstance(error, HuggingFaceError) and error.kind in FATAL_KINDS:
            self._limit.stop.remote(error.kind.name, error.message)
        super().after_attempt(error)


def _started_ago() -> float:
    from hfdriver.batch._flow import _attempt_started

    return max(0.0, time.monotonic() - _attempt_started.get())


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


def _rows(batch: dict[str, Any]) -> Iterator[BatchItem]:
    """The rows of a numpy batch as :class:`BatchItem` values."""
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


class _Worker:
    """One actor of the pool: one driver, one event loop, rows through ``run_batch``."""

    def __init__(self, settings: RaySettings, limit: Any, done: Any) -> None:
        from hfdriver.config import create_driver

        self._settings = settings
        self._limit = limit
        self._done: IdSet = ray.get(done) if isinstance(done, ray.ObjectRef) else done
        self._loop = asyncio.new_event_loop()
        self._driver = create_driver(settings.llm)
        self._gate: _ClusterGate | None = None

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        return self._loop.run_until_complete(self._run(batch))

    async def _run(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        settings = self._settings
        gate = self._gate
        if gate is None:  # one per actor, kept across its batches (and its event loop)
            tpm = settings.tpm / settings.workers if settings.tpm else None
            gate = self._gate = _ClusterGate(self._limit, max_concurrency=settings.concurrency, tpm=tpm)
        items = (item for item in _rows(batch) if item.custom_id not in self._done)
        lines: list[str] = []
        async for result in run_batch(
            self._driver, items, flow=gate, concurrency=settings.concurrency, stop_on=frozenset()
        ):
            error = result.error
            if error is not None and error.kind in FATAL_KINDS:
                continue  # not written: a rerun sends it
            lines.append(result_line(result).decode())
        await gate.flush()
        return {"line": lines}

    def __del__(self) -> None:
        loop = getattr(self, "_loop", None)
        driver = getattr(self, "_driver", None)
        if loop is not None and driver is not None and not loop.is_closed():
            try:
                loop.run_until_complete(driver.aclose())
            finally:
                loop.close()


class _LinesDatasink(BlockBasedFileDatasink):
    """Ray's file datasink, writing each block's output lines to one ``.jsonl`` file."""

    def __init__(self, path: str) -> None:
        super().__init__(path, file_format="jsonl")

    def write_block_to_file(self, block: BlockAccessor, file: Any) -> None:
        lines = block.to_pandas()["line"] if block.num_rows() else []
        file.write("".join(lines).encode())


def _ensure_ray(address: str | None, workers: int) -> bool:
    """Connect to ``address`` or start a local instance; True when this call started it."""
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        return True
    ray.init(
        num_cpus=max(2, workers),
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )
    return True


def _dataset(source: str | Path | Any, workers: int) -> Any:
    if isinstance(source, (str, Path)):
        # One small file is one block, which one actor would run alone: split it for the pool.
        return ray.data.read_text(str(source), override_num_blocks=workers * 4)
    return source


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
) -> BatchSummary:
    """Run ``source`` (a JSONL path or a ``ray.data.Dataset``) on Ray; answers go to the ``output``
    directory. Returns the totals read back from the output; raises the stopping error when an
    ``AUTHENTICATION`` / ``PAYMENT_REQUIRED`` / ``CONFIG`` failure stopped the batch."""
    if workers < 1 or concurrency < 1:
        raise HuggingFaceError(HuggingFaceErrorKind.CONFIG, "workers and concurrency must be >= 1")
    out_dir = Path(output)
    if out_dir.exists() and not out_dir.is_dir():
        raise HuggingFaceError(
            HuggingFaceErrorKind.CONFIG,
            f"with the Ray engine the output is a directory of .jsonl files; {out_dir} is a file",
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    existing = sorted(out_dir.glob("*.jsonl"))
    if restart:
        for path in existing:
            path.unlink()
        existing = []
    done, _ = compact_outputs(existing) if existing else (IdSet(), 0)
    summary = BatchSummary(skipped=len(done))
    started_here = _ensure_ray(address, workers)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = progress
    try:
        actor: Any = ray.remote(SharedLimit)
        # An async actor: every waiting attempt is a coroutine on its loop, not a thread.
        # If it dies, Ray restarts it (the rate is learned again) and retries the calls in flight.
        limit: Any = actor.options(
            num_cpus=0, max_concurrency=100_000, max_restarts=-1, max_task_retries=-1
        ).remote(rpm, adaptive)
        settings = RaySettings(llm=llm, concurrency=concurrency, tpm=tpm, workers=workers)
        answers = _dataset(source, workers).map_batches(
            _Worker,
            fn_constructor_args=(settings, limit, done),
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=0.25,  # the actors wait on the network; Ray Data restarts one that dies
        )
        answers.write_datasink(_LinesDatasink(str(out_dir)))
        state: dict[str, Any] = ray.get(limit.state.remote())
    finally:
        if started_here:
            ray.shutdown()
    for path in sorted(out_dir.glob("*.jsonl")):
        with path.open("rb") as handle:
            for raw in handle:
                _count(summary, raw)
    summary.rows -= summary.skipped  # totals of this run; skipped rows were answered before
    summary.succeeded -= summary.skipped
    stopped = state["stopped"]
    if stopped is not None:
        kind, message = stopped
        raise HuggingFaceError(
            HuggingFaceErrorKind[kind],
            f"the batch stopped early: {message} (rows already answered are kept; fix this and rerun)",
        )
    summary.attempts = int(state["sent"])
    summary.rate_limited = int(state["rate_limited"])
    return summary


def _count(summary: BatchSummary, raw: bytes) -> None:
    data = json.loads(raw)
    summary.rows += 1
    if data.get("error") is None:
        summary.succeeded += 1
        usage = ((data.get("response") or {}).get("body") or {}).get("usage") or {}
        summary.prompt_tokens += int(usage.get("prompt_tokens", 0))
        summary.completion_tokens += int(usage.get("completion_tokens", 0))
        cost = (data.get("hfdriver") or {}).get("cost")
        if isinstance(cost, dict) and cost.get("currency") == summary.cost.currency:
            summary.priced += 1
            summary.cost = summary.cost + Cost(input=cost["input"], output=cost["output"])
    else:
        summary.failed += 1
        summary.failures[str((data.get("hfdriver") or {}).get("kind", "UNKNOWN"))] += 1
