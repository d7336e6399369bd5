"""The fields of a request's span, from its lifecycle records (no OpenTelemetry import:
the DEBUG log lines use the same fields)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from streamkit._lifecycle import StreamEnd
from streamkit._models import Usage
from streamkit.telemetry import _semconv as sc

__all__ = ["base_attributes", "cost_attributes", "cost_of", "end_fields", "usage_attributes"]

_NS = 1e-9


def base_attributes(provider: str, request_model: str | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        sc.OPERATION_NAME: sc.operation_name(provider),
        sc.PROVIDER_NAME: sc.provider_name(provider),
    }
    if request_model:
        attributes[sc.REQUEST_MODEL] = request_model
    return attributes


def usage_attributes(usage: Usage | None) -> dict[str, Any]:
    if usage is None:
        return {}
    attributes: dict[str, Any] = {
        sc.USAGE_INPUT_TOKENS: usage.input_tokens,
        sc.USAGE_OUTPUT_TOKENS: usage.output_tokens,
        sc.USAGE_SOURCE: usage.source,
    }
    if usage.cached_tokens is not None:
        attributes[sc.USAGE_CACHE_READ_INPUT_TOKENS] = usage.cached_tokens
    if usage.reasoning_tokens is not None:
        attributes[sc.USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_tokens
    return attributes


def cost_of(end: StreamEnd) -> tuple[Decimal | None, str | None]:
    """The record's cost in US dollars, or ``None`` and why (an unknown model, no
    usage, no prices installed)."""
    try:
        cost = end.cost
    except Exception as error:  # a price lookup that failed: say so, never raise here
        return None, f"the price lookup failed: {type(error).__name__}"
    if cost.amount is not None and cost.currency == "USD":
        return cost.amount, None
    return None, cost.reason or f"priced in {cost.currency}"


def cost_attributes(end: StreamEnd) -> dict[str, Any]:
    """``streamkit.cost`` (USD, a float) from the record's cost, or why there is none."""
    amount, reason = cost_of(end)
    if amount is not None:
        return {sc.COST: float(amount)}
    return {sc.COST_UNKNOWN: reason} if reason else {}


def end_fields(end: StreamEnd) -> dict[str, Any]:
    """The span attributes a request's end sets (the stream's own figures)."""
    attributes: dict[str, Any] = {sc.END_OUTCOME: end.outcome, sc.CHUNKS: end.chunks}
    if end.disposed_by is not None:
        attributes[sc.END_DISPOSED_BY] = end.disposed_by
    if end.timeout is not None:
        attributes[sc.END_TIMEOUT] = end.timeout
    if end.error_type is not None:
        attributes[sc.ERROR_TYPE] = end.error_type
    if end.response_model:
        attributes[sc.RESPONSE_MODEL] = end.response_model
    if end.response_id:
        attributes[sc.RESPONSE_ID] = end.response_id
    if end.finish_reasons:
        attributes[sc.RESPONSE_FINISH_REASONS] = list(end.finish_reasons)
    if end.first_chunk_ns is not None:
        attributes[sc.RESPONSE_TIME_TO_FIRST_CHUNK] = (
            end.first_chunk_ns - end.start.started_ns
        ) * _NS
    attributes.update(usage_attributes(end.usage))
    attributes.update(cost_attributes(end))
    return attributes
