"""Every failure hfdriver reports is one exception type with a kind: the ground floor.

Catch :class:`HuggingFaceError` and branch on :attr:`HuggingFaceError.kind`. The kinds, drawn
below from the table in ``_table.py`` (one row per kind: its statuses and server codes, retry
rule, advice, and what ``hfdriver serve`` answers with)::

{tree}

Messages are for humans: they say what happened and what to do, are bounded in length, and
never contain the token (:func:`redact` runs wherever an error is built from server text).
This package imports nothing else from hfdriver; everything else may import it.
"""

from hfdriver.errors._error import HuggingFaceError, default_retryable, invalid_request
from hfdriver.errors._kind import HuggingFaceErrorKind
from hfdriver.errors._mapping import (
    MAX_BODY_CHARS,
    MAX_MESSAGE_CHARS,
    clip,
    error_from_response,
    error_from_stream_event,
    parse_retry_after,
    scrub,
)
from hfdriver.errors._redact import Secret, mask, redact, strip_url_credentials
from hfdriver.errors._table import GROUPS, KINDS, KindInfo, kind_info, kinds_markdown_table, kinds_tree

__doc__ = (__doc__ or "").replace("{tree}", "\n".join("    " + line for line in kinds_tree().splitlines()))

__all__ = [
    "GROUPS",
    "KINDS",
    "MAX_BODY_CHARS",
    "MAX_MESSAGE_CHARS",
    "HuggingFaceError",
    "HuggingFaceErrorKind",
    "KindInfo",
    "Secret",
    "clip",
    "default_retryable",
    "error_from_response",
    "error_from_stream_event",
    "invalid_request",
    "kind_info",
    "kinds_markdown_table",
    "kinds_tree",
    "mask",
    "parse_retry_after",
    "redact",
    "scrub",
    "strip_url_credentials",
]
