"""Operator fusion: consecutive streamkit operators subscribe upstream as one observer.

Written out, a reactivex operator is ``Observable(subscribe)`` whose ``subscribe``
calls ``source.subscribe(on_next, on_error, on_completed)``, and each such call wraps
the callbacks in an ``AutoDetachObserver``: a chain of N operators is N observers, and
every item pays one more ``on_next`` call per operator on its way through.

A fusable operator is written as a *stage* instead: ``stage(observer,
subscribe_upstream)`` is the body of that ``subscribe``, with ``source.subscribe(...)``
replaced by ``subscribe_upstream(on_next, on_error, on_completed)``. :func:`fusable`
turns a stage into an ordinary ``Observable -> Observable`` operator. Applied to an
observable another fusable operator made (a :class:`FusedObservable`), it appends its
stage to that observable's run instead of nesting: ``stream.pipe(ops.take_until_match(p),
ops.accumulate(), ops.to_call_response())`` subscribes to the stream once, and a chunk
goes through the three stages as three plain calls (RxJava and Reactor call this
macro-fusion). Any other operator (reactivex's ``map`` or ``do_action``, a timeout,
``share_replay``) gets an ordinary observable to subscribe to and ends the run; the
next fusable operator starts a new one.

Behaviour is the unfused one, notification for notification. The observer subscribed
to the run and the one the first stage subscribes to the source are the same
``AutoDetachObserver`` s as before; between two stages a :class:`_Seam` does what the
``AutoDetachObserver`` there did, except on the per-item path: it drops an
``on_error`` or ``on_completed`` arriving after it stopped (a terminal passed, or it was
disposed), disposes upstream after passing a terminal on, and turns an exception
raised while subscribing upstream into ``on_error``. Its ``on_next`` is the next
stage's own function. That is safe for stages that keep the rule below: a seam stops
only by being disposed or by passing a terminal, and either way it disposes everything
upstream of it (a stage's subscription disposes its upstream), so after it stopped
nothing more arrives from upstream but what a stage was emitting at that moment: a
terminal behind its item, which the seam drops. No stage sees an item or a terminal
the unfused pipeline would have dropped (the property test in
``tests/ops/test_fusion.py`` compares the two on random pipelines).

The rule for a fusable stage: it emits only from inside its own callbacks or its
subscription (never from a timer or another thread), at most one item per call,
followed by at most one terminal; it passes a terminal on (or has already emitted
one); and disposing its subscription disposes upstream. (``partial_tool_args``, which
can emit several items for one chunk, and the operators that subscribe on timers or
several times, are not fusable.)

:data:`ENABLED` (``False``: every fusable operator builds its own ``Observable``, as
before fusion) is for the benchmark (``bench/bench_fusion.py``) and for the tests that
compare fused with unfused pipelines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeAlias, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import SingleAssignmentDisposable

__all__ = ["ENABLED", "FusedObservable", "Sink", "Stage", "SubscribeUpstream", "fusable"]

ENABLED = True
"""Whether fusable operators fuse (read when an operator is applied to an observable)."""

InT = TypeVar("InT")
OutT = TypeVar("OutT")
T_contra = TypeVar("T_contra", contravariant=True)
InT_contra = TypeVar("InT_contra", contravariant=True)
OutT_co = TypeVar("OutT_co", covariant=True)


class Sink(Protocol[T_contra]):
    """Where a stage sends its notifications: the next stage (through a seam) or the
    observer subscribed to the run."""

    def on_next(self, value: T_contra, /) -> None: ...

    def on_error(self, error: Exception, /) -> None: ...

    def on_completed(self) -> None: ...


SubscribeUpstream: TypeAlias = Callable[
    [Callable[[InT], None], Callable[[Exception], None], Callable[[], None]],
    abc.DisposableBase,
]
"""``subscribe_upstream(on_next, on_error, on_completed)``: subscribe the stage's
callbacks to what is upstream of it; the disposable disposes that."""


class Stage(Protocol[InT_contra, OutT_co]):
    """One subscription of an operator: given where to send its notifications and how to
    subscribe upstream, set up its state, subscribe, and return the subscription."""

    def __call__(
        self, observer: Sink[OutT_co], subscribe_upstream: SubscribeUpstream[InT_contra], /
    ) -> abc.DisposableBase: ...


def fusable(stage: Stage[InT, OutT]) -> Callable[[Observable[InT]], Observable[OutT]]:
    """The ``Observable -> Observable`` operator running ``stage``, fused with the
    fusable operators applied before it."""

    def operator(source: Observable[InT]) -> Observable[OutT]:
        if not ENABLED:
            return _unfused(source, stage)
        if isinstance(source, FusedObservable):
            return FusedObservable(source.source, (*source.stages, stage))
        return FusedObservable(source, (stage,))

    return operator


def _unfused(source: Observable[InT], stage: Stage[InT, OutT]) -> Observable[OutT]:
    """``stage`` as an operator of its own (what every operator was before fusion)."""

    def subscribe(
        observer: abc.ObserverBase[OutT], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        def subscribe_upstream(
            on_next: Callable[[InT], None],
            on_error: Callable[[Exception], None],
            on_completed: Callable[[], None],
        ) -> abc.DisposableBase:
            return source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

        return stage(observer, subscribe_upstream)

    return Observable(subscribe)


class FusedObservable(Observable[OutT]):
    """``source`` seen through a run of fused ``stages`` (the first one is applied
    first); subscribing subscribes to ``source`` once, with the stages' composed
    callbacks. Immutable: applying another fusable operator makes a new one."""

    def __init__(self, source: Observable[Any], stages: tuple[Stage[Any, Any], ...]) -> None:
        super().__init__()
        self.source = source
        self.stages = stages

    def _subscribe_core(
        self, observer: abc.ObserverBase[OutT], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        last = len(self.stages) - 1
        return self.stages[last](observer, _Upstream(self, last, scheduler))


class _Upstream:
    """How stage ``index`` of ``run`` subscribes to what is before it: the source, or
    the stage before it through a seam. (An object rather than a closure calling
    itself, which would make each subscription a reference cycle.)"""

    __slots__ = ("_index", "_run", "_scheduler")

    def __init__(
        self, run: FusedObservable[Any], index: int, scheduler: abc.SchedulerBase | None
    ) -> None:
        self._run = run
        self._index = index
        self._scheduler = scheduler

    def __call__(
        self,
        on_next: Callable[[Any], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
    ) -> abc.DisposableBase:
        run, index = self._run, self._index
        if index == 0:
            return run.source.subscribe(on_next, on_error, on_completed, scheduler=self._scheduler)
        seam = _Seam(on_next, on_error, on_completed)
        try:
            subscription = run.stages[index - 1](seam, _Upstream(run, index - 1, self._scheduler))
        except Exception as error:
            if not seam.fail(error):
                raise
        else:
            seam.upstream.disposable = subscription
        return seam


class _Seam(abc.DisposableBase, Generic[InT]):
    """Where two fused stages meet: reactivex's ``AutoDetachObserver`` without its
    ``on_next`` hop (see the module's docstring). Disposing it disposes upstream."""

    def __init__(
        self,
        on_next: Callable[[InT], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
    ) -> None:
        self.on_next = on_next  # the next stage's own function: no call in between
        self._on_error = on_error
        self._on_completed = on_completed
        self.is_stopped = False
        self.upstream = SingleAssignmentDisposable()

    def on_error(self, error: Exception) -> None:
        if self.is_stopped:
            return
        self.is_stopped = True
        try:
            self._on_error(error)
        finally:
            self.dispose()

    def on_completed(self) -> None:
        if self.is_stopped:
            return
        self.is_stopped = True
        try:
            self._on_completed()
        finally:
            self.dispose()

    def fail(self, error: Exception) -> bool:
        """An exception raised while subscribing upstream: ``on_error`` (without
        disposing, as reactivex does), unless stopped already."""
        if self.is_stopped:
            return False
        self.is_stopped = True
        self._on_error(error)
        return True

    def dispose(self) -> None:
        self.is_stopped = True
        self.upstream.dispose()
