"""``first_chunk_timeout``, ``idle_timeout``, ``total_timeout`` and ``deadlines``: fail a
stream that stalls or runs over its budget."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from reactivex import Observable, abc

from streamkit._deadlines import Deadlines
from streamkit._timeout_watch import checked_seconds, timeout

__all__ = ["deadlines", "first_chunk_timeout", "idle_timeout", "total_timeout"]

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
    return timeout("first chunk", checked_seconds(seconds), _checked(scheduler), idle=False)


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
    ``subscribe`` when that is a virtual-time one (``TestScheduler``); else on the
    asyncio loop of the subscriber (an asyncio scheduler's, or the running loop), so
    the error is delivered on that loop, as an async source's items are; else on
    reactivex's ``TimeoutScheduler`` (a ``threading.Timer`` each, cancelled as soon as
    the stream ends or is disposed, so no thread outlives the stream). Works on any
    item type, anywhere in a pipe.

    Raises ``ValueError`` unless ``seconds`` is finite and > 0, ``TypeError`` for a
    ``seconds`` that is not a number or a ``scheduler`` that is not one.
    """
    return timeout("idle", checked_seconds(seconds), _checked(scheduler), idle=True)


def total_timeout(
    seconds: float, *, scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[T]], Observable[T]]:
    """Fail with :class:`~streamkit.StreamTimeoutError` (``kind="total"``) when the
    stream has not ended within ``seconds`` of subscribing, and dispose upstream,
    which closes the HTTP response. Timers as in :func:`idle_timeout`.

    Raises ``ValueError`` unless ``seconds`` is finite and > 0, ``TypeError`` for a
    ``seconds`` that is not a number or a ``scheduler`` that is not one.
    """
    return timeout("total", checked_seconds(seconds), _checked(scheduler), idle=False, total=True)


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
    budget and keyword arguments, ``ValueError`` for a bad number of seconds and for a
    budget with ``headers``: an operator sees chunks, not when response headers arrive,
    so that deadline holds only per request, given to ``sk.stream(..., deadlines=...)``.
    """
    if budget is None:
        budget = Deadlines(first_chunk=first_chunk, idle=idle, total=total)
    elif not isinstance(budget, Deadlines):
        raise TypeError(f"budget must be a sk.Deadlines, not {type(budget).__name__}")
    elif (first_chunk, idle, total) != (None, None, None):
        raise TypeError("give a Deadlines or keyword arguments, not both")
    if budget.headers is not None:
        raise ValueError(
            f"ops.deadlines cannot honour Deadlines.headers={budget.headers!r}: an operator "
            "does not see when response headers arrive. The headers deadline is honoured "
            "only by sk.stream(..., deadlines=sk.Deadlines(headers=...)), per request; "
            "give ops.deadlines first_chunk, idle and total only"
        )
    return budget.bound(scope="overall")


def _checked(scheduler: abc.SchedulerBase | None) -> abc.SchedulerBase | None:
    if scheduler is not None and not isinstance(scheduler, abc.SchedulerBase):
        raise TypeError(f"scheduler must be a reactivex scheduler, not {scheduler!r}")
    return scheduler
