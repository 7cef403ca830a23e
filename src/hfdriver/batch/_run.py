"""``run_batch``: many requests through any driver, results yielded as rows finish."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from typing import Any

import attrs

from hfdriver.batch._flow import (
    DEFAULT_MAX_PAUSE,
    FATAL_KINDS,
    FlowControl,
    reset_row_attempt_counter,
    row_attempt_counter,
)
from hfdriver.batch._ops import OPERATIONS, estimate_tokens, operation_of
from hfdriver.driver import Driver, describe
from hfdriver.dto.embed import EmbedRequest, EmbedResponse
from hfdriver.dto.request import GenerateRequest
from hfdriver.dto.response import Cost, GenerateResponse
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.transport import use_attempt_gate

__all__ = [
    "FATAL_KINDS",
    "BatchItem",
    "BatchResult",
    "BatchSummary",
    "batch_stopped",
    "estimate_tokens",
    "max_pause_for",
    "run_batch",
]


@attrs.frozen(slots=True, kw_only=True)
class BatchItem:
    """One input row: a request, or the reason the row could not be read (``error``)."""

    custom_id: str
    request: GenerateRequest | EmbedRequest | None = None
    error: HuggingFaceError | None = None
    line: int | None = None
    encoding: str | None = None
    """How the answer is written when the request asked (embeddings: ``float`` or ``base64``)."""


@attrs.frozen(slots=True, kw_only=True)
class BatchResult:
    """One finished row."""

    custom_id: str
    response: GenerateResponse | EmbedResponse | None = None
    error: HuggingFaceError | None = None
    attempts: int = 0
    """Attempts sent upstream (retries included; 0 for a cache hit or a row that was never sent)."""
    elapsed: float = 0.0
    """Seconds from the row's start to its end (waits for its turn included)."""
    line: int | None = None
    encoding: str | None = None

    @property
    def ok(self) -> bool:
        return self.response is not None and self.error is None

    @property
    def cost(self) -> Cost | None:
        return self.response.cost if self.response is not None else None


Row = BatchItem | tuple[str, GenerateRequest] | tuple[str, EmbedRequest]


def _item(row: object) -> BatchItem:
    if isinstance(row, BatchItem):
        return row
    if isinstance(row, tuple) and len(row) == 2 and type(row[1]) in OPERATIONS:
        return BatchItem(custom_id=str(row[0]), request=row[1])
    raise HuggingFaceError(
        HuggingFaceErrorKind.INVALID_REQUEST,
        "a batch row must be (custom_id, GenerateRequest), (custom_id, EmbedRequest) or a BatchItem, "
        f"got {type(row).__name__}",
    )


@attrs.define(slots=True)
class BatchSummary:
    """Running totals of a batch (what the progress bar and the final summary show)."""

    rows: int = 0
    succeeded: int = 0
    failed: int = 0
    cached: int = 0
    failures: Counter[str] = attrs.field(factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: Cost = attrs.field(factory=Cost.zero)
    priced: int = 0
    """Answers whose cost is known (the rest are not in ``cost``)."""
    attempts: int = 0
    started: float = attrs.field(factory=time.monotonic)
    skipped: int = 0
    """Rows already answered by an earlier run (resume)."""
    rate_limited: int = 0
    """Rate-limit answers received (filled in by the engines that count them)."""

    def add(self, result: BatchResult) -> None:
        """A finished row."""
        response = result.response
        if result.ok and response is not None:
            usage = response.usage
            self._count(
                None,
                usage.prompt_tokens if usage is not None else 0,
                usage.completion_tokens if usage is not None else 0,
                response.cost,
                response.cached,
            )
        else:
            self._count(result.error.kind.name if result.error is not None else "UNKNOWN")
        self.attempts += result.attempts

    def add_line(self, data: Mapping[str, Any]) -> None:
        """A row as an output line says it (the Ray engine counts what its workers wrote)."""
        extra = data.get("hfdriver") or {}
        if data.get("error") is not None:
            self._count(str(extra.get("kind", "UNKNOWN")))
            return
        usage = ((data.get("response") or {}).get("body") or {}).get("usage") or {}
        cost = extra.get("cost")
        priced = None
        if isinstance(cost, dict) and isinstance(cost.get("currency"), str):
            priced = Cost(input=cost["input"], output=cost["output"], currency=cost["currency"])
        self._count(
            None,
            int(usage.get("prompt_tokens", 0)),
            int(usage.get("completion_tokens", 0)),
            priced,
            bool(extra.get("cached", False)),
        )

    def _count(
        self,
        failure: str | None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cost: Cost | None = None,
        cached: bool = False,
    ) -> None:
        self.rows += 1
        if failure is not None:
            self.failed += 1
            self.failures[failure] += 1
            return
        self.succeeded += 1
        self.cached += cached
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        if cost is not None:
            self.priced += 1
            if cost.currency == self.cost.currency:
                self.cost = self.cost + cost

    @property
    def wall(self) -> float:
        return time.monotonic() - self.started

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


async def _items(rows: Iterable[Row] | AsyncIterable[Row]) -> AsyncIterator[BatchItem]:
    if isinstance(rows, AsyncIterable):
        async for row in rows:
            yield _item(row)
    else:
        for row in rows:
            yield _item(row)


def batch_stopped(
    kind: HuggingFaceErrorKind,
    message: str,
    *,
    sent: bool = True,
    status: int | None = None,
    request_id: str | None = None,
    provider: str | None = None,
) -> HuggingFaceError:
    """The one "the batch stopped" error: what the run raises at its end (``sent``), or what a
    row not sent because of it fails with."""
    text = (
        f"the batch stopped early: {message} (rows already finished are kept; fix this and rerun)"
        if sent
        else f"not sent: the batch stopped early ({message})"
    )
    return HuggingFaceError(kind, text, status=status, request_id=request_id, provider=provider)


def max_pause_for(driver: Driver) -> float:
    """The driver's ``RetryPolicy.max_retry_after`` (the longest shared pause), if it has one."""
    value = getattr(getattr(driver, "retry", None), "max_retry_after", None)
    return (
        float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else DEFAULT_MAX_PAUSE
    )


def _unexpected(exc: Exception) -> HuggingFaceError:
    """A driver's own bug (a plugin's ``ValueError``...) fails its row, not the batch."""
    return HuggingFaceError(
        HuggingFaceErrorKind.SERVER,
        f"the driver raised {type(exc).__name__}: {exc}"[:500],
        retryable=False,
    )


class _Crash:
    """The input could not be read: ``run_batch`` raises ``error`` to its consumer."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


async def run_batch(
    driver: Driver,
    rows: Iterable[Row] | AsyncIterable[Row],
    *,
    concurrency: int = 64,
    rpm: float | None = None,
    tpm: float | None = None,
    adaptive: bool = True,
    flow: FlowControl | None = None,
    stop_on: frozenset[HuggingFaceErrorKind] = FATAL_KINDS,
) -> AsyncIterator[BatchResult]:
    """Run ``rows`` through ``driver``; yield a :class:`BatchResult` per row as it finishes.

    Args:
        rows: ``(custom_id, GenerateRequest)`` pairs or :class:`BatchItem` values, from an iterable
            or an async iterable; read lazily (memory stays flat in the number of rows).
        concurrency: rows in flight (or finished and not yet taken by the consumer) at most; the
            adaptive limit stays at or under it. Tasks exist only for rows actually in flight,
            so a huge value costs nothing.
        rpm, tpm: request and token budgets per minute.
        adaptive: learn the server's rate from its rate-limit answers (see :class:`FlowControl`).
        flow: a :class:`FlowControl` to share (several batches, one limit); overrides the above.
        stop_on: kinds that stop the batch: the row that failed so is yielded, rows in flight
            finish, no new row starts, then ``run_batch`` raises that error (a rerun resumes).

    Each row is retried by the driver's :class:`~hfdriver.RetryPolicy`; every attempt of an
    hfdriver HTTP driver passes the flow control, so a ``Retry-After`` pauses all rows at once
    (for at most the policy's ``max_retry_after``). For any other driver (local, plugins) each
    row is one attempt through the same control. A row that still fails is yielded with its
    error — a driver's unexpected exception too (kind ``SERVER``, naming it) — and the batch goes on.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise HuggingFaceError(
            HuggingFaceErrorKind.CONFIG, f"concurrency must be an integer >= 1, got {concurrency!r}"
        )
    gate = flow or FlowControl(
        max_concurrency=concurrency, rpm=rpm, tpm=tpm, adaptive=adaptive, max_pause=max_pause_for(driver)
    )
    # hfdriver's HTTP drivers send every attempt (retries too) through the gate themselves.
    gate_aware = describe(driver).gate_aware
    source = _items(rows).__aiter__()
    # A slot is a row in flight or finished and not yet taken: memory stays O(concurrency).
    slots = asyncio.Semaphore(concurrency)
    results: asyncio.Queue[object] = asyncio.Queue()
    stopped: list[HuggingFaceError] = []
    running: set[asyncio.Task[None]] = set()
    fed = False

    async def attempt(
        item: BatchItem, request: GenerateRequest | EmbedRequest
    ) -> GenerateResponse | EmbedResponse:
        operation = operation_of(request)
        estimate = operation.estimate(request) if gate.tpm else 0
        await gate.spend_tokens(estimate)
        response: GenerateResponse | EmbedResponse
        if gate_aware:
            response = await operation.call(driver, request)
        else:
            # A driver whose attempts do not pass the gate: the row is the attempt.
            await gate.before_attempt()
            try:
                response = await operation.call(driver, request)
            except BaseException as exc:
                gate.after_attempt(exc)
                raise
            gate.after_attempt(None)
        if estimate and response.usage is not None:
            gate.refund_tokens(estimate, response.usage.total_tokens)
        return response

    async def run_row(item: BatchItem) -> BatchResult:
        started = time.monotonic()
        if item.error is not None or item.request is None:
            error = item.error or HuggingFaceError(
                HuggingFaceErrorKind.INVALID_REQUEST, "the row has no request"
            )
            return BatchResult(custom_id=item.custom_id, error=error, line=item.line)
        counter, token = row_attempt_counter()
        try:
            response = await attempt(item, item.request)
        except Exception as exc:
            error = exc if isinstance(exc, HuggingFaceError) else _unexpected(exc)
            return BatchResult(
                custom_id=item.custom_id,
                error=error,
                attempts=max(counter[0], 1),
                elapsed=time.monotonic() - started,
                line=item.line,
            )
        finally:
            reset_row_attempt_counter(token)
        attempts = counter[0] if counter[0] or response.cached else 1
        return BatchResult(
            custom_id=item.custom_id,
            response=response,
            attempts=attempts,
            elapsed=time.monotonic() - started,
            line=item.line,
            encoding=item.encoding,
        )

    async def one(item: BatchItem) -> None:
        result = await run_row(item)
        error = result.error
        if error is not None and error.kind in stop_on and item.error is None:
            stopped.append(error)
        results.put_nowait(result)

    def row_done(task: asyncio.Task[None]) -> None:
        running.discard(task)
        if fed and not running:
            results.put_nowait(_END)

    async def feed() -> None:
        nonlocal fed
        use_attempt_gate(gate)  # this task's context, which every row task copies
        loop = asyncio.get_running_loop()
        try:
            async for item in source:
                await slots.acquire()
                if stopped:
                    slots.release()
                    break
                task = loop.create_task(one(item))
                running.add(task)
                task.add_done_callback(row_done)
        except Exception as exc:  # the input itself failed (a bad row type, a reader's error)
            results.put_nowait(_Crash(exc))
        finally:
            fed = True
            if not running:
                results.put_nowait(_END)

    feeder = asyncio.ensure_future(feed())
    try:
        while True:
            result = await results.get()
            if result is _END:
                break
            if isinstance(result, _Crash):
                raise result.error
            slots.release()
            assert isinstance(result, BatchResult)
            yield result
    finally:
        for task in (feeder, *running):
            task.cancel()
        await asyncio.gather(feeder, *running, return_exceptions=True)
        if hasattr(source, "aclose"):
            await source.aclose()
    if stopped:
        first = stopped[0]
        raise batch_stopped(
            first.kind,
            first.message,
            status=first.status,
            request_id=first.request_id,
            provider=first.provider,
        )
