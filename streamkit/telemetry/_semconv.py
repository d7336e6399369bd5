"""The names streamkit's telemetry uses: the OpenTelemetry GenAI semantic conventions
where they have one, ``streamkit.*`` where they have none.

Pure data, no OpenTelemetry import: the attribute mapping is unit-tested on its own.
Names follow the conventions as published in ``opentelemetry-semantic-conventions``
(GenAI, development status): ``gen_ai.provider.name`` (which replaced
``gen_ai.system``; both are set, for backends that still key on the old one), the
``gen_ai.client.*`` metrics, and the conventions' bucket boundaries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from streamkit.providers import provider_entry

# -- span and metric attributes (GenAI semantic conventions) ---------------------------
OPERATION_NAME: Final = "gen_ai.operation.name"
PROVIDER_NAME: Final = "gen_ai.provider.name"
SYSTEM: Final = "gen_ai.system"  # deprecated name of gen_ai.provider.name
REQUEST_MODEL: Final = "gen_ai.request.model"
REQUEST_STREAM: Final = "gen_ai.request.stream"
RESPONSE_MODEL: Final = "gen_ai.response.model"
RESPONSE_ID: Final = "gen_ai.response.id"
RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
TOKEN_TYPE: Final = "gen_ai.token.type"
INPUT_MESSAGES: Final = "gen_ai.input.messages"
OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
ERROR_TYPE: Final = "error.type"

# -- what the conventions lack ---------------------------------------------------------
END_OUTCOME: Final = "streamkit.end.outcome"
"""completed | error | disposed | timeout | abandoned"""
END_DISPOSED_BY: Final = "streamkit.end.disposed_by"
"""take_until_match | take | break | close | disconnect | stop | budget | lost | unknown"""
END_TIMEOUT: Final = "streamkit.end.timeout"
"""headers | first_chunk | idle | total"""
CHUNKS: Final = "streamkit.chunks"
USAGE_SOURCE: Final = "streamkit.usage.source"
"""reported | estimated | mixed"""
COST: Final = "streamkit.cost"
"""The cost in US dollars (a float), when the prices know the model."""
COST_UNKNOWN: Final = "streamkit.cost.unknown_reason"
ATTEMPT: Final = "streamkit.attempt"
ATTEMPTS: Final = "streamkit.attempts"
ATTEMPT_RESULT: Final = "streamkit.attempt.result"
"""won | lost | failed | cancelled (the attempts of fallback, hedge, race, first_match,
best_of)"""
ATTEMPT_REASON: Final = "streamkit.attempt.reason"
"""Why an attempt lost, failed or was cancelled, in a few words."""
WINNER: Final = "streamkit.winner"
"""On an operation's span: the number of the attempt whose output it delivered."""
OPERATOR: Final = "streamkit.operator"

# -- events ------------------------------------------------------------------------------
FIRST_CHUNK_EVENT: Final = "streamkit.first_chunk"
END_EVENT: Final = "streamkit.end"
RETRY_EVENT: Final = "streamkit.retry"

# -- metrics ---------------------------------------------------------------------------
TOKEN_USAGE: Final = "gen_ai.client.token.usage"
OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"
TIME_PER_OUTPUT_CHUNK: Final = "gen_ai.client.operation.time_per_output_chunk"

TOKEN_BUCKETS: Final = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
"""The conventions' advisory boundaries for ``gen_ai.client.token.usage``."""
SECONDS_BUCKETS: Final = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
"""The conventions' advisory boundaries for the duration and chunk-time histograms."""


# -- values ----------------------------------------------------------------------------
def provider_name(provider: str) -> str:
    """The conventions' ``gen_ai.provider.name`` for a streamkit provider name (the
    registry's ``semconv_name``, else the name itself)."""
    entry = provider_entry(provider)
    if entry is None:
        return provider
    return entry.semconv_name or entry.name


def operation_name(provider: str) -> str:
    """The conventions' ``gen_ai.operation.name``: Gemini's API is ``generate_content``,
    every other provider streamkit speaks to is a chat API."""
    return "generate_content" if provider == "google" else "chat"


def span_name(provider: str, request_model: str | None) -> str:
    """``{gen_ai.operation.name} {gen_ai.request.model}``, as the conventions name spans."""
    operation = operation_name(provider)
    return f"{operation} {request_model}" if request_model else operation


_REQUEST_PARAMS: Final[Mapping[str, str]] = {
    # the request's own keyword -> the conventions' attribute (a whitelist: no other
    # parameter is ever read, so a key passed as a parameter cannot reach a span)
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "max_output_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "seed": "gen_ai.request.seed",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "stop": "gen_ai.request.stop_sequences",
    "stop_sequences": "gen_ai.request.stop_sequences",
}


def request_attributes(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``gen_ai.request.*`` attributes of a request's keyword parameters.

    Only the whitelisted sampling parameters are read, and only values of the types an
    attribute can hold (numbers, a string or a list of strings for stop sequences).
    """
    attributes: dict[str, Any] = {}
    if not params:
        return attributes
    for key, name in _REQUEST_PARAMS.items():
        value = params.get(key)
        if value is None or isinstance(value, bool):
            continue
        if name == "gen_ai.request.stop_sequences":
            if isinstance(value, str):
                attributes[name] = [value]
            elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                attributes[name] = list(value)
        elif isinstance(value, (int, float)):
            attributes[name] = value
    return attributes
