"""``retry_on_error``: one span for the logical call, one child span per attempt.

Three ways, as for every operator: virtual time (the operation span's end on each
path, at the right moment), a hypothesis property (whatever the faults, the operation
span ends once with as many attempts as subscriptions), and end to end on the replay
server (the parent/child tree and the figures)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.trace import SpanKind, StatusCode
from reactivex.testing import ReactiveTest, TestScheduler

import streamkit as sk
from streamkit import ops
from streamkit.testing import Fault, ReplayServer, Reply
from tests.ops._pipelines import collect_sync, run_sync
from tests.recorded import kind_of
from tests.telemetry._harness import Telemetry, attrs

MODEL = "replayed-model"
TRANSCRIPT = "openai/chat-text-usage"

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
on_error = ReactiveTest.on_error


def _retry(**kwargs: Any) -> Any:
    return ops.retry_on_error(3, backoff=0.01, jitter=0.0, **kwargs)


# -- end to end ------------------------------------------------------------------------------
def test_each_attempt_is_a_child_of_the_logical_calls_span(telemetry: Telemetry) -> None:
    with ReplayServer(pace=0.001) as server:
        server.push(Reply(TRANSCRIPT, fault=Fault(close_after_events=4)), TRANSCRIPT)
        stream = sk.stream("openai", MODEL, "hello", client=server.client("openai"))
        with telemetry.tracer.start_as_current_span("app") as app:
            (response,) = run_sync(stream.pipe(_retry(), ops.to_call_response()))
    assert len(server.requests) == 2
    (operation,) = telemetry.operations()
    first, second = telemetry.requests()
    telemetry.check_ended_once()
    # the tree: app -> the call -> attempt 1, attempt 2
    assert operation.parent is not None
    assert operation.parent.span_id == app.get_span_context().span_id
    assert operation.kind is SpanKind.INTERNAL
    assert operation.name == f"chat {MODEL}"
    for child in (first, second):
        assert child.parent is not None and child.parent.span_id == operation.context.span_id
    assert [attrs(first)["streamkit.attempt"], attrs(second)["streamkit.attempt"]] == [1, 2]
    assert attrs(first)["error.type"] == "streamkit.IncompleteStreamError"
    assert attrs(second)["streamkit.end.outcome"] == "completed"
    # the call's figures: what the subscriber received
    a = attrs(operation)
    assert a["streamkit.operator"] == "retry_on_error"
    assert a["streamkit.attempts"] == 2
    assert a["streamkit.end.outcome"] == "completed"
    assert a["gen_ai.response.id"] == response.id
    assert list(a["gen_ai.response.finish_reasons"]) == response.finish_reasons
    children_output = sum(attrs(c)["gen_ai.usage.output_tokens"] for c in (first, second))
    assert a["gen_ai.usage.output_tokens"] == children_output
    # both attempts were billed: the call's cost is theirs together
    assert a["streamkit.cost"] == pytest.approx(
        attrs(first)["streamkit.cost"] + attrs(second)["streamkit.cost"]
    )
    assert operation.status.status_code is StatusCode.UNSET
    # the call contains its attempts
    assert operation.start_time <= first.start_time  # type: ignore[operator]
    assert operation.end_time >= second.end_time  # type: ignore[operator]
    (retry_event,) = [e for e in operation.events if e.name == "streamkit.retry"]
    assert retry_event.attributes is not None
    assert retry_event.attributes["streamkit.attempt"] == 1
    assert retry_event.attributes["error.type"] == "streamkit.IncompleteStreamError"
    # metrics count requests, not the call: two durations
    (duration_ok, duration_error) = sorted(
        telemetry.points("gen_ai.client.operation.duration"),
        key=lambda p: "error.type" in (p.attributes or {}),
    )
    assert duration_ok.count == 1 and duration_error.count == 1


def test_a_retried_early_stopped_stream(telemetry: Telemetry) -> None:
    """The docs' picture: attempt 1 is cut, attempt 2 is stopped by take_until_match."""
    with ReplayServer(pace=0.002) as server:
        server.push(Reply(TRANSCRIPT, fault=Fault(close_after_events=3)), TRANSCRIPT)
        stream = sk.stream("openai", MODEL, "hello", client=server.client("openai"))
        run_sync(stream.pipe(_retry(), ops.take_until_match("4242")))
        server.wait_for_request_end(-1, 5.0)
    (operation,) = telemetry.operations()
    first, second = telemetry.requests()
    telemetry.check_ended_once()
    assert attrs(first)["streamkit.end.outcome"] == "error"
    assert attrs(second)["streamkit.end.disposed_by"] == "take_until_match"
    assert attrs(operation)["streamkit.end.outcome"] == "disposed"
    assert attrs(operation)["streamkit.end.disposed_by"] == "take_until_match"


def test_attempts_running_out_is_an_error_call(telemetry: Telemetry) -> None:
    with ReplayServer(pace=0.001) as server:
        for _ in range(3):
            server.push(Reply(TRANSCRIPT, fault=Fault(http_error=503)))
        stream = sk.stream("openai", MODEL, "hello", client=server.client("openai"))
        _, error = collect_sync(stream.pipe(_retry()))
    assert error is not None
    (operation,) = telemetry.operations()
    assert len(telemetry.requests()) == 3
    telemetry.check_ended_once()
    a = attrs(operation)
    assert a["streamkit.attempts"] == 3
    assert a["streamkit.end.outcome"] == "error"
    assert a["error.type"] == f"{type(error).__module__}.{type(error).__qualname__}"
    assert operation.status.status_code is StatusCode.ERROR


def test_disposed_during_the_backoff(telemetry: Telemetry) -> None:
    with ReplayServer(pace=0.001) as server:
        server.push(Reply(TRANSCRIPT, fault=Fault(http_error=503)))
        stream = sk.stream("openai", MODEL, "hello", client=server.client("openai"))
        subscription = stream.pipe(ops.retry_on_error(3, backoff=30.0)).subscribe(
            on_error=lambda _e: None
        )
        server.wait_for_request_end(-1, 5.0)
        telemetry.wait_for(1, SpanKind.CLIENT)
        subscription.dispose()
    (operation,) = telemetry.operations()
    telemetry.check_ended_once()
    assert attrs(operation)["streamkit.end.outcome"] == "disposed"
    assert attrs(operation)["streamkit.attempts"] == 1


def test_disposed_during_the_backoff_after_a_timed_out_attempt_is_a_dispose(
    telemetry: Telemetry,
) -> None:
    with ReplayServer(pace=0.001) as server:
        server.push(Reply(TRANSCRIPT, fault=Fault(stall_before=5.0)))
        stream = sk.stream("openai", MODEL, "hello", client=server.client("openai"))
        subscription = stream.pipe(
            ops.first_chunk_timeout(0.2), ops.retry_on_error(3, backoff=30.0)
        ).subscribe(on_error=lambda _e: None)
        telemetry.wait_for(1, SpanKind.CLIENT)
        subscription.dispose()
    (attempt,) = telemetry.requests()
    (operation,) = telemetry.operations()
    telemetry.check_ended_once()
    assert attrs(attempt)["streamkit.end.outcome"] == "timeout"
    assert attrs(operation)["streamkit.end.outcome"] == "disposed"
    assert attrs(operation)["streamkit.end.disposed_by"] == "unknown"


# -- virtual time ----------------------------------------------------------------------------
def _cold(scheduler: TestScheduler, *messages: Any) -> Any:
    return scheduler.create_cold_observable(list(messages))


def test_the_operation_span_ends_when_the_subscriber_disposes(telemetry: Telemetry) -> None:
    scheduler = TestScheduler()
    source = _cold(scheduler, on_next(10, sk.Chunk(provider="openai", content="a")))
    scheduler.start(lambda: source.pipe(ops.retry_on_error(2, scheduler=scheduler)), disposed=300)
    (operation,) = telemetry.operations()
    telemetry.check_ended_once()
    assert operation.name == "streamkit.retry_on_error"  # not a Stream: no model to name
    assert attrs(operation)["streamkit.end.outcome"] == "disposed"
    assert attrs(operation)["streamkit.attempts"] == 1


def test_nothing_is_open_before_the_end_and_it_ends_at_completion(telemetry: Telemetry) -> None:
    scheduler = TestScheduler()
    failing = _cold(scheduler, on_error(20, sk.IncompleteStreamError("openai", "[DONE]")))
    working = _cold(
        scheduler, on_next(10, sk.Chunk(provider="openai", content="a")), on_completed(20)
    )
    sources = iter([failing, working])
    from reactivex import defer

    pipeline = defer(lambda _s: next(sources)).pipe(
        ops.retry_on_error(2, backoff=5, jitter=0.0, scheduler=scheduler)
    )
    scheduler.advance_to(0)
    results = scheduler.start(lambda: pipeline, disposed=1000)
    assert kind_of(results.messages[-1]) == "C"
    (operation,) = telemetry.operations()
    a = attrs(operation)
    assert a["streamkit.end.outcome"] == "completed"
    assert a["streamkit.attempts"] == 2
    assert [e.name for e in operation.events] == ["streamkit.retry", "streamkit.end"]


# -- a property ------------------------------------------------------------------------------
@given(breaks=st.lists(st.booleans(), min_size=1, max_size=4), attempts=st.integers(1, 4))
def test_the_operation_span_ends_once_whatever_the_faults(
    breaks: list[bool], attempts: int
) -> None:
    from tests.telemetry._harness import Telemetry as Harness

    harness = Harness()
    try:
        scheduler = TestScheduler()
        made: list[Any] = []

        def next_source(_scheduler: Any) -> Any:
            fails = breaks[len(made)] if len(made) < len(breaks) else False
            last = (
                on_error(20, sk.IncompleteStreamError("openai", "[DONE]"))
                if fails
                else on_completed(20)
            )
            source = _cold(scheduler, on_next(10, sk.Chunk(provider="openai", content="a")), last)
            made.append(source)
            return source

        from reactivex import defer

        results = scheduler.start(
            lambda: defer(next_source).pipe(
                ops.retry_on_error(attempts, backoff=1, jitter=0.0, scheduler=scheduler)
            ),
            disposed=10_000,
        )
        (operation,) = harness.operations()
        harness.check_ended_once()
        a = attrs(operation)
        assert a["streamkit.attempts"] == len(made)
        kind = kind_of(results.messages[-1])
        assert a["streamkit.end.outcome"] == ("completed" if kind == "C" else "error")
    finally:
        harness.close()
