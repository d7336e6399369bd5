"""ops.first_chunk_timeout() and ops.idle_timeout(): fail a stalled stream, close it."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import pytest
import reactivex
from hypothesis import assume, given
from hypothesis import strategies as st
from reactivex.subject import Subject
from reactivex.testing import TestScheduler
from reactivex.testing.marbles import marbles_testing

import streamkit as sk
from streamkit import ops
from streamkit.testing import Fault, ReplayServer, Reply
from streamkit.testing import strategies as sks

from ._pipelines import (
    E2E_RUNS,
    chunks_of,
    on_completed,
    on_next,
    replay_stream,
    request_end,
    run_either,
    subscribe,
    text_until,
    values,
    wait_for_no_leftover_threads,
)


def assert_timed_out(messages: list[Any], at: int, kind: str, seconds: float) -> None:
    last = messages[-1]
    assert last.time == at
    error = last.value.exception
    assert isinstance(error, sk.StreamTimeoutError)
    assert (error.kind, error.seconds) == (kind, seconds)


# -- reactivex.testing examples: first_chunk_timeout ------------------------------------
def test_first_chunk_timeout_fires_at_its_time_and_disposes_upstream() -> None:
    scheduler = TestScheduler()
    chunk = sk.Chunk(provider="openai", content="late")
    xs = scheduler.create_cold_observable(on_next(60, chunk), on_completed(70))

    results = scheduler.start(lambda: xs.pipe(ops.first_chunk_timeout(50)))

    assert len(results.messages) == 1
    assert_timed_out(results.messages, 250, "first chunk", 50.0)
    assert xs.subscriptions == [subscribe(200, 250)]


def test_after_the_first_chunk_long_gaps_are_not_its_business() -> None:
    scheduler = TestScheduler()
    chunks = chunks_of(["a", "b", "c"])
    xs = scheduler.create_cold_observable(
        on_next(40, chunks[0]), on_next(300, chunks[1]), on_next(700, chunks[2]), on_completed(701)
    )

    results = scheduler.start(lambda: xs.pipe(ops.first_chunk_timeout(50)), disposed=2000)

    assert values(results.messages) == chunks
    assert results.messages[-1] == on_completed(901)
    assert xs.subscriptions == [subscribe(200, 901)]


def test_disposing_before_the_first_chunk_cancels_the_timer() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(100, sk.Chunk(provider="openai")))

    results = scheduler.start(lambda: xs.pipe(ops.first_chunk_timeout(50)), disposed=230)

    assert results.messages == []
    assert xs.subscriptions == [subscribe(200, 230)]
    scheduler.advance_to(400)  # the timer's due time passes: nothing may fire
    assert results.messages == []


# -- reactivex.testing examples: idle_timeout --------------------------------------------
def test_idle_timeout_fires_a_gap_after_the_last_chunk_and_disposes_upstream() -> None:
    scheduler = TestScheduler()
    chunks = chunks_of(["a", "b", "c", "d"])
    xs = scheduler.create_cold_observable(
        on_next(10, chunks[0]),
        on_next(40, chunks[1]),
        on_next(85, chunks[2]),  # gaps of 30 and 45: under 50
        on_next(200, chunks[3]),  # a gap of 115: the timeout fires at 285 + 50
        on_completed(210),
    )

    results = scheduler.start(lambda: xs.pipe(ops.idle_timeout(50)))

    assert results.messages[:3] == [
        on_next(210, chunks[0]),
        on_next(240, chunks[1]),
        on_next(285, chunks[2]),
    ]
    assert_timed_out(results.messages, 335, "idle", 50.0)
    assert xs.subscriptions == [subscribe(200, 335)]


def test_idle_timeout_leaves_the_wait_for_the_first_chunk_alone() -> None:
    scheduler = TestScheduler()
    chunks = chunks_of(["slow", "start"])
    xs = scheduler.create_cold_observable(
        on_next(500, chunks[0]), on_next(520, chunks[1]), on_completed(530)
    )

    results = scheduler.start(lambda: xs.pipe(ops.idle_timeout(50)), disposed=2000)

    assert results.messages == [on_next(700, chunks[0]), on_next(720, chunks[1]), on_completed(730)]
    assert xs.subscriptions == [subscribe(200, 730)]


def test_a_slow_consumer_is_not_taken_for_a_stalled_provider() -> None:
    scheduler = TestScheduler()
    chunks = chunks_of(["a", "b"])
    xs = scheduler.create_cold_observable(on_next(10, chunks[0]), on_next(20, chunks[1]))
    received: list[tuple[float, str]] = []
    errors: list[Exception] = []

    def slow_consumer(chunk: sk.Chunk) -> None:
        received.append((scheduler.clock, chunk.content))
        scheduler.sleep(80)  # downstream works 80 s, longer than the 50 s timeout

    xs.pipe(ops.idle_timeout(50)).subscribe(slow_consumer, errors.append, scheduler=scheduler)
    scheduler.advance_to(200)

    # "b" waited behind the consumer; the provider itself never went quiet for 50 s.
    assert received == [(10.0, "a"), (90.0, "b")]
    assert errors == []


def test_the_given_scheduler_times_it_whatever_the_subscribe_scheduler() -> None:
    timers = TestScheduler()
    subject: Subject[str] = Subject()
    received: list[str] = []
    errors: list[Exception] = []
    subject.pipe(ops.idle_timeout(5, scheduler=timers)).subscribe(received.append, errors.append)

    subject.on_next("a")
    timers.advance_to(4)
    subject.on_next("b")
    timers.advance_to(8.9)
    assert errors == []
    timers.advance_to(9)

    assert received == ["a", "b"]
    [error] = errors
    assert isinstance(error, sk.StreamTimeoutError) and error.kind == "idle"
    assert not subject.observers  # upstream was disposed


def test_marbles_idle_timeout_on_text() -> None:
    with marbles_testing(timespan=1.0) as (start, cold, _hot, exp):
        # reactivex's MarblesContext types every argument as required: pass them all
        source = cold("-a-b-c------d|", None, None)
        expected = exp("-a-b-c---#", None, sk.StreamTimeoutError("idle", 4.0))
        assert start(source.pipe(ops.idle_timeout(4))) == expected


def test_marbles_both_timeouts_in_one_pipe_pass_a_healthy_stream() -> None:
    with marbles_testing(timespan=1.0) as (start, cold, _hot, exp):
        chunks: dict[str | float, Any] = {k: sk.Chunk(provider="openai", content=k) for k in "abc"}
        source = cold("--a-b--c-|", chunks, None)
        pipeline = source.pipe(ops.first_chunk_timeout(3), ops.text(), ops.idle_timeout(3))
        assert start(pipeline) == exp("--a-b--c-|", None, None)


# -- arguments ---------------------------------------------------------------------------
@pytest.mark.parametrize("operator", [ops.first_chunk_timeout, ops.idle_timeout])
@pytest.mark.parametrize(
    ("seconds", "kwargs", "error"),
    [
        (0, {}, ValueError),
        (-1.0, {}, ValueError),
        (math.nan, {}, ValueError),
        (math.inf, {}, ValueError),
        ("5", {}, TypeError),
        (True, {}, TypeError),
        (None, {}, TypeError),
        (5, {"scheduler": "soon"}, TypeError),
    ],
)
def test_bad_arguments_raise_at_once(
    operator: Any, seconds: Any, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        operator(seconds, **kwargs)


# -- real timers: nothing outlives the stream --------------------------------------------
@pytest.mark.parametrize("operator", [ops.first_chunk_timeout, ops.idle_timeout])
def test_completion_and_dispose_cancel_real_timers(operator: Any) -> None:
    completed = threading.Event()
    subject: Subject[str] = Subject()
    subject.pipe(operator(30)).subscribe(on_completed=completed.set)
    subject.on_next("a")
    subject.on_completed()
    assert completed.is_set()

    errors: list[Exception] = []
    other: Subject[str] = Subject()
    disposable = other.pipe(operator(30)).subscribe(on_error=errors.append)
    other.on_next("a")
    disposable.dispose()

    wait_for_no_leftover_threads()
    assert errors == []


def test_a_real_timer_fires_once_on_a_silent_source() -> None:
    failed = threading.Event()
    errors: list[Exception] = []

    def fail(error: Exception) -> None:
        errors.append(error)
        failed.set()

    started = time.monotonic()
    reactivex.never().pipe(ops.first_chunk_timeout(0.05)).subscribe(on_error=fail)

    assert failed.wait(2.0)
    assert time.monotonic() - started >= 0.05
    wait_for_no_leftover_threads()
    assert [type(e) for e in errors] == [sk.StreamTimeoutError]


# -- properties --------------------------------------------------------------------------
# Timing is what matters here, not content: short texts keep the examples quick.
SHORT_SPLITS = sks.text_splits(st.text(max_size=12))


@given(SHORT_SPLITS, st.data(), st.integers(1, 100))
def test_idle_timeout_passes_exactly_the_chunks_before_the_first_long_gap(
    split: tuple[str, list[str]], data: st.DataObject, seconds: int
) -> None:
    chunks = chunks_of(split[1])
    count = len(chunks) + 1  # a gap before each chunk and before the completion
    arrivals = data.draw(st.lists(st.integers(1, 100), min_size=count, max_size=count))
    assume(all(gap != seconds for gap in arrivals[1:]))  # a tie is a race, not a rule
    times = [sum(arrivals[: i + 1]) for i in range(len(arrivals))]
    scheduler = TestScheduler()
    messages = [on_next(t, chunk) for t, chunk in zip(times, chunks, strict=False)] + [
        on_completed(times[-1])
    ]
    xs = scheduler.create_cold_observable(messages)

    results = scheduler.start(lambda: xs.pipe(ops.idle_timeout(seconds)), disposed=10_000)

    stalls = [i for i in range(1, len(times)) if times[i] - times[i - 1] > seconds]
    if not stalls:
        assert values(results.messages) == chunks
        assert results.messages[-1] == on_completed(200 + times[-1])
        assert xs.subscriptions == [subscribe(200, 200 + times[-1])]
    else:
        cut = stalls[0]
        fired_at = 200 + times[cut - 1] + seconds
        assert values(results.messages) == chunks[:cut]
        assert_timed_out(results.messages, fired_at, "idle", float(seconds))
        assert xs.subscriptions == [subscribe(200, fired_at)]


@given(SHORT_SPLITS, st.integers(1, 100), st.integers(1, 100))
def test_first_chunk_timeout_decides_on_the_first_chunk_alone(
    split: tuple[str, list[str]], first: int, seconds: int
) -> None:
    assume(first != seconds)
    chunks = chunks_of(split[1])
    scheduler = TestScheduler()
    messages = [on_next(first + 500 * i, chunk) for i, chunk in enumerate(chunks)]
    end = first + 500 * len(chunks)
    xs = scheduler.create_cold_observable([*messages, on_completed(end)])

    results = scheduler.start(lambda: xs.pipe(ops.first_chunk_timeout(seconds)), disposed=10**6)

    if first < seconds:
        assert values(results.messages) == chunks
        assert xs.subscriptions == [subscribe(200, 200 + end)]
    else:
        assert_timed_out(results.messages, 200 + seconds, "first chunk", float(seconds))
        assert xs.subscriptions == [subscribe(200, 200 + seconds)]


# -- end to end: the real SDK against a stalling replay server ---------------------------
STALL = 2.0
TIMEOUT = 0.3

PRICED = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4-0"}
"""A model genai-prices knows, asked for from each provider of ``E2E_RUNS``."""

STALLS = [
    pytest.param(ops.idle_timeout, Fault(stall_after_events=(3, STALL)), 3, "idle", id="idle"),
    pytest.param(
        ops.first_chunk_timeout, Fault(stall_before=STALL), 0, "first chunk", id="first-chunk"
    ),
]


@pytest.mark.parametrize(("operator", "fault", "events_sent", "kind"), STALLS)
@pytest.mark.parametrize(("provider", "transcript", "_phrase", "async_"), E2E_RUNS)
async def test_a_stalled_stream_times_out_and_is_closed(
    provider: str,
    transcript: str,
    _phrase: str,
    async_: bool,
    operator: Any,
    fault: Fault,
    events_sent: int,
    kind: str,
) -> None:
    reports: list[sk.UsageReport] = []
    calls: list[sk.UsageReport] = []
    with ReplayServer() as server:
        server.push(Reply(transcript, fault=fault))
        async with replay_stream(
            server, provider, async_=async_, model=PRICED[provider], on_usage=calls.append
        ) as stream:
            # from the request on: a cold SDK client takes seconds to build on a busy machine
            started = time.monotonic()
            with pytest.raises(sk.StreamTimeoutError) as raised:
                await run_either(
                    stream.pipe(ops.text(), operator(TIMEOUT), ops.on_usage(reports.append)),
                    async_=async_,
                )
        record = await request_end(server)
    assert raised.value.kind == kind
    assert record.disconnected
    assert record.events_sent == events_sent < record.events_total
    # The client left during the stall, long before the server would have resumed.
    assert record.finished_at is not None and record.finished_at - started < STALL
    wait_for_no_leftover_threads()
    # Exactly one usage report, of the one request, ended by the timeout: streamkit's
    # estimate (the provider reported none before the stall: estimated; Anthropic's
    # message_start reports the input: mixed), priced at the model asked for.
    (report,) = reports
    (end,) = report.attempts
    assert report.outcome == "error" and report.error is raised.value
    assert (end.outcome, end.timeout) == ("timeout", kind.replace(" ", "_"))
    assert report.usage is not None and report.usage == end.usage
    assert report.usage.source in ("estimated", "mixed")
    if provider == "openai" or events_sent == 0:
        assert report.usage.source == "estimated"
    assert report.usage.input_tokens > 0
    assert (report.usage.output_tokens > 0) == (kind == "idle")
    assert report.cost.amount is not None and report.cost.amount > 0
    assert (
        report.cost.amount
        == sk.prices.cost_of(
            provider, end.response_model, end.usage, requested=PRICED[provider]
        ).amount
    )
    assert [call.attempts for call in calls] == [(end,)]
    assert stream.usage == end.usage and stream.cost == report.cost


@pytest.mark.parametrize(("provider", "transcript", "phrase", "async_"), E2E_RUNS)
async def test_timeouts_anywhere_in_a_pipe_let_a_healthy_stream_through(
    provider: str, transcript: str, phrase: str, async_: bool
) -> None:
    with ReplayServer(transcript, pace=0.01) as server:
        async with replay_stream(server, provider, async_=async_) as stream:
            pipeline = stream.pipe(
                ops.first_chunk_timeout(5),
                ops.idle_timeout(2),
                ops.take_until_match(phrase),
                ops.idle_timeout(2),
                ops.accumulate(),
                ops.first_chunk_timeout(5),
                ops.idle_timeout(2),
            )
            snapshots = await run_either(pipeline, async_=async_)
    assert snapshots[-1].content == text_until(transcript, phrase)
    wait_for_no_leftover_threads()
