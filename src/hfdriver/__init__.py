"""hfdriver: a fast, typed async driver for Hugging Face inference.

>>> from hfdriver import GenerateRequest
>>> GenerateRequest.builder().model("org/model").user("Hello").max_tokens(8).build().max_tokens
8

The transport (``HuggingFaceDriver``, ``RetryPolicy``, ``Timeouts``...), the Hub client and the
configuration are imported on first use, so ``import hfdriver`` stays cheap (no aiohttp,
tenacity or cattrs) and never imports an optional extra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hfdriver._version import __version__
from hfdriver.auth import NO_TOKEN, Token, resolve_token
from hfdriver.driver import Driver, DriverInfo, Embedder, ResponseStream, describe
from hfdriver.dto import (
    Cost,
    EmbedRequest,
    EmbedResponse,
    FinishReason,
    GenerateRequest,
    GenerateResponse,
    Image,
    Message,
    Output,
    ResponseFormat,
    Role,
    StreamChunk,
    Text,
    ToolCall,
    ToolResult,
    ToolSpec,
    Usage,
    Vectors,
)
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

if TYPE_CHECKING:
    from hfdriver._compose import compose
    from hfdriver._wrapper import core_of
    from hfdriver.cache import CachedDriver
    from hfdriver.config import create_driver, load_config
    from hfdriver.fallback import FallbackDriver
    from hfdriver.hub import HubClient
    from hfdriver.huggingface import HuggingFaceDriver
    from hfdriver.tasks import Media, TaskClient
    from hfdriver.telemetry import InstrumentedDriver
    from hfdriver.transport import RetryDetails, RetryPolicy, Timeouts

_LAZY = {
    "CachedDriver": "hfdriver.cache",
    "InstrumentedDriver": "hfdriver.telemetry",
    "compose": "hfdriver._compose",
    "core_of": "hfdriver._wrapper",
    "FallbackDriver": "hfdriver.fallback",
    "HuggingFaceDriver": "hfdriver.huggingface",
    "RetryDetails": "hfdriver.transport",
    "RetryPolicy": "hfdriver.transport",
    "Timeouts": "hfdriver.transport",
    "HubClient": "hfdriver.hub",
    "Media": "hfdriver.tasks",
    "TaskClient": "hfdriver.tasks",
    "create_driver": "hfdriver.config",
    "load_config": "hfdriver.config",
}

__all__ = [
    "NO_TOKEN",
    "CachedDriver",
    "Cost",
    "Driver",
    "DriverInfo",
    "EmbedRequest",
    "EmbedResponse",
    "Embedder",
    "FallbackDriver",
    "FinishReason",
    "GenerateRequest",
    "GenerateResponse",
    "HuggingFaceDriver",
    "HuggingFaceError",
    "HuggingFaceErrorKind",
    "HubClient",
    "Image",
    "InstrumentedDriver",
    "Media",
    "Message",
    "Output",
    "ResponseFormat",
    "ResponseStream",
    "RetryDetails",
    "RetryPolicy",
    "Role",
    "StreamChunk",
    "TaskClient",
    "Text",
    "Timeouts",
    "Token",
    "ToolCall",
    "ToolResult",
    "ToolSpec",
    "Usage",
    "Vectors",
    "__version__",
    "compose",
    "core_of",
    "create_driver",
    "describe",
    "load_config",
    "resolve_token",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hfdriver' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
