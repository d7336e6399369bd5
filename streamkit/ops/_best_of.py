"""``best_of``: run every candidate to the end and keep the best-scored one, stopping
early any candidate whose partial text can no longer win."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SingleAssignmentDisposable

from streamkit._errors import AllFailedError
from streamkit._lifecycle import capture, disposing
from streamkit._models import Chunk, Usage
from streamkit._pipeline import Pipeline
from streamkit.ops._race import any_async
from streamkit.telemetry._operations import begin_operation, ending, subscribe_attempt

__all__ = ["best_of"]


def best_of(
    *streams: Observable[Chunk],
    score: Callable[[str], float],
    n: int | None = None,
    bound: Callable[[str], float] | None = None,
) -> Pipeline[Chunk]:
    """Run all candidates; emit the chunks of the one whose final text scores highest.

    ``sk.best_of(stream, n=4, score=...)`` runs four subscriptions of one cold stream
    (four samples); ``sk.best_of(a, b, c, score=...)`` runs the streams given.

    Args:
        score: ``final text -> number``; the highest wins. Ties go to the earlier
            candidate (in the order given).
        bound: ``partial text -> number``, an upper bound of the score any
            continuation of that text can reach (for instance, when the score
            penalizes length: ``bound = score`` of the text so far). When a
            candidate's bound falls below the best final score so far, it cannot
            win and is disposed at once (its HTTP response closed). Without
            ``bound`` every candidate runs to its end.
        n: with one stream, how many subscriptions of it to run (>= 1).

    Candidates that fail drop out; when all do, :class:`~streamkit.AllFailedError`
    lists each cause. Nothing is emitted before the decision, which is taken when
    every candidate has ended or been stopped; then the winner's chunks are emitted
    and the stream completes. The winner's last usage report includes the usage
    every other candidate reported. Raises ``ValueError`` without candidates,
    ``TypeError`` for a ``score``/``bound`` that is not callable.

    The result is a :class:`~streamkit.Pipeline`, consumed like a stream's (``.pipe(
    ops.to_call_response()).run()``, ``.iter()``, ``.aiter()``).
    """
    if n is not None:
        if len(streams) != 1:
            raise ValueError("n= takes exactly one stream to sample n times")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an int >= 1, got {n!r}")
        streams = streams * n
    if not streams:
        raise ValueError("best_of needs at least one stream")
    for position, stream in enumerate(streams, 1):
        if not isinstance(stream, Observable):
            raise TypeError(
                f"best_of: stream {position} must be an Observable of chunks, "
                f"not {type(stream).__name__}"
            )
    if not callable(score):
        raise TypeError("score must be a callable text -> number")
    if bound is not None and not callable(bound):
        raise TypeError("bound must be a callable partial text -> number")
    sources = list(streams)

    def subscribe(
        observer: abc.ObserverBase[Chunk], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        lock = threading.RLock()
        count = len(sources)
        buffers: list[list[Chunk]] = [[] for _ in sources]
        texts = [""] * count
        usages: list[Usage | None] = [None] * count
        ended = [False] * count
        scores: dict[int, float] = {}
        errors: dict[int, BaseException] = {}
        subscriptions = [SingleAssignmentDisposable() for _ in sources]
        finished = [False]
        # The call's span when telemetry is on (None, and nothing more, when off); each
        # candidate subscribes as an attempt, in the subscriber's context.
        operation = begin_operation("best_of", results=True)
        context = capture()

        def best() -> float | None:
            return max(scores.values()) if scores else None

        def stop(index: int, why: BaseException | None) -> None:
            ended[index] = True
            if why is not None:
                errors[index] = why
                if operation is not None:
                    operation.result(index + 1, "failed", _qualified(why))
            subscriptions[index].dispose()

        def lose(index: int) -> None:
            """Stop a candidate whose bound fell below the best final score."""
            if operation is not None:
                operation.result(index + 1, "lost", "its bound fell below the best score")
            with disposing("lost"):
                stop(index, None)

        def prune() -> None:
            top = best()
            if bound is None or top is None:
                return
            for index in range(count):
                if not ended[index] and bound(texts[index]) < top:
                    lose(index)

        def settle() -> tuple[list[Chunk], Exception | None] | None:
            if finished[0] or not all(ended):
                return None
            finished[0] = True
            if not scores:
                return [], AllFailedError(
                    "best_of", [errors.get(i, _Stopped()) for i in range(count)]
                )
            top = max(scores.values())
            winner = min(i for i, value in scores.items() if value == top)
            if operation is not None:
                operation.result(winner + 1, "won")
                for index in scores:
                    if index != winner:
                        operation.result(index + 1, "lost", f"attempt {winner + 1} scored higher")
            others = [u for i, u in enumerate(usages) if i != winner and u is not None]
            chunks = list(buffers[winner])
            if others:
                extra = others[0]
                for usage in others[1:]:
                    extra = extra + usage
                for position in range(len(chunks) - 1, -1, -1):
                    reported = chunks[position].usage
                    if reported is not None:
                        chunks[position] = chunks[position].model_copy(
                            update={"usage": extra + reported}
                        )
                        break
            return chunks, None

        def deliver(result: tuple[list[Chunk], Exception | None] | None) -> None:
            if result is None:
                return
            chunks, error = result
            if error is not None:
                if operation is not None:
                    operation.finish("error", error=error)
                observer.on_error(error)
                return
            for chunk in chunks:
                observer.on_next(chunk)
            if operation is not None:
                operation.finish("completed")
            observer.on_completed()

        def on_next(index: int, chunk: Chunk) -> None:
            with lock:
                if ended[index]:
                    return
                buffers[index].append(chunk)
                texts[index] += chunk.content
                if chunk.usage is not None:
                    usages[index] = chunk.usage
                try:
                    top = best()
                    if bound is not None and top is not None and bound(texts[index]) < top:
                        lose(index)
                except Exception as error:
                    fail(error)
                    return
                result = settle()
            deliver(result)

        def on_completed(index: int) -> None:
            with lock:
                if ended[index]:
                    return
                ended[index] = True
                try:
                    scores[index] = float(score(texts[index]))
                    prune()
                except Exception as error:
                    fail(error)
                    return
                result = settle()
            deliver(result)

        def on_error(index: int, error: Exception) -> None:
            with lock:
                if ended[index]:
                    return
                stop(index, error)
                result = settle()
            deliver(result)

        def fail(error: Exception) -> None:
            finished[0] = True
            if operation is not None:
                operation.finish("error", error=error)
            for index in range(count):
                stop(index, None)
            observer.on_error(error)

        def dispose() -> None:
            with lock:
                finished[0] = True
                for index in range(count):
                    ended[index] = True
            for subscription in subscriptions:
                subscription.dispose()

        for index, source in enumerate(sources):
            subscriptions[index].disposable = subscribe_attempt(
                context,
                index + 1,
                operation,
                source,
                functools.partial(on_next, index),
                functools.partial(on_error, index),
                functools.partial(on_completed, index),
                scheduler=scheduler,
            )
        disposable = CompositeDisposable(Disposable(dispose), *subscriptions)
        return disposable if operation is None else ending(disposable, operation)

    return Pipeline(Observable(subscribe), is_async=any_async(sources))


def _qualified(error: BaseException) -> str:
    kind = type(error)
    return f"{kind.__module__}.{kind.__qualname__}"


class _Stopped(Exception):
    """Placeholder cause for a candidate stopped without an error of its own."""
