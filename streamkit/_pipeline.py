"""Running and iterating observables the obvious way, sync or async, without hangs.

- :func:`arun` (``await sk.arun(observable)``): the last value, the async form of
  ``observable.run()``;
- :func:`aiter` (``async for x in sk.aiter(observable)``) and :func:`iterate`
  (``for x in sk.iterate(observable)``): the values as they arrive; leaving the loop
  early (``break``, an exception) disposes the subscription, which closes the HTTP
  response;
- :func:`run_blocking`: reactivex's blocking ``run()``, ending the requests before it
  returns (``Stream.run`` and ``Pipeline.run``);
- :class:`Pipeline`: what ``stream.pipe(...)``, ``sk.race``, ``sk.first_match`` and
  ``sk.best_of`` return. Its ``run()`` over an async stream raises
  :class:`~streamkit._errors.StreamError` naming the async way (reactivex's blocking
  ``run()`` inside the running event loop would wait forever for the loop it blocks);
  it iterates with ``pipeline.iter(...)`` / ``pipeline.aiter(...)``, and ``for`` /
  ``list()`` / ``async for`` over it raise :class:`~streamkit._errors.NotIterableError`
  pointing there.

Each of them disposes its subscription on the thread that delivered the terminal
notification, before handing it on: a downstream ``take(n)`` completes before it
disposes upstream, so without this the caller could return before the request's end
(its usage and cost, ``stream.usage``) is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, NoReturn, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import SingleAssignmentDisposable
from reactivex.internal.exceptions import SequenceContainsNoElementsError
from reactivex.scheduler import NewThreadScheduler

from streamkit._errors import NotIterableError, StreamError
from streamkit._lifecycle import disposing

__all__ = ["Pipeline", "aiter", "arun", "iterate", "refuse_blocking_run", "run_blocking"]

T = TypeVar("T")

_DONE = object()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def refuse_blocking_run(is_async: bool, what: str) -> None:
    """Raise :class:`StreamError` where a blocking run of an async stream would hang."""
    if not is_async:
        return
    if _running_loop() is not None:
        raise StreamError(
            f"{what}.run() blocks, and this stream's async client needs the event loop it "
            f"would block (it would wait forever): use `await {what}.aresponse()` or "
            "`await sk.arun(observable)`, or `async for x in sk.aiter(observable)`"
        )
    raise StreamError(
        f"this stream has an async client: {what}.run() needs a running event loop; "
        f"inside `async def` use `await {what}.aresponse()` or `await sk.arun(observable)`"
    )


_run_scheduler = NewThreadScheduler()


def run_blocking(observable: Observable[T], scheduler: abc.SchedulerBase | None = None) -> T:
    """reactivex's ``run()``: subscribe, block until the end, return the last value
    (raise the error; ``SequenceContainsNoElementsError`` when there was none).

    The subscription is disposed as the terminal notification arrives, before this
    returns: every request it made has ended and recorded its usage by then (a
    ``take(n)`` downstream completes before it disposes upstream).
    """
    done = threading.Event()
    last: list[T] = []
    failure: list[Exception] = []
    subscription = SingleAssignmentDisposable()

    def on_error(error: Exception) -> None:
        subscription.dispose()
        failure.append(error)
        done.set()

    def on_completed() -> None:
        subscription.dispose()
        done.set()

    subscription.disposable = observable.subscribe(
        lambda value: last.__setitem__(slice(None), [value]),
        on_error,
        on_completed,
        scheduler=scheduler or _run_scheduler,
    )
    done.wait()
    if failure:
        raise failure[0]
    if not last:
        raise SequenceContainsNoElementsError()
    return last[0]


async def arun(observable: Observable[T]) -> T:
    """Subscribe, await the end, return the last value (the async ``run()``).

    Raises the observable's error, or :class:`StreamError` when it completed without a
    value. Cancelling the awaiting task disposes the subscription.
    """
    last: list[T] = []
    async for value in aiter(observable):
        last[:] = [value]
    if not last:
        raise StreamError("the observable completed without any value")
    return last[0]


async def aiter(observable: Observable[T]) -> AsyncIterator[T]:
    """``async for x in sk.aiter(observable)``: its values as they arrive.

    Works for sync and async streams (a sync stream's reading thread hands values to
    the loop). Leaving the loop early disposes the subscription (closing the response).
    """
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def put(kind: str, value: Any) -> None:
        if _running_loop() is loop:
            inbox.put_nowait((kind, value))
        else:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody listens
                loop.call_soon_threadsafe(inbox.put_nowait, (kind, value))

    subscription = SingleAssignmentDisposable()

    def end(kind: str, value: Any) -> None:
        subscription.dispose()  # the requests end here, before the loop hears of it
        put(kind, value)

    subscription.disposable = observable.subscribe(  # from the loop: an async stream runs on it
        on_next=lambda value: put("next", value),
        on_error=lambda error: end("error", error),
        on_completed=lambda: end("done", None),
    )
    try:
        while True:
            kind, value = await inbox.get()
            if kind == "next":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    except GeneratorExit:  # the loop was left early: `break`, as a pull records it
        with disposing("break"):
            subscription.dispose()
        raise
    finally:
        subscription.dispose()


def iterate(observable: Observable[T]) -> Iterator[T]:
    """``for x in sk.iterate(observable)``: the values of a sync stream's pipeline as
    they arrive; leaving the loop early disposes the subscription (closing the response).

    Over an async stream it raises :class:`StreamError` at once, naming ``sk.aiter``
    (a blocking iteration would wait forever for the event loop it blocks).
    """
    if _is_async_source(observable):
        raise StreamError(
            "this pipeline reads an async client: a blocking `for` would wait forever for "
            "the event loop it blocks; use `async for x in pipeline.aiter()` (or "
            "`stream.aiter(op, ...)`, `sk.aiter(observable)`)"
        )
    return _iterate(observable)


def _iterate(observable: Observable[T]) -> Iterator[T]:
    inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    subscription = SingleAssignmentDisposable()

    def end(kind: str, value: Any) -> None:
        subscription.dispose()  # the requests end here, before the loop hears of it
        inbox.put((kind, value))

    subscription.disposable = observable.subscribe(
        on_next=lambda value: inbox.put(("next", value)),
        on_error=lambda error: end("error", error),
        on_completed=lambda: end("done", _DONE),
    )
    try:
        while True:
            kind, value = inbox.get()
            if kind == "next":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    except GeneratorExit:  # the loop was left early: `break`, as a pull records it
        with disposing("break"):
            subscription.dispose()
        raise
    finally:
        subscription.dispose()


def _is_async_source(observable: Observable[Any]) -> bool:
    return bool(getattr(observable, "is_async", False))


class Pipeline(Observable[T]):
    """An observable built by ``stream.pipe(...)`` (or ``sk.race``, ``sk.first_match``,
    ``sk.best_of``): the same values, plus the obvious ways to consume it (``.run()``,
    ``await .aresponse()``, ``.iter(...)``, ``.aiter(...)``) and clear errors instead of
    hangs for the blocking ones."""

    def __init__(self, observable: Observable[T], *, is_async: bool) -> None:
        self.is_async = is_async
        self._observable = observable
        super().__init__(observable._subscribe_core)

    def pipe(self, *operators: Callable[[Any], Any]) -> Any:
        """Apply operators; an observable result is a :class:`Pipeline` again.

        Anything else is returned as it is: reactivex's own ``await observable`` pipes
        into ``to_future()``, whose result is an ``asyncio.Future``.

        The operators are applied to the observable this pipeline wraps (which this
        pipeline subscribes to as it is), so streamkit operators here fuse with those
        it ends with: ``stream.pipe(a).pipe(b)`` is one run, as ``stream.pipe(a, b)``.
        """
        result: Any = Observable.pipe(self._observable, *operators)
        if isinstance(result, Observable):
            return Pipeline(result, is_async=self.is_async)
        return result

    def run(self, scheduler: abc.SchedulerBase | None = None) -> T:
        """Block until the end and return the last value (sync streams; an async
        stream's pipeline raises :class:`StreamError` naming ``aresponse()``)."""
        refuse_blocking_run(self.is_async, "pipeline")
        return run_blocking(self, scheduler)

    async def aresponse(self) -> T:
        """``await stream.pipe(...).aresponse()``: the last value (see :func:`arun`)."""
        return await arun(self)

    def iter(self, *operators: Callable[[Any], Any]) -> Iterator[Any]:
        """``for x in pipeline.iter(op, ...)``: the values of ``pipeline.pipe(op, ...)``
        (of the pipeline itself without operators) as they arrive; ``break`` disposes
        the subscription (closing the HTTP responses). Sync streams only (async:
        :meth:`aiter`)."""
        return iterate(self.pipe(*operators) if operators else self)

    def aiter(self, *operators: Callable[[Any], Any]) -> AsyncIterator[Any]:
        """``async for x in pipeline.aiter(op, ...)``: the async form of :meth:`iter`
        (sync or async streams)."""
        return aiter(self.pipe(*operators) if operators else self)

    def __iter__(self) -> NoReturn:
        """Refuse ``for`` and ``list()``: an observable is not an iterator."""
        raise NotIterableError(
            "a pipeline is an observable, not an iterable: iterate it with "
            "`for x in pipeline.iter()` or `for x in stream.iter(op, ...)` (async: "
            "`async for x in pipeline.aiter()`, `stream.aiter(op, ...)`; or "
            "`sk.iterate(pipeline)`, `sk.aiter(pipeline)`), or take the last value with "
            "`.run()` / `await .aresponse()`"
        )

    def __aiter__(self) -> NoReturn:
        """Refuse ``async for`` over the pipeline itself, naming :meth:`aiter`."""
        raise NotIterableError(
            "a pipeline is an observable, not an async iterable: iterate it with "
            "`async for x in pipeline.aiter()` (or `stream.aiter(op, ...)`, "
            "`sk.aiter(pipeline)`)"
        )
