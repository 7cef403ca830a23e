"""Provider-neutral values and their builders: requests, responses, stream chunks, usage.

Nothing here knows a wire format; :mod:`hfdriver.openai` converts these to and from JSON.
"""

from hfdriver.dto.embed import EmbedRequest, EmbedRequestBuilder, EmbedResponse, Vectors
from hfdriver.dto.message import Image, Input, Message, MessageBuilder, Role, Text, ToolCall, ToolResult
from hfdriver.dto.request import GenerateRequest, GenerateRequestBuilder
from hfdriver.dto.response import Cost, FinishReason, GenerateResponse, Output, RouteFailure, Usage
from hfdriver.dto.stream import StreamAssembler, StreamChunk
from hfdriver.dto.tools import ResponseFormat, ToolSpec, ToolSpecBuilder

__all__ = [
    "Cost",
    "EmbedRequest",
    "EmbedRequestBuilder",
    "EmbedResponse",
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
    "RouteFailure",
    "StreamAssembler",
    "StreamChunk",
    "Text",
    "ToolCall",
    "ToolResult",
    "ToolSpec",
    "ToolSpecBuilder",
    "Usage",
    "Vectors",
]
