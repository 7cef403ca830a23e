"""Batch files: OpenAI Batch API JSONL in (:mod:`._input`), OpenAI Batch output JSONL out
(:mod:`._output`), resumable; the names of both in one place."""

from hfdriver.batch._ids import IdSet
from hfdriver.batch._input import BATCH_URLS, check_input, parse_line, parse_row, read_input, row_ids
from hfdriver.batch._output import (
    OutputFile,
    check_output_file,
    compact_outputs,
    merge_outputs,
    result_line,
    same_file,
    written_ids,
)

__all__ = [
    "BATCH_URLS",
    "IdSet",
    "OutputFile",
    "check_input",
    "check_output_file",
    "compact_outputs",
    "merge_outputs",
    "parse_line",
    "parse_row",
    "read_input",
    "result_line",
    "row_ids",
    "same_file",
    "written_ids",
]
