"""sk.Deadlines, ops.deadlines() and ops.total_timeout(): one time budget per call,
per attempt (``sk.stream(..., deadlines=...)``) and overall (``ops.deadlines`` after
``ops.fallback``), each error saying which deadline passed and whose it was."""

from __future__ import annotations

import asyncio
import time
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


def test_ops_deadlines_refuses_a_headers_deadline_it_cannot_honour() -> None:
    """An operator sees chunks, not response headers: ``ops.deadlines`` refuses
    ``headers`` by name (it once dropped it silently) and says where it holds."""
    with pytest.raises(ValueError, match=r"Deadlines\.headers") as raised:
        ops.deadlines(sk.Deadlines(headers=1.0, total=5.0))
    assert "sk.stream(..., deadlines=" in str(raised.value)
    ops.deadlines(sk.Deadlines(first_chunk=1.0, idle=1.0, total=5.0))  # the rest is fine


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_the_headers_deadline_is_not_stretched_by_a_longer_idle_one(async_: bool) -> None:
    """``headers`` bounds the wait for the response headers by itself, whatever ``idle``
    says (once the SDK's read timeout, ``max(headers, idle)``, enforced it: a server
    silent before its headers held the request for ``idle``), and the SDK does not send
    the request again (a client that retries, as the SDKs do by default)."""
    with ReplayServer(pace=0.001) as server:
        server.push(
            *[Reply("openai/chat-text-usage", fault=Fault(http_error=503, stall_before=3.0))] * 3
        )
        client = server.client("openai", async_=async_, max_retries=2)
        stream = sk.stream(
            "openai",
            "gpt",
            "hi",
            client=client,
            async_=async_,
            deadlines=sk.Deadlines(headers=0.2, idle=2.5),
        )
        started = time.monotonic()
        try:
            error = await _outcome(stream.pipe(ops.to_call_response()), async_)
            elapsed = time.monotonic() - started
            await asyncio.sleep(0.8)  # longer than the SDK's first retry backoff
        finally:
            if async_:
                await close_async_client(client)
        record = await asyncio.to_thread(server.wait_for_request_end, 0, 2.0)
        requests = len(server.requests)
    assert isinstance(error, sk.StreamTimeoutError)
    assert (error.kind, error.seconds, error.scope) == ("headers", 0.2, "attempt")
    assert elapsed < 1.0 and record.disconnected
    assert requests == 1


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(
    ("transcript", "params"),
    [("openai/responses-text", {"api": "responses"}), ("openai/chat-text-usage", {"fast": True})],
    ids=["responses", "fast"],
)
async def test_the_headers_deadline_holds_on_every_openai_adapter(
    transcript: str, params: dict[str, Any], async_: bool
) -> None:
    """``api="responses"`` and ``fast=True`` streams take a headers deadline as the chat
    one does (once the request timeout was set on a request dict that lost its
    adapter's type): before the headers it passes, after them it does not, and the
    answer arrives whole."""
    with ReplayServer(pace=0.001) as server:
        server.push(
            Reply(transcript, fault=Fault(http_error=503, stall_before=3.0)),
            Reply(transcript, fault=Fault(stall_before=0.5)),
        )
        client = server.client("openai", async_=async_)
        budget = sk.Deadlines(headers=0.2)
        late = sk.stream("openai", "gpt", "hi", client=client, deadlines=budget, **params)
        slow_to_start = sk.stream("openai", "gpt", "hi", client=client, deadlines=budget, **params)
        try:
            error = await _outcome(late.pipe(ops.to_call_response()), async_)
            response = await _last(slow_to_start.pipe(ops.to_call_response()), async_)
        finally:
            if async_:
                await close_async_client(client)
    assert isinstance(error, sk.StreamTimeoutError) and error.kind == "headers"
    assert "4242" in response.content


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


async def _last(observable: Observable[Any], async_: bool) -> Any:
    if async_:
        return await observable
    return await asyncio.to_thread(observable.run)


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_each_attempts_deadline_is_named_in_the_all_failed_error(async_: bool) -> None:
    """Per attempt: the primary stalls before its response headers, the second after
    its headers and before its first chunk, the third after its first chunks; each
    attempt's own deadline passes (headers, first chunk, idle: a headers deadline does
    not cover the wait after the headers) and closes its request, and the one error
    lists all three, each saying which deadline it was and that it was the attempt's."""
    with ReplayServer(pace=0.001) as server:
        server.push(
            Reply(
                "anthropic/messages-tool-result-followup",
                fault=Fault(http_error=503, stall_before=3.0),
            ),
            Reply("anthropic/messages-tool-result-followup", fault=Fault(stall_before=3.0)),
            Reply("openai/chat-text-usage", fault=Fault(stall_after_events=(3, 3.0))),
        )
        anthropic_client = server.client("anthropic", async_=async_)
        openai_client = server.client("openai", async_=async_)
        budget = sk.Deadlines(headers=0.3, first_chunk=0.6, idle=0.3)
        primary, second = (
            sk.stream(
                "anthropic", model, "hi", client=anthropic_client, async_=async_, deadlines=budget
            )
            for model in ("claude", "claude-haiku")
        )
        backup = sk.stream(
            "openai", "gpt", "hi", client=openai_client, async_=async_, deadlines=budget
        )
        try:
            error = await _outcome(primary.pipe(ops.fallback(second, backup)), async_)
        finally:
            if async_:
                await close_async_client(anthropic_client)
                await close_async_client(openai_client)
        records = [await asyncio.to_thread(server.wait_for_request_end, i, 3.0) for i in range(3)]
    assert isinstance(error, sk.AllFailedError)
    assert [(e.kind, e.scope) for e in error.errors if isinstance(e, sk.StreamTimeoutError)] == [
        ("headers", "attempt"),
        ("first chunk", "attempt"),
        ("idle", "attempt"),
    ]
    assert "headers timeout (attempt deadline)" in str(error)
    assert "first chunk timeout (attempt deadline)" in str(error)
    assert "idle timeout (attempt deadline)" in str(error)
    assert all(record.disconnected for record in records)  # each closed at its deadline
    assert len(server.requests) == 3  # one request per attempt
    assert records[2].events_sent == 3


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_the_overall_deadline_bounds_the_call_across_its_attempts(async_: bool) -> None:
    """Overall: the first attempt spends its headers deadline (its server silent before
    the headers), the second stalls after its first chunks with no deadline of its own;
    the call's total deadline passes, says so, and closes the second request."""
    with ReplayServer(pace=0.001) as server:
        server.push(
            Reply("openai/chat-text-usage", fault=Fault(http_error=503, stall_before=3.0)),
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
