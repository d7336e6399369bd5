"""``fallback``: when a stream fails, continue on the next alternative, nothing lost or
delivered twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import SerialDisposable, SingleAssignmentDisposable

from streamkit._errors import AllFailedError, StreamDivergedError
from streamkit._lifecycle import capture
from streamkit._models import Chunk
from streamkit._prefix_match import Delivered
from streamkit._restartable import RestartableStream
from streamkit.providers import is_transient_error
from streamkit.telemetry._operations import begin_operation, ending, subscribe_attempt

__all__ = ["Alternative", "fallback"]

Alternative = Observable[Chunk] | Callable[[str], Observable[Chunk]]
"""A ``Stream`` (or any cold ``Observable[Chunk]``), or ``delivered text -> source``."""


def fallback(
    *alternatives: Alternative, on: Callable[[BaseException], bool] | None = None
) -> Callable[[Observable[Chunk]], Observable[Chunk]]:
    """When the stream fails, go on with the next alternative (another provider or
    model), before or after its first chunk, without repeating or losing output.

    Each alternative is tried once, in order, after the previous one failed with an
    error ``on`` accepts (default: the failing ``Stream``'s provider classification of
    transient errors, else :func:`streamkit.providers.is_transient_error`); an error
    ``on`` rejects propagates at once, unchanged.

    What was delivered stays delivered. When content was delivered, the next
    alternative is asked to continue it: a ``Stream`` through
    ``Stream.continuation(delivered)`` (an assistant prefill for Anthropic, the text
    plus a "continue exactly where you stopped" message for the OpenAI-style chat
    providers, Mistral, Groq, Cohere, Gemini, LiteLLM and Azure), a callable through
    ``alternative(delivered)``; its output is appended. Thinking (reasoning) delivered
    with it, or alone, is the failed attempt's: no other request can reproduce it, so
    the next attempt does not owe it, and its own thinking, if any, follows it (a
    ``Stream`` or callable after thinking alone is asked the original question, the
    callable with ``""``). Otherwise (nothing delivered, tool calls, a refusal or audio
    delivered, or a plain observable alternative) the alternative starts over and must
    reproduce what was delivered, which is matched and cut as by
    ``ops.retry_on_error``: the output is always a prefix of the first attempt
    followed by the continuation, never a repeat (``sk.StreamDivergedError`` when a
    restart contradicts it). Each chunk keeps ``provider`` and ``model`` of the
    attempt that produced it: the spans of the answer, thinking included, are told
    apart by them.

    Usage: each usage report is passed on plus the last usage report of every failed
    attempt, so the final usage is the sum over attempts.

    When the last alternative fails too, :class:`~streamkit.AllFailedError` lists each
    attempt's error. With no alternatives it is ``ValueError``. Disposing disposes the
    current attempt (closing its HTTP response); a failed attempt is already closed.

    Example:
        ```python
        answer = sk.stream("anthropic", "claude-sonnet-4-5", prompt).pipe(
            ops.fallback(sk.stream("openai", "gpt-4o", prompt)), ops.to_call_response()
        ).run()
        ```
    """
    if not alternatives:
        raise ValueError("fallback needs at least one alternative")
    for position, alternative in enumerate(alternatives, 1):
        if not isinstance(alternative, Observable) and not callable(alternative):
            raise TypeError(
                f"alternative {position} must be an Observable of chunks or a callable "
                f"delivered -> source, not {type(alternative).__name__}"
            )
    if on is not None and not callable(on):
        raise TypeError("on must be a callable error -> bool")

    def fallback_(source: Observable[Chunk]) -> Observable[Chunk]:
        attempts: list[Alternative] = [source, *alternatives]

        def subscribe(
            observer: abc.ObserverBase[Chunk], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            delivered = Delivered()
            current = SerialDisposable()
            # Later alternatives subscribe from an error callback: in the subscriber's
            # context, so every attempt reports to the same lifecycle observers.
            context = capture()
            failures: list[BaseException] = []
            state = {"index": -1, "stopped": False}
            # The logical call's span when telemetry is on (None, and nothing more, when off)
            operation = begin_operation("fallback", results=True)

            def stop_with(error: Exception) -> None:
                state["stopped"] = True
                current.dispose()
                if operation is not None:
                    operation.result(state["index"] + 1, "failed", _qualified(error))
                    operation.finish("error", error=error)
                observer.on_error(error)

            def on_next(chunk: Chunk) -> None:
                if state["stopped"]:
                    return
                try:
                    admitted = delivered.admit(chunk)
                except StreamDivergedError as diverged:
                    stop_with(diverged)
                    return
                if admitted is not None:
                    observer.on_next(admitted)

            def on_completed() -> None:
                if state["stopped"]:
                    return
                try:
                    delivered.check_complete()
                except StreamDivergedError as diverged:
                    stop_with(diverged)
                    return
                state["stopped"] = True
                if operation is not None:
                    operation.result(state["index"] + 1, "won")
                    operation.finish("completed")
                observer.on_completed()

            def on_error(error: Exception) -> None:
                if state["stopped"]:
                    return
                failures.append(error)
                if operation is not None:
                    operation.result(state["index"] + 1, "failed", _qualified(error))
                failed = attempts[state["index"]]
                try:
                    accepted = (on or _classifier(failed))(error)
                except Exception as failure:
                    stop_with(failure)
                    return
                if not accepted:
                    stop_with(error)
                elif state["index"] + 1 >= len(attempts):
                    stop_with(AllFailedError("fallback", failures))
                else:
                    delivered.attempt_failed()
                    start_next()

            def start_next() -> None:
                state["index"] += 1
                index = state["index"]
                subscription = SingleAssignmentDisposable()
                current.disposable = subscription
                try:
                    attempt_source, continuing = _attempt_source(attempts[index], delivered)
                    if index > 0:
                        delivered.begin_attempt(continuing)
                    subscription.disposable = subscribe_attempt(
                        context,
                        index + 1,
                        operation,
                        attempt_source,
                        on_next,
                        on_error,
                        on_completed,
                        scheduler=scheduler,
                    )
                except Exception as error:
                    stop_with(error)

            start_next()
            return current if operation is None else ending(current, operation)

        return Observable(subscribe)

    return fallback_


def _qualified(error: BaseException) -> str:
    kind = type(error)
    return f"{kind.__module__}.{kind.__qualname__}"


def _classifier(attempt: Any) -> Callable[[BaseException], bool]:
    return attempt.is_transient if isinstance(attempt, RestartableStream) else is_transient_error


def _attempt_source(
    alternative: Alternative, delivered: Delivered
) -> tuple[Observable[Chunk], bool]:
    """The next attempt's source, and whether it goes on after what was delivered
    (content and thinking) rather than reproduce it."""
    continuing = delivered.continuable()
    if isinstance(alternative, RestartableStream):
        if continuing and delivered.content:
            return alternative.continuation(delivered.content), True
        return alternative, continuing
    if isinstance(alternative, Observable):
        return alternative, False
    made = alternative(delivered.content if continuing else "")
    if not isinstance(made, Observable):
        raise TypeError(
            f"a fallback alternative returned {type(made).__name__}, not an Observable of chunks"
        )
    return made, continuing
