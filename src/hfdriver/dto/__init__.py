"""Provider-neutral values and their builders: requests, responses, stream chunks, usage.

Nothing here knows a wire format; :mod:`hfdriver.openai` converts these to and from JSON.
"""

from hfdriver.dto.builders import GenerateRequestBuilder, MessageBuilder, ToolSpecBuilder
from hfdriver.dto.request import (
    GenerateRequest,
    Image,
    Input,
    Message,
    ResponseFormat,
    Role,
    Text,
    ToolCall,
    ToolResult,
    ToolSpec,
)
from hfdriver.dto.response import FinishReason, GenerateResponse, Output, Usage
from hfdriver.dto.stream import StreamAssembler, StreamChunk

__all__ = [
    "FinishReason",
    "GenerateRequest",
    "GenerateRequestBuilder",
    "GenerateResponse",
    "Image",
    "Input",
    "Message",
    "MessageBuilder",
    "Output",
    "ResponseFormat",
    "Role",
    "StreamAssembler",
    "StreamChunk",
    "Text",
    "ToolCall",
    "ToolResult",
    "ToolSpec",
    "ToolSpecBuilder",
    "Usage",
]
