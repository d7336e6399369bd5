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

    It also ends a pipeline of snapshots (after :func:`~streamkit.ops.accumulate`),
    without folding the stream a second time: the response is the last snapshot's
    (:meth:`~streamkit.ResponseSnapshot.ended_response`). When ``accumulate`` saw the
    stream complete and its final snapshot arrives, that is the whole response,
    ``message_param`` included. When the snapshots were cut short after ``accumulate``
    (``take``, or ``take_until_match`` placed after it) or filtered, the last one that
    arrived is the response, its open tool calls completed and ``message_param`` left
    empty: put ``take_until_match`` before ``accumulate`` to keep it.

    Example:
        ```python
        response = stream.pipe(ops.to_call_response()).run()
        response = stream.pipe(
            ops.accumulate(), rx.do_action(render), ops.to_call_response()
        ).run()
        ```
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
                        response = last_snapshot[0].ended_response()
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
