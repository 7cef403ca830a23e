"""hfdriver: a fast, typed async driver for Hugging Face inference.

>>> from hfdriver import GenerateRequest
>>> GenerateRequest.builder().model("org/model").user("Hello").max_tokens(8).build().max_tokens
8

The transport (``HuggingFaceDriver``, ``RetryPolicy``, ``Timeouts``) is imported on first use,
so ``import hfdriver`` stays cheap and never imports an optional extra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hfdriver._version import __version__
from hfdriver.auth import Token, resolve_token
from hfdriver.driver import Driver, ResponseStream
from hfdriver.dto import (
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
)
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

if TYPE_CHECKING:
    from hfdriver.hub import HubClient
    from hfdriver.huggingface import HuggingFaceDriver, RetryPolicy, Timeouts

_LAZY = {
    "HuggingFaceDriver": "hfdriver.huggingface",
    "RetryPolicy": "hfdriver.huggingface",
    "Timeouts": "hfdriver.huggingface",
    "HubClient": "hfdriver.hub",
}

__all__ = [
    "Driver",
    "FinishReason",
    "GenerateRequest",
    "GenerateResponse",
    "HuggingFaceDriver",
    "HuggingFaceError",
    "HuggingFaceErrorKind",
    "HubClient",
    "Image",
    "Message",
    "Output",
    "ResponseFormat",
    "ResponseStream",
    "RetryPolicy",
    "Role",
    "StreamChunk",
    "Text",
    "Timeouts",
    "Token",
    "ToolCall",
    "ToolResult",
    "ToolSpec",
    "Usage",
    "__version__",
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
