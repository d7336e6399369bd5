"""streamkit: LLM provider streams as ReactiveX observables of normalized chunks.

import streamkit as sk
from streamkit import ops, prices

stream = sk.stream("openai", "gpt-4o-mini", "Recommend a fantasy book")
response = stream.pipe(ops.to_call_response()).run()

``sk.serve`` (extra ``[serve]``) and ``sk.redis`` (extra ``[redis]``) are imported on
first access, so ``import streamkit`` needs neither extra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from streamkit import ops, prices, telemetry
from streamkit._accumulator import Accumulator, ResponseSnapshot
from streamkit._call import call
from streamkit._deadlines import Deadlines
from streamkit._errors import (
    AllFailedError,
    BudgetError,
    BudgetExceededError,
    EndpointError,
    IncompleteStreamError,
    MissingAPIKeyError,
    NotIterableError,
    StreamDivergedError,
    StreamError,
    StreamTimeoutError,
    UnknownProviderError,
)
from streamkit._ledger import Ledger, UsageReport
from streamkit._models import (
    CallResponse,
    Chunk,
    ContentSpan,
    FinishReason,
    RequestUsage,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from streamkit._pipeline import Pipeline, aiter, arun, iterate
from streamkit._stream import Stream, stream
from streamkit.ops import NoMatchError, best_of, first_match, race
from streamkit.providers import PROVIDERS

__all__ = [
    "PROVIDERS",
    "Accumulator",
    "AllFailedError",
    "BudgetError",
    "BudgetExceededError",
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
    "RequestUsage",
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

_LAZY = {"serve": ("serve", "starlette and uvicorn"), "redis": ("redis", "redis and orjson")}
"""Subpackages imported on first access: name -> (the extra they need, what it brings)."""

if TYPE_CHECKING:
    # For type checkers, the two subpackages are plain attributes (and no module
    # __getattr__ is seen, so a misspelt ``sk.name`` stays an error).
    from streamkit import redis as redis
    from streamkit import serve as serve
else:

    def __getattr__(name: str) -> object:
        """``sk.serve`` and ``sk.redis``: the subpackage, imported on first access
        (PEP 562). Raises ``ImportError`` naming the extra when its packages are
        missing."""
        if name not in _LAZY:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        extra, brings = _LAZY[name]
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as error:
            missing = (error.name or "").partition(".")[0]
            if not missing or missing == __name__:
                raise  # a module of streamkit itself is missing, not an extra's package
            raise ImportError(
                f"streamkit.{name} needs the [{extra}] extra ({brings}): "
                f'pip install "streamkit[{extra}]" (missing: {missing})',
                name=missing,
            ) from error
