"""Marble diagrams of real pipeline runs: record what went in and out, and when.

A marble diagram shows each observable of a pipeline as a line in time: its items as
marbles, its completion as a bar, its error as a cross, and when it was subscribed and
disposed. Here the diagram is not drawn by hand: :func:`record` runs your pipeline on
reactivex's ``TestScheduler`` (virtual time) against test sources, or
:func:`record_live` runs it on a real stream (wall-clock time), and records every event
with its time. :func:`render_svg` draws the result; :func:`render_text` prints it::

    from streamkit import ops
    from streamkit.testing import marbles

    source = marbles.cold(["Welcome", " to", " M", "oria", "!"], name="chunks")
    diagram = marbles.record(lambda chunks: chunks.pipe(ops.take_until_match("Moria")), source)
    print(marbles.render_text(diagram))
    Path("take_until_match.svg").write_text(marbles.render_svg(diagram))

The sources of :func:`record` are cold (each subscription plays its events again,
relative to the time of subscribing: a request) or hot (events at absolute times), and
record when they were subscribed and disposed, so the diagram shows, say, that
``take_until_match`` disposed upstream at the match, and which of the source's events
were never sent. ``str`` items are labelled in quotes (so a leading space shows),
chunks by what they carry (:func:`describe`).

Only the standard library, pydantic and reactivex are used (no hypothesis, no provider
SDK): the SVG is written as text, and is byte-for-byte the same for the same run.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, TypeAlias
from xml.sax.saxutils import escape, quoteattr

from pydantic import BaseModel
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.notification import Notification, OnCompleted, OnError, OnNext
from reactivex.observable.marbles import parse
from reactivex.scheduler import VirtualTimeScheduler
from reactivex.testing import TestScheduler

from streamkit.accumulator import ResponseSnapshot
from streamkit.models import CallResponse, Chunk
from streamkit.ops import PartialToolArgs

__all__ = [
    "Diagram",
    "EventKind",
    "MarbleEvent",
    "Source",
    "Subscription",
    "Timeline",
    "attempts",
    "cold",
    "describe",
    "hot",
    "record",
    "record_live",
    "render_svg",
    "render_text",
]

EventKind: TypeAlias = Literal["next", "error", "completed"]
"""What a marble is: an item, an error, or the completion."""

Label: TypeAlias = Callable[[Any], str]
SubscriberTimes: TypeAlias = "float | tuple[float, float | None]"
"""When a subscriber subscribes, or ``(subscribe, dispose)`` (``None``: never disposed)."""


# ----------------------------------------------------------------------- the model
@dataclass(frozen=True)
class MarbleEvent:
    """One event on a line: its time, its kind and its label.

    ``delivered`` is ``False`` for an event a test source had scheduled but never
    sent, because its subscriber had disposed first (drawn hollow: what the cut
    spared).
    """

    time: float
    kind: EventKind
    label: str = ""
    delivered: bool = True


@dataclass(frozen=True)
class Subscription:
    """One subscription to a line: from ``start`` to ``end`` (``None``: still
    subscribed when the recording stopped). ``disposed`` is ``True`` when the subscriber
    left before the line's own completion or error: upstream was cut."""

    start: float
    end: float | None = None
    disposed: bool = False


@dataclass(frozen=True)
class Timeline:
    """A line of the diagram: an input (a source, with its subscriptions) or an output
    (one subscriber of the pipeline, with its subscription)."""

    name: str
    events: tuple[MarbleEvent, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()

    @property
    def labels(self) -> list[str]:
        """The labels of the delivered items, in order (handy in assertions)."""
        return [e.label for e in self.events if e.kind == "next" and e.delivered]


@dataclass(frozen=True)
class Diagram:
    """A recorded run: the input lines, the operator's title, the output lines, and
    where the time axis ends. ``unit`` names the time unit (virtual or real seconds)."""

    title: str
    inputs: tuple[Timeline, ...]
    outputs: tuple[Timeline, ...]
    end: float
    unit: str = "virtual s"

    def line(self, name: str) -> Timeline:
        """The input or output line called ``name`` (``KeyError`` if there is none)."""
        for timeline in (*self.inputs, *self.outputs):
            if timeline.name == name:
                return timeline
        known = ", ".join(t.name for t in (*self.inputs, *self.outputs))
        raise KeyError(f"no line named {name!r} in this diagram; lines: {known}")


# --------------------------------------------------------------------- the labels
MAX_LABEL = 18
"""Labels longer than this many characters are cut with an ellipsis."""


def _cut(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _quoted(text: str, limit: int = MAX_LABEL) -> str:
    """``text`` in quotes, escaped as Python writes it (so ``' to'`` shows its space)."""
    quoted = repr(text)
    if len(quoted) <= limit:
        return quoted
    return quoted[: limit - 2] + "…" + quoted[0]


def _describe_chunk(chunk: Chunk, limit: int) -> str:
    parts: list[str] = []
    if chunk.audio:
        parts.append(f"♪{len(chunk.audio)}B")
    if chunk.audio_transcript:
        parts.append(_quoted(chunk.audio_transcript, limit - 6))
    if chunk.content:
        parts.append(_quoted(chunk.content, limit))
    if chunk.thinking:
        parts.append("think:" + _quoted(chunk.thinking, limit - 6))
    if chunk.refusal:
        parts.append("refusal:" + _quoted(chunk.refusal, limit - 8))
    for delta in chunk.tool_calls:
        parts.append("tool:" + (delta.name or _quoted(delta.arguments, limit - 6)))
    if chunk.finish_reasons:
        parts.append(",".join(chunk.finish_reasons))
    if chunk.usage is not None:
        parts.append("usage")
    return _cut(" ".join(parts), limit) if parts else "''"


def _fields(model: BaseModel, limit: int) -> str:
    """The fields a (possibly partial) model instance has, as compact JSON."""
    known = model.model_dump(mode="json", include=model.model_fields_set)
    return _cut(json.dumps(known, ensure_ascii=False, separators=(",", ":")), limit)


def describe(value: object, limit: int = MAX_LABEL) -> str:
    """The default label of an item: short, and telling the items of a stream apart.

    ``str`` in quotes (``' to'``), ``bytes`` by length, a :class:`~streamkit.Chunk` by
    what it carries (its text in quotes, ``think:``, ``tool:name``, ``♪2400B`` for
    audio, its finish reason, ``usage``; ``""`` when it carries nothing), a
    :class:`~streamkit.CallResponse` as ``response`` and its text, a snapshot of
    ``ops.accumulate()`` by its text so far, a pydantic model (a partial one from
    ``ops.partial_object``) by the fields it has, as JSON, an item of
    ``ops.partial_tool_args`` by its arguments so far (``✓`` once complete), an
    exception by its type; anything else by ``str()``. Labels longer than ``limit``
    characters are cut with ``…``.
    """
    if isinstance(value, BaseException):
        return type(value).__name__
    if isinstance(value, str):
        return _quoted(value, limit)
    if isinstance(value, (bytes, bytearray)):
        return f"{len(value)}B"
    if isinstance(value, Chunk):
        return _describe_chunk(value, limit)
    if isinstance(value, CallResponse):
        if value.tool_calls:
            return _cut("response tool:" + ",".join(t.name for t in value.tool_calls), limit)
        return "response " + _quoted(value.content, limit - 9)
    if isinstance(value, ResponseSnapshot):
        return _quoted(value.content, limit)
    if isinstance(value, PartialToolArgs):
        mark = " ✓" if value.complete else ""
        return _fields(value.args, limit - len(mark)) + mark
    if isinstance(value, BaseModel):
        return _fields(value, limit)
    return _cut(str(value), limit)


# -------------------------------------------------------------------- the sources
Scheduled: TypeAlias = tuple[tuple[float, Notification[Any]], ...]


@dataclass(frozen=True)
class Source:
    """A test source for :func:`record`, made by :func:`cold`, :func:`hot` or
    :func:`attempts`.

    ``plays[k]`` is what the k-th subscription emits (the last one again for any later
    subscription); times are relative to the subscription for a cold source, absolute
    for a hot one.
    """

    name: str
    plays: tuple[Scheduled, ...]
    hot: bool = False


def _scheduled(
    events: str | Sequence[Any],
    *,
    values: Mapping[str, Any] | None,
    error: Exception | None,
    spacing: float,
    complete: bool,
) -> Scheduled:
    if isinstance(events, str):
        try:
            lookup: dict[str | float, Any] = {key: value for key, value in (values or {}).items()}
            parsed = parse(events, timespan=spacing, lookup=lookup, error=error)
        except ValueError as failure:
            raise ValueError(f"bad marble string {events!r}: {failure}") from failure
        return tuple((_seconds(t), n) for t, n in parsed)
    if values is not None:
        raise TypeError("values= maps the names of a marble string; items are given as they are")
    items = list(events)
    timed: list[tuple[float, Notification[Any]]] = [
        (spacing * (i + 1), OnNext(item)) for i, item in enumerate(items)
    ]
    end = spacing * (len(items) + 1)
    if error is not None:
        timed.append((end, OnError(error)))
    elif complete:
        timed.append((end, OnCompleted()))
    return tuple(timed)


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _check_spacing(spacing: float) -> None:
    if isinstance(spacing, bool) or not isinstance(spacing, (int, float)):
        raise TypeError(f"spacing must be a number, not {spacing!r}")
    if not math.isfinite(spacing) or spacing <= 0:
        raise ValueError(f"spacing must be finite and > 0, got {spacing!r}")


def cold(
    events: str | Sequence[Any],
    *,
    values: Mapping[str, Any] | None = None,
    error: Exception | None = None,
    spacing: float = 10.0,
    complete: bool = True,
    name: str = "source",
) -> Source:
    """A cold test source: every subscription plays ``events`` again, timed from the
    moment it subscribes (as every subscription to a ``Stream`` is a new request).

    ``events`` is either

    - a reactivex marble string, one character per ``spacing`` (``"-a-b--c|"``:
      ``-`` waits, ``|`` completes, ``#`` fails with ``error``, ``(a,b)`` groups
      items at one time, several letters form one item name); ``values`` maps the
      names to the items (a name not in it is emitted as the string itself, numbers
      as numbers); or
    - a sequence of items: the first at ``spacing``, the next ``spacing`` later, and so
      on, then the completion one ``spacing`` after the last item (``error``: that
      error instead; ``complete=False``: nothing, the source stays open).
    """
    _check_spacing(spacing)
    return Source(
        name,
        (_scheduled(events, values=values, error=error, spacing=spacing, complete=complete),),
    )


def hot(
    events: str | Sequence[Any],
    *,
    values: Mapping[str, Any] | None = None,
    error: Exception | None = None,
    spacing: float = 10.0,
    complete: bool = True,
    name: str = "source",
) -> Source:
    """A hot test source: ``events`` (as for :func:`cold`) happen at absolute times,
    whoever listens; a subscriber receives those after it subscribed."""
    _check_spacing(spacing)
    scheduled = _scheduled(events, values=values, error=error, spacing=spacing, complete=complete)
    return Source(name, (scheduled,), hot=True)


def attempts(*sources: Source, name: str | None = None) -> Source:
    """A cold source whose first subscription plays ``sources[0]``, the second
    ``sources[1]``, and so on (the last one again after that): a request that fails,
    then succeeds when retried."""
    if not sources:
        raise ValueError("attempts() needs at least one source")
    if any(source.hot for source in sources):
        raise ValueError("attempts() plays cold sources, one per subscription")
    plays = tuple(play for source in sources for play in source.plays)
    return Source(name or sources[0].name, plays)


@dataclass
class _Span:
    """A subscription being recorded (a :class:`Subscription` once done)."""

    start: float
    end: float | None = None
    disposed: bool = False


class _Line:
    """Events and subscriptions of one line, in the order they happened."""

    def __init__(self, name: str, label: Label) -> None:
        self.name = name
        self.label = label
        self.events: list[MarbleEvent] = []
        self.spans: list[_Span] = []
        self.lock = threading.Lock()

    def add(self, at: float, notification: Notification[Any], delivered: bool = True) -> None:
        event = _event(at, notification, self.label, delivered)
        with self.lock:
            self.events.append(event)

    def subscribed(self, at: float) -> _Span:
        span = _Span(at)
        with self.lock:
            self.spans.append(span)
        return span

    def timeline(self) -> Timeline:
        with self.lock:
            events = sorted(self.events, key=lambda e: e.time)  # stable: same-time order kept
            spans = tuple(Subscription(s.start, s.end, s.disposed) for s in self.spans)
        return Timeline(self.name, tuple(events), spans)


def _event(
    at: float, notification: Notification[Any], label: Label, delivered: bool
) -> MarbleEvent:
    if isinstance(notification, OnNext):
        return MarbleEvent(at, "next", label(notification.value), delivered)
    if isinstance(notification, OnError):
        return MarbleEvent(at, "error", describe(notification.exception), delivered)
    return MarbleEvent(at, "completed", "", delivered)


def _test_observable(
    source: Source, scheduler: VirtualTimeScheduler, line: _Line
) -> Observable[Any]:
    """The source as an observable on ``scheduler``, recording into ``line``."""
    if source.hot:
        return _hot_observable(source.plays[0], scheduler, line)
    return _cold_observable(source.plays, scheduler, line)


def _cold_observable(
    plays: tuple[Scheduled, ...], scheduler: VirtualTimeScheduler, line: _Line
) -> Observable[Any]:
    """Each subscription plays the next of ``plays`` (the last again), from its own start."""
    subscriptions = 0

    def now() -> float:
        return float(scheduler.clock)

    def subscribe(
        observer: abc.ObserverBase[Any], _scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        nonlocal subscriptions
        span = line.subscribed(now())
        play = plays[min(subscriptions, len(plays) - 1)]
        subscriptions += 1
        started = span.start
        pending: dict[int, tuple[float, Notification[Any]]] = dict(enumerate(play))
        timers = CompositeDisposable()

        def emit(_scheduler: abc.SchedulerBase, index: int | None) -> None:
            assert index is not None
            _at, notification = pending.pop(index)
            line.add(now(), notification)
            if not isinstance(notification, OnNext):
                span.end = now()
            notification.accept(observer)

        for index, (at, _notification) in enumerate(play):
            timers.add(scheduler.schedule_absolute(started + at, emit, index))

        def dispose() -> None:
            timers.dispose()
            if span.end is None:
                span.end, span.disposed = now(), True
                # What the source would still have sent: drawn hollow.
                for at, notification in pending.values():
                    line.add(started + at, notification, delivered=False)
            pending.clear()

        return Disposable(dispose)

    return Observable(subscribe)


def _hot_observable(
    play: Scheduled, scheduler: VirtualTimeScheduler, line: _Line
) -> Observable[Any]:
    """``play`` at absolute times, to the subscribers present at each event."""
    listeners: list[tuple[abc.ObserverBase[Any], _Span]] = []

    def now() -> float:
        return float(scheduler.clock)

    def emit(_scheduler: abc.SchedulerBase, notification: Notification[Any] | None) -> None:
        assert notification is not None
        present = [(observer, span) for observer, span in listeners if span.end is None]
        line.add(now(), notification, delivered=bool(present))
        for observer, span in present:
            if not isinstance(notification, OnNext):
                span.end = now()
            notification.accept(observer)

    for at, notification in play:
        scheduler.schedule_absolute(at, emit, notification)

    def subscribe(
        observer: abc.ObserverBase[Any], _scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        span = line.subscribed(now())
        listeners.append((observer, span))

        def leave() -> None:
            if span.end is None:
                span.end, span.disposed = now(), True

        return Disposable(leave)

    return Observable(subscribe)


# ----------------------------------------------------------------- the recording
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


# ---------------------------------------------------------------- the text view
def _time(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def render_text(diagram: Diagram) -> str:
    """The diagram as text: one line per timeline, each event as ``time:label``.

    ``|`` is a completion, ``#`` an error (with its type), ``^`` a subscription and
    ``!`` a disposal; events in parentheses were scheduled but never sent.
    """
    width = max(len(t.name) for t in (*diagram.inputs, *diagram.outputs))
    rows = [f"{diagram.title}  (time in {diagram.unit})"]

    def row(timeline: Timeline) -> str:
        marks: list[tuple[float, int, str]] = []
        for span in timeline.subscriptions:
            marks.append((span.start, 0, f"{_time(span.start)}:^"))
            if span.disposed and span.end is not None:
                marks.append((span.end, 2, f"{_time(span.end)}:!"))
        for event in timeline.events:
            text = {"next": event.label, "completed": "|", "error": f"#{event.label}"}[event.kind]
            mark = f"{_time(event.time)}:{text}"
            marks.append((event.time, 1, mark if event.delivered else f"({mark})"))
        marks.sort(key=lambda m: (m[0], m[1]))
        return f"{timeline.name:<{width}}  " + " ".join(m[2] for m in marks)

    rows.extend(row(t) for t in diagram.inputs)
    rows.append(f"{'':<{width}}  [{diagram.title}]")
    rows.extend(row(t) for t in diagram.outputs)
    return "\n".join(rows)


# ----------------------------------------------------------------- the SVG view
_FONT = "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace"
_CHAR = 7.2  # width of one character of the 12 px monospace labels
_PILL_HEIGHT = 22.0
_STACK_STEP = 26.0
_ROW = 50.0
_PAD = 16.0
_PLOT_WIDTH = 640.0
_MAX_PLOT_WIDTH = 2400.0

_INPUT_COLORS = ("#dbeafe", "#2563eb")
_OUTPUT_COLORS = ("#dcfce7", "#15803d")
_MUTED = "#9ca3af"
_RED = "#dc2626"
_INK = "#111827"


def _pill_width(label: str) -> float:
    return max(_PILL_HEIGHT, len(label) * _CHAR + 14)


def _num(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


@dataclass
class _Svg:
    parts: list[str] = field(default_factory=list)

    def add(self, element: str) -> None:
        self.parts.append(element)

    def text(self, x: float, y: float, content: str, **attrs: str) -> None:
        extra = "".join(f" {k.replace('_', '-')}={quoteattr(v)}" for k, v in attrs.items())
        self.add(f'<text x="{_num(x)}" y="{_num(y)}"{extra}>{escape(content)}</text>')

    def line(self, x1: float, y1: float, x2: float, y2: float, **attrs: str) -> None:
        extra = "".join(f" {k.replace('_', '-')}={quoteattr(v)}" for k, v in attrs.items())
        self.add(f'<line x1="{_num(x1)}" y1="{_num(y1)}" x2="{_num(x2)}" y2="{_num(y2)}"{extra}/>')


def _groups(events: Iterable[MarbleEvent], tolerance: float) -> list[list[MarbleEvent]]:
    """Events at the same time (within ``tolerance``: real clocks jitter), together: they
    are drawn stacked."""
    groups: list[list[MarbleEvent]] = []
    for event in events:
        if groups and event.time - groups[-1][0].time <= tolerance:
            groups[-1].append(event)
        else:
            groups.append([event])
    return groups


def _group_width(group: list[MarbleEvent]) -> float:
    widths = [_pill_width(e.label) for e in group if e.kind == "next"]
    return max(widths, default=0.0)


def _tolerance(diagram: Diagram) -> float:
    """Events closer than this are drawn as one stack: 1/400 of the time axis."""
    return diagram.end / 400


def _scale(diagram: Diagram) -> float:
    """Pixels per time unit: the plot is about _PLOT_WIDTH wide, wider (up to
    _MAX_PLOT_WIDTH) when marbles close in time would overlap."""
    span = diagram.end if diagram.end > 0 else 1.0
    scale = _PLOT_WIDTH / span
    for timeline in (*diagram.inputs, *diagram.outputs):
        groups = _groups(timeline.events, _tolerance(diagram))
        for before, after in itertools.pairwise(groups):
            gap = after[0].time - before[0].time
            need = _group_width(before) / 2 + _group_width(after) / 2 + 8
            if any(e.kind != "next" for e in before):
                need += 10
            if gap > 0:
                scale = max(scale, need / gap)
    return min(scale, _MAX_PLOT_WIDTH / span)


def _nice_step(span: float, ticks: int = 10) -> float:
    raw = span / ticks if span > 0 else 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 5.0, 10.0):
        if raw <= factor * power:
            return factor * power
    return 10.0 * power


def _row_height(timeline: Timeline, tolerance: float) -> float:
    deepest = max((len(g) for g in _groups(timeline.events, tolerance)), default=1)
    return _ROW + (deepest - 1) * _STACK_STEP


def render_svg(diagram: Diagram) -> str:
    """Draw ``diagram`` as an SVG document (a string).

    Inputs above the operator box, outputs below, time running left to right with an
    axis at the bottom. Items are marbles with their labels (items at the same time
    stacked), ``|`` a completion, a red cross an error; a triangle under a line marks
    a subscription, a red dashed bar a disposal that cut the line short, and hollow
    marbles what a source had scheduled but never sent. Deterministic: the same
    diagram always gives the same text.
    """
    scale = _scale(diagram)
    tolerance = _tolerance(diagram)
    names = [t.name for t in (*diagram.inputs, *diagram.outputs)]
    left = max(72.0, max(len(n) for n in names) * _CHAR + 2 * _PAD)
    origin = left + _PAD
    widest_first = max(
        (
            _pill_width(t.events[0].label) / 2
            for t in (*diagram.inputs, *diagram.outputs)
            if t.events
        ),
        default=0.0,
    )
    origin = max(origin, left + widest_first + 4)
    last_overhang = max(
        (
            _group_width(_groups(t.events, tolerance)[-1]) / 2 + 26
            for t in (*diagram.inputs, *diagram.outputs)
            if t.events
        ),
        default=0.0,
    )
    plot_end = origin + diagram.end * scale + max(24.0, last_overhang)
    width = plot_end + _PAD + 8

    def x_of(t: float) -> float:
        return origin + t * scale

    svg = _Svg()
    y = _PAD

    def draw_timeline(timeline: Timeline, colors: tuple[str, str], top: float) -> float:
        height = _row_height(timeline, tolerance)
        base = top + height - 24  # the line; stacked marbles rise above it
        svg.text(_PAD, base + 4, timeline.name, font_size="12", fill=_INK)
        svg.line(origin, base, plot_end, base, stroke=_INK, stroke_width="1.5")
        svg.add(f'<path d="M{_num(plot_end)} {_num(base)} l-8 -4 v8 z" fill="{_INK}"/>')
        for span in timeline.subscriptions:
            sx = x_of(span.start)
            svg.add(
                f'<path d="M{_num(sx)} {_num(base + 6)} l-5 9 h10 z" fill="{colors[1]}">'
                f"<title>subscribed at {_time(span.start)}</title></path>"
            )
        pill_halves: dict[float, float] = {}
        for group in _groups(timeline.events, tolerance):
            gx = x_of(group[0].time)
            level = 0
            after_pill = 0.0
            for event in group:
                if event.kind != "next":
                    continue
                cy = base - level * _STACK_STEP
                level += 1
                w = _pill_width(event.label)
                after_pill = max(after_pill, w / 2)
                fill, stroke = colors if event.delivered else ("#ffffff", _MUTED)
                dash = "" if event.delivered else ' stroke-dasharray="3 2"'
                tip = f"{event.label} at {_time(event.time)}"
                if not event.delivered:
                    tip += " (never sent)"
                svg.add(
                    f'<g><title>{escape(tip)}</title><rect x="{_num(gx - w / 2)}" '
                    f'y="{_num(cy - _PILL_HEIGHT / 2)}" width="{_num(w)}" '
                    f'height="{_num(_PILL_HEIGHT)}" rx="11" fill="{fill}" stroke="{stroke}" '
                    f'stroke-width="1.5"{dash}/>'
                )
                svg.text(
                    gx,
                    cy + 4,
                    event.label,
                    font_size="12",
                    text_anchor="middle",
                    fill=_INK if event.delivered else _MUTED,
                )
                svg.add("</g>")
            pill_halves[group[0].time] = after_pill
            ex = gx + (after_pill + 6 if after_pill else 0.0)
            for event in group:
                color = _INK if event.delivered else _MUTED
                if event.kind == "completed":
                    svg.line(ex, base - 12, ex, base + 12, stroke=color, stroke_width="3")
                    ex += 8
                elif event.kind == "error":
                    cross = _RED if event.delivered else _MUTED
                    svg.add(
                        f'<path d="M{_num(ex - 7)} {_num(base - 7)} l14 14 m0 -14 l-14 14" '
                        f'stroke="{cross}" stroke-width="3"><title>{escape(event.label)} at '
                        f"{_time(event.time)}</title></path>"
                    )
                    svg.text(
                        ex, base + 24, event.label, font_size="11", text_anchor="middle", fill=cross
                    )
                    ex += 16
        for span in timeline.subscriptions:
            if span.disposed and span.end is not None:
                # Drawn last, beside a marble of the same time rather than under it.
                half = max(
                    (h for t, h in pill_halves.items() if abs(t - span.end) <= tolerance),
                    default=0.0,
                )
                dx = x_of(span.end) + (half + 4 if half else 0.0)
                svg.add(
                    f'<line x1="{_num(dx)}" y1="{_num(base - 15)}" x2="{_num(dx)}" '
                    f'y2="{_num(base + 15)}" stroke="{_RED}" stroke-width="2.5" '
                    f'stroke-dasharray="4 2"><title>disposed at {_time(span.end)}</title></line>'
                )
        return top + height

    for timeline in diagram.inputs:
        y = draw_timeline(timeline, _INPUT_COLORS, y)
    y += 8
    box_height = 34.0
    svg.add(
        f'<rect x="{_num(origin - 8)}" y="{_num(y)}" width="{_num(plot_end - origin + 8)}" '
        f'height="{_num(box_height)}" rx="4" fill="#f3f4f6" stroke="{_INK}"/>'
    )
    svg.text(
        (origin + plot_end) / 2,
        y + box_height / 2 + 5,
        diagram.title,
        font_size="13",
        text_anchor="middle",
        fill=_INK,
    )
    y += box_height + 4
    for timeline in diagram.outputs:
        y = draw_timeline(timeline, _OUTPUT_COLORS, y)

    # The time axis.
    y += 14
    svg.line(origin, y, plot_end, y, stroke=_MUTED)
    step = _nice_step(diagram.end)
    tick = 0.0
    while tick <= diagram.end + 1e-9:
        tx = x_of(tick)
        svg.line(tx, y, tx, y + 5, stroke=_MUTED)
        svg.text(
            tx, y + 17, _time(round(tick, 6)), font_size="10", text_anchor="middle", fill="#6b7280"
        )
        tick += step
    svg.text(_PAD, y + 17, f"t ({diagram.unit})", font_size="10", fill="#6b7280")
    y += 36

    # The legend.
    lx = _PAD
    legend_y = y
    svg.add(
        f'<path d="M{_num(lx + 5)} {_num(legend_y - 9)} l-5 9 h10 z" fill="{_INPUT_COLORS[1]}"/>'
    )
    svg.text(lx + 14, legend_y, "subscribe", font_size="10", fill="#374151")
    lx += 82
    svg.line(
        lx, legend_y - 11, lx, legend_y + 2, stroke=_RED, stroke_width="2", stroke_dasharray="3 2"
    )
    svg.text(lx + 7, legend_y, "dispose", font_size="10", fill="#374151")
    lx += 66
    svg.line(lx, legend_y - 11, lx, legend_y + 2, stroke=_INK, stroke_width="3")
    svg.text(lx + 7, legend_y, "complete", font_size="10", fill="#374151")
    lx += 72
    svg.add(
        f'<path d="M{_num(lx - 4)} {_num(legend_y - 9)} l8 8 m0 -8 l-8 8" stroke="{_RED}" '
        'stroke-width="2.5"/>'
    )
    svg.text(lx + 8, legend_y, "error", font_size="10", fill="#374151")
    lx += 52
    svg.add(
        f'<rect x="{_num(lx - 8)}" y="{_num(legend_y - 10)}" width="16" height="12" rx="6" '
        f'fill="#ffffff" stroke="{_MUTED}" stroke-dasharray="3 2"/>'
    )
    svg.text(lx + 12, legend_y, "scheduled, never sent", font_size="10", fill="#374151")
    height = legend_y + _PAD

    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_num(width)}" height="{_num(height)}" '
        f'viewBox="0 0 {_num(width)} {_num(height)}" font-family={quoteattr(_FONT)} '
        f'role="img" aria-label={quoteattr("marble diagram: " + diagram.title)}>'
    )
    background = f'<rect width="{_num(width)}" height="{_num(height)}" rx="6" fill="#ffffff"/>'
    return (
        "\n".join(
            [head, f"<title>{escape(diagram.title)}</title>", background, *svg.parts, "</svg>"]
        )
        + "\n"
    )
