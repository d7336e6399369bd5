"""The common finish reason, and the rule that maps a provider's native one onto it.

Each provider's chunk type declares its own table (``Chunk.finish_reason_table``, next to
the decoder that produces the native values); the reducer maps the last native reason
reported with the table of the chunk type that reported it. A native value the table
does not know maps to ``"other"``, never to ``"stop"`` (the Vercel AI SDK's rule): a
reason streamkit does not know is not a normal stop. The native value is always kept in
``finish_reasons`` for callers that need it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

__all__ = ["CHAT_FINISH_REASONS", "FinishReason", "common_finish_reason"]

FinishReason = Literal[
    "stop", "length", "tool_calls", "content_filter", "refusal", "error", "other"
]
"""The provider-independent reason a generation ended (``CallResponse.finish_reason``);
``"other"`` is a native reason streamkit does not know."""

CHAT_FINISH_REASONS: Mapping[str, FinishReason] = MappingProxyType(
    {
        "stop": "stop",
        "length": "length",
        "tool_calls": "tool_calls",
        "function_call": "tool_calls",
        "content_filter": "content_filter",
        "error": "error",
    }
)
"""The OpenAI chat-completions finish reasons (also Groq's, LiteLLM's, Azure's...), which
the common values are named after: the table of a plain :class:`~streamkit.Chunk`, whose
type declares no provider's rules."""


def common_finish_reason(table: Mapping[str, FinishReason], native: str) -> FinishReason:
    """The common value of the native finish reason ``native`` in ``table``; ``"other"``
    for a value the table does not know (a provider added one)."""
    return table.get(native, "other")
