"""Batches: many requests through any :class:`~hfdriver.Driver`, using the whole rate limit.

>>> from hfdriver.batch import run_batch
>>> async def main():  # doctest: +SKIP
...     rows = ((f"q{i}", GenerateRequest.builder().user(q).build()) for i, q in enumerate(questions))
...     async with HuggingFaceDriver(model="meta-llama/Llama-3.2-1B-Instruct") as driver:
...         async for result in run_batch(driver, rows, concurrency=32):
...             print(result.custom_id, result.response.text if result.ok else result.error)

Rows are read lazily and yielded as they finish. :class:`FlowControl` adapts concurrency and
rate to the server's rate-limit answers, pauses every row at once on ``Retry-After``, and holds
optional ``rpm`` / ``tpm`` budgets. ``hfdriver batch IN.jsonl -o OUT.jsonl`` runs a file in the
OpenAI Batch formats and resumes where a killed run stopped (:mod:`hfdriver.batch._files`).
"""

from hfdriver.batch._files import (
    IdSet,
    OutputFile,
    check_input,
    check_output_file,
    parse_line,
    read_input,
    result_line,
    same_file,
)
from hfdriver.batch._flow import FlowControl, FlowStats
from hfdriver.batch._lock import OutputLock
from hfdriver.batch._run import (
    FATAL_KINDS,
    BatchItem,
    BatchResult,
    BatchSummary,
    estimate_tokens,
    max_pause_for,
    run_batch,
)

__all__ = [
    "FATAL_KINDS",
    "BatchItem",
    "BatchResult",
    "BatchSummary",
    "FlowControl",
    "IdSet",
    "FlowStats",
    "OutputFile",
    "OutputLock",
    "check_input",
    "check_output_file",
    "estimate_tokens",
    "max_pause_for",
    "parse_line",
    "read_input",
    "result_line",
    "run_batch",
    "same_file",
]
