"""``text``: the content deltas of a chunk stream."""

from __future__ import annotations

from collections.abc import Callable

from reactivex import Observable, abc

from streamkit._models import Chunk
from streamkit.ops._fusion import Sink, SubscribeUpstream, fusable

__all__ = ["text"]


def text() -> Callable[[Observable[Chunk]], Observable[str]]:
    """The content deltas of a chunk stream as an ``Observable[str]``.

    Chunks that carry no text (role announcements, tool-call fragments, usage reports)
    are dropped rather than emitted as ``""``. Completion, errors and disposal pass
    through unchanged, so ``text()`` can stand anywhere after the source or after
    ``take_until_match`` and the timeouts.

    Example:
        ```python
        stream.pipe(ops.text()).subscribe(print)
        ```
    """

    def stage(
        observer: Sink[str], subscribe_upstream: SubscribeUpstream[Chunk]
    ) -> abc.DisposableBase:
        def on_next(chunk: Chunk) -> None:
            if chunk.content:
                observer.on_next(chunk.content)

        return subscribe_upstream(on_next, observer.on_error, observer.on_completed)

    return fusable(stage)
