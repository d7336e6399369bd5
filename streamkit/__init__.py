"""streamkit: LLM provider streams as ReactiveX observables of normalized chunks.

import streamkit as sk
from streamkit import ops, prices

stream = sk.stream("openai", "gpt-4o-mini", "Recommend a fantasy book")
response = stream.pipe(ops.to_call_response()).run()
"""

from streamkit import ops, prices, telemetry
from streamkit.accumulator import Accumulator, ResponseSnapshot
from streamkit.call import call
from streamkit.errors import (
    IncompleteStreamError,
    StreamDivergedError,
    StreamError,
    StreamTimeoutError,
    UnknownProviderError,
)
from streamkit.models import CallResponse, Chunk, FinishReason, ToolCall, ToolCallDelta, Usage
from streamkit.providers import PROVIDERS
from streamkit.stream import Stream, stream

__all__ = [
    "PROVIDERS",
    "Accumulator",
    "CallResponse",
    "Chunk",
    "FinishReason",
    "IncompleteStreamError",
    "ResponseSnapshot",
    "Stream",
    "StreamDivergedError",
    "StreamError",
    "StreamTimeoutError",
    "ToolCall",
    "ToolCallDelta",
    "UnknownProviderError",
    "Usage",
    "call",
    "ops",
    "prices",
    "stream",
    "telemetry",
]
__version__ = "0.1.0"
