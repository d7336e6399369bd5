"""``retry_on_error``: a new request on a transient failure, nothing delivered twice."""

from __future__ import annotations

import contextlib
import email.utils
import logging
import random
import time
from collections.abc import Callable
from typing import Any, Literal

from reactivex import Observable, Observer, abc
from reactivex.disposable import SerialDisposable, SingleAssignmentDisposable

from streamkit._errors import StreamDivergedError
from streamkit._lifecycle import attempt as lifecycle_attempt
from streamkit._lifecycle import capture
from streamkit._models import Chunk
from streamkit._prefix_match import Delivered
from streamkit._restartable import RestartableStream
from streamkit._timers import timer_scheduler
from streamkit.providers import is_transient_error
from streamkit.telemetry._operations import Operation, begin_operation, ending

__all__ = ["Backoff", "Continuation", "retry_after_seconds", "retry_on_error"]

Backoff = float | Callable[[int], float]
"""Initial delay in seconds (doubled after each failure), or ``failed attempt -> seconds``."""

Continuation = Literal["continue"] | Callable[[str], Observable[Chunk]]
"""``"continue"`` (the source ``Stream`` builds the request), or ``delivered text -> source``."""

logger = logging.getLogger(__name__)


def retry_after_seconds(error: BaseException) -> float | None:
    """The delay a provider asked for in the error's HTTP response, in seconds.

    Reads ``retry-after-ms`` (OpenAI, Anthropic) and ``retry-after`` (seconds or an
    HTTP date) from the response headers, as the provider SDKs expose them:
    ``error.response.headers`` (openai, anthropic, groq, google-genai) or
    ``error.headers`` (cohere, mistralai); ``None`` when there is none.
    """
    headers = _response_headers(error)
    if headers is None:
        return None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        with contextlib.suppress(ValueError):
            return max(0.0, float(milliseconds) / 1000)
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _response_headers(error: BaseException) -> dict[str, Any] | None:
    """The error's HTTP response headers, names lower-cased (a plain dict from cohere)."""
    response_headers = getattr(getattr(error, "response", None), "headers", None)
    for headers in (response_headers, getattr(error, "headers", None)):
        if headers is not None and hasattr(headers, "items"):
            return {str(name).lower(): value for name, value in headers.items()}
    return None


def retry_on_error(
    max_attempts: int = 3,
    *,
    retry_on: Callable[[BaseException], bool] | None = None,
    backoff: Backoff = 0.5,
    max_backoff: float = 60.0,
    jitter: float = 0.5,
    scheduler: abc.SchedulerBase | None = None,
    continuation: Continuation | None = None,
) -> Callable[[Observable[Chunk]], Observable[Chunk]]:
    """On a transient failure, make a new request; never deliver a chunk twice.

    The source must be cold (each subscription is a new request, as a ``Stream`` is).
    When an attempt fails with an error ``retry_on`` accepts, the operator waits, then
    subscribes again; after ``max_attempts`` attempts in total the last error
    propagates, with a note listing the attempts (its type is kept: an SDK error stays
    the SDK's error). Errors ``retry_on`` rejects propagate at once.

    Args:
        max_attempts: attempts in total, at least 1.
        retry_on: ``error -> bool``, which errors are worth a new request. Default: the
            source ``Stream``'s provider classification, else
            :func:`streamkit.providers.is_transient_error`: connection resets and read
            errors, ``sk.IncompleteStreamError``, HTTP 408/409/429/5xx/529 and
            mid-stream overload or server error events (Anthropic's
            ``overloaded_error``); not 400, 401, 403, 404, 422.
        backoff: the delay after the first failure in seconds, doubled after each
            further one; or a function of the failed attempt's number (1, 2, ...)
            returning seconds.
        max_backoff: the longest delay. A ``retry-after`` longer than this ends the
            retries (the error propagates): retrying sooner than the provider allows
            only fails again.
        jitter: the share of each delay drawn at random: the delay is uniform in
            ``[d * (1 - jitter), d]``, where ``d`` is the backoff (capped by
            ``max_backoff``), then raised to the provider's ``retry-after`` (or
            ``retry-after-ms``) if that is longer. 0 gives exact delays.
        scheduler: where the delays are timed (a ``TestScheduler`` in tests); the next
            attempt is subscribed from there, so with an async client it must run its
            actions on the event loop. Default: the subscriber's virtual-time
            scheduler, else the asyncio loop the failing attempt ran on (async
            clients), else a ``TimeoutScheduler`` (a timer thread, cancelled on
            disposal): the rule every streamkit timer follows.
        continuation: when the failed attempts delivered text, the new request asks the
            model to continue it instead of starting over. ``"continue"`` needs the
            ``Stream`` itself as the source (``Stream.continuation(delivered)``: an
            assistant prefill for Anthropic, the text and a "continue exactly where
            you stopped" message for OpenAI-style chat); a callable gets the
            delivered text and returns the new (cold) source. The continuation's
            output is appended to what was delivered (leading whitespace that repeats
            the delivered text's trailing whitespace is dropped). Used only when
            content alone was delivered; after thinking, tool calls or audio the
            original request is retried with matching.

    Without continuation, a new attempt must reproduce what was delivered: content,
    thinking, refusal, each tool call's name and arguments, audio and transcript are
    matched against the delivered text, and only what follows it is passed on (a
    chunk straddling the end is cut to its new part; chunks that only repeat are
    dropped; usage and finish chunks pass). If the attempt differs, or ends or sends
    new output before it has reproduced everything, ``sk.StreamDivergedError``
    carries the delivered text and the retry's. Tool-call ids keep the first
    attempt's (providers assign new ones to a retry). A trimmed chunk keeps the raw
    SDK event in ``chunk.chunk``, repeated text included.

    Usage: each usage report of an attempt is passed on plus the sum of the last
    usage report of every failed attempt, so the final usage (and
    ``to_call_response()``'s) is what the provider reported for all attempts
    together. A failed attempt that reported nothing before it broke (OpenAI reports
    usage only at the end of a stream) adds nothing: its cost is unknown.

    Disposing cancels the pending delay or the current attempt (closing its HTTP
    response).

    Example:
        ```python
        response = stream.pipe(
            ops.retry_on_error(3, backoff=1.0), ops.to_call_response()
        ).run()
        ```

    Raises ``TypeError``/``ValueError`` for bad arguments, and ``TypeError`` when
    ``continuation="continue"`` is applied to a source that is not a ``Stream``.
    """
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
        raise TypeError(f"max_attempts must be an int, not {type(max_attempts).__name__}")
    if max_attempts < 1:
        raise ValueError(f"max_attempts counts every attempt and must be >= 1, got {max_attempts}")
    if retry_on is not None and not callable(retry_on):
        raise TypeError("retry_on must be a callable error -> bool")
    if not callable(backoff):
        _check_seconds("backoff", backoff)
    _check_seconds("max_backoff", max_backoff)
    if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not 0 <= jitter <= 1:
        raise ValueError(f"jitter must be a number between 0 and 1, got {jitter!r}")
    if scheduler is not None and not isinstance(scheduler, abc.SchedulerBase):
        raise TypeError(f"scheduler must be a reactivex scheduler, not {scheduler!r}")
    if continuation is not None and continuation != "continue" and not callable(continuation):
        raise ValueError(
            "continuation must be 'continue' or a callable delivered -> source, "
            f"not {continuation!r}"
        )

    def delay_after(failed_attempt: int, error: BaseException) -> float | None:
        base = backoff(failed_attempt) if callable(backoff) else backoff * 2 ** (failed_attempt - 1)
        delay = min(max_backoff, max(0.0, float(base)))
        delay *= 1 - jitter * random.random()
        asked = retry_after_seconds(error)
        if asked is not None:
            if asked > max_backoff:
                return None
            delay = max(delay, asked)
        return delay

    def retry_on_error_(source: Observable[Chunk]) -> Observable[Chunk]:
        continue_from = _continuation_source(source, continuation)
        is_retryable = retry_on or (
            source.is_transient if isinstance(source, RestartableStream) else is_transient_error
        )

        def subscribe(
            observer: abc.ObserverBase[Chunk], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            delivered = Delivered()
            current = SerialDisposable()
            failures: list[Exception] = []
            attempt = 0
            stopped = False
            # Later attempts subscribe from a timer: in the subscriber's context, so they
            # report to the same lifecycle observers (ops.on_usage, a ledger, telemetry).
            context = capture()
            # The logical call's span when telemetry is on (None, and nothing more, when off)
            operation = begin_operation("retry_on_error", *_names(source))

            def stop_with(error: Exception) -> None:
                nonlocal stopped
                stopped = True
                current.dispose()
                if operation is not None:
                    operation.finish("error", error=error)
                observer.on_error(error)

            def on_next(chunk: Chunk) -> None:
                if stopped:
                    return
                try:
                    admitted = delivered.admit(chunk)
                except StreamDivergedError as diverged:
                    stop_with(diverged)
                    return
                if admitted is not None:
                    observer.on_next(admitted)

            def on_completed() -> None:
                if stopped:
                    return
                try:
                    delivered.check_complete()
                except StreamDivergedError as diverged:
                    stop_with(diverged)
                    return
                if operation is not None:
                    operation.finish("completed")
                observer.on_completed()

            def on_error(error: Exception) -> None:
                if stopped:
                    return
                failures.append(error)
                try:
                    transient = is_retryable(error)
                    may_retry = transient and attempt < max_attempts
                    delay = delay_after(attempt, error) if may_retry else None
                except Exception as failure:
                    stop_with(failure)
                    return
                if delay is None:
                    if len(failures) > 1 or (transient and not may_retry):
                        _add_note(error, _attempts_note(failures, max_attempts))
                    if may_retry:
                        _add_note(
                            error,
                            "streamkit.ops.retry_on_error: not retried, the provider's "
                            f"retry-after is longer than max_backoff={max_backoff}",
                        )
                    stop_with(error)
                    return
                delivered.attempt_failed()
                logger.debug(
                    "retry_on_error: attempt %d of %d failed (%s), next attempt in %.3f s",
                    attempt,
                    max_attempts,
                    type(error).__qualname__,
                    delay,
                )
                if operation is not None:
                    operation.retrying(attempt, error, delay)
                timer = SingleAssignmentDisposable()
                current.disposable = timer
                timer.disposable = timer_scheduler(scheduler, scheduler_).schedule_relative(
                    delay, lambda _scheduler, _state: start_attempt()
                )

            def start_attempt() -> None:
                nonlocal attempt
                attempt += 1
                subscription = SingleAssignmentDisposable()
                current.disposable = subscription
                try:
                    attempt_source, continuing = source, False
                    if continue_from is not None and delivered.only_content():
                        attempt_source, continuing = continue_from(delivered.content), True
                    if attempt > 1:
                        delivered.begin_attempt(continuing)
                    subscription.disposable = context.copy().run(
                        _subscribe_attempt,
                        attempt,
                        attempt_source,
                        Observer(on_next, on_error, on_completed),
                        scheduler_,
                        operation,
                    )
                except Exception as error:  # raised on a timer thread, it would be lost
                    stop_with(error)

            start_attempt()
            if operation is None:
                return current
            return ending(current, operation)

        return Observable(subscribe)

    return retry_on_error_


def _subscribe_attempt(
    number: int,
    source: Observable[Chunk],
    observer: abc.ObserverBase[Chunk],
    scheduler: abc.SchedulerBase | None,
    operation: Operation | None,
) -> abc.DisposableBase:
    with lifecycle_attempt(number):
        if operation is None:
            return source.subscribe(observer, scheduler=scheduler)
        with operation.attempt(number):  # the attempt's request span: a child of the call's
            return source.subscribe(observer, scheduler=scheduler)


def _names(source: Observable[Chunk]) -> tuple[str | None, str | None]:
    """The provider and model of a ``Stream`` source (to name the call's span)."""
    if isinstance(source, RestartableStream):
        return source.provider, source.model_name
    return None, None


def _check_seconds(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0 seconds, got {value}")


def _continuation_source(
    source: Observable[Chunk], continuation: Continuation | None
) -> Callable[[str], Observable[Chunk]] | None:
    if continuation is None:
        return None
    if continuation == "continue":
        if not isinstance(source, RestartableStream):
            raise TypeError(
                "retry_on_error(continuation='continue') must be applied to the Stream "
                "itself (put it first in the pipe), or given a callable delivered -> source"
            )
        return source.continuation
    return continuation


def _attempts_note(failures: list[Exception], max_attempts: int) -> str:
    kinds = ", ".join(type(error).__name__ for error in failures)
    return (
        f"streamkit.ops.retry_on_error: {len(failures)} attempt(s) of {max_attempts} "
        f"failed ({kinds})"
    )


def _add_note(error: BaseException, note: str) -> None:
    add_note = getattr(error, "add_note", None)  # Python 3.11+
    if add_note is not None:
        add_note(note)
