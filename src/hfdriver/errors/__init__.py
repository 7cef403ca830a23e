"""Every failure hfdriver reports is one exception type with a kind.

Catch :class:`HuggingFaceError` and branch on :attr:`HuggingFaceError.kind`::

    HuggingFaceError (Exception)          .kind: HuggingFaceErrorKind
    │
    ├── raised before anything is sent
    │   ├── INVALID_REQUEST       a request that cannot be valid (temperature 3, no messages, ...)
    │   └── CONFIG                bad TOML, missing token, offline mode
    │
    ├── the server answered with an error status
    │   ├── BAD_REQUEST           400 and other 4xx without a better kind
    │   ├── AUTHENTICATION        401: token missing, wrong or revoked
    │   ├── PAYMENT_REQUIRED      402 (or insufficient_quota): credits exhausted
    │   ├── PERMISSION            403: token lacks the scope, gated model
    │   ├── NOT_FOUND             404: model or route does not exist
    │   ├── MODEL_NOT_SUPPORTED   model not served by any provider / not chat-capable / no template
    │   ├── GONE                  410: retired API (use the router)
    │   ├── VALIDATION            422: parameters the server rejected
    │   ├── RATE_LIMITED          429                                      (retried)
    │   ├── MODEL_LOADING         503 with estimated_time                  (retried)
    │   ├── OVERLOADED            503 "overloaded", 529                    (retried)
    │   └── SERVER                5xx                                      (retried, 501/505 not)
    │
    ├── the transport failed
    │   ├── TIMEOUT               connect (retried), read idle or total limit fired
    │   └── CONNECTION            refused, reset, DNS                      (retried)
    │
    └── the body was not what the protocol promises
        ├── STREAM                error event inside a 200 stream, or the stream broke / ended early
        └── DECODE                a 200 body that is not JSON or not a chat completion

Messages are for humans: they say what happened and what to do, are bounded in length, and
never contain the token.
"""

from hfdriver.errors._error import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.errors._mapping import (
    error_from_exception,
    error_from_response,
    error_from_stream_event,
    parse_retry_after,
)

__all__ = [
    "HuggingFaceError",
    "HuggingFaceErrorKind",
    "error_from_exception",
    "error_from_response",
    "error_from_stream_event",
    "parse_retry_after",
]
