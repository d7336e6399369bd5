"""One record of how each stream subscription ended, produced by the source that owns it.

Every request streamkit makes (a subscription to a :class:`~streamkit.Stream`, or one
iteration of it) goes through a :class:`Recorder`, created by
:class:`~streamkit._source.SyncPull` / :class:`~streamkit._source.AsyncPull`. The recorder
sees the subscription start, the HTTP headers, every chunk and the end, whatever ended it
(completion, an error, a dispose and who asked for it, a timeout, the garbage collector),
and reports a :class:`StreamEnd` to the observers exactly once.

Observers (:class:`LifecycleObserver`) are attached process-wide (:func:`add_observer`)
or for the subscriptions made inside a block (:func:`observing`): the set is read in
``subscribe()`` (a ``ContextVar``), so the pull thread or task started later still reports
to it. An operator that subscribes upstream later (a retry, a timer) re-enters the
subscriber's context with :func:`capture`.

An operator that disposes its upstream on purpose names why with :func:`disposing`; the
innermost reason active when the dispose reaches the source is recorded.

With no observer attached the cost per chunk is a few attribute updates on the recorder;
the :class:`StreamEnd` is built once, at the end.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

from streamkit._errors import StreamTimeoutError
from streamkit._models import Chunk, Usage

if TYPE_CHECKING:
    from streamkit.prices import Cost

__all__ = [
    "DisposeReason",
    "DisposedBy",
    "LifecycleObserver",
    "Outcome",
    "Recorder",
    "StreamEnd",
    "StreamStart",
    "TimeoutKind",
    "add_observer",
    "attempt",
    "capture",
    "current_attempt",
    "current_reason",
    "disposing",
    "observing",
    "subscribe_later",
]

Outcome = Literal["completed", "error", "disposed", "timeout", "abandoned"]
"""How a subscription ended."""
DisposedBy = Literal[
    "take_until_match",
    "take",
    "break",
    "close",
    "disconnect",
    "stop",
    "budget",
    "lost",
    "unknown",
]
"""Who disposed a subscription before its end (``"lost"``: a candidate of ``race``,
``first_match``, ``hedge`` or ``best_of`` that another one beat)."""
TimeoutKind = Literal["headers", "first_chunk", "idle", "total"]
"""Which timeout operator ended a subscription."""
DisposeReason = Literal[
    "take_until_match",
    "take",
    "break",
    "close",
    "disconnect",
    "stop",
    "budget",
    "lost",
    "unknown",
    "timeout:first_chunk",
    "timeout:idle",
    "timeout:total",
]
"""What :func:`disposing` accepts: a :data:`DisposedBy`, or ``"timeout:<kind>"``."""

_REASONS = frozenset(get_args(DisposeReason))
_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class StreamStart:
    """A subscription (one HTTP request) as it starts."""

    id: int
    """Process-unique, increasing."""
    provider: str
    """The provider name given to ``sk.stream``."""
    request_model: str | None
    """The model asked for."""
    attempt: int
    """1, or the attempt number under ``ops.retry_on_error``."""
    started_ns: int
    """``time.time_ns()`` when the subscription was made."""
    messages: Sequence[Mapping[str, Any]] | None = None
    """The request's normalized messages (the stream's own list, not a copy): content,
    to be recorded only where the user opted in."""
    params: Mapping[str, Any] | None = None
    """The request's keyword parameters (the stream's own mapping, not a copy); may hold
    secrets (litellm's ``api_key=``): read only the keys you know."""


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """How a subscription ended, with what it had received by then."""

    start: StreamStart
    """The record :meth:`LifecycleObserver.on_start` received."""
    outcome: Outcome
    disposed_by: DisposedBy | None
    """Set when ``outcome`` is ``"disposed"``."""
    timeout: TimeoutKind | None
    """Set when ``outcome`` is ``"timeout"``."""
    error: BaseException | None
    """The error delivered downstream, when ``outcome`` is ``"error"``."""
    error_type: str | None
    """``module.QualName`` of the error (``StreamTimeoutError`` for a timeout)."""
    usage: Usage | None
    """The usage so far, with its ``source``: reported, estimated or mixed."""
    reported_usage: Usage | None
    """The provider's last own usage figure, unchanged (``None`` if it sent none)."""
    chunks: int
    """Normalized chunks received."""
    response_model: str | None
    response_id: str | None
    finish_reasons: list[str] | None
    """Provider-native, as last reported."""
    headers_ns: int | None
    """``time.time_ns()`` when the SDK returned its stream (the HTTP headers were in)."""
    first_chunk_ns: int | None
    ended_ns: int

    @property
    def provider(self) -> str:
        """The provider name."""
        return self.start.provider

    @property
    def request_model(self) -> str | None:
        """The model asked for."""
        return self.start.request_model

    @property
    def started_ns(self) -> int:
        """``time.time_ns()`` when the subscription was made."""
        return self.start.started_ns

    @property
    def duration_s(self) -> float:
        """Seconds from the subscription to its end."""
        return (self.ended_ns - self.start.started_ns) / 1e9

    @property
    def cost(self) -> Cost:
        """What :attr:`usage` costs at the model's price (see :mod:`streamkit.prices`)."""
        from streamkit.prices import cost_of

        return cost_of(
            self.start.provider,
            self.response_model,
            self.usage,
            requested=self.start.request_model,
        )


class LifecycleObserver:
    """Receives the lifecycle of subscriptions. Override what you need; the defaults do
    nothing. Methods must not raise (an exception goes to ``sys.unraisablehook``)."""

    wants_chunks: ClassVar[bool] = False
    """Set to True to have :meth:`on_chunk` called for every chunk."""

    def admit(self, start: StreamStart) -> BaseException | None:
        """Before a request is sent (in the subscribing thread, before any
        :meth:`on_start`): return an error to refuse it. A refused request is not sent
        and not reported (no :meth:`on_start`, no :meth:`on_end`: there is nothing to
        bill); its subscription fails with that error. Default: admitted (``None``)."""
        return None

    def on_start(self, start: StreamStart) -> None:
        """A subscription starts: called in the subscribing thread and context, before
        the request is made."""

    def on_first_chunk(self, start: StreamStart, chunk: Chunk, now_ns: int) -> None:
        """The first chunk arrived (on the pull's thread or task, before delivery)."""

    def on_chunk(self, start: StreamStart, chunk: Chunk, now_ns: int) -> None:
        """A chunk arrived (only when :attr:`wants_chunks`; first chunk included)."""

    def on_end(self, end: StreamEnd) -> None:
        """The subscription ended: exactly once, on whichever thread ended it."""


Observers = tuple[LifecycleObserver, ...]

_global: Observers = ()
_global_lock = threading.Lock()
_scoped: contextvars.ContextVar[Observers] = contextvars.ContextVar(
    "streamkit_lifecycle_observers", default=()
)
_reason: contextvars.ContextVar[DisposeReason | None] = contextvars.ContextVar(
    "streamkit_dispose_reason", default=None
)
_attempt: contextvars.ContextVar[int] = contextvars.ContextVar("streamkit_attempt", default=1)


def _checked_observer(observer: LifecycleObserver) -> LifecycleObserver:
    if not isinstance(observer, LifecycleObserver):
        raise TypeError(f"an observer must be a LifecycleObserver, not {type(observer).__name__}")
    return observer


def add_observer(observer: LifecycleObserver) -> Callable[[], None]:
    """Attach ``observer`` to every subscription made from now on, in any thread.

    Returns the function that detaches it (subscriptions already started keep it).
    """
    global _global
    _checked_observer(observer)
    with _global_lock:
        _global = (*_global, observer)

    def remove() -> None:
        global _global
        with _global_lock:
            _global = tuple(o for o in _global if o is not observer)

    return remove


@contextlib.contextmanager
def observing(*observers: LifecycleObserver) -> Iterator[None]:
    """Attach ``observers`` to the subscriptions made inside the block (in this thread or
    task), for their whole life."""
    for observer in observers:
        _checked_observer(observer)
    token = _scoped.set((*_scoped.get(), *observers))
    try:
        yield
    finally:
        _scoped.reset(token)


def capture() -> contextvars.Context:
    """The current context, for an operator that subscribes upstream later (a retry, a
    timer): ``ctx.run(source.subscribe, ...)`` reports to the observers active now."""
    return contextvars.copy_context()


def subscribe_later(
    context: contextvars.Context,
    number: int,
    source: Any,
    *args: Any,
    **kwargs: Any,
) -> Any:
    """``source.subscribe(*args, **kwargs)`` as attempt ``number``, in ``context`` (from
    :func:`capture` at the operator's subscribe time): for operators that subscribe
    more requests later (fallback, hedge), so each reports to the observers active when
    the pipeline was subscribed. A copy of ``context`` is entered, so a subscription made
    from inside another one's callback works too."""

    def run() -> Any:
        with attempt(number):
            return source.subscribe(*args, **kwargs)

    return context.copy().run(run)


@contextlib.contextmanager
def attempt(number: int) -> Iterator[None]:
    """Subscriptions made inside the block are attempt ``number`` (``retry_on_error``)."""
    token = _attempt.set(number)
    try:
        yield
    finally:
        _attempt.reset(token)


def current_attempt() -> int:
    """The attempt number subscriptions made now get (1 outside any :func:`attempt`)."""
    return _attempt.get()


@contextlib.contextmanager
def disposing(reason: DisposeReason) -> Iterator[None]:
    """Name why the dispose calls inside the block happen (see :data:`DisposeReason`).

    Raises ``ValueError`` for an unknown reason.
    """
    if reason not in _REASONS:
        raise ValueError(f"unknown dispose reason {reason!r}; one of {sorted(_REASONS)}")
    token = _reason.set(reason)
    try:
        yield
    finally:
        _reason.reset(token)


def current_reason() -> DisposeReason | None:
    """The reason set by the innermost active :func:`disposing`, if any."""
    return _reason.get()


def _admission(observer: LifecycleObserver, start: StreamStart) -> BaseException | None:
    try:
        return observer.admit(start)
    except Exception as error:
        _unraisable(error, f"Exception ignored in streamkit lifecycle observer {observer!r}")
        return None


def _report(callback: Callable[..., None], *args: Any) -> None:
    try:
        callback(*args)
    except Exception as error:
        _unraisable(error, f"Exception ignored in streamkit lifecycle observer {callback!r}")


def _unraisable(error: Exception, message: str) -> None:
    """Report ``error`` to ``sys.unraisablehook`` (as Python does for a ``__del__``)."""
    hook: Callable[[Any], object] = sys.unraisablehook
    hook(_Unraisable(error, message))


class _Unraisable:
    """What ``sys.unraisablehook`` expects (``sys.UnraisableHookArgs`` cannot be built)."""

    def __init__(self, error: Exception, message: str) -> None:
        self.exc_type = type(error)
        self.exc_value = error
        self.exc_traceback = error.__traceback__
        self.err_msg = message
        self.object = None


def _qualified(error: BaseException) -> str:
    kind = type(error)
    return f"{kind.__module__}.{kind.__qualname__}"


KEPT_TEXT = 32_768
"""Characters of received text a recorder keeps for an estimate; beyond them only the
length is counted, and the estimate scales the kept text's tokens per character."""

InputEstimate = Callable[[], int]
"""Estimates the input tokens of the request (called only when they are needed)."""


class Recorder:
    """The lifecycle of one subscription: started once, ended exactly once.

    Created by the source's pull; :meth:`begin` when the subscription is made,
    :meth:`headers` when the SDK returned its stream, :meth:`chunk` per chunk, then one
    of :meth:`complete`, :meth:`fail`, :meth:`dispose`, :meth:`abandon` (the first call
    wins; the others are no-ops).
    """

    __slots__ = (
        "__weakref__",
        "_chunk_observers",
        "_ended",
        "_estimate_input",
        "_finalizer",
        "_kept_chars",
        "_lock",
        "_messages",
        "_observers",
        "_out_chars",
        "_params",
        "_pieces",
        "_text_after_usage",
        "chunks",
        "end",
        "finish_reasons",
        "first_chunk_ns",
        "headers_ns",
        "provider",
        "refused",
        "request_model",
        "response_id",
        "response_model",
        "start",
        "usage",
    )

    def __init__(
        self,
        provider: str,
        request_model: str | None,
        *,
        estimate_input: InputEstimate | None = None,
        observers: Observers = (),
        messages: Sequence[Mapping[str, Any]] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self.provider = provider
        self._messages = messages
        self._params = params
        self.request_model = request_model
        self._estimate_input = estimate_input
        self._observers: Observers = observers
        self._chunk_observers: Observers = ()
        self._lock = threading.Lock()
        self._ended = False
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._pieces: list[str] = []
        self._kept_chars = 0
        self._out_chars = 0
        self._text_after_usage = False
        self.start: StreamStart | None = None
        self.end: StreamEnd | None = None
        self.refused: BaseException | None = None
        """The error an observer's :meth:`LifecycleObserver.admit` refused the request
        with: the pull raises it instead of sending the request."""
        self.chunks = 0
        self.usage: Usage | None = None
        self.response_model: str | None = None
        self.response_id: str | None = None
        self.finish_reasons: list[str] | None = None
        self.headers_ns: int | None = None
        self.first_chunk_ns: int | None = None

    @property
    def begun(self) -> bool:
        """Whether :meth:`begin` was called."""
        return self.start is not None

    @property
    def ended(self) -> bool:
        """Whether the end was recorded."""
        return self._ended

    def begin(self, owner: object | None = None) -> StreamStart:
        """Start the subscription (once): capture the observers, ask them to admit it
        (:meth:`LifecycleObserver.admit`), and tell them.

        ``owner`` (the pull): if it is collected before any end, the end is recorded as
        ``"abandoned"``. A refused request is ended at once, unreported, with
        :attr:`refused` set.
        """
        if self.start is not None:
            return self.start
        observers = (*_global, *_scoped.get(), *self._observers)
        self._observers = observers
        self._chunk_observers = tuple(o for o in observers if o.wants_chunks)
        start = StreamStart(
            id=next(_ids),
            provider=self.provider,
            request_model=self.request_model,
            attempt=_attempt.get(),
            started_ns=time.time_ns(),
            messages=self._messages,
            params=self._params,
        )
        for observer in observers:
            refusal = _admission(observer, start)
            if refusal is not None:
                self.refused = refusal
                self._ended = True  # nothing was sent: no end to record
                self.start = start
                return start
        self.start = start
        if owner is not None:
            # Also at interpreter exit: a pull kept alive by a loop closed with its task
            # pending (anyio keeps the task) is never collected.
            finalizer = weakref.finalize(owner, self.abandon)
            self._finalizer = finalizer
        for observer in observers:
            _report(observer.on_start, start)
        return start

    def headers(self) -> None:
        """The SDK returned its stream: the response headers are in."""
        self.headers_ns = time.time_ns()

    def chunk(self, chunk: Chunk) -> None:
        """Note one chunk (called before it is delivered; ignored after the end)."""
        if self._ended:
            return
        self.chunks += 1
        if self.first_chunk_ns is None:
            now = self.first_chunk_ns = time.time_ns()
            start = self.start
            if start is not None:
                for observer in self._observers:
                    _report(observer.on_first_chunk, start, chunk, now)
        # Field by field, not a loop over a tuple of them: this runs once per chunk of
        # every stream, and most chunks carry only content.
        if chunk.content:
            self._text(chunk.content)
        if chunk.thinking:
            self._text(chunk.thinking)
        if chunk.refusal:
            self._text(chunk.refusal)
        if chunk.audio_transcript:
            self._text(chunk.audio_transcript)
        tool_calls = chunk.tool_calls
        if tool_calls:
            for delta in tool_calls:
                if delta.name:
                    self._text(delta.name)
                if delta.arguments:
                    self._text(delta.arguments)
        usage = chunk.usage
        if usage is not None:  # after the text: a report covers its own chunk's text
            self.usage = usage
            self._text_after_usage = False
        if chunk.model:
            self.response_model = chunk.model
        if chunk.id:
            self.response_id = chunk.id
        if chunk.finish_reasons:
            self.finish_reasons = chunk.finish_reasons
        if self._chunk_observers:
            start = self.start
            if start is not None:
                now = time.time_ns()
                for observer in self._chunk_observers:
                    _report(observer.on_chunk, start, chunk, now)

    def _text(self, text: str) -> None:
        self._out_chars += len(text)
        self._text_after_usage = True
        if self._kept_chars < KEPT_TEXT:
            self._pieces.append(text)
            self._kept_chars += len(text)

    # -- the end (exactly one of these takes effect) ----------------------------------
    def complete(self) -> None:
        """The stream reached its terminal event."""
        self._end("completed")

    def fail(self, error: BaseException) -> None:
        """The stream failed with ``error`` (about to be delivered downstream); a
        :class:`~streamkit._errors.StreamTimeoutError` (the headers deadline, which the
        pull times itself) is recorded as a timeout of its kind."""
        if isinstance(error, StreamTimeoutError):
            kind: TimeoutKind = error.kind.replace(" ", "_")  # type: ignore[assignment]
            self._end("timeout", error=error, timeout=kind)
            return
        self._end("error", error=error)

    def dispose(self, reason: DisposeReason) -> None:
        """The subscription was disposed before its end, for ``reason``."""
        if reason.startswith("timeout:"):
            kind: TimeoutKind = reason.removeprefix("timeout:")  # type: ignore[assignment]
            self._end("timeout", timeout=kind)
        else:
            self._end("disposed", disposed_by=reason)  # type: ignore[arg-type]

    def abandon(self) -> None:
        """The subscription's owner was collected without any end."""
        self._end("abandoned")

    def _end(
        self,
        outcome: Outcome,
        *,
        error: BaseException | None = None,
        disposed_by: DisposedBy | None = None,
        timeout: TimeoutKind | None = None,
    ) -> None:
        with self._lock:
            if self._ended or self.start is None:
                return
            self._ended = True
        finalizer = self._finalizer
        if finalizer is not None:
            finalizer.detach()
        error_type = None
        if error is not None:
            error_type = _qualified(error)
        elif timeout is not None:
            error_type = "streamkit.StreamTimeoutError"
        end = self.end = StreamEnd(
            start=self.start,
            outcome=outcome,
            disposed_by=disposed_by,
            timeout=timeout,
            error=error,
            error_type=error_type,
            usage=self._final_usage(),
            reported_usage=self.usage,
            chunks=self.chunks,
            response_model=self.response_model,
            response_id=self.response_id,
            finish_reasons=None if self.finish_reasons is None else list(self.finish_reasons),
            headers_ns=self.headers_ns,
            first_chunk_ns=self.first_chunk_ns,
            ended_ns=time.time_ns(),
        )
        for observer in self._observers:
            _report(observer.on_end, end)

    def _final_usage(self) -> Usage | None:
        """The usage so far: the provider's last report when nothing came after it,
        else the report's input with estimated output (mixed), else both estimated."""
        from streamkit._tokens import count_output

        reported = self.usage
        if reported is not None and not self._text_after_usage:
            return reported
        if reported is None and self.start is None:
            return None
        output = count_output(
            self.provider,
            self.response_model or self.request_model,
            "".join(self._pieces),
            self._out_chars,
        )
        if reported is not None:
            output = max(output, reported.output_tokens)
            return reported.model_copy(
                update={
                    "output_tokens": output,
                    "total_tokens": reported.input_tokens + output,
                    # litellm's own count (estimated) stays estimated
                    "source": "mixed" if reported.source == "reported" else reported.source,
                }
            )
        input_tokens = self._estimate_input() if self._estimate_input is not None else 0
        return Usage(
            input_tokens=input_tokens,
            output_tokens=output,
            total_tokens=input_tokens + output,
            source="estimated",
        )
