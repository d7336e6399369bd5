"""``first_chunk_timeout``, ``idle_timeout``, ``total_timeout`` and ``deadlines``: fail a
stream that stalls or runs over its budget."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable, SingleAssignmentDisposable
from reactivex.scheduler import TimeoutScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler
from reactivex.scheduler.virtualtimescheduler import VirtualTimeScheduler

from streamkit._lifecycle import disposing
from streamkit.deadlines import Deadlines
from streamkit.errors import StreamTimeoutError

__all__ = ["deadlines", "first_chunk_timeout", "idle_timeout", "total_timeout"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def first_chunk_timeout(
    seconds: float, *, scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[T]], Observable[T]]:
    """Fail with :class:`~streamkit.StreamTimeoutError` when the first item does not
    arrive within ``seconds`` of subscribing (the request and the model's time to its
    first token both count), and dispose upstream, which closes the HTTP response.

    Once the first item has arrived its timer is cancelled and the operator passes
    everything through; pair it with :func:`idle_timeout` for the gaps after that.
    See :func:`idle_timeout` for the scheduler used and the thread the error comes on.

    Raises ``ValueError`` unless ``seconds`` is finite and > 0, ``TypeError`` for a
    ``seconds`` that is not a number or a ``scheduler`` that is not one.

    Example:
        ```python
        stream.pipe(ops.first_chunk_timeout(30), ops.idle_timeout(5))
        ```
    """
    return _timeout("first chunk", _checked_seconds(seconds), _checked(scheduler), idle=False)


def idle_timeout(
    seconds: float, *, scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[T]], Observable[T]]:
    """Fail with :class:`~streamkit.StreamTimeoutError` when, after the first item, the
    next one does not arrive within ``seconds``, and dispose upstream, which closes the
    HTTP response.

    The wait before the first item is :func:`first_chunk_timeout`'s to bound (a model's
    time to first token is often much longer than its gaps). The clock restarts when
    downstream has handled an item, so a slow consumer is not mistaken for a stalled
    provider. One timer runs per idle period, not per item: it is re-armed for the
    time left when items came meanwhile.

    Timers run on ``scheduler`` if given; else on the scheduler passed to
    ``subscribe`` when that is a virtual-time one (``TestScheduler``) or an asyncio
    one; else on reactivex's ``TimeoutScheduler`` (a ``threading.Timer`` each, cancelled
    as soon as the stream ends or is disposed, so no thread outlives the stream). When
    subscribed inside a running event loop, the error is delivered on that loop, as an
    async source's items are. Works on any item type, anywhere in a pipe.

    Raises ``ValueError`` unless ``seconds`` is finite and > 0, ``TypeError`` for a
    ``seconds`` that is not a number or a ``scheduler`` that is not one.
    """
    return _timeout("idle", _checked_seconds(seconds), _checked(scheduler), idle=True)


def total_timeout(
    seconds: float, *, scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[T]], Observable[T]]:
    """Fail with :class:`~streamkit.StreamTimeoutError` (``kind="total"``) when the
    stream has not ended within ``seconds`` of subscribing, and dispose upstream,
    which closes the HTTP response. Timers as in :func:`idle_timeout`.

    Raises ``ValueError`` unless ``seconds`` is finite and > 0, ``TypeError`` for a
    ``seconds`` that is not a number or a ``scheduler`` that is not one.
    """
    return _timeout("total", _checked_seconds(seconds), _checked(scheduler), idle=False, total=True)


def deadlines(
    budget: Deadlines | None = None,
    *,
    first_chunk: float | None = None,
    idle: float | None = None,
    total: float | None = None,
) -> Callable[[Observable[T]], Observable[T]]:
    """Bound each subscription of the source by a :class:`~streamkit.Deadlines`
    (or the same fields as keyword arguments): the first chunk, the gaps after it and
    the whole stream. After ``retry_on_error``/``fallback``/``hedge`` this is the
    budget across all attempts; the per-attempt budget (and ``headers``) is given to
    ``sk.stream(..., deadlines=...)``.

    Raises ``TypeError`` for a ``budget`` that is not a ``Deadlines`` or for both a
    budget and keyword arguments, ``ValueError`` for a bad number of seconds.
    """
    if budget is None:
        budget = Deadlines(first_chunk=first_chunk, idle=idle, total=total)
    elif not isinstance(budget, Deadlines):
        raise TypeError(f"budget must be a sk.Deadlines, not {type(budget).__name__}")
    elif (first_chunk, idle, total) != (None, None, None):
        raise TypeError("give a Deadlines or keyword arguments, not both")
    return budget.bound(scope="overall")


def _checked_seconds(seconds: float) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"seconds must be a number, not {seconds!r}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"seconds must be finite and > 0, got {seconds!r}")
    return float(seconds)


def _checked(scheduler: abc.SchedulerBase | None) -> abc.SchedulerBase | None:
    if scheduler is not None and not isinstance(scheduler, abc.SchedulerBase):
        raise TypeError(f"scheduler must be a reactivex scheduler, not {scheduler!r}")
    return scheduler


def _timeout(
    kind: str,
    seconds: float,
    scheduler: abc.SchedulerBase | None,
    *,
    idle: bool,
    total: bool = False,
    scope: str | None = None,
    counts: Callable[[Any], bool] | None = None,
) -> Callable[[Observable[T]], Observable[T]]:
    def timeout_(source: Observable[T]) -> Observable[T]:
        def subscribe(
            observer: abc.ObserverBase[T],
            subscribe_scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            timers, loop = _timer_scheduler(scheduler, subscribe_scheduler)
            watch = _Watch(
                observer,
                kind,
                seconds,
                timers,
                loop,
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


def _timer_scheduler(
    explicit: abc.SchedulerBase | None, subscribe_scheduler: abc.SchedulerBase | None
) -> tuple[abc.SchedulerBase, asyncio.AbstractEventLoop | None]:
    """The scheduler for the timers, and the loop to deliver a timeout on (if any)."""
    if explicit is not None:
        return explicit, None
    # Other subscribe schedulers are not used for timers: a trampoline would sleep in
    # the caller's thread, and run()'s NewThreadScheduler keeps a thread per timer alive
    # until its due time even when the timer is cancelled.
    if isinstance(subscribe_scheduler, (VirtualTimeScheduler, AsyncIOScheduler)):
        return subscribe_scheduler, None
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    return TimeoutScheduler.singleton(), loop


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
        loop: asyncio.AbstractEventLoop | None,
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
        self._loop = loop
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
        elif self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._fire)
            except RuntimeError:  # the loop is closed: nobody is waiting there
                self._fire()
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
