"""``to_call_response``: the terminal reducer."""

from __future__ import annotations

from collections.abc import Callable

from reactivex import Observable, abc

from streamkit.accumulator import Accumulator
from streamkit.models import CallResponse, Chunk

__all__ = ["to_call_response"]


def to_call_response() -> Callable[[Observable[Chunk]], Observable[CallResponse]]:
    """Reduce a chunk stream to one :class:`CallResponse`, emitted when it completes.

    Incremental: each chunk is folded in O(its own size); nothing seen is re-joined or
    re-parsed. An error upstream is passed on without a response (a cut-off stream is
    never reported as complete).

    Example:
        >>> response = stream.pipe(ops.to_call_response()).run()  # doctest: +SKIP
    """

    def to_call_response_(source: Observable[Chunk]) -> Observable[CallResponse]:
        def subscribe(
            observer: abc.ObserverBase[CallResponse],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            accumulator = Accumulator()

            def on_next(chunk: Chunk) -> None:
                accumulator.add(chunk)

            def on_completed() -> None:
                accumulator.finish()
                try:
                    response = accumulator.response()
                except Exception as error:
                    observer.on_error(error)
                    return
                observer.on_next(response)
                observer.on_completed()

            return source.subscribe(on_next, observer.on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return to_call_response_
