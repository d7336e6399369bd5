"""``to_call_response``: the terminal reducer."""

from __future__ import annotations

from collections.abc import Callable

from reactivex import Observable, abc

from streamkit._accumulator import Accumulator, ResponseSnapshot
from streamkit._ledger import EndCollector, requests_of, total_usage
from streamkit._lifecycle import observing
from streamkit._models import CallResponse, Chunk
from streamkit.ops._fusion import Sink, SubscribeUpstream, fusable

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

    def stage(
        observer: Sink[CallResponse],
        subscribe_upstream: SubscribeUpstream[Chunk | ResponseSnapshot],
    ) -> abc.DisposableBase:
        accumulator = Accumulator()
        last_snapshot: list[ResponseSnapshot] = []
        requests = EndCollector()

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
            observer.on_next(_billed(response, requests))
            observer.on_completed()

        with observing(requests):
            return subscribe_upstream(on_next, observer.on_error, on_completed)

    return fusable(stage)


def _billed(response: CallResponse, requests: EndCollector) -> CallResponse:
    """The response with the requests it was made from (each priced at its own model:
    ``CallResponse.cost``), and their usage when they ended before the provider's final
    figure (an early stop: estimated or mixed) or were several (retried: every attempt
    billed)."""
    ends = requests.ends
    if not ends:  # a share_replay subscriber that did not connect: nothing to add
        return response
    update: dict[str, object] = {"requests": requests_of(ends)}
    usage = total_usage(ends)
    single_report = len(ends) == 1 and usage is not None and usage.source == "reported"
    if usage is not None and usage != response.usage and not single_report:
        update["usage"] = usage  # (a single report is the provider's figure, as folded)
    return response.model_copy(update=update)
