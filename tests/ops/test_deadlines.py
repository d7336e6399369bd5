"""sk.Deadlines, ops.deadlines() and ops.total_timeout(): one time budget per call,
per attempt (``sk.stream(..., deadlines=...)``) and overall (``ops.deadlines`` after
``ops.fallback``), each error saying which deadline passed and whose it was."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import reactivex.operators as rx
from hypothesis import given
from hypothesis import strategies as st
from reactivex import Observable
from reactivex.testing import TestScheduler

import streamkit as sk
from streamkit import ops
from streamkit.testing import Fault, ReplayServer, Reply
from tests.recorded import error_of, kind_of, value_of
from tests.reliability._run import close_async_client

from ._pipelines import chunks_of, on_completed, on_next, subscribe


def test_total_timeout_fires_even_while_chunks_flow() -> None:
    scheduler = TestScheduler()
    a, b, c = chunks_of(["a", "b", "c"])
    xs = scheduler.create_cold_observable(on_next(10, a), on_next(40, b), on_next(80, c))

    results = scheduler.start(lambda: xs.pipe(ops.total_timeout(50)))

    assert [value_of(m).content for m in results.messages[:-1]] == ["a", "b"]
    error = error_of(results.messages[-1])
    assert isinstance(error, sk.StreamTimeoutError) and (error.kind, error.seconds) == (
        "total",
        50.0,
    )
    assert results.messages[-1].time == 250
    assert xs.subscriptions == [subscribe(200, 250)]


def test_deadlines_combine_and_the_first_to_pass_names_itself() -> None:
    scheduler = TestScheduler()
    a, b = chunks_of(["a", "b"])
    xs = scheduler.create_cold_observable(on_next(10, a), on_next(60, b), on_completed(70))
    budget = sk.Deadlines(first_chunk=20, idle=30, total=500)

    results = scheduler.start(lambda: xs.pipe(ops.deadlines(budget)))

    error = error_of(results.messages[-1])
    assert isinstance(error, sk.StreamTimeoutError) and error.kind == "idle"
    assert results.messages[-1].time == 240
    assert xs.subscriptions == [subscribe(200, 240)]


def test_the_first_chunk_deadline_waits_for_output_not_an_opening_event() -> None:
    """Anthropic's ``message_start`` and OpenAI's role chunk carry no output: they do
    not end the wait for the first chunk; a thinking delta or a tool call does."""
    scheduler = TestScheduler()
    opening = sk.Chunk(provider="anthropic", model="claude")
    xs = scheduler.create_cold_observable(
        on_next(5, opening), on_next(50, sk.Chunk(provider="anthropic", content="late"))
    )
    results = scheduler.start(lambda: xs.pipe(ops.deadlines(first_chunk=30)))
    error = error_of(results.messages[-1])
    assert isinstance(error, sk.StreamTimeoutError)
    assert (error.kind, error.scope, results.messages[-1].time) == ("first chunk", "overall", 230)
    assert xs.subscriptions == [subscribe(200, 230)]

    scheduler = TestScheduler()
    thinking = sk.Chunk(provider="anthropic", thinking="hm")
    ys = scheduler.create_cold_observable(
        on_next(5, opening), on_next(20, thinking), on_next(50, opening), on_completed(60)
    )
    results = scheduler.start(lambda: ys.pipe(sk.Deadlines(first_chunk=30).bound()))
    assert kind_of(results.messages[-1]) == "C" and results.messages[-1].time == 260


def test_a_stream_that_ends_in_time_passes_unchanged() -> None:
    scheduler = TestScheduler()
    a, b = chunks_of(["a", "b"])
    xs = scheduler.create_cold_observable(on_next(10, a), on_next(20, b), on_completed(30))

    results = scheduler.start(lambda: xs.pipe(ops.deadlines(first_chunk=15, idle=15, total=40)))

    assert [m.time for m in results.messages] == [210, 220, 230]
    assert xs.subscriptions == [subscribe(200, 230)]


@given(st.lists(st.integers(1, 30), min_size=1, max_size=8), st.integers(1, 200))
def test_total_timeout_passes_exactly_the_chunks_before_it(gaps: list[int], total: int) -> None:
    scheduler = TestScheduler()
    times, now = [], 0
    for gap in gaps:
        now += gap
        times.append(now)
    chunks = chunks_of([str(i) for i in range(len(times))])
    xs = scheduler.create_cold_observable(
        *[on_next(t, c) for t, c in zip(times, chunks, strict=True)], on_completed(now + 1)
    )
    results = scheduler.start(lambda: xs.pipe(ops.total_timeout(total)))
    passed = [m for m in results.messages if kind_of(m) == "N"]
    assert len(passed) == sum(1 for t in times if t < total)
    ended_by_timeout = kind_of(results.messages[-1]) == "E"
    # at a tie the deadline, armed at the subscription, is handled first (as the chunks)
    assert ended_by_timeout == (now + 1 >= total)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"headers": 0}, ValueError),
        ({"idle": "1"}, TypeError),
        ({"total": float("inf")}, ValueError),
    ],
)
def test_bad_deadlines_are_refused(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        sk.Deadlines(**kwargs)  # type: ignore[arg-type]


def test_deadlines_refuse_a_budget_and_keywords_together() -> None:
    with pytest.raises(TypeError):
        ops.deadlines(sk.Deadlines(total=1), idle=2)
    with pytest.raises(TypeError):
        sk.stream("openai", "m", "hi", client=None, deadlines=5)  # type: ignore[arg-type]


def test_read_timeout_covers_idle_gaps() -> None:
    assert sk.Deadlines(headers=2, idle=5).read_timeout == 5
    assert sk.Deadlines(headers=2).read_timeout == 2
    assert sk.Deadlines(idle=2).read_timeout is None


# -- end to end: per attempt and overall, sync and async ---------------------------------
async def _outcome(observable: Observable[Any], async_: bool) -> BaseException:
    try:
        if async_:
            await observable
        else:
            await asyncio.to_thread(observable.run)
    except Exception as error:
        return error
    raise AssertionError("the deadline never passed")


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_each_attempts_deadline_is_named_in_the_all_failed_error(async_: bool) -> None:
    """Per attempt: the primary stalls before its headers, the backup after its first
    chunk; each attempt's own deadline passes and closes its request, and the one
    error lists both, each saying which deadline it was and that it was the attempt's."""
    with ReplayServer(pace=0.001) as server:
        server.push(
            Reply("anthropic/messages-tool-result-followup", fault=Fault(stall_before=3.0)),
            Reply("openai/chat-text-usage", fault=Fault(stall_after_events=(3, 3.0))),
        )
        anthropic_client = server.client("anthropic", async_=async_)
        openai_client = server.client("openai", async_=async_)
        primary = sk.stream(
            "anthropic",
            "claude",
            "hi",
            client=anthropic_client,
            async_=async_,
            deadlines=sk.Deadlines(headers=0.3),
        )
        backup = sk.stream(
            "openai",
            "gpt",
            "hi",
            client=openai_client,
            async_=async_,
            deadlines=sk.Deadlines(idle=0.3),
        )
        try:
            error = await _outcome(primary.pipe(ops.fallback(backup)), async_)
        finally:
            if async_:
                await close_async_client(anthropic_client)
                await close_async_client(openai_client)
        records = [await asyncio.to_thread(server.wait_for_request_end, i, 3.0) for i in (0, 1)]
    assert isinstance(error, sk.AllFailedError)
    assert [(e.kind, e.scope) for e in error.errors if isinstance(e, sk.StreamTimeoutError)] == [
        ("headers", "attempt"),
        ("idle", "attempt"),
    ]
    assert "headers timeout (attempt deadline)" in str(error)
    assert "idle timeout (attempt deadline)" in str(error)
    assert all(record.disconnected for record in records)  # each closed at its deadline
    assert records[1].events_sent == 3


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_the_overall_deadline_bounds_the_call_across_its_attempts(async_: bool) -> None:
    """Overall: the first attempt spends its headers deadline, the second stalls after
    its first chunks with no deadline of its own; the call's total deadline passes,
    says so, and closes the second request."""
    with ReplayServer(pace=0.001) as server:
        server.push(
            Reply("openai/chat-text-usage", fault=Fault(stall_before=3.0)),
            Reply("openai/chat-text-usage", fault=Fault(stall_after_events=(3, 3.0))),
        )
        client = server.client("openai", async_=async_)
        primary = sk.stream(
            "openai",
            "gpt",
            "hi",
            client=client,
            async_=async_,
            deadlines=sk.Deadlines(headers=0.3),
        )
        backup = sk.stream("openai", "gpt-mini", "hi", client=client, async_=async_)
        delivered: list[str] = []
        observable = primary.pipe(
            ops.fallback(backup),
            ops.deadlines(sk.Deadlines(total=0.8)),
            rx.do_action(lambda chunk: delivered.append(chunk.content)),
        )
        try:
            error = await _outcome(observable, async_)
        finally:
            if async_:
                await close_async_client(client)
        records = [await asyncio.to_thread(server.wait_for_request_end, i, 3.0) for i in (0, 1)]
    assert isinstance(error, sk.StreamTimeoutError)
    assert (error.kind, error.scope, error.seconds) == ("total", "overall", 0.8)
    assert str(error).startswith("total timeout (overall deadline)")
    assert "".join(delivered) == "4200"  # the backup's chunks before its stall
    assert records[0].disconnected and records[1].disconnected
    assert records[1].events_sent == 3
