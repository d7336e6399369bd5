"""One ended span per request on every exit path, with the stream's own figures, on the
replay server with the real SDK clients."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from reactivex import operators as rx

import streamkit as sk
from streamkit import ops
from streamkit._lifecycle import LifecycleObserver, StreamEnd, observing
from streamkit.testing import Fault, ReplayServer, Reply
from tests.ops._pipelines import collect_sync, run_async, run_sync
from tests.telemetry._harness import Telemetry, attrs, event_names

MODEL = "replayed-model"
ROOT = Path(__file__).resolve().parents[2]
CASES = [
    pytest.param("openai", "openai/chat-text-usage", id="openai"),
    pytest.param("anthropic", "anthropic/messages-text", id="anthropic"),
]


class _Ends(LifecycleObserver):
    """The end records of the requests made inside ``observing(...)``."""

    def __init__(self) -> None:
        self.ends: list[StreamEnd] = []

    def on_end(self, end: StreamEnd) -> None:
        self.ends.append(end)


def _stream(server: ReplayServer, provider: str = "openai", **kwargs: Any) -> sk.Stream:
    return sk.stream(provider, MODEL, "hello", client=server.client(provider, **kwargs))


def _tapped(stream: sk.Stream, seen: list[sk.Chunk]) -> Any:
    """The stream, counting what the source emitted."""
    return stream.pipe(rx.do_action(on_next=seen.append))


# -- completion ----------------------------------------------------------------------------
@pytest.mark.parametrize(("provider", "transcript"), CASES)
def test_a_completed_stream_has_one_span_with_its_own_figures(
    telemetry: Telemetry, provider: str, transcript: str
) -> None:
    seen: list[sk.Chunk] = []
    ends = _Ends()
    with ReplayServer(transcript) as server, observing(ends):
        stream = _stream(server, provider)
        (response,) = run_sync(_tapped(stream, seen).pipe(ops.to_call_response()))
    (span,) = telemetry.requests()
    telemetry.check_ended_once()
    a = attrs(span)
    assert span.name == f"chat {MODEL}"
    assert span.kind is SpanKind.CLIENT
    assert span.parent is None
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == provider
    assert a["gen_ai.system"] == provider
    assert a["gen_ai.request.model"] == MODEL
    assert a["gen_ai.response.model"] == response.model
    assert a["gen_ai.response.id"] == response.id
    assert list(a["gen_ai.response.finish_reasons"]) == response.finish_reasons
    assert response.usage is not None
    assert a["gen_ai.usage.input_tokens"] == response.usage.input_tokens
    assert a["gen_ai.usage.output_tokens"] == response.usage.output_tokens
    assert a["streamkit.usage.source"] == "reported"
    assert a["streamkit.end.outcome"] == "completed"
    assert a["streamkit.chunks"] == len(seen)
    assert "streamkit.end.disposed_by" not in a and "error.type" not in a
    assert a["gen_ai.response.time_to_first_chunk"] > 0
    assert event_names(span) == ["streamkit.first_chunk", "streamkit.end"]
    assert span.status.status_code is StatusCode.UNSET
    # the span's times and cost are those of the stream's own end record
    (end,) = ends.ends
    assert end.cost.amount is not None and end.cost.amount > 0
    assert a["streamkit.cost"] == float(end.cost.amount)
    assert span.start_time == end.start.started_ns and span.end_time == end.ended_ns


async def test_an_async_stream_has_the_same_span(telemetry: Telemetry) -> None:
    with ReplayServer("openai/chat-text-usage") as server:
        client = server.client("openai", async_=True)
        stream = sk.stream("openai", MODEL, "hello", client=client)
        (response,) = await run_async(stream.pipe(ops.to_call_response()))
        await client.close()
    (span,) = telemetry.requests()
    telemetry.check_ended_once()
    assert attrs(span)["streamkit.end.outcome"] == "completed"
    assert attrs(span)["gen_ai.usage.output_tokens"] == response.usage.output_tokens


def _setter(event: threading.Event) -> Callable[[Exception], None]:
    """An on_error that sets ``event``."""
    return lambda _error: event.set()


def test_the_request_span_is_a_child_of_the_subscribers_current_span(
    telemetry: Telemetry,
) -> None:
    with ReplayServer("openai/chat-text-usage") as server:
        stream = _stream(server)
        with telemetry.tracer.start_as_current_span("handle request") as app:
            run_sync(stream.pipe(ops.to_call_response()))
    (span,) = telemetry.requests()
    assert span.parent is not None
    assert span.parent.span_id == app.get_span_context().span_id
    assert span.context.trace_id == app.get_span_context().trace_id


def test_iteration_is_one_request_span_with_the_streams_totals(telemetry: Telemetry) -> None:
    with ReplayServer("anthropic/messages-text") as server:
        stream = _stream(server, "anthropic")
        for _chunk, _tool in stream:
            pass
        for _chunk, _tool in stream:  # a replay: no new request, no new span
            pass
    (span,) = telemetry.requests()
    a = attrs(span)
    assert stream.usage is not None
    assert a["gen_ai.usage.input_tokens"] == stream.usage.input_tokens
    assert a["gen_ai.usage.output_tokens"] == stream.usage.output_tokens
    assert a["gen_ai.response.id"] == stream.id
    assert list(a["gen_ai.response.finish_reasons"]) == stream.finish_reasons


# -- stopped early ---------------------------------------------------------------------
def test_take_until_match_says_who_disposed_and_what_was_received(telemetry: Telemetry) -> None:
    seen: list[sk.Chunk] = []
    with ReplayServer("openai/chat-text-usage", pace=0.005) as server:
        stream = _stream(server)
        run_sync(_tapped(stream, seen).pipe(ops.take_until_match("4242")))
        server.wait_for_request_end(-1, 5.0)
    (span,) = telemetry.requests()
    telemetry.check_ended_once()
    a = attrs(span)
    assert a["streamkit.end.outcome"] == "disposed"
    assert a["streamkit.end.disposed_by"] == "take_until_match"
    assert a["streamkit.chunks"] == len(seen)
    assert a["streamkit.usage.source"] in ("estimated", "mixed")
    assert a["gen_ai.usage.output_tokens"] > 0
    assert span.status.status_code is StatusCode.UNSET


def test_take_n_is_recorded_as_take(telemetry: Telemetry) -> None:
    with ReplayServer("openai/chat-text-usage", pace=0.005) as server:
        run_sync(_stream(server).pipe(rx.take(3)))
    (span,) = telemetry.requests()
    assert attrs(span)["streamkit.end.disposed_by"] == "take"
    assert attrs(span)["streamkit.chunks"] == 3


def test_break_out_of_iteration_is_recorded_as_break(telemetry: Telemetry) -> None:
    with ReplayServer("openai/chat-text-usage", pace=0.005) as server:
        stream = _stream(server)
        for _chunk, _tool in stream:
            break
    (span,) = telemetry.requests()
    telemetry.check_ended_once()
    assert attrs(span)["streamkit.end.outcome"] == "disposed"
    assert attrs(span)["streamkit.end.disposed_by"] == "break"
    assert attrs(span)["streamkit.chunks"] == 1


def test_a_dispose_from_another_thread_ends_the_span_once(telemetry: Telemetry) -> None:
    with ReplayServer("openai/chat-text-usage", pace=0.05) as server:
        first = threading.Event()
        subscription = _stream(server).subscribe(lambda _chunk: first.set())
        assert first.wait(5)
        disposer = threading.Thread(target=subscription.dispose)
        disposer.start()
        disposer.join()
        subscription.dispose()  # a second dispose changes nothing
        server.wait_for_request_end(-1, 5.0)
    telemetry.wait_for(1, SpanKind.CLIENT)
    (span,) = telemetry.requests()
    telemetry.check_ended_once()
    assert attrs(span)["streamkit.end.outcome"] == "disposed"
    assert attrs(span)["streamkit.end.disposed_by"] == "unknown"


# -- failures ----------------------------------------------------------------------------
def test_an_http_error_is_an_error_span_with_only_its_type(telemetry: Telemetry) -> None:
    with ReplayServer(Reply("openai/chat-text-usage", fault=Fault(http_error=500))) as server:
        _, error = collect_sync(_stream(server))
    assert error is not None
    (span,) = telemetry.requests()
    a = attrs(span)
    assert a["streamkit.end.outcome"] == "error"
    assert a["error.type"] == f"{type(error).__module__}.{type(error).__qualname__}"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == a["error.type"]  # the type, never the message
    assert a["streamkit.chunks"] == 0
    assert "streamkit.first_chunk" not in event_names(span)
    (duration,) = telemetry.points("gen_ai.client.operation.duration")
    assert dict(duration.attributes or {})["error.type"] == a["error.type"]


def test_a_cut_stream_is_an_incomplete_stream_error(telemetry: Telemetry) -> None:
    fault = Fault(close_after_events=4)
    with ReplayServer(Reply("openai/chat-text-usage", fault=fault), pace=0.001) as server:
        _, error = collect_sync(_stream(server))
    assert isinstance(error, sk.IncompleteStreamError)
    (span,) = telemetry.requests()
    assert attrs(span)["error.type"] == "streamkit.IncompleteStreamError"
    assert attrs(span)["streamkit.chunks"] > 0


@pytest.mark.parametrize(
    ("fault", "operator", "kind"),
    [
        (Fault(stall_before=5.0), ops.first_chunk_timeout(0.2), "first_chunk"),
        (Fault(stall_after_events=(3, 5.0)), ops.idle_timeout(0.2), "idle"),
        (Fault(stall_after_events=(3, 5.0)), ops.total_timeout(0.3), "total"),
    ],
    ids=["first_chunk", "idle", "total"],
)
def test_a_timeout_says_which(telemetry: Telemetry, fault: Fault, operator: Any, kind: str) -> None:
    with ReplayServer(Reply("openai/chat-text-usage", fault=fault), pace=0.001) as server:
        _, error = collect_sync(_stream(server).pipe(operator))
    assert isinstance(error, sk.StreamTimeoutError)
    (span,) = telemetry.requests()
    telemetry.check_ended_once()
    a = attrs(span)
    assert a["streamkit.end.outcome"] == "timeout"
    assert a["streamkit.end.timeout"] == kind
    assert a["error.type"] == "streamkit.StreamTimeoutError"
    assert span.status.status_code is StatusCode.ERROR


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(
    ("kind", "fault", "deadlines"),
    [
        # the server accepts the request and sends nothing, not even its headers: the
        # SDK's per-request timeout (given Deadlines.headers) ends the wait
        ("headers", Fault(http_error=503, stall_before=3.0), sk.Deadlines(headers=0.3)),
        ("total", Fault(stall_after_events=(3, 5.0)), sk.Deadlines(total=0.3)),
    ],
    ids=["headers", "total"],
)
async def test_a_deadline_says_which(
    telemetry: Telemetry, async_: bool, kind: str, fault: Fault, deadlines: sk.Deadlines
) -> None:
    with ReplayServer(Reply("openai/chat-text-usage", fault=fault), pace=0.001) as server:
        client = server.client("openai", async_=async_)
        stream = sk.stream("openai", MODEL, "hello", client=client, deadlines=deadlines)
        error: Exception | None = None
        if async_:
            try:
                await run_async(stream)
            except sk.StreamTimeoutError as raised:
                error = raised
            await client.close()
        else:
            _, error = await asyncio.to_thread(collect_sync, stream)
    assert isinstance(error, sk.StreamTimeoutError), repr(error)
    assert error.kind.replace(" ", "_") == kind
    telemetry.wait_for(1, SpanKind.CLIENT)
    (span,) = telemetry.requests()
    telemetry.check_ended_once()
    a = attrs(span)
    assert a["streamkit.end.outcome"] == "timeout"
    assert a["streamkit.end.timeout"] == kind
    assert a["error.type"] == "streamkit.StreamTimeoutError"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "streamkit.StreamTimeoutError"
    (duration,) = telemetry.points("gen_ai.client.operation.duration")
    assert dict(duration.attributes or {})["error.type"] == a["error.type"]


# -- the loop closing, the garbage collector -----------------------------------------------
def test_the_event_loop_closing_ends_the_span(telemetry: Telemetry) -> None:
    with ReplayServer("openai/chat-text-usage", pace=0.05) as server:
        received: list[sk.Chunk] = []

        async def main() -> None:
            client = server.client("openai", async_=True)
            stream = sk.stream("openai", MODEL, "hello", client=client)
            stream.subscribe(received.append)  # never disposed: the loop ends under it
            while not received:
                await asyncio.sleep(0.01)

        asyncio.run(main())  # cancels the stream's task, then closes the loop
        telemetry.wait_for(1, SpanKind.CLIENT)
    (span,) = telemetry.requests()
    telemetry.check_ended_once()
    assert attrs(span)["streamkit.end.outcome"] in ("disposed", "abandoned")
    assert attrs(span)["streamkit.chunks"] >= 1


LOOP_CLOSED_UNDER_A_STREAM = """
import asyncio, json, sys
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
import streamkit as sk
from streamkit.testing import ReplayServer

class Print(SpanExporter):
    def export(self, spans):
        for span in spans:
            print(json.dumps({"name": span.name, **dict(span.attributes)}), flush=True)
        return SpanExportResult.SUCCESS

provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(Print()))
sk.telemetry.instrument(tracer_provider=provider)
server = ReplayServer("openai/chat-text-usage", pace=0.05).start()
loop = asyncio.new_event_loop()
received = []

async def start():
    client = server.client("openai", async_=True)
    sk.stream("openai", "m", "hello", client=client).subscribe(received.append)
    while not received:
        await asyncio.sleep(0.01)

loop.run_until_complete(start())
loop.close()  # the stream's task is still pending: it will never run again
print("closed", flush=True)
"""


def test_a_loop_closed_without_cancelling_its_tasks_ends_the_span_at_exit() -> None:
    """``loop.close()`` with the stream's task pending (asyncio.run cancels first): the
    task can never run again, and httpx's anyio keeps it reachable, so the request ends
    as abandoned when the process exits, before the SDK's own shutdown exports it."""
    result = subprocess.run(
        [sys.executable, "-c", LOOP_CLOSED_UNDER_A_STREAM],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = result.stdout.splitlines()
    assert "closed" in lines, result.stderr
    spans = [json.loads(line) for line in lines[lines.index("closed") + 1 :]]
    assert len(spans) == 1, (lines, result.stderr)
    assert spans[0]["streamkit.end.outcome"] == "abandoned"
    assert spans[0]["streamkit.chunks"] >= 1


async def test_an_async_stream_disposed_from_another_thread(telemetry: Telemetry) -> None:
    with ReplayServer("openai/chat-text-usage", pace=0.05) as server:
        client = server.client("openai", async_=True)
        first = asyncio.Event()
        subscription = sk.stream("openai", MODEL, "hello", client=client).subscribe(
            lambda _chunk: first.set()
        )
        await asyncio.wait_for(first.wait(), 5)
        await asyncio.to_thread(subscription.dispose)
        telemetry.wait_for(1, SpanKind.CLIENT)
        await asyncio.sleep(0.05)  # the task's cancellation runs on the loop
        await client.close()
    (span,) = telemetry.requests()
    telemetry.check_ended_once()
    assert attrs(span)["streamkit.end.outcome"] == "disposed"
    assert attrs(span)["streamkit.end.disposed_by"] == "unknown"


def test_a_dropped_iterator_ends_the_span_as_a_break(telemetry: Telemetry) -> None:
    """An iteration dropped half-way: closing the collected generator stops the pull
    (``GeneratorExit``), as a ``break`` does."""
    with ReplayServer("openai/chat-text-usage", pace=0.01) as server:
        stream = _stream(server)
        iterator = iter(stream)
        next(iterator)
        del iterator
        gc.collect()
        telemetry.wait_for(1, SpanKind.CLIENT)
    (span,) = telemetry.requests()
    telemetry.check_ended_once()
    a = attrs(span)
    assert (a["streamkit.end.outcome"], a["streamkit.end.disposed_by"]) == ("disposed", "break")
    assert a["streamkit.chunks"] == 1
    assert span.status.status_code is StatusCode.UNSET


def _abandoned(telemetry: Telemetry) -> None:
    """The one request span ended as abandoned, with its end event and estimated usage,
    and not as an error."""
    telemetry.wait_for(1, SpanKind.CLIENT)
    assert telemetry.tracker.open_spans() == [], "the abandoned request's span never ended"
    (span,) = telemetry.requests()
    telemetry.check_ended_once()
    a = attrs(span)
    assert a["streamkit.end.outcome"] == "abandoned"
    assert "streamkit.end.disposed_by" not in a and "error.type" not in a
    assert a["streamkit.chunks"] == 0
    assert a["streamkit.usage.source"] == "estimated"
    assert a["gen_ai.usage.input_tokens"] > 0
    (end,) = [event for event in span.events if event.name == "streamkit.end"]
    assert dict(end.attributes or {})["streamkit.end.outcome"] == "abandoned"
    assert span.status.status_code is StatusCode.UNSET


def test_a_subscription_dropped_before_it_ran_is_ended_by_the_gc(telemetry: Telemetry) -> None:
    """Subscribed on a scheduler that never runs its action, then dropped, neither
    consumed nor disposed: only the pull's finalizer can end the request. This test fails
    if that finalizer (``Recorder.begin``'s ``weakref.finalize``) is removed."""
    from reactivex.testing import TestScheduler

    scheduler = TestScheduler()
    with ReplayServer("openai/chat-text-usage") as server:
        subscription = _stream(server).subscribe(lambda _chunk: None, scheduler=scheduler)
        assert telemetry.spans() == []  # started, not ended
        del subscription, scheduler
        gc.collect()
        _abandoned(telemetry)
        assert server.requests == []  # never sent


def test_an_async_subscription_on_a_loop_that_never_ran_is_ended_by_the_gc(
    telemetry: Telemetry,
) -> None:
    """An async stream subscribed to a loop that is closed without ever running: the
    pull's task was never created; once the loop and the subscription are dropped the
    collector ends the request."""
    from reactivex.scheduler.eventloop import AsyncIOThreadSafeScheduler

    loop = asyncio.new_event_loop()
    with ReplayServer("openai/chat-text-usage") as server:
        client = server.client("openai", async_=True)
        stream = sk.stream("openai", MODEL, "hello", client=client)
        subscription = stream.subscribe(
            lambda _chunk: None, scheduler=AsyncIOThreadSafeScheduler(loop)
        )
        loop.close()
        del subscription, loop
        gc.collect()
        _abandoned(telemetry)


# -- share_replay --------------------------------------------------------------------------
def test_share_replay_is_one_request_span_however_many_subscribers(telemetry: Telemetry) -> None:
    with ReplayServer("openai/chat-text-usage", pace=0.002) as server:
        shared = _stream(server).pipe(ops.share_replay())
        with telemetry.tracer.start_as_current_span("first subscriber") as app:
            done = [threading.Event() for _ in range(3)]
            subscriptions = [
                shared.subscribe(on_completed=event.set, on_error=_setter(event)) for event in done
            ]
        assert all(event.wait(5) for event in done)
        late = run_sync(shared)  # after the end: the replay, no new request
        for subscription in subscriptions:
            subscription.dispose()
    assert len(server.requests) == 1
    (span,) = telemetry.requests()
    telemetry.check_ended_once()
    assert span.parent is not None and span.parent.span_id == app.get_span_context().span_id
    assert attrs(span)["streamkit.chunks"] == len(late)


# -- content ---------------------------------------------------------------------------------
def test_content_is_not_recorded_unless_asked(telemetry: Telemetry) -> None:
    with ReplayServer("openai/chat-text-usage") as server:
        run_sync(_stream(server).pipe(ops.to_call_response()))
    (span,) = telemetry.requests()
    assert "gen_ai.input.messages" not in attrs(span)
    assert "gen_ai.output.messages" not in attrs(span)


def test_capture_content_records_the_messages_and_the_text(telemetry_factory: Any) -> None:
    harness = telemetry_factory(capture_content=True)
    with ReplayServer("openai/chat-text-usage") as server:
        (response,) = run_sync(_stream(server).pipe(ops.to_call_response()))
    (span,) = harness.requests()
    inputs = json.loads(attrs(span)["gen_ai.input.messages"])
    outputs = json.loads(attrs(span)["gen_ai.output.messages"])
    assert inputs == [{"role": "user", "parts": [{"type": "text", "content": "hello"}]}]
    assert outputs[0]["role"] == "assistant"
    assert outputs[0]["parts"] == [{"type": "text", "content": response.content}]


def test_request_parameters_become_request_attributes_and_nothing_else(
    telemetry: Telemetry,
) -> None:
    with ReplayServer("openai/chat-text-usage") as server:
        stream = sk.stream(
            "openai",
            MODEL,
            "hello",
            client=server.client("openai"),
            max_tokens=50,
            temperature=0.5,
            user="someone@example.com",
        )
        run_sync(stream)
    (span,) = telemetry.requests()
    a = attrs(span)
    assert a["gen_ai.request.max_tokens"] == 50
    assert a["gen_ai.request.temperature"] == 0.5
    assert "someone@example.com" not in json.dumps({k: str(v) for k, v in a.items()})


# -- metrics ---------------------------------------------------------------------------------
def test_the_metrics_equal_the_streams_figures(telemetry_factory: Any) -> None:
    telemetry = telemetry_factory(chunk_timing=True)  # the per-chunk histogram too
    seen: list[sk.Chunk] = []
    with ReplayServer("openai/chat-text-usage", pace=0.001) as server:
        (response,) = run_sync(_tapped(_stream(server), seen).pipe(ops.to_call_response()))
    usage = response.usage
    assert usage is not None
    tokens = {
        dict(p.attributes or {})["gen_ai.token.type"]: p
        for p in telemetry.points("gen_ai.client.token.usage")
    }
    assert tokens["input"].sum == usage.input_tokens and tokens["input"].count == 1
    assert tokens["output"].sum == usage.output_tokens and tokens["output"].count == 1
    point = dict(tokens["input"].attributes or {})
    assert point["gen_ai.operation.name"] == "chat"
    assert point["gen_ai.provider.name"] == "openai"
    assert point["gen_ai.request.model"] == MODEL
    assert point["gen_ai.response.model"] == response.model
    (duration,) = telemetry.points("gen_ai.client.operation.duration")
    assert duration.count == 1
    assert list(duration.explicit_bounds)[:3] == [0.01, 0.02, 0.04]
    (first,) = telemetry.points("gen_ai.client.operation.time_to_first_chunk")
    assert first.count == 1
    (gaps,) = telemetry.points("gen_ai.client.operation.time_per_output_chunk")
    assert gaps.count == len(seen) - 1
    (span,) = telemetry.requests()
    assert first.sum == pytest.approx(attrs(span)["gen_ai.response.time_to_first_chunk"], abs=1e-3)


def test_without_chunk_timing_nothing_is_recorded_per_chunk(telemetry_factory: Any) -> None:
    harness = telemetry_factory(chunk_timing=False)
    with ReplayServer("openai/chat-text-usage", pace=0.001) as server:
        (response,) = run_sync(_stream(server).pipe(ops.to_call_response()))
    assert harness.points("gen_ai.client.operation.time_per_output_chunk") == []
    (first,) = harness.points("gen_ai.client.operation.time_to_first_chunk")
    assert first.count == 1
    (span,) = harness.requests()
    assert attrs(span)["gen_ai.usage.output_tokens"] == response.usage.output_tokens


def test_by_default_nothing_is_recorded_per_chunk_but_the_span_has_the_timing(
    telemetry_factory: Any,
) -> None:
    """The per-chunk histogram is opt-in (its record is the OpenTelemetry SDK's cost per
    chunk); the span still says when the first chunk came, how many came, and when the
    request ended."""
    harness = telemetry_factory()  # instrument()'s defaults
    seen: list[sk.Chunk] = []
    with ReplayServer("openai/chat-text-usage", pace=0.001) as server:
        run_sync(_tapped(_stream(server), seen))
    assert harness.points("gen_ai.client.operation.time_per_output_chunk") == []
    (first,) = harness.points("gen_ai.client.operation.time_to_first_chunk")
    (duration,) = harness.points("gen_ai.client.operation.duration")
    assert (first.count, duration.count) == (1, 1)
    (span,) = harness.requests()
    assert attrs(span)["streamkit.chunks"] == len(seen) > 1
    assert attrs(span)["gen_ai.response.time_to_first_chunk"] == pytest.approx(first.sum)


# -- on and off ------------------------------------------------------------------------------
def test_after_uninstrument_no_span_is_made(telemetry: Telemetry) -> None:
    telemetry.instrumentation.uninstrument()
    assert not sk.telemetry.is_instrumented()
    with ReplayServer("openai/chat-text-usage") as server:
        run_sync(_stream(server))
    assert telemetry.spans() == []


def test_a_request_running_when_uninstrumented_still_ends_its_span(telemetry: Telemetry) -> None:
    with ReplayServer("openai/chat-text-usage", pace=0.01) as server:
        first = threading.Event()
        ended = threading.Event()
        _stream(server).subscribe(lambda _c: first.set(), on_completed=ended.set)
        assert first.wait(5)
        telemetry.instrumentation.uninstrument()
        assert ended.wait(5)
    telemetry.wait_for(1, SpanKind.CLIENT)
    (span,) = telemetry.requests()
    telemetry.check_ended_once()
    assert attrs(span)["streamkit.end.outcome"] == "completed"


def test_instrument_rejects_flags_that_are_not_bools() -> None:
    with pytest.raises(TypeError, match="capture_content"):
        sk.telemetry.instrument(capture_content="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="chunk_timing"):
        sk.telemetry.instrument(chunk_timing=1)  # type: ignore[arg-type]
    assert not sk.telemetry.is_instrumented()


def test_instrumenting_again_replaces_the_previous_instrumentation(
    telemetry: Telemetry, telemetry_factory: Any
) -> None:
    second = telemetry_factory()
    assert not telemetry.instrumentation.active and second.instrumentation.active
    with ReplayServer("openai/chat-text-usage") as server:
        run_sync(_stream(server))
    assert telemetry.spans() == [] and len(second.requests()) == 1
