"""The inter-chunk histogram (``gen_ai.client.operation.time_per_output_chunk``): every
gap after the first chunk recorded exactly once, whether the request's held gaps are
recorded because the buffer filled, because they waited long enough, or because the
request ended (on any thread), with the request's span as their exemplars' span."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from opentelemetry.trace import SpanKind

import streamkit as sk
from streamkit.telemetry import _otel
from streamkit.testing import ReplayServer, Reply, Transcript
from tests.telemetry._harness import Telemetry, attrs

MODEL = "replayed-model"
GAPS = "gen_ai.client.operation.time_per_output_chunk"


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """streamkit instrumented with the per-chunk histogram (opt-in)."""
    harness = Telemetry(chunk_timing=True)
    try:
        yield harness
    finally:
        harness.close()


def _openai_events(deltas: int) -> Iterator[str]:
    def event(delta: dict[str, object], finish: str | None = None) -> str:
        chunk = {
            "id": "chatcmpl-timing",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(chunk)}\n\n"

    yield event({"role": "assistant", "content": ""})
    for i in range(deltas):
        yield event({"content": f" w{i}"})
    yield event({}, "stop")


def _long_stream(deltas: int) -> Transcript:
    return Transcript.from_events(
        "openai", "chat.completions", _openai_events(deltas), name="synthetic/long"
    )


def _gap_count(telemetry: Telemetry) -> int:
    return sum(point.count for point in telemetry.points(GAPS))


def test_a_long_stream_records_each_gap_once_while_it_runs_and_at_its_end(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_otel, "GAPS_HELD_NS", 10**15)  # only the buffer's size decides
    counts: dict[int, int] = {}
    with ReplayServer(Reply(_long_stream(600))) as server:
        stream = sk.stream("openai", MODEL, "hello", client=server.client("openai"))
        for seen, _ in enumerate(stream, start=1):
            if seen in (100, 300, 513, 600):
                counts[seen] = _gap_count(telemetry)
    # A chunk is noted before it is delivered; the first has no gap; every 256 gaps
    # held are recorded together.
    assert counts == {100: 0, 300: 256, 513: 512, 600: 512}
    telemetry.wait_for(1, SpanKind.CLIENT)
    (span,) = telemetry.requests()
    chunks = attrs(span)["streamkit.chunks"]
    assert _gap_count(telemetry) == chunks - 1
    (point,) = telemetry.points(GAPS)
    duration = (span.end_time or 0) - (span.start_time or 0)
    assert 0 < point.sum <= duration * 1e-9  # the gaps lie within the request


def test_held_gaps_are_recorded_once_they_have_waited_long_enough(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_otel, "GAPS_HELD_NS", 0)  # no gap may wait
    with ReplayServer(Reply(_long_stream(20))) as server:
        stream = sk.stream("openai", MODEL, "hello", client=server.client("openai"))
        counts = [_gap_count(telemetry) for _ in stream]
    assert counts[:5] == [0, 1, 2, 3, 4]
    assert counts == list(range(len(counts)))


def test_the_gaps_exemplars_are_the_requests_span(telemetry: Telemetry) -> None:
    with ReplayServer(Reply(_long_stream(300))) as server:
        stream = sk.stream("openai", MODEL, "hello", client=server.client("openai"))
        for _ in stream:
            pass
    (span,) = telemetry.requests()
    (point,) = telemetry.points(GAPS)
    assert point.exemplars, "the SDK's trace-based exemplar filter saw no sampled span"
    assert {e.span_id for e in point.exemplars} == {span.context.span_id}
    assert {e.trace_id for e in point.exemplars} == {span.context.trace_id}


@pytest.mark.parametrize("round_", range(12))
def test_a_dispose_from_another_thread_never_records_a_gap_twice(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch, round_: int
) -> None:
    """The request ends on the disposing thread while the source's thread notes chunks
    and records full buffers (of 3 here): each gap is recorded at most once, and only
    the one of a chunk being noted at the end can be left out. (The two threads meet in
    the few instructions where it matters only by chance; the next test makes that
    interleaving happen.)"""
    monkeypatch.setattr(_otel, "GAPS_HELD", 3)
    with ReplayServer(Reply(_long_stream(3000))) as server:
        enough = threading.Event()
        seen = 0

        def on_next(_chunk: sk.Chunk) -> None:
            nonlocal seen
            seen += 1
            if seen == 40 + 7 * round_:
                enough.set()

        stream = sk.stream("openai", MODEL, "hello", client=server.client("openai"))
        subscription = stream.subscribe(on_next)
        assert enough.wait(10)
        disposer = threading.Thread(target=subscription.dispose)
        disposer.start()
        disposer.join()
        server.wait_for_request_end(-1, 10.0)
    telemetry.wait_for(1, SpanKind.CLIENT)
    (span,) = telemetry.requests()
    chunks = attrs(span)["streamkit.chunks"]
    assert chunks < 3000  # ended by the dispose, not by the stream's end
    assert chunks - 2 <= _gap_count(telemetry) <= chunks - 1


def test_a_full_buffer_the_end_already_took_is_not_recorded_again() -> None:
    """The interleaving the dispose test above can only hope to meet, made to happen:
    the source's thread finds its buffer full just as the request ends on another
    thread, which takes the buffer and records it first."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider

    from streamkit._lifecycle import Recorder

    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    tracers = TracerProvider()
    observer = _otel.OTelChunkObserver(
        tracers.get_tracer("test"),
        _otel.Instruments(meters.get_meter("test")),
        capture_content=False,
        chunk_timing=True,
    )
    try:
        recorder = Recorder("openai", MODEL, observers=(observer,))
        start = recorder.begin()
        for _ in range(5):
            recorder.chunk(sk.Chunk(provider="openai", content="x"))
        request = observer._requests[start.id]
        full = request.gaps
        assert full is not None and len(full) == 4
        recorder.complete()  # the end takes the buffer and records its four gaps
        observer._flush_gaps(request, full, start.started_ns)  # the late flush
        data = reader.get_metrics_data()
        assert data is not None
        (point,) = [
            p
            for r in data.resource_metrics
            for s in r.scope_metrics
            for m in s.metrics
            if m.name == GAPS
            for p in m.data.data_points
            if isinstance(p, HistogramDataPoint)
        ]
        assert point.count == 4
    finally:
        meters.shutdown()
        tracers.shutdown()


def test_chunk_timing_keeps_no_object_per_chunk() -> None:
    """ "Counted without a per-chunk allocation": over 20,000 chunks the observer keeps
    no more memory than one buffer of held times (8 bytes each), however many chunks
    came; the SDK's records, whose cost is the SDK's own, are left out."""
    import tracemalloc

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider

    from streamkit._lifecycle import Recorder

    class NoRecord:
        def record(self, amount: float, attributes: object = None) -> None:
            pass

    meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
    instruments = _otel.Instruments(meters.get_meter("test"))
    instruments.time_per_output_chunk = NoRecord()  # type: ignore[assignment]
    observer = _otel.OTelChunkObserver(
        TracerProvider().get_tracer("test"),
        instruments,
        capture_content=False,
        chunk_timing=True,
    )
    chunk = sk.Chunk(provider="openai", content="x")
    recorder = Recorder("openai", MODEL, observers=(observer,))
    recorder.begin()
    for _ in range(2 * _otel.GAPS_HELD):  # warm: the buffer has been swapped once
        recorder.chunk(chunk)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(True, _otel.__file__)]
        )
        for _ in range(20_000):
            recorder.chunk(chunk)
        after = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(True, _otel.__file__)]
        )
    finally:
        tracemalloc.stop()
        recorder.complete()
        meters.shutdown()
    kept = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert kept <= 8 * _otel.GAPS_HELD + 1024, kept


def _chunk_calls(chunk_timing: bool, chunks: int) -> int:
    """How many times the recorder calls the telemetry observer's ``on_chunk`` for a
    request of ``chunks`` chunks."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    from streamkit._lifecycle import Recorder, StreamStart

    meters = MeterProvider()
    observer = _otel.observer(
        TracerProvider().get_tracer("test"),
        _otel.Instruments(meters.get_meter("test")),
        capture_content=False,
        chunk_timing=chunk_timing,
    )
    on_chunk = observer.on_chunk
    calls = 0

    def counted(start: StreamStart, chunk: sk.Chunk, now_ns: int) -> None:
        nonlocal calls
        calls += 1
        on_chunk(start, chunk, now_ns)

    observer.on_chunk = counted  # type: ignore[method-assign]
    recorder = Recorder("openai", MODEL, observers=(observer,))
    recorder.begin()
    for _ in range(chunks):
        recorder.chunk(sk.Chunk(provider="openai", content="x"))
    recorder.complete()
    meters.shutdown()
    return calls


def test_the_default_observer_is_not_called_per_chunk() -> None:
    """Without chunk timing (the default) or content capture, the recorder never calls
    telemetry for a chunk; with it, once per chunk."""
    assert (_chunk_calls(False, 5), _chunk_calls(True, 5)) == (0, 5)
