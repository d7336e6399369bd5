"""A model of a shared, replaying upstream, and a runner for subscribe/dispose plans on a
``TestScheduler``: the oracle for ``share_replay`` and ``tee_audio_text`` properties.
Also the small helpers their end-to-end tests share (:class:`Recorder`, :func:`until`).

Time: plan step ``s`` happens at tick ``action_tick(s)`` (ending in 5); the cold upstream
emits element ``i`` at ``10 * i + 3`` after it is subscribed (ticks ending in 8), and its
terminal event after the last element, so an action and an upstream event never share a
tick.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import strategies as st
from reactivex import Observable, abc
from reactivex.notification import OnError, OnNext
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.coldobservable import ColdObservable
from reactivex.testing.mockobserver import MockObserver

from streamkit._errors import StreamError
from tests.ops._pipelines import wait_for_no_leftover_threads
from tests.recorded import notification_of

Message = tuple[int, str, Any]  # (tick, "N" | "E" | "C", value or exception)


def action_tick(step: int) -> int:
    return 105 + 10 * step


def element_offset(index: int) -> int:
    return 10 * index + 3


def cold_source(
    scheduler: TestScheduler, values: Sequence[Any], error: Exception | None
) -> ColdObservable[Any]:
    messages = [ReactiveTest.on_next(element_offset(i), v) for i, v in enumerate(values)]
    end = element_offset(len(values))
    messages.append(ReactiveTest.on_error(end, error) if error else ReactiveTest.on_completed(end))
    return scheduler.create_cold_observable(messages)


def plans(
    slots: Sequence[str], max_steps: int, *, min_slots: int = 1, min_steps: int = 1
) -> st.SearchStrategy[list[str | None]]:
    """A plan: at each step, toggle one slot (subscribe it if it is not subscribed,
    dispose it if it is), or do nothing (``None``). The first step subscribes; fewer
    slots make "everyone left before the end" likelier."""

    def using(count: int) -> st.SearchStrategy[list[str | None]]:
        chosen = list(slots[:count])
        first = st.sampled_from(chosen)
        rest = st.lists(
            st.sampled_from([None, *chosen]), min_size=min_steps - 1, max_size=max_steps - 1
        )
        return st.tuples(first, rest).map(lambda plan: [plan[0], *plan[1]])

    return st.integers(min_slots, len(slots)).flatmap(using)


@dataclass
class Subscription:
    """One subscription made by a plan, and what its observer recorded."""

    slot: str
    start: int
    end: int | None = None
    observer: MockObserver[Any] | None = None
    disposable: abc.DisposableBase | None = field(default=None, repr=False)

    def recorded(self) -> list[Message]:
        assert self.observer is not None
        out: list[Message] = []
        for message in self.observer.messages:
            note = notification_of(message)
            payload = (
                note.value
                if isinstance(note, OnNext)
                else note.exception
                if isinstance(note, OnError)
                else None
            )
            out.append((int(message.time), note.kind, payload))
        return out


def run_plan(
    scheduler: TestScheduler,
    plan: Sequence[str | None],
    observable_of: Callable[[str], Observable[Any]],
    on_step: Callable[[str, int], None] | None = None,
) -> list[Subscription]:
    """Schedule the plan's subscribe/dispose actions, run the scheduler, return every
    subscription made. ``on_step(slot, tick)`` is called for slots named ``"connect"``,
    which are actions rather than subscribers."""
    subscriptions: list[Subscription] = []
    active: dict[str, Subscription] = {}

    def act(slot: str, tick: int) -> None:
        if slot == "connect":
            assert on_step is not None
            on_step(slot, tick)
            return
        current = active.pop(slot, None)
        if current is not None:
            current.end = tick
            assert current.disposable is not None
            current.disposable.dispose()
            return
        record = Subscription(slot, tick, observer=scheduler.create_observer())
        subscriptions.append(record)
        active[slot] = record
        record.disposable = observable_of(slot).subscribe(record.observer)

    for step, slot in enumerate(plan):
        if slot is not None:
            tick = action_tick(step)
            scheduler.schedule_absolute(tick, lambda *_, s=slot, t=tick: act(s, t))
    scheduler.start()
    return subscriptions


def cancel_tick(subscriptions: Sequence[Subscription], connected: int, terminal: int) -> int | None:
    """When every subscriber had left after connecting and before the terminal event."""
    for end in sorted(s.end for s in subscriptions if s.end is not None):
        if connected <= end < terminal and not any(
            s.start <= end and (s.end is None or s.end > end) for s in subscriptions
        ):
            return end
    return None


def expected_messages(
    subscription: Subscription,
    elements: Sequence[tuple[int, Any]],
    terminal: tuple[int, str, Any],
    cancelled: int | None,
    buffer_size: int | None = None,
) -> list[Message]:
    """What one subscription should record, given the upstream's ``(tick, value)``
    elements (already cut at a cancellation), its terminal event and the cancel tick."""
    start = subscription.start
    end = subscription.end if subscription.end is not None else 10**9
    missed = [value for tick, value in elements if tick < start]
    if buffer_size is not None:
        missed = missed[-buffer_size:] if buffer_size else []
    out: list[Message] = [(start, "N", value) for value in missed]
    out += [(tick, "N", value) for tick, value in elements if start <= tick < end]
    if cancelled is not None:
        if start > cancelled:
            out.append((start, "E", StreamError))
        return out
    terminal_tick, kind, payload = terminal
    if max(terminal_tick, start) < end:
        out.append((max(terminal_tick, start), kind, payload))
    return out


def assert_recorded(subscription: Subscription, expected: list[Message]) -> None:
    recorded = subscription.recorded()
    assert len(recorded) == len(expected), (subscription, recorded, expected)
    for got, want in zip(recorded, expected, strict=True):
        assert got[:2] == want[:2], (subscription, recorded, expected)
        if want[1] == "E" and want[2] is StreamError:
            assert isinstance(got[2], StreamError)
        else:
            assert got[2] == want[2] if want[1] == "N" else got[2] is want[2]


# -- end-to-end helpers ---------------------------------------------------------------------
class Recorder:
    """Collects what one subscriber receives; ``done`` is set on completion or error."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.errors: list[Exception] = []
        self.done = threading.Event()

    def attach(self, source: Observable[Any]) -> abc.DisposableBase:
        return source.subscribe(self.values.append, self._error, self.done.set)

    def _error(self, error: Exception) -> None:
        self.errors.append(error)
        self.done.set()


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for ``condition`` without blocking the event loop (async sources deliver on it)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def close_client(client: Any) -> None:
    """Close an async SDK client (the replay server closes the sync ones it built)."""
    if asyncio.iscoroutinefunction(getattr(client, "close", None)):
        await client.close()


@pytest.fixture(autouse=True)
def no_source_thread_left_behind() -> Iterator[None]:
    """Import into a test module: after each test, every thread streamkit started ends."""
    yield
    wait_for_no_leftover_threads()
