"""The test sources of :func:`record` (cold, hot, attempts) and the lines they record
into."""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeAlias

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.notification import Notification, OnCompleted, OnError, OnNext
from reactivex.observable.marbles import parse
from reactivex.scheduler import VirtualTimeScheduler

from streamkit.testing.marbles._labels import describe
from streamkit.testing.marbles._model import Label, MarbleEvent, Subscription, Timeline

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
