"""Where streamkit's timers run: one rule for every operator that waits (timeouts,
deadlines, ``retry_on_error``'s backoff, ``hedge``'s delay).

The rule, in :func:`timer_scheduler`: the scheduler the caller gave; else the
subscriber's virtual-time scheduler (a ``TestScheduler``: tests run in virtual time);
else the asyncio loop the subscriber runs on (what the timer does, such as subscribing
the next attempt of an async stream, must happen on that loop); else a timer thread.

Other subscribe schedulers are never used for timers: a trampoline would sleep in the
caller's thread, and ``run()``'s ``NewThreadScheduler`` keeps a thread per timer alive
until its due time even when the timer is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from reactivex import abc
from reactivex.disposable import Disposable, SingleAssignmentDisposable
from reactivex.scheduler import TimeoutScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler
from reactivex.scheduler.virtualtimescheduler import VirtualTimeScheduler

__all__ = ["LoopTimers", "event_loop_of", "on_loop_thread", "timer_scheduler"]


def timer_scheduler(
    explicit: abc.SchedulerBase | None, subscribe_scheduler: abc.SchedulerBase | None = None
) -> abc.SchedulerBase:
    """The scheduler a timer runs on: ``explicit``; else ``subscribe_scheduler`` when it
    keeps virtual time; else :class:`LoopTimers` on :func:`event_loop_of` it; else
    reactivex's ``TimeoutScheduler`` (a ``threading.Timer`` each, cancelled on dispose)."""
    if explicit is not None:
        return explicit
    if isinstance(subscribe_scheduler, VirtualTimeScheduler):
        return subscribe_scheduler
    loop = event_loop_of(subscribe_scheduler)
    if loop is not None:
        return LoopTimers(loop)
    return TimeoutScheduler.singleton()


def event_loop_of(scheduler: abc.SchedulerBase | None) -> asyncio.AbstractEventLoop | None:
    """The asyncio loop a subscriber runs on: its asyncio scheduler's (thread-safe one
    included), else the running loop, else ``None``."""
    if isinstance(scheduler, AsyncIOScheduler):
        return scheduler._loop
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether the caller runs on ``loop`` (its thread, inside it)."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class LoopTimers(AsyncIOScheduler):
    """An ``AsyncIOScheduler`` whose timers may be scheduled and cancelled from any
    thread (a sync source's thread arms an idle timer on the loop it was subscribed
    from); on a closed loop, where nothing would ever run, timers run on a thread."""

    def schedule_relative(self, duetime: Any, action: Any, state: Any = None) -> abc.DisposableBase:
        """Run ``action`` on the loop after ``duetime``; the result disposes from anywhere."""
        loop = self._loop
        if loop.is_closed():
            return TimeoutScheduler.singleton().schedule_relative(duetime, action, state)
        timer = SingleAssignmentDisposable()

        def start() -> None:
            # AsyncIOScheduler calls loop.call_later, which only the loop's thread may do.
            timer.disposable = AsyncIOScheduler.schedule_relative(self, duetime, action, state)

        if on_loop_thread(loop):
            start()
        else:
            try:
                loop.call_soon_threadsafe(start)
            except RuntimeError:  # the loop closed meanwhile
                return TimeoutScheduler.singleton().schedule_relative(duetime, action, state)

        def dispose() -> None:
            if on_loop_thread(loop):
                timer.dispose()
            else:
                with contextlib.suppress(RuntimeError):  # the loop is already closed
                    loop.call_soon_threadsafe(timer.dispose)

        return Disposable(dispose)
