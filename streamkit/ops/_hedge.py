"""``hedge``: when the first content is slow to come, start an alternative as well;
the first to deliver content wins, every loser is disposed at once."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

from reactivex import Observable, abc
from reactivex.disposable import SerialDisposable

from streamkit._models import Chunk
from streamkit._timers import timer_scheduler
from streamkit.ops._contest import Contest

__all__ = ["hedge"]


def hedge(
    *alternatives: Observable[Chunk],
    after: float,
    max_extra: int = 1,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[Chunk]], Observable[Chunk]]:
    """If no content arrives within ``after`` seconds, start another request as well.

    The source is subscribed at once. Each time ``after`` seconds pass without a first
    content chunk from any running request, one more is started (up to ``max_extra``
    of them): the next of ``alternatives``, or another subscription of the source
    itself when none are given (a cold ``Stream``: one more identical request). The
    first request whose text becomes non-empty wins: the others are disposed in that
    instant (their HTTP responses closed), its chunks so far are emitted and the rest
    follow. No chunk of a loser is ever emitted.

    A request that fails before any content drops out; if every running one has
    failed and an extra may still start, it starts at once; when all have failed,
    :class:`~streamkit.AllFailedError` lists each cause. After the decision the
    winner's own error or completion is the result. A request that completes before
    any other delivers content wins too (an answer without text, such as a tool call).

    Usage: the winner's usage reports include the last usage each loser reported
    before it was disposed.

    Args:
        alternatives: the requests to start, in order (default: the source again).
        after: seconds without content before each extra request, > 0.
        max_extra: most extra requests, >= 0 (0 is the source alone).
        scheduler: where ``after`` is timed (a ``TestScheduler`` in tests; default,
            as every streamkit timer: the subscriber's virtual-time scheduler, else
            the asyncio loop it runs on, else a timer thread, cancelled on dispose).

    Raises ``TypeError``/``ValueError`` for bad arguments.
    """
    if isinstance(after, bool) or not isinstance(after, (int, float)):
        raise TypeError(f"after must be a number of seconds, not {after!r}")
    if not math.isfinite(after) or after <= 0:
        raise ValueError(f"after must be finite and > 0 seconds, got {after!r}")
    if isinstance(max_extra, bool) or not isinstance(max_extra, int) or max_extra < 0:
        raise ValueError(f"max_extra must be an int >= 0, got {max_extra!r}")
    for position, alternative in enumerate(alternatives, 1):
        if not isinstance(alternative, Observable):
            raise TypeError(
                f"hedge: alternative {position} must be an Observable of chunks, "
                f"not {type(alternative).__name__}"
            )
    if scheduler is not None and not isinstance(scheduler, abc.SchedulerBase):
        raise TypeError(f"scheduler must be a reactivex scheduler, not {scheduler!r}")

    def hedge_(source: Observable[Chunk]) -> Observable[Chunk]:
        extras = list(alternatives[:max_extra]) if alternatives else [source] * max_extra

        def subscribe(
            observer: abc.ObserverBase[Chunk], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            queue = list(extras)
            timer = SerialDisposable()
            lock = threading.Lock()

            def start_next() -> bool:
                with lock:
                    if not queue or contest.decided or contest.disposed:
                        return False
                    next_source = queue.pop(0)
                contest.start(next_source, scheduler_)
                arm()
                return True

            def on_timer(_scheduler: abc.SchedulerBase, _state: object = None) -> None:
                start_next()

            def arm() -> None:
                if queue:
                    timers = timer_scheduler(scheduler, scheduler_)
                    timer.disposable = timers.schedule_relative(after, on_timer)
                else:
                    timer.dispose()

            contest = Contest(
                "hedge",
                observer,
                bool,
                complete_wins=True,
                on_all_down=start_next,
            )
            contest.disposable.add(timer)
            contest.start(source, scheduler_)
            arm()
            return contest.disposable

        return Observable(subscribe)

    return hedge_
