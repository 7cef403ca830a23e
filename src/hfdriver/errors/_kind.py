"""The kinds of failure: :class:`HuggingFaceErrorKind`. Each has a row in ``_table.KINDS``."""

from __future__ import annotations

import enum

__all__ = ["HuggingFaceErrorKind"]


class HuggingFaceErrorKind(str, enum.Enum):
    """What went wrong, in the user's words. The value is the lower-case name."""

    INVALID_REQUEST = "invalid_request"
    AUTHENTICATION = "authentication"
    PERMISSION = "permission"
    PAYMENT_REQUIRED = "payment_required"
    NOT_FOUND = "not_found"
    MODEL_NOT_SUPPORTED = "model_not_supported"
    BAD_REQUEST = "bad_request"
    VALIDATION = "validation"
    RATE_LIMITED = "rate_limited"
    MODEL_LOADING = "model_loading"
    OVERLOADED = "overloaded"
    SERVER = "server"
    GONE = "gone"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    STREAM = "stream"
    DECODE = "decode"
    CONFIG = "config"

    def __str__(self) -> str:
        return self.name
