"""``on_usage``: a pipeline's usage and cost, reported once at its end, whatever the end."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Literal, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SingleAssignmentDisposable

from streamkit._ledger import EndCollector, UsageReport
from streamkit._lifecycle import _unraisable, observing
from streamkit.ops._fusion import Sink, SubscribeUpstream, fusable

__all__ = ["on_usage"]

T = TypeVar("T")


def on_usage(fn: Callable[[UsageReport], object]) -> Callable[[Observable[T]], Observable[T]]:
    """Call ``fn`` exactly once per subscription with a
    :class:`~streamkit.UsageReport` of the requests made upstream: on completion, on
    an error, and when disposed (a ``break``, an early stop downstream, a client gone).

    The report holds every request (each attempt of ``retry_on_error``, aborted ones
    included, as they were billed), their total usage (each with its ``source``:
    ``reported``, ``estimated`` or ``mixed``) and cost. It is called before the
    terminal notification is passed on (on dispose, after upstream is disposed), on
    the thread that ended the subscription. An exception from ``fn`` is delivered
    downstream as the error (or, on dispose, to ``sys.unraisablehook``).

    Items pass through unchanged; place it anywhere after the stream. Under
    ``share_replay``, the one request is reported to the subscription that connected it.

    Raises ``TypeError`` for an ``fn`` that is not callable.

    Example:
        ```python
        stream.pipe(ops.take_until_match("END"), ops.on_usage(print))
        ```
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, not {type(fn).__name__}")

    def stage(observer: Sink[T], subscribe_upstream: SubscribeUpstream[T]) -> abc.DisposableBase:
        collector = EndCollector()
        upstream = SingleAssignmentDisposable()
        lock = threading.Lock()
        reported = False

        def report(
            outcome: Literal["completed", "error", "disposed"], error: Exception | None
        ) -> None:
            nonlocal reported
            with lock:
                if reported:
                    return
                reported = True
            # A downstream take(n) completes before it disposes: end the requests
            # first, so they are in the report (a no-op for an ended one).
            upstream.dispose()
            fn(UsageReport.of(outcome, error, collector.ends))

        def on_error(error: Exception) -> None:
            try:
                report("error", error)
            except Exception as failure:
                observer.on_error(failure)
                return
            observer.on_error(error)

        def on_completed() -> None:
            try:
                report("completed", None)
            except Exception as failure:
                observer.on_error(failure)
                return
            observer.on_completed()

        def dispose() -> None:
            upstream.dispose()
            try:
                report("disposed", None)
            except Exception as failure:
                _unraisable(failure, "Exception ignored in ops.on_usage's fn on dispose")

        with observing(collector):
            upstream.disposable = subscribe_upstream(observer.on_next, on_error, on_completed)
        return Disposable(dispose)

    return fusable(stage)
