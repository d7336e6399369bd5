"""Typed reads of what a reactivex ``TestScheduler`` recorded.

reactivex types ``Recorded.value`` as a notification *or* a test predicate (the
expected side of an assertion may hold a predicate), so ``message.value.exception``
does not type-check. These helpers narrow a recorded message to the notification it
holds and fail the test, saying what was there, when it is something else.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from reactivex import Notification
from reactivex.notification import OnError, OnNext
from reactivex.testing.recorded import Recorded

T = TypeVar("T")


def notification_of(message: Recorded[T]) -> Notification[T]:
    """The notification ``message`` recorded."""
    note = message.value
    assert isinstance(note, Notification), f"not a recorded notification: {note!r}"
    return note


def kind_of(message: Recorded[T]) -> str:
    """``"N"``, ``"E"`` or ``"C"``."""
    return notification_of(message).kind


def value_of(message: Recorded[T]) -> T:
    """The value of an on_next ``message``."""
    note = notification_of(message)
    assert isinstance(note, OnNext), f"not an on_next: {note!r}"
    value: T = note.value
    return value


def error_of(message: Recorded[T]) -> Exception:
    """The exception of an on_error ``message``."""
    note = notification_of(message)
    assert isinstance(note, OnError), f"not an on_error: {note!r}"
    return note.exception


def values_of(messages: Iterable[Recorded[T]]) -> list[T]:
    """The values of the on_next messages among ``messages``."""
    return [value_of(m) for m in messages if kind_of(m) == "N"]
