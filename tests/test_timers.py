"""The one rule for where streamkit's timers run (``streamkit._timers``)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from reactivex import abc
from reactivex.scheduler import ImmediateScheduler, NewThreadScheduler, TimeoutScheduler
from reactivex.scheduler.eventloop import AsyncIOThreadSafeScheduler
from reactivex.testing import TestScheduler

from streamkit._timers import LoopTimers, event_loop_of, timer_scheduler


def test_the_given_scheduler_wins() -> None:
    given = ImmediateScheduler()
    assert timer_scheduler(given, TestScheduler()) is given


def test_a_virtual_time_subscriber_times_in_virtual_time() -> None:
    virtual = TestScheduler()
    assert timer_scheduler(None, virtual) is virtual


def test_without_a_loop_a_timer_thread_and_never_the_subscribers_thread_scheduler() -> None:
    assert timer_scheduler(None) is TimeoutScheduler.singleton()
    assert timer_scheduler(None, NewThreadScheduler()) is TimeoutScheduler.singleton()


async def test_on_a_running_loop_the_timers_are_that_loops() -> None:
    timers = timer_scheduler(None)
    assert isinstance(timers, LoopTimers)
    assert event_loop_of(None) is asyncio.get_running_loop()


def test_an_asyncio_subscribers_loop_is_used_from_another_thread() -> None:
    loop = asyncio.new_event_loop()
    try:
        assert event_loop_of(AsyncIOThreadSafeScheduler(loop)) is loop
        timers = timer_scheduler(None, AsyncIOThreadSafeScheduler(loop))
        assert isinstance(timers, LoopTimers)
    finally:
        loop.close()


async def test_loop_timers_may_be_armed_and_cancelled_from_another_thread() -> None:
    timers = LoopTimers(asyncio.get_running_loop())
    fired: list[str] = []

    def fire(what: str) -> Callable[..., None]:
        return lambda *_: fired.append(f"{what} on {threading.current_thread().name}")

    def on_another_thread() -> abc.DisposableBase:
        timers.schedule_relative(0.01, fire("kept"))
        timers.schedule_relative(0.01, fire("cancelled there")).dispose()
        return timers.schedule_relative(0.01, fire("cancelled on the loop"))

    later = await asyncio.to_thread(on_another_thread)
    later.dispose()
    await asyncio.sleep(0.1)
    assert fired == [f"kept on {threading.current_thread().name}"]


def test_on_a_closed_loop_timers_run_on_a_thread() -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    fired = threading.Event()
    LoopTimers(loop).schedule_relative(0.01, lambda *_: fired.set())
    started = time.monotonic()
    assert fired.wait(2)
    assert time.monotonic() - started < 2
