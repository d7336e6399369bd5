"""Recording a run: :func:`record` in virtual time, :func:`record_live` on real
observables."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.notification import Notification, OnCompleted, OnError, OnNext
from reactivex.scheduler import VirtualTimeScheduler
from reactivex.testing import TestScheduler

from streamkit.testing.marbles._labels import describe
from streamkit.testing.marbles._model import Diagram, Label, SubscriberTimes
from streamkit.testing.marbles._sources import Source, _Line, _Span, _test_observable


def _named_outputs(result: object) -> dict[str, Observable[Any]] | Observable[Any]:
    if isinstance(result, Observable):
        return result
    as_dict = getattr(result, "_asdict", None)  # a NamedTuple, as ops.tee_audio_text returns
    if callable(as_dict):
        result = as_dict()
    if isinstance(result, Mapping):
        outputs = dict(result)
        for key, value in outputs.items():
            if not isinstance(value, Observable):
                raise TypeError(f"output {key!r} of the pipeline is not an Observable: {value!r}")
        return outputs
    raise TypeError(
        "the pipeline must return an Observable, a mapping of names to Observables or a "
        f"NamedTuple of Observables, not {type(result).__name__}"
    )


def _subscriber_plan(
    outputs: dict[str, Observable[Any]] | Observable[Any],
    subscribers: Mapping[str, SubscriberTimes] | None,
) -> list[tuple[str, Observable[Any], float, float | None]]:
    if isinstance(outputs, Observable):
        wanted = dict(subscribers) if subscribers else {"output": 0.0}
        targets = {name: outputs for name in wanted}
    else:
        wanted = dict(subscribers) if subscribers else dict.fromkeys(outputs, 0.0)
        unknown = [name for name in wanted if name not in outputs]
        if unknown:
            raise ValueError(
                f"subscribers {unknown} are not outputs of the pipeline ({', '.join(outputs)})"
            )
        targets = {name: outputs[name] for name in wanted}
    plan: list[tuple[str, Observable[Any], float, float | None]] = []
    for name, times in wanted.items():
        start, end = (times, None) if isinstance(times, (int, float)) else times
        if end is not None and end < start:
            raise ValueError(f"subscriber {name!r} would dispose at {end} before subscribing")
        plan.append((name, targets[name], float(start), None if end is None else float(end)))
    return plan


class _Recorder:
    """An observer that records what one subscriber of the pipeline receives."""

    def __init__(self, line: _Line, span: _Span, clock: Callable[[], float]) -> None:
        self.line = line
        self.span = span
        self.clock = clock
        self.done = threading.Event()

    def on_next(self, value: Any) -> None:
        self.line.add(self.clock(), OnNext(value))

    def on_error(self, error: Exception) -> None:
        self.line.add(self.clock(), OnError(error))
        self._end()

    def on_completed(self) -> None:
        self.line.add(self.clock(), OnCompleted())
        self._end()

    def _end(self) -> None:
        if self.span.end is None:
            self.span.end = self.clock()
        self.done.set()


def _diagram(title: str, inputs: list[_Line], outputs: list[_Line], unit: str) -> Diagram:
    input_lines = tuple(line.timeline() for line in inputs)
    output_lines = tuple(line.timeline() for line in outputs)
    times = [0.0]
    for timeline in (*input_lines, *output_lines):
        times.extend(e.time for e in timeline.events)
        for span in timeline.subscriptions:
            times.append(span.start)
            if span.end is not None:
                times.append(span.end)
    return Diagram(title, input_lines, output_lines, max(times), unit)


def record(
    pipeline: Callable[..., Any],
    *sources: Source,
    subscribers: Mapping[str, SubscriberTimes] | None = None,
    scheduler: TestScheduler | None = None,
    until: float | None = None,
    label: Label = describe,
    title: str = "",
) -> Diagram:
    """Run ``pipeline`` in virtual time on test sources and record every event.

    Args:
        pipeline: called with one observable per source (in order); returns the
            observable to watch, or several by name (a mapping, or a NamedTuple such
            as ``ops.tee_audio_text``'s).
        sources: made by :func:`cold`, :func:`hot` or :func:`attempts`; each becomes
            an input line, with every subscription the pipeline made to it.
        subscribers: output lines, by name: when each subscribes, or ``(subscribe,
            dispose)`` in virtual seconds. For a single observable, each name is one
            more subscriber of it (default: ``{"output": 0}``); for several outputs,
            the names are theirs (default: each subscribed at 0).
        scheduler: the ``TestScheduler`` to run on; pass your own when an operator takes
            a scheduler (``ops.retry_on_error(scheduler=...)``). Everything the
            pipeline schedules on it runs in virtual time; subscribers get it as
            their subscribe scheduler.
        until: stop the clock there (default: run until nothing is scheduled).
        label: how an item is labelled (default :func:`describe`).
        title: the text of the operator box (default: the pipeline's name).

    Returns the :class:`Diagram`; draw it with :func:`render_svg` or :func:`render_text`.
    """
    if not callable(pipeline):
        raise TypeError(
            f"pipeline must be a callable taking the source observables, not {pipeline!r}"
        )
    if not sources:
        raise ValueError(
            "record() needs at least one source (marbles.cold(...) or marbles.hot(...))"
        )
    for source in sources:
        if not isinstance(source, Source):
            raise TypeError(
                f"sources are made by marbles.cold(), hot() or attempts(), not {source!r}"
            )
    scheduler = scheduler if scheduler is not None else TestScheduler()
    input_lines = [_Line(source.name, label) for source in sources]
    observables = [
        _test_observable(source, scheduler, line)
        for source, line in zip(sources, input_lines, strict=True)
    ]
    plan = _subscriber_plan(_named_outputs(pipeline(*observables)), subscribers)
    output_lines: list[_Line] = []

    def clock() -> float:
        return float(scheduler.clock)

    for name, observable, start, end in plan:
        line = _Line(name, label)
        output_lines.append(line)
        holder: list[abc.DisposableBase] = []

        def subscribe_now(
            _scheduler: abc.SchedulerBase,
            _state: Any = None,
            line: _Line = line,
            observable: Observable[Any] = observable,
            holder: list[abc.DisposableBase] = holder,
        ) -> None:
            span = line.subscribed(clock())
            recorder = _Recorder(line, span, clock)
            holder.append(
                observable.subscribe(
                    recorder.on_next,
                    recorder.on_error,
                    recorder.on_completed,
                    scheduler=scheduler,
                )
            )
            holder.append(Disposable(functools.partial(_mark_disposed_now, span, clock)))

        scheduler.schedule_absolute(start, subscribe_now)
        if end is not None:

            def dispose_now(
                _scheduler: abc.SchedulerBase,
                _state: Any = None,
                holder: list[abc.DisposableBase] = holder,
            ) -> None:
                for disposable in reversed(holder):
                    disposable.dispose()

            scheduler.schedule_absolute(end, dispose_now)

    if until is not None:
        scheduler.schedule_absolute(until, functools.partial(_stop, scheduler))
    VirtualTimeScheduler.start(scheduler)
    return _diagram(title or _title_of(pipeline), input_lines, output_lines, "virtual s")


def _mark_disposed(span: _Span, at: float) -> None:
    if span.end is None:
        span.end, span.disposed = at, True


def _mark_disposed_now(span: _Span, clock: Callable[[], float]) -> None:
    _mark_disposed(span, clock())


def _stop(
    scheduler: VirtualTimeScheduler, _scheduler: abc.SchedulerBase, _state: Any = None
) -> None:
    scheduler.stop()


def _title_of(pipeline: Callable[..., Any]) -> str:
    name = getattr(pipeline, "__name__", "")
    return "pipeline" if not name or name == "<lambda>" else name


def record_live(
    pipeline: Callable[..., Any],
    *sources: Observable[Any],
    names: Sequence[str] | None = None,
    subscribers: Sequence[str] | None = None,
    timeout: float = 30.0,
    label: Label = describe,
    title: str = "",
) -> Diagram:
    """Run ``pipeline`` on real observables (a ``Stream`` against a paced
    ``ReplayServer``, or the real API) and record every event with its wall-clock time,
    in seconds since the recording started.

    Each source is wrapped so its subscriptions, disposals and events are recorded
    (input lines named by ``names``, default ``source``, ``source2``...). The outputs
    (one observable, or several by name as for :func:`record`) are subscribed at once,
    one subscriber each (for a single observable, one per name in ``subscribers``);
    the call returns when every subscriber has completed or failed, or after
    ``timeout`` seconds (then every subscription is disposed, and the diagram shows
    it). It blocks: use sync streams (a stream with an async client runs on an event
    loop, which a blocking call would stall).
    """
    if not callable(pipeline):
        raise TypeError(
            f"pipeline must be a callable taking the source observables, not {pipeline!r}"
        )
    if not sources:
        raise ValueError("record_live() needs at least one observable")
    for source in sources:
        if not isinstance(source, Observable):
            raise TypeError(f"sources must be Observables, not {source!r}")
        if getattr(source, "is_async", False):
            raise ValueError(
                "record_live() blocks until the pipeline ends: give it a stream with a sync client"
            )
    if names is not None and len(names) != len(sources):
        raise ValueError(f"{len(names)} names for {len(sources)} sources")
    line_names = (
        list(names)
        if names is not None
        else ["source" if i == 0 else f"source{i + 1}" for i in range(len(sources))]
    )
    started = time.monotonic()

    def clock() -> float:
        return time.monotonic() - started

    input_lines = [_Line(name, label) for name in line_names]
    wrapped = [
        _recording_wrapper(source, line, clock)
        for source, line in zip(sources, input_lines, strict=True)
    ]
    outputs = _named_outputs(pipeline(*wrapped))
    wanted = (
        dict.fromkeys(subscribers or ["output"], 0.0) if isinstance(outputs, Observable) else None
    )
    plan = _subscriber_plan(outputs, wanted)
    output_lines: list[_Line] = []
    recorders: list[_Recorder] = []
    subscriptions: list[abc.DisposableBase] = []
    for name, observable, _start, _end in plan:
        line = _Line(name, label)
        output_lines.append(line)
        span = line.subscribed(clock())
        recorder = _Recorder(line, span, clock)
        recorders.append(recorder)
        subscriptions.append(
            observable.subscribe(recorder.on_next, recorder.on_error, recorder.on_completed)
        )
    deadline = started + timeout
    for recorder in recorders:
        recorder.done.wait(max(0.0, deadline - time.monotonic()))
    for recorder, subscription in zip(recorders, subscriptions, strict=True):
        if not recorder.done.is_set():
            _mark_disposed(recorder.span, clock())
        subscription.dispose()
    return _diagram(title or _title_of(pipeline), input_lines, output_lines, "s")


def _recording_wrapper(
    source: Observable[Any], line: _Line, clock: Callable[[], float]
) -> Observable[Any]:
    def subscribe(
        observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        span = line.subscribed(clock())
        lock = threading.Lock()

        def on_next(value: Any) -> None:
            line.add(clock(), OnNext(value))
            observer.on_next(value)

        def end(notification: Notification[Any]) -> None:
            with lock:
                if span.end is None:
                    span.end = clock()
            line.add(clock(), notification)
            notification.accept(observer)

        def on_error(error: Exception) -> None:
            end(OnError(error))

        def on_completed() -> None:
            end(OnCompleted())

        upstream = source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

        def dispose() -> None:
            with lock:
                if span.end is None:
                    span.end, span.disposed = clock(), True
            upstream.dispose()

        return Disposable(dispose)

    return Observable(subscribe)
