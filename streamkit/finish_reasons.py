"""Provider-native finish reasons mapped to streamkit's common ``FinishReason``.

One table per provider so the mapping for every provider can be read in one place.
Values a table does not know map to ``"stop"`` when the provider reports a normal end
and are otherwise left to the closest meaning below.
"""

from __future__ import annotations

from streamkit.models import FinishReason

__all__ = ["FINISH_REASONS", "common_finish_reason"]

_OPENAI: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "error": "error",
}

FINISH_REASONS: dict[str, dict[str, FinishReason]] = {
    "openai": {
        **_OPENAI,
        # Responses API statuses / incomplete reasons.
        "completed": "stop",
        "max_output_tokens": "length",
        "incomplete": "length",
        "failed": "error",
        "refusal": "refusal",
    },
    "groq": _OPENAI,
    "litellm": _OPENAI,
    "azure": _OPENAI,
    "mistral": {**_OPENAI, "model_length": "length"},
    "anthropic": {
        "end_turn": "stop",
        "stop_sequence": "stop",
        "pause_turn": "stop",
        "max_tokens": "length",
        "model_context_window_exceeded": "length",
        "tool_use": "tool_calls",
        "refusal": "refusal",
    },
    "google": {
        "STOP": "stop",
        "MAX_TOKENS": "length",
        "SAFETY": "content_filter",
        "RECITATION": "content_filter",
        "BLOCKLIST": "content_filter",
        "PROHIBITED_CONTENT": "content_filter",
        "SPII": "content_filter",
        "IMAGE_SAFETY": "content_filter",
        "LANGUAGE": "content_filter",
        "MALFORMED_FUNCTION_CALL": "error",
        "UNEXPECTED_TOOL_CALL": "error",
        "OTHER": "error",
        "FINISH_REASON_UNSPECIFIED": "error",
        # Newer FinishReason values (google-genai 3.x).
        "IMAGE_PROHIBITED_CONTENT": "content_filter",
        "IMAGE_RECITATION": "content_filter",
        "MODEL_ARMOR": "content_filter",
        "ESCALATION": "content_filter",
        "PUP_LIMITED_DISABLED": "content_filter",
        "IMAGE_OTHER": "error",
        "NO_IMAGE": "error",
        "TOO_MANY_TOOL_CALLS": "error",
        "MISSING_THOUGHT_SIGNATURE": "error",
        "MALFORMED_RESPONSE": "error",
        # The response goes on in a follow-up request (the SDK follows it by default).
        "CONTINUATION": "length",
        # promptFeedback.blockReason of a prompt blocked before any candidate.
        "JAILBREAK": "content_filter",
        "BLOCKED_REASON_UNSPECIFIED": "content_filter",
    },
    "cohere": {
        "COMPLETE": "stop",
        "STOP_SEQUENCE": "stop",
        "MAX_TOKENS": "length",
        "TOOL_CALL": "tool_calls",
        "ERROR": "error",
        "TIMEOUT": "error",
    },
}


def common_finish_reason(provider: str, native: str) -> FinishReason:
    """Map one provider-native finish reason to the common value.

    An unknown value (a provider added one) maps to ``"stop"`` rather than failing:
    the native value is always kept in ``finish_reasons`` for callers that need it.
    """
    table = FINISH_REASONS.get(provider, _OPENAI)
    return table.get(native, "stop")
