"""``hfdriver batch IN.jsonl -o OUT.jsonl``: a resumable batch in the OpenAI Batch file formats."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from hfdriver.batch import (
    FATAL_KINDS,
    BatchSummary,
    FlowControl,
    OutputFile,
    check_input,
    max_pause_for,
    read_input,
    result_line,
    run_batch,
    same_file,
)
from hfdriver.cli._common import UsageError, llm_config, out
from hfdriver.config import LLMConfig, create_driver, load_config
from hfdriver.dto.response import format_money
from hfdriver.errors import HuggingFaceError
from hfdriver.transport import quiet_retry_log, reset_retry_log

__all__ = ["register", "summary_text"]


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    batch = sub.add_parser(
        "batch",
        parents=parents,
        help="run a JSONL file of requests (OpenAI Batch format), resumably",
        description=(
            "Each input line is an OpenAI Batch request ({custom_id, method, url, body}) or a short "
            "{custom_id, prompt} / {custom_id, messages}. Answers are appended to OUTPUT in the OpenAI "
            "Batch output format as rows finish; rerun the same command to resume (answered rows are "
            "kept, failed ones are tried again). Exit 0: every row answered; 1: some rows failed or "
            "the run stopped early."
        ),
    )
    batch.add_argument("input", type=Path, help="the input JSONL file")
    batch.add_argument("-o", "--output", type=Path, required=True, help="the output JSONL file")
    batch.add_argument(
        "-m", "--model", help="the model for rows that name none (default: the configuration's)"
    )
    batch.add_argument("--local", action="store_true", help="answer with the local model")
    batch.add_argument("--concurrency", type=int, default=64, help="rows in flight at most (default 64)")
    batch.add_argument("--rpm", type=float, help="requests per minute at most")
    batch.add_argument("--tpm", type=float, help="tokens per minute at most (estimated before sending)")
    batch.add_argument(
        "--no-adaptive", dest="adaptive", action="store_false", help="do not learn a rate from 429 answers"
    )
    batch.add_argument(
        "--restart", action="store_true", help="start over: truncate OUTPUT instead of resuming"
    )
    batch.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    batch.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this process (default); ray: Ray Data on a cluster (extra `ray`; OUTPUT is a .jsonl file or a directory)",
    )
    batch.add_argument(
        "--address",
        help="with --engine ray: the cluster (auto, ray://host:10001); default: start a local one",
    )
    batch.add_argument(
        "--workers", type=int, default=2, help="with --engine ray: actors sending requests (default 2)"
    )
    batch.set_defaults(func=run_batch_command)


class _Progress:
    """tqdm when installed (the Hugging Face ecosystem's bar), else a line every few seconds."""

    def __init__(self, total: int, *, quiet: bool) -> None:
        self._bar: Any = None
        self._quiet = quiet
        self._last = 0.0
        self.total = total
        if quiet:
            return
        try:
            from tqdm.auto import tqdm  # type: ignore[import-untyped,unused-ignore]
        except ImportError:
            return
        self._bar = tqdm(total=total, unit="row", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)

    def update(self, summary: BatchSummary, flow: FlowControl) -> None:
        if self._quiet:
            return
        now = time.monotonic()
        if self._bar is not None:
            self._bar.update(1)
            if now - self._last >= 0.25:
                self._last = now
                self._bar.set_postfix_str(_postfix(summary, flow), refresh=False)
        elif now - self._last >= 5.0:
            self._last = now
            out(f"batch: {summary.rows}/{self.total} rows, {_postfix(summary, flow)}", stream=sys.stderr)

    def close(self, summary: BatchSummary, flow: FlowControl) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(_postfix(summary, flow), refresh=True)
            self._bar.close()


def _postfix(summary: BatchSummary, flow: FlowControl) -> str:
    parts = [f"failed {summary.failed}", f"{summary.tokens:,} tok"]
    if summary.priced:
        parts.append(format_money(summary.cost.total, summary.cost.currency))
    if flow.rate_limited:
        parts.append(f"429s {flow.rate_limited}")
    return ", ".join(parts)


def summary_text(summary: BatchSummary, flow: FlowControl | None, *, output: Path) -> str:
    wall = summary.wall
    lines = [
        f"batch: {summary.rows} rows in {wall:.1f}s ({summary.rows / wall if wall else 0:.1f} rows/s): "
        f"{summary.succeeded} answered, {summary.failed} failed"
        + (f", {summary.cached} from the cache" if summary.cached else "")
        + (f"; {summary.skipped} already answered before" if summary.skipped else ""),
    ]
    if summary.failures:
        lines.append("  failures: " + ", ".join(f"{kind} {n}" for kind, n in summary.failures.most_common()))
    cost = "unknown (no prices for these routes)"
    if summary.priced:
        cost = format_money(summary.cost.total, summary.cost.currency)
        if summary.priced < summary.succeeded:
            cost += f" for {summary.priced} of {summary.succeeded} answers (the rest unpriced)"
    lines.append(f"  tokens: {summary.prompt_tokens:,} in + {summary.completion_tokens:,} out; cost: {cost}")
    if flow is not None:
        lines.append(
            f"  attempts: {summary.attempts}, rate-limited answers: {flow.rate_limited}, pauses: {flow.pauses}"
        )
    else:
        lines.append(f"  attempts: {summary.attempts}, rate-limited answers: {summary.rate_limited}")
    lines.append(f"  output: {output}")
    return "\n".join(lines)


def run_batch_command(args: argparse.Namespace) -> int | Coroutine[Any, Any, int]:
    """Checks and file preparation (synchronous), then the run on the event loop."""
    if args.concurrency < 1:
        raise UsageError("--concurrency must be >= 1")
    for name in ("rpm", "tpm"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise UsageError(f"--{name} must be > 0")
    source: Path = args.input
    if not source.is_file():
        raise UsageError(f"the input {source} is not a file")
    if same_file(args.output, source):  # by inode: hard links and bind mounts too
        raise UsageError(
            f"the output must not be the input file ({args.output} is {source}, under another name "
            "or not): give -o another file"
        )
    if args.engine == "ray":
        return _run_on_ray(args, source)
    output = OutputFile(args.output, resume=not args.restart).open()
    try:
        rows, already = check_input(source, output.done)
    except BaseException:
        output.close()
        raise
    return _run(args, source, output, rows, already)


async def _run(args: argparse.Namespace, source: Path, output: OutputFile, rows: int, already: int) -> int:
    try:
        if args.local:
            driver = create_driver(LLMConfig(provider="huggingface-local", model=args.model or None))
        else:
            driver = create_driver(load_config(args.config), args.profile, model=args.model)
        flow = FlowControl(
            max_concurrency=args.concurrency,
            rpm=args.rpm,
            tpm=args.tpm,
            adaptive=args.adaptive,
            max_pause=max_pause_for(driver),
        )
        summary = BatchSummary(skipped=already)
        progress = _Progress(rows - already, quiet=args.quiet)
        stopped: HuggingFaceError | None = None
        # One WARNING per retried row would bury the progress bar: the bar and the summary count
        # them instead (--debug keeps the lines).
        quiet = quiet_retry_log(not args.debug)  # spans and other hooks keep theirs
        try:
            async with driver:
                results = run_batch(
                    driver, read_input(source, skip=output.done), flow=flow, concurrency=args.concurrency
                )
                async for result in results:
                    summary.add(result)
                    error = result.error
                    # A row stopped by a failure that hits every row is not written: the rerun sends it.
                    if error is None or error.kind not in FATAL_KINDS:
                        output.write(result_line(result))
                    progress.update(summary, flow)
        except HuggingFaceError as exc:
            if exc.kind not in FATAL_KINDS:
                raise
            stopped = exc
        finally:
            reset_retry_log(quiet)
            progress.close(summary, flow)
    finally:
        output.close()
    out(summary_text(summary, flow, output=args.output), stream=sys.stderr)
    if stopped is not None:
        raise stopped
    return 1 if summary.failed else 0


def _run_on_ray(args: argparse.Namespace, source: Path) -> int:
    """``--engine ray``: the same batch on Ray Data; OUTPUT is a .jsonl file or a directory."""
    if args.workers < 1:
        raise UsageError("--workers must be >= 1")
    try:
        from hfdriver.batch.ray import run_batch_on_ray
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    check_input(source)  # duplicate custom_ids: refused before anything is sent
    if args.local:
        llm = LLMConfig(provider="huggingface-local", model=args.model or None)
    else:
        _, llm = llm_config(args)
    per_worker = max(1, -(-args.concurrency // args.workers))
    # The configuration travels to the workers; tokens are read there, from their environment.
    summary = run_batch_on_ray(
        source.resolve(),
        args.output,
        llm=llm,
        workers=args.workers,
        concurrency=per_worker,
        rpm=args.rpm,
        tpm=args.tpm,
        adaptive=args.adaptive,
        address=args.address,
        restart=args.restart,
        progress=not args.quiet,
        max_pause=llm.retry.max_retry_after,
    )
    out(summary_text(summary, None, output=args.output), stream=sys.stderr)
    return 1 if summary.failed else 0
