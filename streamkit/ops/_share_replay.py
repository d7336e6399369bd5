"""``share_replay``: one upstream request shared by any number of subscribers."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SingleAssignmentDisposable
from reactivex.notification import Notification, OnCompleted, OnError, OnNext

from streamkit._errors import StreamError

__all__ = ["SharedReplay", "share_replay"]

T = TypeVar("T")

logger = logging.getLogger(__name__)

CANCELLED_MESSAGE = (
    "share_replay: every subscriber left before the stream completed, so its one "
    "request was cancelled; a later subscriber gets what was received, then this error "
    "(share_replay never makes a second request)"
)


def share_replay(*, buffer_size: int | None = None) -> Callable[[Observable[T]], Observable[T]]:
    """Share one upstream subscription (one HTTP request) among any number of subscribers.

    - **Connection**: the first subscription subscribes upstream (with that
      subscriber's scheduler); no later subscription ever subscribes upstream again.
    - **Late subscribers** first receive every element emitted so far (at once, on the
      subscribing thread, inside ``subscribe``), then the live ones; a subscriber that
      arrives after completion (or an error) receives the whole replay and the terminal
      event, with no new request.
    - **Disposal**: when every subscriber has disposed before completion, upstream is
      disposed (the HTTP response is closed). A subscriber arriving after that receives
      what was received and then a :class:`~streamkit.StreamError`: the request is not
      made again, so nothing is billed twice.
    - **Memory**: by default every element (a chunk, with its raw SDK event) is kept
      for late subscribers as long as the shared observable lives. ``buffer_size``
      bounds the replay to the last ``buffer_size`` elements (``0``: no replay).
      Subscribers present when an element arrives always receive it; only late
      subscribers see the bound.

    Thread-safe: elements may arrive on a source thread while others subscribe and
    dispose. Each subscriber receives its elements in order, one call at a time, and
    observers are never called while the shared lock is held.

    Example:
        ```python
        shared = stream.pipe(ops.share_replay())
        shared.pipe(ops.text()).subscribe(print)
        shared.pipe(ops.to_call_response()).subscribe(save)
        ```
    """
    if buffer_size is not None:
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, int):
            raise TypeError(f"buffer_size must be an int or None, not {buffer_size!r}")
        if buffer_size < 0:
            raise ValueError(f"buffer_size must be >= 0, got {buffer_size}")

    def share_replay_(source: Observable[T]) -> Observable[T]:
        shared = SharedReplay(source, buffer_size=buffer_size)

        def subscribe(
            observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            subscription = shared.add(observer)
            shared.connect(scheduler)
            return subscription

        return Observable(subscribe)

    return share_replay_


class _Subscriber(Generic[T]):
    """One downstream observer with its own queue of notifications not yet delivered.

    ``live``: its queue was drained with nothing left, so the upstream thread hands it
    each element directly (:meth:`SharedReplay._on_next`) instead of queueing it.
    """

    __slots__ = ("draining", "live", "observer", "on_next", "pending")

    def __init__(self, observer: abc.ObserverBase[T], pending: deque[Notification[T]]) -> None:
        self.observer = observer
        self.on_next = observer.on_next
        self.pending = pending
        self.draining = False
        self.live = False

    def drain(self, shared: SharedReplay[T]) -> None:
        """Deliver what is pending, one notification at a time, outside the lock.

        Only one thread drains a subscriber at a time (``draining``); a thread that finds
        it draining, or live while the upstream thread delivers an element
        (``shared._delivering``), leaves its notifications in the queue for that thread,
        so each observer sees its elements in order and never from two threads at once.
        A drain that empties the queue of a subscriber still subscribed makes it live.
        """
        lock = shared._lock
        with lock:
            if self.draining:
                return
            if self.live and shared._delivering:
                shared._deferred.append(self)
                return
            self.draining = True
        try:
            while True:
                with lock:
                    if not self.pending:
                        self.draining = False
                        shared._promote(self)
                        return
                    notification = self.pending.popleft()
                notification.accept(self.observer)
        except BaseException:
            with lock:
                self.draining = False
            raise


class SharedReplay(Generic[T]):
    """The state shared by the subscribers of one upstream: the upstream subscription,
    the replay buffer and the subscribers (used by ``share_replay`` and
    ``tee_audio_text``).

    :meth:`add` registers a subscriber (it first receives the replay); :meth:`connect`
    subscribes upstream, once. Upstream is disposed when every subscriber has left
    after connecting and before completion.
    """

    def __init__(self, source: Observable[T], *, buffer_size: int | None = None) -> None:
        self._source = source
        self._lock = threading.Lock()
        self._buffer: deque[T] = deque(maxlen=buffer_size)  # the elements, for late joiners
        self._terminal: Notification[T] | None = None
        # Copy-on-write, so an element is handed to a stable snapshot without copying.
        self._subscribers: tuple[_Subscriber[T], ...] = ()
        # The live subscribers (a subset, copy-on-write): each element goes to them by a
        # direct call from the upstream thread, no queue and no lock per subscriber.
        self._live: tuple[_Subscriber[T], ...] = ()
        self._delivering = False  # the upstream thread is calling the live subscribers
        self._deferred: list[_Subscriber[T]] = []  # live drains waiting for that to end
        self._upstream = SingleAssignmentDisposable()
        self._connected = False
        self._cancelled = False

    @property
    def connected(self) -> bool:
        """Whether upstream has been subscribed."""
        return self._connected

    def add(self, observer: abc.ObserverBase[T]) -> abc.DisposableBase:
        """Register ``observer``: it receives the replay now, then live elements.

        Returns the disposable that removes it (and disposes upstream if it was the last
        subscriber of a stream still running).
        """
        with self._lock:
            pending: deque[Notification[T]] = deque(map(OnNext, self._buffer))
            if self._terminal is not None:
                pending.append(self._terminal)
            elif self._cancelled:
                pending.append(OnError(StreamError(CANCELLED_MESSAGE)))
            subscriber = _Subscriber(observer, pending)
            if self._terminal is None and not self._cancelled:
                self._subscribers = (*self._subscribers, subscriber)
        try:
            subscriber.drain(self)
        except BaseException:
            self._leave(subscriber)  # its subscription is never returned: drop it now
            raise

        def leave() -> None:
            self._leave(subscriber)

        return Disposable(leave)

    def connect(self, scheduler: abc.SchedulerBase | None = None) -> abc.DisposableBase:
        """Subscribe upstream (only the first call does); the returned disposable
        disposes upstream for every subscriber, like ``ConnectableObservable.connect``."""
        with self._lock:
            first = not self._connected
            self._connected = True
        if first:
            self._upstream.disposable = self._source.subscribe(
                self._on_next, self._on_error, self._on_completed, scheduler=scheduler
            )
        return Disposable(self._cancel)

    def _promote(self, subscriber: _Subscriber[T]) -> None:
        """Make a drained subscriber live (under the lock), if it is still subscribed
        and the stream still running."""
        if subscriber.live or self._terminal is not None or self._cancelled:
            return
        if subscriber in self._subscribers:
            subscriber.live = True
            self._live = (*self._live, subscriber)

    # -- upstream events -------------------------------------------------------------
    def _on_next(self, value: T) -> None:
        with self._lock:
            if self._terminal is not None or self._cancelled:
                return
            self._buffer.append(value)
            live = self._live
            queued = self._subscribers if len(live) != len(self._subscribers) else ()
            if queued:  # subscribers still receiving their replay: queue it for them
                notification = OnNext(value)
                queued = tuple(s for s in queued if not s.live)
                for subscriber in queued:
                    subscriber.pending.append(notification)
            self._delivering = bool(live)
        if live:
            delivered = 0
            try:
                for subscriber in live:
                    subscriber.on_next(value)
                    delivered += 1
            except BaseException:
                # The failing observer got it; the ones after it get it on their next
                # drain (the next element or the end), as queued subscribers do.
                self._end_delivery(live[delivered + 1 :], value)
                raise
            self._end_delivery((), value)
        for subscriber in queued:
            subscriber.drain(self)

    def _end_delivery(self, missed: tuple[_Subscriber[T], ...], value: T) -> None:
        """After the direct calls to the live subscribers: queue ``value`` for the
        ``missed`` ones (an observer before them raised), then drain those a terminal
        event or a cancel queued for while the calls ran."""
        with self._lock:
            self._delivering = False
            waiting, self._deferred = self._deferred, []
            if missed:
                for subscriber in missed:
                    subscriber.live = False
                    subscriber.pending.append(OnNext(value))
                self._live = tuple(s for s in self._live if s.live)
        for subscriber in waiting:
            subscriber.drain(self)

    def _on_error(self, error: Exception) -> None:
        self._finish(OnError(error))

    def _on_completed(self) -> None:
        self._finish(OnCompleted())

    def _finish(self, notification: Notification[T]) -> None:
        with self._lock:
            if self._terminal is not None or self._cancelled:
                return
            self._terminal = notification
            subscribers, self._subscribers = self._subscribers, ()
            self._live = ()
            for subscriber in subscribers:
                subscriber.pending.append(notification)
        for subscriber in subscribers:
            subscriber.drain(self)

    # -- leaving ---------------------------------------------------------------------
    def _leave(self, subscriber: _Subscriber[T]) -> None:
        with self._lock:
            subscriber.pending.clear()
            if subscriber not in self._subscribers:
                return
            self._subscribers = tuple(s for s in self._subscribers if s is not subscriber)
            if subscriber.live:
                self._live = tuple(s for s in self._live if s is not subscriber)
            cancel = self._connected and not self._subscribers and self._terminal is None
            if cancel:
                self._cancelled = True
        if cancel:
            logger.debug("share_replay: every subscriber left: disposing its one request")
            self._upstream.dispose()

    def _cancel(self) -> None:
        with self._lock:
            if self._terminal is not None or self._cancelled:
                return
            self._cancelled = True
            subscribers, self._subscribers = self._subscribers, ()
            self._live = ()
            error: Notification[T] = OnError(StreamError(CANCELLED_MESSAGE))
            for subscriber in subscribers:
                subscriber.pending.append(error)
        self._upstream.dispose()
        for subscriber in subscribers:
            subscriber.drain(self)
