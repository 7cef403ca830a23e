"""The Hugging Face transport: :class:`HuggingFaceDriver`, its configuration and the SSE decoder."""

from hfdriver.huggingface._config import ROUTER_URL, RetryPolicy, Timeouts
from hfdriver.huggingface._driver import USER_AGENT, HuggingFaceDriver
from hfdriver.huggingface._retry import instant_retries, set_testing
from hfdriver.huggingface._stream import HuggingFaceStream
from hfdriver.huggingface.sse import SseDecoder, SseEvent

__all__ = [
    "ROUTER_URL",
    "USER_AGENT",
    "HuggingFaceDriver",
    "HuggingFaceStream",
    "RetryPolicy",
    "SseDecoder",
    "SseEvent",
    "Timeouts",
    "instant_retries",
    "set_testing",
]
