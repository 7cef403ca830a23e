"""``HuggingFaceDriver``: the router, dedicated endpoints and any OpenAI-compatible ``/v1``.

The driver owns lifecycle and requests; :mod:`hfdriver.openai` maps requests and answers, and
:mod:`hfdriver.transport` sends them. ``RetryPolicy``, ``Timeouts`` and the testing switch are
re-exported from the transport, where they live.
"""

from hfdriver.hub import ROUTER_URL
from hfdriver.huggingface._driver import HuggingFaceDriver
from hfdriver.huggingface._stream import HuggingFaceStream
from hfdriver.transport import USER_AGENT, RetryPolicy, Timeouts, instant_retries, set_testing

__all__ = [
    "ROUTER_URL",
    "USER_AGENT",
    "HuggingFaceDriver",
    "HuggingFaceStream",
    "RetryPolicy",
    "Timeouts",
    "instant_retries",
    "set_testing",
]
