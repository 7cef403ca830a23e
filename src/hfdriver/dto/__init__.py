"""Provider-neutral DTOs, their builders, and the chat-completions wire conversions."""

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
