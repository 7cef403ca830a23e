"""The transport: the only owner of aiohttp for clients, with retries and timeouts beside it.

- :class:`HttpClient` creates (or borrows) the session, sends, bounds what it reads and maps
  every transport failure to :class:`~hfdriver.HuggingFaceError` in one table;
- :class:`RetryPolicy` and :class:`Timeouts` are the frozen values every client is configured
  with; :func:`call_with_retries` runs a call under a policy (tenacity);
- retry hooks receive a :class:`RetryDetails` per scheduled retry (:func:`set_on_retry_hooks`);
  :func:`set_testing` zeroes every wait, for tests.

The router driver, ``HubClient``, ``ModelStore`` and the Ollama client use it; outside this
package only ``hfdriver.server`` and ``hfdriver.testing`` import aiohttp (an import contract
checks it).
"""

from hfdriver.transport._errors import TRANSPORT_ERRORS, map_download_error, map_transport_error
from hfdriver.transport._http import (
    DEFAULT_MAX_BODY_BYTES,
    ERROR_BODY_BYTES,
    USER_AGENT,
    ClientResponse,
    ClientSession,
    HttpClient,
    Reply,
    RequestTimeout,
    request_timeout,
    stream_timeout,
    unary_timeout,
)
from hfdriver.transport._policy import RetryPolicy, Timeouts
from hfdriver.transport._ratelimit import stated_rate
from hfdriver.transport._retry import (
    AttemptGate,
    RetryDetails,
    RetryHook,
    add_default_retry_hook,
    call_with_retries,
    get_on_retry_hooks,
    instant_retries,
    is_retryable,
    is_testing,
    log_retry,
    quiet_retry_log,
    reset_attempt_gate,
    reset_retry_log,
    set_on_retry_hooks,
    set_testing,
    use_attempt_gate,
)
from hfdriver.transport._urls import split_credentials

__all__ = [
    "AttemptGate",
    "add_default_retry_hook",
    "DEFAULT_MAX_BODY_BYTES",
    "ERROR_BODY_BYTES",
    "TRANSPORT_ERRORS",
    "USER_AGENT",
    "ClientResponse",
    "ClientSession",
    "HttpClient",
    "Reply",
    "RequestTimeout",
    "RetryDetails",
    "RetryHook",
    "RetryPolicy",
    "Timeouts",
    "call_with_retries",
    "get_on_retry_hooks",
    "instant_retries",
    "is_retryable",
    "is_testing",
    "log_retry",
    "quiet_retry_log",
    "reset_retry_log",
    "map_download_error",
    "map_transport_error",
    "request_timeout",
    "set_on_retry_hooks",
    "reset_attempt_gate",
    "set_testing",
    "use_attempt_gate",
    "split_credentials",
    "stated_rate",
    "stream_timeout",
    "unary_timeout",
]
