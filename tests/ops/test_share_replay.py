"""``ops.share_replay``: marble-style examples on a ``TestScheduler``, a model-checked
property over random subscribe/dispose interleavings, thread-safety, and end to end with
the openai SDK (sync and async) against the replay server."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import reactivex
from hypothesis import event, given
from hypothesis import strategies as st
from reactivex import Observable, abc
from reactivex import operators as rx
from reactivex.disposable import Disposable
from reactivex.testing import ReactiveTest, TestScheduler

import streamkit as sk
from streamkit import ops
from streamkit.testing import ReplayServer
from streamkit.testing import strategies as sks
from tests.ops._pipelines import E2E_RUNS, content_per_event, replay_stream
from tests.ops.share_model import (
    Recorder,
    assert_recorded,
    cancel_tick,
    cold_source,
    element_offset,
    expected_messages,
    no_source_thread_left_behind,  # noqa: F401 (an autouse fixture)
    plans,
    run_plan,
    until,
)
from tests.recorded import error_of, kind_of, value_of

on_next, on_completed, on_error = (
    ReactiveTest.on_next,
    ReactiveTest.on_completed,
    ReactiveTest.on_error,
)

subscribe = ReactiveTest.subscribe


def at(scheduler: TestScheduler, tick: int, action: Callable[[], Any]) -> None:
    scheduler.schedule_absolute(tick, lambda *_: action())


# -- examples on a TestScheduler ------------------------------------------------------
def test_late_subscriber_gets_the_missed_elements_then_the_live_ones() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(10, "a"), on_next(20, "b"), on_next(30, "c"), on_completed(40)
    )
    shared = xs.pipe(ops.share_replay())
    first, late = scheduler.create_observer(), scheduler.create_observer()
    at(scheduler, 100, lambda: shared.subscribe(first))
    at(scheduler, 125, lambda: shared.subscribe(late))
    scheduler.start()

    assert xs.subscriptions == [subscribe(100, 140)]
    assert first.messages == [
        on_next(110, "a"),
        on_next(120, "b"),
        on_next(130, "c"),
        on_completed(140),
    ]
    assert late.messages == [
        on_next(125, "a"),
        on_next(125, "b"),
        on_next(130, "c"),
        on_completed(140),
    ]


def test_subscriber_after_completion_gets_the_replay_without_resubscribing() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, "a"), on_next(20, "b"), on_completed(30))
    shared = xs.pipe(ops.share_replay())
    first, after = scheduler.create_observer(), scheduler.create_observer()
    at(scheduler, 100, lambda: shared.subscribe(first))
    at(scheduler, 500, lambda: shared.subscribe(after))
    scheduler.start()

    assert xs.subscriptions == [subscribe(100, 130)]
    assert after.messages == [on_next(500, "a"), on_next(500, "b"), on_completed(500)]


def test_an_error_is_replayed_without_resubscribing() -> None:
    scheduler = TestScheduler()
    boom = ConnectionError("reset")
    xs = scheduler.create_cold_observable(on_next(10, "a"), on_error(20, boom))
    shared = xs.pipe(ops.share_replay())
    first, after = scheduler.create_observer(), scheduler.create_observer()
    at(scheduler, 100, lambda: shared.subscribe(first))
    at(scheduler, 300, lambda: shared.subscribe(after))
    scheduler.start()

    assert xs.subscriptions == [subscribe(100, 120)]
    assert first.messages == [on_next(110, "a"), on_error(120, boom)]
    assert after.messages == [on_next(300, "a"), on_error(300, boom)]
    assert error_of(after.messages[-1]) is boom


def test_upstream_is_disposed_when_the_last_subscriber_leaves_and_never_reconnected() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(10, "a"), on_next(20, "b"), on_next(30, "c"), on_completed(40)
    )
    shared = xs.pipe(ops.share_replay())
    one, two, later = (scheduler.create_observer() for _ in range(3))
    subscriptions: dict[str, abc.DisposableBase] = {}
    at(scheduler, 100, lambda: subscriptions.update(one=shared.subscribe(one)))
    at(scheduler, 105, lambda: subscriptions.update(two=shared.subscribe(two)))
    at(scheduler, 115, lambda: subscriptions["one"].dispose())
    at(scheduler, 125, lambda: subscriptions["two"].dispose())
    at(scheduler, 200, lambda: shared.subscribe(later))
    scheduler.start()

    # Still running after the first left; disposed at the tick the last one left.
    assert xs.subscriptions == [subscribe(100, 125)]
    assert one.messages == [on_next(110, "a")]
    assert two.messages == [on_next(110, "a"), on_next(120, "b")]
    # The request is never made twice: a later subscriber gets what was received, then
    # an error saying so.
    assert [kind_of(m) for m in later.messages] == ["N", "N", "E"]
    assert [value_of(m) for m in later.messages[:2]] == ["a", "b"]
    assert isinstance(error_of(later.messages[-1]), sk.StreamError)
    assert all(m.time == 200 for m in later.messages)


def test_a_subscriber_that_takes_a_few_does_not_stop_the_others() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(10, 1), on_next(20, 2), on_next(30, 3), on_completed(40)
    )
    shared = xs.pipe(ops.share_replay())
    few, all_of_them = scheduler.create_observer(), scheduler.create_observer()
    at(scheduler, 100, lambda: shared.pipe(rx.take(1)).subscribe(few))
    at(scheduler, 100, lambda: shared.subscribe(all_of_them))
    scheduler.start()

    assert xs.subscriptions == [subscribe(100, 140)]
    assert few.messages == [on_next(110, 1), on_completed(110)]
    assert [value_of(m) for m in all_of_them.messages[:-1]] == [1, 2, 3]


def test_buffer_size_bounds_what_late_subscribers_get() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(10, 1), on_next(20, 2), on_next(30, 3), on_completed(40)
    )
    shared = xs.pipe(ops.share_replay(buffer_size=2))
    first, late, after = (scheduler.create_observer() for _ in range(3))
    at(scheduler, 100, lambda: shared.subscribe(first))
    at(scheduler, 135, lambda: shared.subscribe(late))
    at(scheduler, 300, lambda: shared.subscribe(after))
    scheduler.start()

    assert xs.subscriptions == [subscribe(100, 140)]
    assert len(first.messages) == 4  # present subscribers always get everything
    assert late.messages == [on_next(135, 2), on_next(135, 3), on_completed(140)]
    assert after.messages == [on_next(300, 2), on_next(300, 3), on_completed(300)]


def test_a_subscriber_failing_during_its_replay_is_dropped() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, "a"), on_next(20, "b"), on_completed(40))
    shared = xs.pipe(ops.share_replay())
    errors: list[Exception] = []

    def broken(_value: str) -> None:
        raise RuntimeError("observer bug")

    subscriptions: dict[str, abc.DisposableBase] = {}
    at(scheduler, 100, lambda: subscriptions.update(one=shared.subscribe(lambda _: None)))
    at(scheduler, 115, lambda: shared.subscribe(broken, errors.append))
    at(scheduler, 125, lambda: subscriptions["one"].dispose())
    scheduler.start()

    assert [str(e) for e in errors] == ["observer bug"]
    # The broken subscriber does not keep the request alive once the other one left.
    assert xs.subscriptions == [subscribe(100, 125)]


def test_synchronous_source_shares_one_subscription() -> None:
    subscriptions = 0

    def counted(observer: abc.ObserverBase[int], scheduler: Any = None) -> abc.DisposableBase:
        nonlocal subscriptions
        subscriptions += 1
        return reactivex.of(1, 2, 3).subscribe(observer, scheduler=scheduler)

    shared = Observable(counted).pipe(ops.share_replay())
    assert shared.pipe(rx.to_list()).run() == [1, 2, 3]
    assert shared.pipe(rx.to_list()).run() == [1, 2, 3]
    assert subscriptions == 1


@pytest.mark.parametrize(
    ("buffer_size", "error"), [(-1, ValueError), (1.5, TypeError), (True, TypeError)]
)
def test_bad_buffer_size_is_rejected_at_once(buffer_size: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        ops.share_replay(buffer_size=buffer_size)


# -- property: any interleaving of subscribe/dispose ------------------------------------
SLOTS = ("a", "b", "c", "d")


@given(
    stream=sks.chunk_streams(),
    plan=plans(SLOTS, max_steps=24),
    fails=st.booleans(),
    buffer_size=st.sampled_from([None, None, 0, 1, 3]),
)
def test_every_subscriber_sees_what_a_lone_subscriber_would(
    stream: sks.ChunkStream, plan: list[str | None], fails: bool, buffer_size: int | None
) -> None:
    scheduler = TestScheduler()
    error = ConnectionError("cut") if fails else None
    xs = cold_source(scheduler, stream.chunks, error)
    shared = xs.pipe(ops.share_replay(buffer_size=buffer_size))
    subscriptions = run_plan(scheduler, plan, lambda _slot: shared)

    if not subscriptions:
        assert xs.subscriptions == []
        return
    connected = subscriptions[0].start
    terminal = connected + element_offset(len(stream.chunks))
    cancelled = cancel_tick(subscriptions, connected, terminal)
    # Exactly one upstream subscription, disposed at the tick the last subscriber left
    # iff they all left before completion.
    assert xs.subscriptions == [subscribe(connected, cancelled or terminal)]
    stop = cancelled if cancelled is not None else terminal
    elements = [
        (connected + element_offset(i), chunk)
        for i, chunk in enumerate(stream.chunks)
        if connected + element_offset(i) < stop
    ]
    ending = (terminal, "E", error) if error else (terminal, "C", None)
    event("all left before completion" if cancelled else "ran to its end")
    if any(s.start > stop for s in subscriptions):
        event("a subscriber arrived after the end")
    for subscription in subscriptions:
        assert_recorded(
            subscription, expected_messages(subscription, elements, ending, cancelled, buffer_size)
        )
        stayed = subscription.end is None or subscription.end > terminal
        if cancelled is None and stayed and buffer_size is None:
            # The property as stated: the same sequence as a lone subscriber.
            values = [value for _, kind, value in subscription.recorded() if kind == "N"]
            assert values == stream.chunks


# -- thread safety ------------------------------------------------------------------------
def threaded_source(count: int, started: threading.Event) -> tuple[Observable[int], list[int]]:
    """A sync source emitting 0..count-1 on its own thread; stops when disposed. Returns
    the observable and a tally: [subscriptions, disposals before the end]."""
    tally = [0, 0]

    def subscribe_(observer: abc.ObserverBase[int], scheduler: Any = None) -> abc.DisposableBase:
        tally[0] += 1
        stop, ended = threading.Event(), threading.Event()

        def run() -> None:
            started.set()
            for value in range(count):
                if stop.is_set():
                    return
                observer.on_next(value)
                if value % 64 == 0:
                    time.sleep(0.0005)  # give subscribing threads room to interleave
            ended.set()
            observer.on_completed()

        def dispose() -> None:
            if not ended.is_set():
                tally[1] += 1
            stop.set()

        threading.Thread(target=run, name="test-emitter", daemon=True).start()
        return Disposable(dispose)

    return Observable(subscribe_), tally


class SerialRecorder:
    """Records values and whether two threads were ever inside ``on_next`` at once."""

    def __init__(self) -> None:
        self.values: list[int] = []
        self.errors: list[Exception] = []
        self.overlapped = False
        self.finished = threading.Event()
        self._inside = threading.Lock()

    def on_next(self, value: int) -> None:
        if not self._inside.acquire(blocking=False):
            self.overlapped = True
            return
        try:
            self.values.append(value)
            if value % 50 == 0:
                time.sleep(0.0002)  # a slow observer widens the window for races
        finally:
            self._inside.release()

    def on_error(self, error: Exception) -> None:
        self.errors.append(error)
        self.finished.set()

    def on_completed(self) -> None:
        self.finished.set()

    def attach(self, source: Observable[int]) -> abc.DisposableBase:
        return source.subscribe(self.on_next, self.on_error, self.on_completed)


def run_staggered(
    target: Callable[[SerialRecorder, float], None], recorders: list[SerialRecorder], step: float
) -> None:
    """Run ``target(recorder, delay)`` for each recorder on its own thread, the delays
    growing by ``step``, and wait for all of them."""
    threads = [
        threading.Thread(target=target, args=(recorder, step * position))
        for position, recorder in enumerate(recorders)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)


def test_threads_subscribing_while_a_source_emits_lose_and_duplicate_nothing() -> None:
    count = 6000
    started = threading.Event()
    source, tally = threaded_source(count, started)
    shared = source.pipe(ops.share_replay())
    first = SerialRecorder()
    first.attach(shared)
    recorders = [SerialRecorder() for _ in range(8)]

    def subscribe_later(recorder: SerialRecorder, delay: float) -> None:
        started.wait(5)
        time.sleep(delay)
        recorder.attach(shared)

    # Staggered from "at once" to "probably after completion".
    run_staggered(subscribe_later, recorders, step=0.006)
    for recorder in [first, *recorders]:
        assert recorder.finished.wait(5)
        assert recorder.errors == []
        assert not recorder.overlapped
        assert recorder.values == list(range(count))
    assert tally == [1, 0]


def test_threads_disposing_concurrently_cancel_upstream_once_all_left() -> None:
    count = 200_000  # long enough that everyone leaves before it ends
    started = threading.Event()
    source, tally = threaded_source(count, started)
    shared = source.pipe(ops.share_replay())
    recorders = [SerialRecorder() for _ in range(6)]
    everyone_subscribed = threading.Barrier(len(recorders))

    def subscribe_then_leave(recorder: SerialRecorder, delay: float) -> None:
        subscription = recorder.attach(shared)
        everyone_subscribed.wait(5)
        time.sleep(delay)
        subscription.dispose()

    run_staggered(subscribe_then_leave, recorders, step=0.003)
    assert tally == [1, 1]  # one subscription, disposed before the source's end
    for recorder in recorders:
        assert recorder.errors == [] and not recorder.overlapped
        assert recorder.values == list(range(len(recorder.values)))


# -- end to end: openai SDK against the replay server, sync and async ---------------------
def text_of(recorder: Recorder) -> str:
    return "".join(chunk.content for chunk in recorder.values)


@pytest.mark.parametrize(("provider", "transcript", "_phrase", "async_"), E2E_RUNS)
async def test_three_subscribers_one_late_share_one_request(
    provider: str, transcript: str, _phrase: str, async_: bool
) -> None:
    with ReplayServer(transcript, pace=0.01) as server:
        async with replay_stream(server, provider, async_=async_) as stream:
            shared = stream.pipe(ops.share_replay())
            one, two, late = Recorder(), Recorder(), Recorder()
            one.attach(shared)
            two.attach(shared)
            await until(lambda: len(one.values) >= 5)
            late.attach(shared)
            assert not one.done.is_set()  # the late one really joined mid-stream
            await until(lambda: all(r.done.is_set() for r in (one, two, late)))

            after = Recorder()
            after.attach(shared)  # after completion: the replay, at once
            assert after.done.is_set()
        assert len(server.requests) == 1
        expected = "".join(content_per_event(transcript))
        assert expected
        for recorder in (one, two, late, after):
            assert recorder.errors == []
            assert text_of(recorder) == expected
        assert one.values == two.values == late.values == after.values


@pytest.mark.parametrize(("provider", "transcript", "_phrase", "async_"), E2E_RUNS)
async def test_all_subscribers_leaving_early_closes_the_response(
    provider: str, transcript: str, _phrase: str, async_: bool
) -> None:
    with ReplayServer(transcript, pace=0.03) as server:
        async with replay_stream(server, provider, async_=async_) as stream:
            shared = stream.pipe(ops.share_replay())
            recorders = [Recorder() for _ in range(3)]
            subscriptions = [r.attach(shared) for r in recorders]
            await until(lambda: len(recorders[0].values) >= 2)
            for subscription in subscriptions:
                subscription.dispose()
            record = await asyncio.to_thread(server.wait_for_request_end, 0)
            assert record.disconnected
            assert record.events_sent < record.events_total
            assert len(server.requests) == 1
            await until(lambda: server.open_connections == 0)
            assert all(r.errors == [] and not r.done.is_set() for r in recorders)
