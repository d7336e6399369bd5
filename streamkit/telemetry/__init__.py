"""Telemetry: OpenTelemetry GenAI spans and metrics for every request, and DEBUG logs.

Off by default, and then it costs nothing measurable: no OpenTelemetry import, and
per request three calls of the DEBUG request log, which return at once. Turn
it on once, at start-up (``pip install "streamkit[otel]"``: only ``opentelemetry-api``;
the application brings its SDK and exporters)::

    import streamkit as sk

    sk.telemetry.instrument()          # the global tracer and meter providers
    sk.telemetry.instrument(tracer_provider=..., meter_provider=..., capture_content=True)

Each request (each subscription of a ``Stream``, each iteration) gets one CLIENT span
named ``chat {model}`` with the GenAI semantic conventions' attributes, ended exactly
once on every path (completion, error, dispose from any thread, timeout, the event
loop closing, a stream collected by the garbage collector), with ``streamkit.*``
attributes for what the conventions lack (how the stream ended, chunks, usage source,
cost). ``ops.retry_on_error``, ``ops.fallback``, ``ops.hedge``, ``sk.race``,
``sk.first_match`` and ``sk.best_of`` add a parent span for the logical call, with one
child span per attempt (``streamkit.attempt.result``: won, lost, failed, cancelled).
See the docs page "Telemetry".

Logs: each module that logs has its own ``logging`` logger, named after it; request start,
first chunk and end are logged at DEBUG (logger ``streamkit.telemetry._logs``), and
nothing is logged above DEBUG on a normal run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

from streamkit._errors import StreamError
from streamkit._lifecycle import add_observer
from streamkit.telemetry import _operations
from streamkit.telemetry._logs import RequestLog

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["Instrumentation", "instrument", "is_instrumented", "uninstrument"]

INSTRUMENTATION_NAME = "streamkit"
"""The instrumentation scope name of streamkit's tracer and meter."""

_lock = threading.Lock()
_active: Instrumentation | None = None


class Instrumentation:
    """What :func:`instrument` turned on; :meth:`uninstrument` (or leaving a ``with``
    block) turns it off. Requests already running still end their spans."""

    def __init__(self, remove: Callable[[], None], capture_content: bool) -> None:
        self._remove: Callable[[], None] | None = remove
        self.capture_content = capture_content

    @property
    def active(self) -> bool:
        """Whether this instrumentation still records new requests."""
        return self._remove is not None

    def uninstrument(self) -> None:
        """Stop recording new requests (idempotent)."""
        global _active
        with _lock:
            remove, self._remove = self._remove, None
            if _active is self:
                _active = None
                _operations.install(None)
        if remove is not None:
            remove()

    def __enter__(self) -> Instrumentation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.uninstrument()

    def __repr__(self) -> str:
        state = "active" if self.active else "off"
        return f"Instrumentation({state}, capture_content={self.capture_content})"


def instrument(
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    capture_content: bool = False,
    chunk_timing: bool = False,
) -> Instrumentation:
    """Record a GenAI span and metrics for every request streamkit makes from now on.

    Args:
        tracer_provider: where spans go (default: OpenTelemetry's global provider, so
            an SDK configured later, or by auto-instrumentation, still receives them).
        meter_provider: where the metrics go (default: the global one).
        capture_content: also record the request messages and the received text
            (``gen_ai.input.messages`` / ``gen_ai.output.messages``). Off by default:
            prompts and completions often hold personal data. Credentials are never
            recorded, whatever this says.
        chunk_timing: also record ``gen_ai.client.operation.time_per_output_chunk``
            for every chunk after the first, as the conventions define it. Off by
            default: it is the only work telemetry would do per chunk, and one record
            costs 4 to 8 microseconds in the OpenTelemetry Python SDK (measured on
            1.45): in a burst, 6 to 10 per cent of a chunk's whole cost on the SDK path
            (``fast=False``) and a third of it on the default fast path (see the docs'
            telemetry page). Without it every span still carries the time to first
            chunk, the chunk count and the duration.

    Instrumenting again replaces the previous instrumentation. Returns an
    :class:`Instrumentation`, usable as a context manager.

    Raises :class:`~streamkit.StreamError` when ``opentelemetry-api`` is not installed
    (``pip install "streamkit[otel]"``), ``TypeError`` for a ``capture_content`` or
    ``chunk_timing`` that is not a bool.
    """
    global _active
    for name, value in (("capture_content", capture_content), ("chunk_timing", chunk_timing)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    try:
        from opentelemetry import metrics, trace

        from streamkit.telemetry._otel import Instruments, observer
    except ImportError as error:
        raise StreamError(
            'streamkit.telemetry needs opentelemetry-api: pip install "streamkit[otel]"'
        ) from error
    from streamkit import __version__

    tracer = trace.get_tracer(INSTRUMENTATION_NAME, __version__, tracer_provider=tracer_provider)
    meter = metrics.get_meter(INSTRUMENTATION_NAME, __version__, meter_provider=meter_provider)
    requests = observer(
        tracer, Instruments(meter), capture_content=capture_content, chunk_timing=chunk_timing
    )
    with _lock:
        previous = _active
    if previous is not None:
        previous.uninstrument()
    instrumentation = Instrumentation(add_observer(requests), capture_content)
    with _lock:
        _active = instrumentation
        _operations.install(requests)
    return instrumentation


def uninstrument() -> None:
    """Turn off the active instrumentation, if any."""
    with _lock:
        active = _active
    if active is not None:
        active.uninstrument()


def is_instrumented() -> bool:
    """Whether an instrumentation is recording new requests."""
    return _active is not None


_remove_request_log = add_observer(RequestLog())
