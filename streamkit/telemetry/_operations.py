"""Operations that make several requests for one logical call (``retry_on_error``; later
fallback and hedging): the hook an operator calls, free when telemetry is off.

An operator calls :func:`begin_operation` when it is subscribed. With no
instrumentation active it returns ``None`` (one global read) and the operator does
nothing more. Otherwise it gets an :class:`Operation`, subscribes each attempt inside
``with operation.attempt():`` (the attempt's request span becomes a child of the
operation's span, whichever thread the attempt starts on), and reports its own end
once with :meth:`Operation.finish`. The operation's span ends when the operator has
ended *and* every attempt's request has ended, so it always contains its children.

No OpenTelemetry import here: the OpenTelemetry side is :mod:`._otel`, loaded by
``instrument()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from streamkit._lifecycle import StreamEnd, StreamStart

__all__ = [
    "Operation",
    "OperationFactory",
    "begin_operation",
    "current_operation",
]

OperationOutcome = Literal["completed", "error", "disposed", "timeout", "abandoned"]


class Operation(Protocol):
    """One logical call made of attempts (see the module docstring)."""

    def attempt(self, number: int) -> AbstractContextManager[None]:
        """Subscribe the ``number``-th attempt inside this block."""

    def retrying(self, number: int, error: BaseException, delay: float) -> None:
        """Attempt ``number`` failed with ``error``; the next one starts in ``delay`` s."""

    def finish(
        self,
        outcome: OperationOutcome,
        *,
        error: BaseException | None = None,
        disposed_by: str | None = None,
    ) -> None:
        """The operator ended (only the first call counts)."""

    # called by the request observer, on the attempts' threads
    def attempt_started(self, start: StreamStart) -> None:
        """A request of this operation started."""

    def attempt_ended(self, end: StreamEnd) -> None:
        """A request of this operation ended."""


class OperationFactory(Protocol):
    """What ``instrument()`` installs: it makes the operations' spans."""

    def operation(
        self, operator: str, provider: str | None, request_model: str | None
    ) -> Operation:
        """A new operation, its span started as a child of the current context."""


_factory: OperationFactory | None = None
_current: ContextVar[Operation | None] = ContextVar("streamkit_operation", default=None)


def install(factory: OperationFactory | None) -> None:
    """Set (or, with ``None``, clear) the active factory; used by ``instrument()``."""
    global _factory
    _factory = factory


def begin_operation(
    operator: str, provider: str | None = None, request_model: str | None = None
) -> Operation | None:
    """A new operation when telemetry is on, else ``None`` (costs one global read)."""
    factory = _factory
    if factory is None:
        return None
    return factory.operation(operator, provider, request_model)


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
