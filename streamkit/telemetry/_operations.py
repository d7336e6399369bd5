"""Operations that make several requests for one logical call (``retry_on_error``,
``fallback``, ``hedge``, ``race``, ``first_match``, ``best_of``): the hook an operator
calls, free when telemetry is off.

An operator calls :func:`begin_operation` when it is subscribed. With no
instrumentation active it returns ``None`` (one global read) and the operator does
nothing more. Otherwise it gets an :class:`Operation`, subscribes each attempt inside
``with operation.attempt():`` (:func:`subscribe_attempt` does it; the attempt's request
span becomes a child of the operation's span, whichever thread the attempt starts on),
says how each attempt fared with :meth:`Operation.result` (operators made with
``results=True``: won, lost, failed; the attempt's span ends only once its result is
known, or the operation has ended: ``cancelled``), and reports its own end once with
:meth:`Operation.finish` (:func:`ending` reports a dispose, and a subscription dropped
without one). The operation's span ends when the operator has ended *and* every
attempt has ended, so it always contains its children. An operation started inside
another's attempt (a ``retry_on_error`` pipeline as a ``race`` candidate) is that
attempt.

No OpenTelemetry import here: the OpenTelemetry side is :mod:`._otel`, loaded by
``instrument()``.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager
from contextvars import Context, ContextVar
from typing import Any, Literal, Protocol

from reactivex import abc
from reactivex.disposable import Disposable

from streamkit._lifecycle import attempt as lifecycle_attempt
from streamkit._lifecycle import current_reason

__all__ = [
    "AttemptResult",
    "Operation",
    "OperationFactory",
    "begin_operation",
    "current_operation",
    "ending",
    "subscribe_attempt",
]

OperationOutcome = Literal["completed", "error", "disposed", "timeout", "abandoned"]
AttemptResult = Literal["won", "lost", "failed", "cancelled"]
"""How an attempt of an operation fared: ``won`` (its output is the operation's),
``lost`` (another attempt beat it: disposed, or scored lower), ``failed`` (it dropped
out: an error, or no match), ``cancelled`` (the operation ended before it was decided)."""


class Operation(Protocol):
    """One logical call made of attempts (see the module docstring)."""

    def attempt(self, number: int) -> AbstractContextManager[None]:
        """Subscribe the ``number``-th attempt inside this block."""

    def retrying(self, number: int, error: BaseException, delay: float) -> None:
        """Attempt ``number`` failed with ``error``; the next one starts in ``delay`` s."""

    def result(self, number: int, result: AttemptResult, reason: str | None = None) -> None:
        """Attempt ``number`` fared so (the first result said for it counts)."""

    def finish(
        self,
        outcome: OperationOutcome,
        *,
        error: BaseException | None = None,
        disposed_by: str | None = None,
    ) -> None:
        """The operator ended (only the first call counts)."""


class OperationFactory(Protocol):
    """What ``instrument()`` installs: it makes the operations' spans."""

    def operation(
        self, operator: str, provider: str | None, request_model: str | None, *, results: bool
    ) -> Operation:
        """A new operation, its span started as a child of the current context."""


_factory: OperationFactory | None = None
_current: ContextVar[Operation | None] = ContextVar("streamkit_operation", default=None)


def install(factory: OperationFactory | None) -> None:
    """Set (or, with ``None``, clear) the active factory; used by ``instrument()``."""
    global _factory
    _factory = factory


def begin_operation(
    operator: str,
    provider: str | None = None,
    request_model: str | None = None,
    *,
    results: bool = False,
) -> Operation | None:
    """A new operation when telemetry is on, else ``None`` (costs one global read).

    ``results``: the operator says each attempt's :meth:`Operation.result`, recorded on
    the attempt's span (``streamkit.attempt.result``)."""
    factory = _factory
    if factory is None:
        return None
    return factory.operation(operator, provider, request_model, results=results)


def current_operation() -> Operation | None:
    """The operation whose attempt is being subscribed right now, if any."""
    return _current.get()


def enter(operation: Operation) -> Iterator[None]:
    """Make ``operation`` current for the requests subscribed in the block (the body of
    :meth:`Operation.attempt`, shared by its implementations)."""
    token = _current.set(operation)
    try:
        yield
    finally:
        _current.reset(token)


def subscribe_attempt(
    context: Context,
    number: int,
    operation: Operation | None,
    source: Any,
    *args: Any,
    **kwargs: Any,
) -> Any:
    """``source.subscribe(*args, **kwargs)`` as attempt ``number`` of ``operation`` (if
    any), in a copy of ``context`` (captured when the operator was subscribed): the
    request reports to the lifecycle observers active then, and its span is a child of
    the operation's (see :func:`streamkit._lifecycle.subscribe_later`)."""

    def run() -> Any:
        with lifecycle_attempt(number):
            if operation is None:
                return source.subscribe(*args, **kwargs)
            with operation.attempt(number):
                return source.subscribe(*args, **kwargs)

    return context.copy().run(run)


def ending(disposable: abc.DisposableBase, operation: Operation) -> abc.DisposableBase:
    """``disposable``, whose disposal (or collection, if it is dropped without one) also
    ends ``operation``, once the running attempts' requests have ended: their records
    say who disposed them."""
    finalizer = weakref.finalize(disposable, operation.finish, "abandoned")

    def dispose() -> None:
        finalizer.detach()
        # First the operation (it then waits for the running attempts to end), then the
        # attempts: their records, made by this dispose, say who disposed them.
        operation.finish("disposed", disposed_by=current_reason())
        disposable.dispose()

    return Disposable(dispose)
