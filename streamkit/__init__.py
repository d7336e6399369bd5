"""streamkit: LLM provider streams as ReactiveX observables of normalized chunks.

import streamkit as sk
from streamkit import ops, prices

stream = sk.stream("openai", "gpt-4o-mini", "Recommend a fantasy book")
response = stream.pipe(ops.to_call_response()).run()
"""

from streamkit import ops, prices, telemetry
from streamkit.accumulator import Accumulator, ResponseSnapshot
from streamkit.call import call
from streamkit.deadlines import Deadlines
from streamkit.errors import (
    AllFailedError,
    BudgetError,
    EndpointError,
    IncompleteStreamError,
    MissingAPIKeyError,
    NotIterableError,
    StreamDivergedError,
    StreamError,
    StreamTimeoutError,
    UnknownProviderError,
)
from streamkit.ledger import Ledger, UsageReport
from streamkit.models import (
    CallResponse,
    Chunk,
    ContentSpan,
    FinishReason,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from streamkit.ops import NoMatchError, best_of, first_match, race
from streamkit.pipeline import Pipeline, aiter, arun, iterate
from streamkit.providers import PROVIDERS
from streamkit.stream import Stream, stream

__all__ = [
    "PROVIDERS",
    "Accumulator",
    "AllFailedError",
    "BudgetError",
    "CallResponse",
    "Chunk",
    "ContentSpan",
    "Deadlines",
    "EndpointError",
    "FinishReason",
    "IncompleteStreamError",
    "Ledger",
    "MissingAPIKeyError",
    "NoMatchError",
    "NotIterableError",
    "Pipeline",
    "ResponseSnapshot",
    "Stream",
    "StreamDivergedError",
    "StreamError",
    "StreamTimeoutError",
    "ToolCall",
    "ToolCallDelta",
    "UnknownProviderError",
    "Usage",
    "UsageReport",
    "aiter",
    "arun",
    "best_of",
    "call",
    "first_match",
    "iterate",
    "ops",
    "prices",
    "race",
    "stream",
    "telemetry",
]
__version__ = "0.1.0"
