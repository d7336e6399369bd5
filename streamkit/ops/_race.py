"""``race`` and ``first_match``: run several streams, keep the first that satisfies a
check, dispose the others the instant it is decided."""

from __future__ import annotations

from collections.abc import Callable

from reactivex import Observable, abc

from streamkit._models import Chunk
from streamkit._pipeline import Pipeline
from streamkit.ops._contest import Contest

__all__ = ["first_match", "race"]


def race(
    *streams: Observable[Chunk], until: Callable[[str], bool] | None = None
) -> Pipeline[Chunk]:
    """Subscribe to every stream at once; emit the chunks of the winner only.

    With ``until`` (``text so far -> bool``), the winner is the first stream whose
    content text so far satisfies it: at that instant every other stream is disposed
    (its HTTP response closed), the winner's chunks so far are emitted, then the rest
    of its chunks as they come. Without ``until``, the winner is the first stream to
    complete (its chunks are emitted then).

    Defined cases:
        - ties (two streams deciding at once, as at one virtual time): the one whose
          event is handled first wins, which in virtual time is the earlier stream
          given; no chunk of the other is ever emitted.
        - a stream that fails, or (with ``until``) completes without a match, drops
          out (its error is kept; a non-matching one gets ``NoMatchError``); when all
          drop out, :class:`~streamkit.AllFailedError` lists each cause in the order
          the streams were given.
        - after the decision, the winner's own error or completion is the result.
        - no streams: ``ValueError``.

    The winner's usage reports include the last usage each loser reported before it
    was disposed (what the losers cost, as far as the providers said).

    The result is a :class:`~streamkit.Pipeline`, consumed like a stream's:
    ``.pipe(ops.to_call_response()).run()`` (``await ... .aresponse()`` with async
    clients), ``for chunk in sk.race(...).iter()``, ``async for chunk in
    sk.race(...).aiter()``.

    Example:
        ```python
        answer = sk.race(fast, careful, until=lambda text: "ANSWER:" in text)
        ```
    """
    return _race(streams, until, "race")


def _race(
    streams: tuple[Observable[Chunk], ...], until: Callable[[str], bool] | None, operator: str
) -> Pipeline[Chunk]:
    sources = _checked_streams("race", streams)
    if until is not None and not callable(until):
        raise TypeError("until must be a callable text -> bool")

    def subscribe(
        observer: abc.ObserverBase[Chunk], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        contest = Contest("race", observer, until, complete_wins=until is None, operator=operator)
        for source in sources:
            contest.start(source, scheduler)
        return contest.disposable

    return Pipeline(Observable(subscribe), is_async=any_async(sources))


def first_match(*streams: Observable[Chunk], until: Callable[[str], bool]) -> Pipeline[Chunk]:
    """:func:`race` with a required ``until``: the first stream whose text satisfies it
    wins; a stream that completes without a match drops out.

    Raises ``TypeError`` without a callable ``until``, ``ValueError`` without streams.
    """
    if not callable(until):
        raise TypeError("first_match needs until, a callable text -> bool")
    return _race(streams, until, "first_match")


def _checked_streams(name: str, streams: tuple[object, ...]) -> list[Observable[Chunk]]:
    if not streams:
        raise ValueError(f"{name} needs at least one stream")
    for position, stream in enumerate(streams, 1):
        if not isinstance(stream, Observable):
            raise TypeError(
                f"{name}: stream {position} must be an Observable of chunks, "
                f"not {type(stream).__name__}"
            )
    return list(streams)  # type: ignore[arg-type]


def any_async(sources: list[Observable[Chunk]]) -> bool:
    """Whether any source is an async stream (so the result must not block the loop)."""
    return any(getattr(source, "is_async", False) for source in sources)
