"""``to_call_response``: the terminal reducer."""

from __future__ import annotations

from collections.abc import Callable

from reactivex import Observable, abc

from streamkit.accumulator import Accumulator, ResponseSnapshot
from streamkit.models import CallResponse, Chunk

__all__ = ["to_call_response"]


def to_call_response() -> Callable[
    [Observable[Chunk | ResponseSnapshot]], Observable[CallResponse]
]:
    """Reduce a chunk stream to one :class:`CallResponse`, emitted when it completes.

    Incremental: each chunk is folded in O(its own size); nothing seen is re-joined or
    re-parsed. An error upstream is passed on without a response (a cut-off stream is
    never reported as complete).

    It also ends a pipeline of snapshots (after :func:`~streamkit.ops.accumulate`):
    then nothing is folded twice, and the response is the last snapshot's, which is
    the whole response when that snapshot is the latest (``message_param`` included;
    see :meth:`~streamkit.ResponseSnapshot.to_call_response`).

    Example:
        >>> response = stream.pipe(ops.to_call_response()).run()  # doctest: +SKIP
        >>> response = stream.pipe(  # doctest: +SKIP
        ...     ops.accumulate(), rx.do_action(render), ops.to_call_response()
        ... ).run()
    """

    def to_call_response_(
        source: Observable[Chunk | ResponseSnapshot],
    ) -> Observable[CallResponse]:
        def subscribe(
            observer: abc.ObserverBase[CallResponse],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            accumulator = Accumulator()
            last_snapshot: list[ResponseSnapshot] = []

            def on_next(item: Chunk | ResponseSnapshot) -> None:
                if isinstance(item, ResponseSnapshot):
                    last_snapshot[:] = [item]
                else:
                    accumulator.add(item)

            def on_completed() -> None:
                try:
                    if last_snapshot:
                        response = last_snapshot[0].to_call_response()
                    else:
                        accumulator.finish()
                        response = accumulator.response()
                except Exception as error:
                    observer.on_error(error)
                    return
                observer.on_next(response)
                observer.on_completed()

            return source.subscribe(on_next, observer.on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return to_call_response_
