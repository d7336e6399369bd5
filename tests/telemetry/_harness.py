"""The telemetry test harness (used by the fixtures in ``conftest.py`` and by the fault
matrix): streamkit instrumented with the OpenTelemetry SDK's
in-memory exporter and metric reader, and a span processor that checks every span
started is ended, exactly once."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import streamkit as sk


class EndTracker(SpanProcessor):
    """Counts each span's starts and ends (the SDK ignores a second ``end()`` with a
    warning, so the warning is what shows a double end: see :class:`Telemetry`)."""

    def __init__(self) -> None:
        self.started: dict[int, str] = {}
        self.ended: dict[int, int] = {}
        self._lock = threading.Lock()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        with self._lock:
            self.started[span.context.span_id] = span.name

    def on_end(self, span: ReadableSpan) -> None:
        assert span.context is not None
        with self._lock:
            self.ended[span.context.span_id] = self.ended.get(span.context.span_id, 0) + 1

    def open_spans(self) -> list[str]:
        """Names of the spans started and not ended."""
        with self._lock:
            return [name for key, name in self.started.items() if key not in self.ended]


class _DoubleEnds(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class Telemetry:
    """What the tests read: finished spans, metric points, open spans."""

    def __init__(self, *, capture_content: bool = False, chunk_timing: bool | None = None) -> None:
        # chunk_timing=None: instrument()'s own default, as users get it
        self.exporter = InMemorySpanExporter()
        self.tracker = EndTracker()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(self.tracker)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.tracer = self.tracer_provider.get_tracer("tests")
        flags: dict[str, bool] = {"capture_content": capture_content}
        if chunk_timing is not None:
            flags["chunk_timing"] = chunk_timing
        self.instrumentation = sk.telemetry.instrument(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider, **flags
        )
        self._warnings = _DoubleEnds()
        logging.getLogger("opentelemetry").addHandler(self._warnings)

    # -- spans -----------------------------------------------------------------------
    def spans(self) -> list[ReadableSpan]:
        """Every finished span, in the order they ended."""
        return list(self.exporter.get_finished_spans())

    def requests(self) -> list[ReadableSpan]:
        """The finished request spans (CLIENT kind), in the order they started."""
        spans = [s for s in self.spans() if s.kind is SpanKind.CLIENT]
        return sorted(spans, key=lambda s: s.start_time or 0)

    def operations(self) -> list[ReadableSpan]:
        """The finished spans of multi-attempt operators (``streamkit.operator`` set)."""
        return [s for s in self.spans() if (s.attributes or {}).get("streamkit.operator")]

    def wait_for(self, count: int, kind: SpanKind | None = None, timeout: float = 10) -> None:
        """Wait until ``count`` spans (of ``kind``) have ended; spans of a disposed
        sync stream end on another thread."""
        deadline = time.monotonic() + timeout
        while True:
            spans = [s for s in self.spans() if kind is None or s.kind is kind]
            if len(spans) >= count or time.monotonic() > deadline:
                return
            time.sleep(0.005)

    def check_ended_once(self) -> None:
        """Every span started was ended, and none was ended twice."""
        assert self.tracker.open_spans() == [], "spans never ended"
        # the SDK ignores a second end() with a warning (checked next), and this counts
        # what reached the processors, in case an SDK passed one on
        assert all(count == 1 for count in self.tracker.ended.values())
        doubles = [m for m in self._warnings.messages if "ended span" in m]
        assert doubles == [], doubles

    # -- metrics ---------------------------------------------------------------------
    def points(self, name: str) -> list[HistogramDataPoint]:
        """The histogram points of metric ``name`` (one per attribute set)."""
        data = self.reader.get_metrics_data()
        found: list[HistogramDataPoint] = []
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)  # type: ignore[arg-type]
        return found

    def close(self) -> None:
        self.instrumentation.uninstrument()
        logging.getLogger("opentelemetry").removeHandler(self._warnings)
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def attrs(span: ReadableSpan) -> dict[str, Any]:
    """A span's attributes as a plain dict (tuples for sequences)."""
    return dict(span.attributes or {})


def event_names(span: ReadableSpan) -> list[str]:
    """The names of a span's events, in order."""
    return [event.name for event in span.events]
