"""The OpenTelemetry side: a lifecycle observer that turns each request's start, first
chunk and end into a GenAI span and metrics, and the spans of multi-attempt operations.

Imported only by ``instrument()``: importing streamkit never imports OpenTelemetry.

Every span here is started from a :class:`~streamkit._lifecycle.StreamStart` and ended
from the one :class:`~streamkit._lifecycle.StreamEnd` the source produces for it, on
whatever path the request ended (completion, error, dispose from any thread, timeout,
the event loop closing, the garbage collector): the span's end is the record's end, so
a span cannot be missed or ended twice, and its figures are the stream's own.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import Histogram, Meter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from streamkit._lifecycle import LifecycleObserver, StreamEnd, StreamStart, current_attempt
from streamkit._models import Chunk, Usage
from streamkit.telemetry import _semconv as sc
from streamkit.telemetry._fields import base_attributes, cost_of, end_fields, usage_attributes
from streamkit.telemetry._operations import (
    AttemptResult,
    OperationOutcome,
    current_operation,
    enter,
)

__all__ = [
    "Instruments",
    "OTelChunkObserver",
    "OTelObserver",
    "OperationSpan",
    "observer",
]

_NS = 1e-9

# The inter-chunk times of a request are held and recorded together, at most this many
# at a time or after this long: one histogram record costs several microseconds in the
# OpenTelemetry SDK (more between the pipeline's other per-chunk work than in a loop of
# records), and recording them together takes most of that off each chunk's path.
GAPS_HELD = 256
GAPS_HELD_NS = 1_000_000_000


class Instruments:
    """The four histograms, created once per ``instrument()`` call (never per request)."""

    def __init__(self, meter: Meter) -> None:
        self.token_usage: Histogram = meter.create_histogram(
            sc.TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=sc.TOKEN_BUCKETS,
        )
        self.duration: Histogram = meter.create_histogram(
            sc.OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=sc.SECONDS_BUCKETS,
        )
        self.time_to_first_chunk: Histogram = meter.create_histogram(
            sc.TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time to receive the first chunk, from when the request is made.",
            explicit_bucket_boundaries_advisory=sc.SECONDS_BUCKETS,
        )
        self.time_per_output_chunk: Histogram = meter.create_histogram(
            sc.TIME_PER_OUTPUT_CHUNK,
            unit="s",
            description="Time between a chunk and the one before it, for every chunk "
            "after the first.",
            explicit_bucket_boundaries_advisory=sc.SECONDS_BUCKETS,
        )


class _Request:
    """What the observer keeps for one request between its start and its end."""

    __slots__ = (
        "chunks",
        "content",
        "gaps",
        "gaps_since_ns",
        "last_ns",
        "metric_attributes",
        "operation",
        "span",
    )

    def __init__(
        self, span: Span, metric_attributes: dict[str, Any], operation: OperationSpan | None
    ) -> None:
        self.span = span
        self.metric_attributes = metric_attributes  # built once, reused for every record
        self.operation = operation
        self.last_ns = 0
        self.chunks = 0
        self.content: list[str] | None = None
        # The inter-chunk times not recorded yet (seconds). Whoever swaps the buffer out
        # under the observer's lock records it: each time is recorded once, even when
        # the request ends on another thread while a chunk is being noted.
        self.gaps: array[float] | None = None
        self.gaps_since_ns = 0


def _set_outcome_status(span: Span, outcome: str, error_type: str | None) -> None:
    # Only the error's type, never its message: a provider's error text can quote a
    # (partly masked) key or the prompt.
    if outcome in ("error", "timeout"):
        span.set_status(Status(StatusCode.ERROR, error_type or outcome))


def _messages_json(messages: Sequence[Mapping[str, Any]]) -> str:
    """Request messages in the conventions' ``gen_ai.input.messages`` shape."""
    converted: list[dict[str, Any]] = []
    for message in messages:
        content = message.get("content")
        parts: list[dict[str, Any]] = []
        if isinstance(content, str):
            parts.append({"type": "text", "content": content})
        elif isinstance(content, list):
            for part in content:
                text = part.get("text") if isinstance(part, Mapping) else None
                if isinstance(text, str):
                    parts.append({"type": "text", "content": text})
        converted.append({"role": str(message.get("role", "user")), "parts": parts})
    return json.dumps(converted, ensure_ascii=False)


def _output_json(content: str, finish_reasons: Sequence[str] | None) -> str:
    message: dict[str, Any] = {
        "role": "assistant",
        "parts": [{"type": "text", "content": content}] if content else [],
    }
    if finish_reasons:
        message["finish_reason"] = finish_reasons[0]
    return json.dumps([message], ensure_ascii=False)


class OTelObserver(LifecycleObserver):
    """One CLIENT span per request, and the GenAI client metrics, with no work per chunk
    (see :class:`OTelChunkObserver` for the per-chunk histogram and content capture).

    Also the :class:`~streamkit.telemetry._operations.OperationFactory` of the
    multi-attempt operators' parent spans (:class:`OperationSpan`).
    """

    def __init__(
        self,
        tracer: Tracer,
        instruments: Instruments,
        *,
        capture_content: bool,
        chunk_timing: bool = False,
    ) -> None:
        self.tracer = tracer
        self.instruments = instruments
        self.capture_content = capture_content
        self.chunk_timing = chunk_timing
        self._requests: dict[int, _Request] = {}
        self._lock = threading.Lock()

    # -- requests --------------------------------------------------------------------
    def on_start(self, start: StreamStart) -> None:
        """Start the request's span, a child of the subscriber's current span (or of
        the operation whose attempt this is)."""
        operation = current_operation()
        attributes = base_attributes(start.provider, start.request_model)
        metric_attributes = dict(attributes)
        attributes[sc.SYSTEM] = attributes[sc.PROVIDER_NAME]
        attributes[sc.REQUEST_STREAM] = True
        attributes.update(sc.request_attributes(start.params))
        if isinstance(operation, OperationSpan):
            attributes[sc.ATTEMPT] = start.attempt
        else:
            operation = None
        messages = start.messages
        if self.capture_content and messages:
            attributes[sc.INPUT_MESSAGES] = _messages_json(messages)
        span = self.tracer.start_span(
            sc.span_name(start.provider, start.request_model),
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=start.started_ns,
        )
        request = _Request(span, metric_attributes, operation)
        if self.capture_content:
            request.content = []
        if self.chunk_timing:
            request.gaps = array("d")
        with self._lock:
            self._requests[start.id] = request
        if operation is not None:
            operation.attempt_started(start.attempt)

    def on_first_chunk(self, start: StreamStart, chunk: Chunk, now_ns: int) -> None:
        """The first-chunk event and the time-to-first-chunk histogram."""
        request = self._requests.get(start.id)
        if request is None:
            return
        request.span.add_event(sc.FIRST_CHUNK_EVENT, timestamp=now_ns)
        self.instruments.time_to_first_chunk.record(
            (now_ns - start.started_ns) * _NS, request.metric_attributes
        )

    def on_end(self, end: StreamEnd) -> None:
        """Set the end's figures on the span, end it at the record's end time, record the
        duration and token histograms."""
        with self._lock:
            request = self._requests.pop(end.start.id, None)
            if request is None:
                return  # started before instrument() was called
            gaps, request.gaps = request.gaps, None
        if gaps:
            self._record_gaps(request, gaps)
        span = request.span
        attributes = end_fields(end)
        if request.content is not None:
            attributes[sc.OUTPUT_MESSAGES] = _output_json(
                "".join(request.content), end.finish_reasons
            )
        span.set_attributes(attributes)
        event: dict[str, Any] = {sc.END_OUTCOME: end.outcome, sc.CHUNKS: end.chunks}
        for key in (sc.END_DISPOSED_BY, sc.END_TIMEOUT, sc.ERROR_TYPE):
            if key in attributes:
                event[key] = attributes[key]
        span.add_event(sc.END_EVENT, attributes=event, timestamp=end.ended_ns)
        _set_outcome_status(span, end.outcome, end.error_type)
        self._record_metrics(end, request.metric_attributes)
        operation = request.operation
        if operation is None:
            span.end(end_time=end.ended_ns)
        else:  # the operation ends it (with the attempt's result, if it keeps them)
            close = _closer(span, end.ended_ns)
            operation.attempt_ended(_Summary.of(end), end.start.attempt, close)

    def _record_metrics(self, end: StreamEnd, base: dict[str, Any]) -> None:
        attributes = dict(base)
        if end.response_model:
            attributes[sc.RESPONSE_MODEL] = end.response_model
        if end.error_type is not None and end.outcome in ("error", "timeout"):
            attributes[sc.ERROR_TYPE] = end.error_type
        self.instruments.duration.record((end.ended_ns - end.start.started_ns) * _NS, attributes)
        usage = end.usage
        if usage is not None:
            source = usage.source
            for token_type, count in (
                ("input", usage.input_tokens),
                ("output", usage.output_tokens),
            ):
                self.instruments.token_usage.record(
                    count, {**attributes, sc.TOKEN_TYPE: token_type, sc.USAGE_SOURCE: source}
                )

    def on_chunk(self, start: StreamStart, chunk: Chunk, now_ns: int) -> None:
        """Not called (``wants_chunks`` is false); :class:`OTelChunkObserver` overrides."""

    def _record_gaps(self, request: _Request, gaps: array[float]) -> None:
        """Record held inter-chunk times, with the request's span as the current one (the
        histogram's exemplars point at it, on whatever thread this runs)."""
        record = self.instruments.time_per_output_chunk.record
        attributes = request.metric_attributes
        token = otel_context.attach(trace.set_span_in_context(request.span))
        try:
            for gap in gaps:
                record(gap, attributes)
        finally:
            otel_context.detach(token)

    # -- operations ------------------------------------------------------------------
    def operation(
        self, operator: str, provider: str | None, request_model: str | None, *, results: bool
    ) -> OperationSpan:
        """A multi-attempt operation's span, started now as a child of the current span
        (or as the attempt of the operation being subscribed, when nested in one)."""
        return OperationSpan(self.tracer, operator, provider, request_model, results=results)


class OTelChunkObserver(OTelObserver):
    """:class:`OTelObserver` that also sees every chunk: the inter-chunk histogram
    (``gen_ai.client.operation.time_per_output_chunk``) and, when asked, the text for
    ``gen_ai.output.messages``."""

    wants_chunks = True

    def on_chunk(self, start: StreamStart, chunk: Chunk, now_ns: int) -> None:
        """The inter-chunk histogram: the time since the chunk before, for every chunk
        after the first, held in the request's buffer (no object of ours per chunk) and
        recorded with the request's prebuilt attributes when the buffer is full, a
        second old, or the request ends."""
        request = self._requests.get(start.id)
        if request is None:
            return
        gaps = request.gaps
        if gaps is not None:
            last_ns = request.last_ns
            if last_ns:
                gaps.append((now_ns - last_ns) * _NS)
                if len(gaps) >= GAPS_HELD or now_ns - request.gaps_since_ns >= GAPS_HELD_NS:
                    self._flush_gaps(request, gaps, now_ns)
            else:
                request.gaps_since_ns = now_ns
        request.last_ns = now_ns
        if request.content is not None and chunk.content:
            request.content.append(chunk.content)

    def _flush_gaps(self, request: _Request, gaps: array[float], now_ns: int) -> None:
        with self._lock:
            if request.gaps is not gaps:
                return  # the request ended meanwhile, and its end took the buffer
            request.gaps = array("d")
            request.gaps_since_ns = now_ns
        self._record_gaps(request, gaps)


def observer(
    tracer: Tracer, instruments: Instruments, *, capture_content: bool, chunk_timing: bool
) -> OTelObserver:
    """The observer ``instrument()`` attaches: per-chunk work only when asked for."""
    kind = OTelChunkObserver if chunk_timing or capture_content else OTelObserver
    return kind(tracer, instruments, capture_content=capture_content, chunk_timing=chunk_timing)


@dataclass(frozen=True, slots=True)
class _Summary:
    """What an operation keeps of one ended attempt (a request's end record, or a nested
    operation's own end)."""

    outcome: OperationOutcome
    disposed_by: str | None
    timeout: str | None
    error_type: str | None
    usage: Usage | None
    chunks: int
    cost: Decimal | None
    """US dollars; ``None`` when unknown."""
    response_model: str | None
    response_id: str | None
    finish_reasons: Sequence[str] | None
    ended_ns: int

    @classmethod
    def of(cls, end: StreamEnd) -> _Summary:
        amount, _reason = cost_of(end)
        return cls(
            outcome=end.outcome,
            disposed_by=end.disposed_by,
            timeout=end.timeout,
            error_type=end.error_type,
            usage=end.usage,
            chunks=end.chunks,
            cost=amount,
            response_model=end.response_model,
            response_id=end.response_id,
            finish_reasons=end.finish_reasons,
            ended_ns=end.ended_ns,
        )


Close = Callable[[AttemptResult | None, str | None], None]
"""Ends an attempt's span, with its result (and why) when the operator said one."""


def _closer(span: Span, end_time: int) -> Close:
    def close(result: AttemptResult | None, reason: str | None) -> None:
        if result is not None:
            attributes: dict[str, Any] = {sc.ATTEMPT_RESULT: result}
            if reason:
                attributes[sc.ATTEMPT_REASON] = reason
            span.set_attributes(attributes)
        span.end(end_time=end_time)

    return close


class OperationSpan:
    """The span of one subscription of a multi-attempt operator (``retry_on_error``,
    ``fallback``, ``hedge``, ``race``, ``first_match``, ``best_of``): the logical call,
    with one child span per attempt (its request's span, or the span of an operation
    nested in it). It ends once the operator has ended and every attempt has ended (so
    it always contains its children), exactly once.

    With ``results``, each attempt's span gets ``streamkit.attempt.result`` (and
    ``streamkit.attempt.reason``): its end waits until the operator says the result
    (:meth:`result`) or the operation ends (then ``cancelled``), and is given the
    attempt's own end time, so the wait changes no timing.
    """

    def __init__(
        self,
        tracer: Tracer,
        operator: str,
        provider: str | None,
        request_model: str | None,
        *,
        results: bool = False,
    ) -> None:
        attributes: dict[str, Any] = {sc.OPERATOR: operator}
        if provider is not None:
            attributes.update(base_attributes(provider, request_model))
            attributes[sc.SYSTEM] = attributes[sc.PROVIDER_NAME]
            name = sc.span_name(provider, request_model)
        else:
            name = f"streamkit.{operator}"
        # Started inside an attempt of another operation: this operation is that attempt.
        parent = current_operation()
        self._parent = parent if isinstance(parent, OperationSpan) else None
        self._number = current_attempt()
        if self._parent is not None:
            attributes[sc.ATTEMPT] = self._number
        self.operator = operator
        self.span = tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=attributes)
        self._context = trace.set_span_in_context(self.span)
        self._lock = threading.Lock()
        self._keeps_results = results
        self._results: dict[int, tuple[AttemptResult, str | None]] = {}
        self._held: list[tuple[int, Close]] = []
        self._winner: int | None = None
        self._open = 0
        self._attempts = 0
        self._usage: Usage | None = None
        self._chunks = 0
        self._cost: Decimal | None = Decimal(0)  # None once an attempt's cost is unknown
        self._last: _Summary | None = None
        self._by_number: dict[int, _Summary] = {}
        self._ended_by_finish = False  # the last attempt ended after the operator did
        self._finished: tuple[OperationOutcome, BaseException | None, str | None] | None = None
        self._ended = False
        if self._parent is not None:
            self._parent.attempt_started(self._number)

    @contextlib.contextmanager
    def attempt(self, number: int) -> Iterator[None]:
        """Subscribe an attempt inside this block: its span is this span's child."""
        with self._lock:
            self._attempts = max(self._attempts, number)
        token = otel_context.attach(self._context)
        try:
            yield from enter(self)
        finally:
            otel_context.detach(token)

    def retrying(self, number: int, error: BaseException, delay: float) -> None:
        """An event on the operation's span: which attempt failed, why, and the delay."""
        self.span.add_event(
            sc.RETRY_EVENT,
            attributes={
                sc.ATTEMPT: number,
                sc.ERROR_TYPE: _qualified_name(error),
                "streamkit.retry.delay_s": delay,
            },
        )

    def result(self, number: int, result: AttemptResult, reason: str | None = None) -> None:
        """Attempt ``number`` fared so: its span (and any later one of that number) ends
        with it. The first result said for an attempt counts."""
        if not self._keeps_results:
            return
        with self._lock:
            if number in self._results:
                return
            self._results[number] = (result, reason)
            if result == "won":
                self._winner = number
            ready = [close for held, close in self._held if held == number]
            self._held = [(held, close) for held, close in self._held if held != number]
        for close in ready:
            close(result, reason)

    def attempt_started(self, number: int) -> None:
        """Count a started attempt (a request, or a nested operation)."""
        with self._lock:
            self._open += 1
            self._attempts = max(self._attempts, number)

    def attempt_ended(self, summary: _Summary, number: int, close: Close) -> None:
        """Add the attempt's figures and end its span (now, or once its result is
        known); end this span if the operator has already ended."""
        with self._lock:
            self._open -= 1
            self._chunks += summary.chunks
            amount = summary.cost
            self._cost = None if amount is None or self._cost is None else self._cost + amount
            if summary.usage is not None:
                self._usage = summary.usage if self._usage is None else self._usage + summary.usage
            self._last = summary
            self._by_number[number] = summary
            self._ended_by_finish = self._finished is not None
            known: tuple[AttemptResult | None, str | None] | None = (None, None)
            if self._keeps_results:
                known = self._results.get(number)
                if known is None:
                    self._held.append((number, close))
        if known is not None:
            close(*known)
        self._end_if_done()

    def finish(
        self,
        outcome: OperationOutcome,
        *,
        error: BaseException | None = None,
        disposed_by: str | None = None,
    ) -> None:
        """The operator ended (the first call counts)."""
        with self._lock:
            if self._finished is not None:
                return
            self._finished = (outcome, error, disposed_by)
        self._end_if_done()

    def _end_if_done(self) -> None:
        with self._lock:
            if self._ended or self._finished is None or self._open > 0:
                return
            self._ended = True
            outcome, error, disposed_by = self._finished
            last, usage, chunks, attempts = self._last, self._usage, self._chunks, self._attempts
            winner = self._winner
            answer = self._by_number.get(winner, last) if winner is not None else last
            cost = self._cost if last is not None else None
            ended_by_finish = self._ended_by_finish
            undecided, self._held = self._held, []
        timeout: str | None = None
        error_type = _qualified_name(error) if error is not None else None
        if outcome == "disposed":
            if last is not None and ended_by_finish and last.outcome in ("disposed", "timeout"):
                # disposed while an attempt ran: the attempt's record knows why
                outcome, disposed_by, timeout = last.outcome, last.disposed_by, last.timeout
                error_type = last.error_type
            elif disposed_by is not None and disposed_by.startswith("timeout:"):
                # between attempts, by a timeout operator downstream
                outcome, timeout = "timeout", disposed_by.removeprefix("timeout:")
                error_type = "streamkit.StreamTimeoutError"
        # attempts still undecided when the operation ended: cancelled by its end
        why = f"the {self.operator} ended: {outcome}"
        if outcome == "disposed":
            why += f" by {disposed_by or 'unknown'}"
        for _number, close in undecided:
            close("cancelled", why)
        attributes: dict[str, Any] = {sc.END_OUTCOME: outcome, sc.ATTEMPTS: attempts}
        attributes[sc.CHUNKS] = chunks
        if outcome == "timeout":
            attributes[sc.END_TIMEOUT] = timeout or "unknown"
        if outcome == "disposed":
            attributes[sc.END_DISPOSED_BY] = disposed_by or "unknown"
        if error_type is not None:
            attributes[sc.ERROR_TYPE] = error_type
        if winner is not None:
            attributes[sc.WINNER] = winner
        if answer is not None:
            if answer.response_model:
                attributes[sc.RESPONSE_MODEL] = answer.response_model
            if answer.response_id:
                attributes[sc.RESPONSE_ID] = answer.response_id
            if answer.finish_reasons:
                attributes[sc.RESPONSE_FINISH_REASONS] = list(answer.finish_reasons)
        attributes.update(usage_attributes(usage))
        if cost is not None:
            attributes[sc.COST] = float(cost)  # every attempt's, the aborted ones too
        self.span.set_attributes(attributes)
        self.span.add_event(sc.END_EVENT, attributes={sc.END_OUTCOME: outcome})
        _set_outcome_status(self.span, outcome, error_type)
        end_time = max(time.time_ns(), last.ended_ns if last else 0)
        close_self = _closer(self.span, end_time)
        parent = self._parent
        if parent is None:
            close_self(None, None)
            return
        parent.attempt_ended(
            _Summary(
                outcome=outcome,
                disposed_by=disposed_by if outcome == "disposed" else None,
                timeout=timeout,
                error_type=error_type,
                usage=usage,
                chunks=chunks,
                cost=cost,
                response_model=answer.response_model if answer else None,
                response_id=answer.response_id if answer else None,
                finish_reasons=answer.finish_reasons if answer else None,
                ended_ns=end_time,
            ),
            self._number,
            close_self,
        )


def _qualified_name(error: BaseException) -> str:
    kind = type(error)
    return f"{kind.__module__}.{kind.__qualname__}"
