"""The timer behind every streamkit timeout: one subscription's first-chunk, idle or
total deadline, used by ``ops.first_chunk_timeout``/``idle_timeout``/``total_timeout``
and by :class:`~streamkit.Deadlines` (per attempt in ``sk.stream``, overall in
``ops.deadlines``). Timers run where :func:`streamkit._timers.timer_scheduler` says.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable, SingleAssignmentDisposable
from reactivex.scheduler.virtualtimescheduler import VirtualTimeScheduler

from streamkit._errors import StreamTimeoutError
from streamkit._lifecycle import disposing
from streamkit._timers import timer_scheduler

__all__ = ["checked_seconds", "timeout"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def checked_seconds(seconds: float) -> float:
    """``seconds`` as a float; ``TypeError``/``ValueError`` unless a finite number > 0."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"seconds must be a number, not {seconds!r}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"seconds must be finite and > 0, got {seconds!r}")
    return float(seconds)


def timeout(
    kind: str,
    seconds: float,
    scheduler: abc.SchedulerBase | None,
    *,
    idle: bool,
    total: bool = False,
    scope: str | None = None,
    counts: Callable[[Any], bool] | None = None,
) -> Callable[[Observable[T]], Observable[T]]:
    """An operator failing each subscription with ``StreamTimeoutError(kind, seconds,
    scope)`` when its deadline passes: the first item (the first one ``counts``
    accepts) when not ``idle``, the gaps after the first item when ``idle``, the whole
    stream when ``total``. ``scheduler`` overrides the timer rule."""

    def timeout_(source: Observable[T]) -> Observable[T]:
        def subscribe(
            observer: abc.ObserverBase[T],
            subscribe_scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            watch = _Watch(
                observer,
                kind,
                seconds,
                timer_scheduler(scheduler, subscribe_scheduler),
                idle=idle,
                total=total,
                scope=scope,
                counts=counts,
            )
            watch.start()
            watch.upstream.disposable = source.subscribe(
                watch.on_next, watch.on_error, watch.on_completed, scheduler=subscribe_scheduler
            )
            return Disposable(watch.dispose)

        return Observable(subscribe)

    return timeout_


def _clock(scheduler: abc.SchedulerBase) -> Callable[[], float]:
    if isinstance(scheduler, VirtualTimeScheduler):
        return lambda: scheduler.to_seconds(scheduler.now)
    # Real timers wait on the monotonic clock; scheduler.now is wall-clock time.
    return time.monotonic


class _Watch(Generic[T]):
    """One subscription's timer. Every decision is taken under the lock, so the timer
    and the source never both emit, and nothing is emitted after the end."""

    def __init__(
        self,
        observer: abc.ObserverBase[T],
        kind: str,
        seconds: float,
        timers: abc.SchedulerBase,
        *,
        idle: bool,
        total: bool = False,
        scope: str | None = None,
        counts: Callable[[Any], bool] | None = None,
    ) -> None:
        self._observer = observer
        self._scope = scope
        self._counts = counts  # which items end the wait for the first one (None: all)
        self._kind = kind
        self._seconds = seconds
        self._timers = timers
        self._idle = idle
        self._total = total  # never disarmed by an item
        self._overdue = False  # the total deadline passed while downstream was busy
        self._now = _clock(timers)
        self._lock = threading.Lock()
        self._done = False
        self._busy = False  # downstream is handling an item
        self._items = 0
        self._armed = False
        self._last = 0.0  # when downstream finished with the last item
        self._timer = SerialDisposable()
        self.upstream = SingleAssignmentDisposable()

    def start(self) -> None:
        """Arm the first-chunk timer (the idle timer starts with the first item)."""
        if not self._idle:
            self._armed = True
            self._arm(self._seconds)

    def _arm(self, delay: float) -> None:
        # A disposed SerialDisposable disposes what is assigned to it: no timer can be
        # left armed after the end.
        self._timer.disposable = self._timers.schedule_relative(delay, self._check)

    def on_next(self, value: T) -> None:
        with self._lock:
            if self._done:
                return
            self._busy = True
            first = False
            if self._counts is None or self._counts(value):
                self._items += 1
                first = self._items == 1
        if first and not self._idle and not self._total:
            self._timer.dispose()
        self._observer.on_next(value)
        with self._lock:
            self._busy = False
            overdue = self._total and self._overdue and not self._done
            if overdue:
                self._done = True
        if overdue:
            self._fire()
            return
        with self._lock:
            if not self._idle or self._done:
                return
            self._last = self._now()
            if self._armed:
                return
            self._armed = True
        self._arm(self._seconds)

    def _check(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        rearm_in: float | None = None
        with self._lock:
            self._armed = False
            if self._done:
                return
            if self._busy:
                self._overdue = True  # a total deadline fires once the item is handled
                return  # on_next re-arms when downstream is done with its item
            if not self._idle and not self._total and self._items:
                return
            if self._idle:
                remaining = self._last + self._seconds - self._now()
                if remaining > 0:
                    self._armed = True
                    rearm_in = remaining
            if rearm_in is None:
                self._done = True
        if rearm_in is not None:
            self._arm(rearm_in)
        else:
            self._fire()

    def _fire(self) -> None:
        self._timer.dispose()
        logger.debug("%s timeout after %.3f s: disposing upstream", self._kind, self._seconds)
        # Named for the source's end record: this subscription ended by a timeout.
        with disposing(f"timeout:{self._kind.replace(' ', '_')}"):  # type: ignore[arg-type]
            self.upstream.dispose()
        self._observer.on_error(StreamTimeoutError(self._kind, self._seconds, self._scope))

    def on_error(self, error: Exception) -> None:
        if self._finish():
            self._observer.on_error(error)

    def on_completed(self) -> None:
        if self._finish():
            self._observer.on_completed()

    def _finish(self) -> bool:
        with self._lock:
            if self._done:
                return False
            self._done = True
        self._timer.dispose()
        return True

    def dispose(self) -> None:
        """Downstream disposed: cancel the timer and upstream."""
        with self._lock:
            self._done = True
        self._timer.dispose()
        self.upstream.dispose()
