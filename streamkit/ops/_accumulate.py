"""``accumulate``: the running response after every chunk."""

from __future__ import annotations

from collections.abc import Callable

from reactivex import Observable, abc

from streamkit._accumulator import Accumulator, ResponseSnapshot
from streamkit._models import Chunk
from streamkit.ops._fusion import Sink, SubscribeUpstream, fusable

__all__ = ["accumulate"]


def accumulate() -> Callable[[Observable[Chunk]], Observable[ResponseSnapshot]]:
    """After every chunk, emit the response so far as a :class:`ResponseSnapshot`.

    A snapshot reads like a :class:`~streamkit.CallResponse` (``content``,
    ``tool_calls`` with partial arguments, ``usage``, ``finish_reason``, ...) and
    ``snapshot.to_call_response()`` turns it into one. It is not a ``CallResponse``
    itself on purpose: building a pydantic response per chunk would join the whole
    text per chunk, O(n²) over the stream. A snapshot costs O(1) to build (plus one
    entry per tool call) and joins its text only when read, from the accumulator's
    append-only pieces, so the pipeline stays linear in the stream's length however
    many snapshots nobody reads.

    One snapshot per chunk, in order. When the stream completes with tool calls still
    open (a stream cut short by ``take_until_match``, or a provider that never marks
    the end of a call), one more snapshot is emitted with them completed, so the last
    snapshot always holds what ``to_call_response()`` would return, and
    ``ops.to_call_response()`` after ``accumulate()`` gives the response from it
    without folding the stream a second time. An error upstream is
    passed on as is.

    Each subscription folds its own accumulator: two subscribers never share state.

    Example:
        ```python
        for snapshot in stream.iter(ops.accumulate()):
            render(snapshot.content)
        ```
    """

    def stage(
        observer: Sink[ResponseSnapshot], subscribe_upstream: SubscribeUpstream[Chunk]
    ) -> abc.DisposableBase:
        accumulator = Accumulator()

        def on_next(chunk: Chunk) -> None:
            try:
                accumulator.add(chunk)
            except Exception as error:
                observer.on_error(error)
                return
            observer.on_next(accumulator.snapshot())

        def on_completed() -> None:
            if accumulator.finish():
                observer.on_next(accumulator.snapshot())
            observer.on_completed()

        return subscribe_upstream(on_next, observer.on_error, on_completed)

    return fusable(stage)
