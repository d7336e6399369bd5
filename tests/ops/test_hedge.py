"""``ops.hedge``: virtual-time examples (when the extra request starts, when each is
disposed), a hypothesis property (no loser left open, never chunks of two), and end to
end on two replay servers: a primary stalled before its first chunk is closed once
the hedge delivers content, for every provider, sync and async."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reactivex.testing import ReactiveTest, TestScheduler

import streamkit as sk
from streamkit import ops
from streamkit.testing import Fault, ReplayServer, Reply
from tests.ops._fault_grid import BEFORE_CONTENT, FAULTS, GRID, close, outcome
from tests.recorded import error_of, kind_of, value_of
from tests.reliability._matrix import PROVIDER_CASES, ProviderCase, settle
from tests.reliability._run import close_async_client
from tests.reliability.test_stall_before_headers import source_threads

on_next, on_completed, on_error = (
    ReactiveTest.on_next,
    ReactiveTest.on_completed,
    ReactiveTest.on_error,
)
subscribe = ReactiveTest.subscribe


def text(content: str, provider: str = "openai") -> sk.Chunk:
    return sk.Chunk(provider=provider, content=content)


def emitted(messages: list[Any]) -> list[sk.Chunk]:
    return [value_of(m) for m in messages if kind_of(m) == "N"]


def test_a_fast_first_token_never_starts_the_hedge() -> None:
    scheduler = TestScheduler()
    primary = scheduler.create_cold_observable(on_next(10, text("hi")), on_completed(20))
    extra = scheduler.create_cold_observable(on_next(1, text("x", "b")), on_completed(2))
    results = scheduler.start(lambda: primary.pipe(ops.hedge(extra, after=50, scheduler=scheduler)))
    assert [c.content for c in emitted(results.messages)] == ["hi"]
    assert extra.subscriptions == []


def test_a_slow_primary_is_hedged_and_disposed_when_the_hedge_delivers() -> None:
    scheduler = TestScheduler()
    primary = scheduler.create_cold_observable(on_next(100, text("late")), on_completed(110))
    extra = scheduler.create_cold_observable(
        on_next(10, text("fast", "b")), on_next(20, text("!", "b")), on_completed(30)
    )
    results = scheduler.start(lambda: primary.pipe(ops.hedge(extra, after=50, scheduler=scheduler)))
    assert [c.content for c in emitted(results.messages)] == ["fast", "!"]
    assert primary.subscriptions == [subscribe(200, 260)]
    assert extra.subscriptions == [subscribe(250, 280)]


def test_a_hedged_primary_that_answers_first_still_wins() -> None:
    scheduler = TestScheduler()
    primary = scheduler.create_cold_observable(on_next(60, text("mine")), on_completed(70))
    extra = scheduler.create_cold_observable(on_next(40, text("x", "b")), on_completed(50))
    results = scheduler.start(lambda: primary.pipe(ops.hedge(extra, after=50, scheduler=scheduler)))
    assert [c.provider for c in emitted(results.messages)] == ["openai"]
    assert extra.subscriptions == [subscribe(250, 260)]


def test_without_alternatives_the_source_is_subscribed_again() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(80, text("a")), on_completed(90))
    results = scheduler.start(lambda: source.pipe(ops.hedge(after=50, scheduler=scheduler)))
    assert [c.content for c in emitted(results.messages)] == ["a"]
    assert source.subscriptions == [subscribe(200, 290), subscribe(250, 280)]


def test_a_primary_failing_early_starts_the_hedge_at_once_and_all_failing_lists_both() -> None:
    scheduler = TestScheduler()
    first, second = ConnectionResetError("reset"), TimeoutError("slow")
    primary = scheduler.create_cold_observable(on_error(10, first))
    extra = scheduler.create_cold_observable(on_error(5, second))
    results = scheduler.start(lambda: primary.pipe(ops.hedge(extra, after=50, scheduler=scheduler)))
    assert extra.subscriptions == [subscribe(210, 215)]
    failure = error_of(results.messages[-1])
    assert isinstance(failure, sk.AllFailedError) and failure.errors == [first, second]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        ops.hedge(after=0)
    with pytest.raises(TypeError):
        ops.hedge(after="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ops.hedge(after=1, max_extra=-1)
    with pytest.raises(TypeError):
        ops.hedge("openai", after=1)  # type: ignore[arg-type]


@given(
    st.lists(st.tuples(st.integers(1, 100), st.integers(1, 100)), min_size=1, max_size=4),
    st.integers(1, 60),
)
def test_hedging_never_leaves_a_loser_open(timings: list[tuple[int, int]], after: int) -> None:
    scheduler = TestScheduler()
    sources = [
        scheduler.create_cold_observable(
            on_next(first, text(f"s{i}", f"p{i}")), on_completed(first + length)
        )
        for i, (first, length) in enumerate(timings)
    ]
    hedged = sources[0].pipe(
        ops.hedge(*sources[1:], after=after, max_extra=len(sources) - 1, scheduler=scheduler)
    )
    results = scheduler.start(lambda: hedged, disposed=10_000)
    out = emitted(results.messages)
    assert len({c.provider for c in out}) == 1  # never chunks of two requests
    assert kind_of(results.messages[-1]) == "C"  # it ends, well before the dispose
    decided = results.messages[0].time  # the winner's first content is emitted at once
    winner = int(out[0].provider[1:])
    for index, source in enumerate(sources):
        for subscription in source.subscriptions:
            if index != winner:
                assert subscription.unsubscribe <= decided  # every loser closed by then
            assert subscription.unsubscribe <= results.messages[-1].time


PROVIDERS = [pytest.param(case, id=case.name) for case in PROVIDER_CASES]


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_stalled_primary_of_every_provider_is_closed_when_the_hedge_wins(
    provider: ProviderCase, async_: bool
) -> None:
    missing = provider.missing()
    if missing:
        pytest.skip(missing)
    with ReplayServer(pace=0.0) as slow_server, ReplayServer(pace=0.0) as fast_server:
        slow_server.push(Reply(provider.transcript, fault=Fault(stall_before=5.0)))
        fast_server.push("openai/chat-text-usage")
        slow_client = slow_server.client(provider.name, async_=async_)
        fast_client = fast_server.client("openai", async_=async_)
        slow = sk.stream(provider.name, "m", "hi", client=slow_client, async_=async_)
        fast = sk.stream("openai", "m", "hi", client=fast_client, async_=async_)
        observable = slow.pipe(ops.hedge(fast, after=0.2), ops.to_call_response())
        try:
            if async_:
                response = await observable
            else:
                response = await asyncio.to_thread(observable.run)
        finally:
            if async_:
                await close_async_client(slow_client)
                await close_async_client(fast_client)
        assert response.provider == "openai" and "4242" in response.content
        record = await asyncio.to_thread(slow_server.wait_for_request_end, 0, 3.0)
        assert record.disconnected and record.events_sent == 0  # closed during its stall


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_sync_primary_stalled_before_its_headers_is_closed_without_a_deadline(
    provider: ProviderCase,
) -> None:
    """A sync request stalled before its response headers, with no deadline of its own:
    when the hedge wins it is closed at once (through the socket its thread is blocked
    on: the SDK is still inside its ``create()``), and neither its connection nor its
    thread is left behind."""
    missing = provider.missing()
    if missing:
        pytest.skip(missing)
    with ReplayServer(pace=0.0) as slow_server, ReplayServer(pace=0.0) as fast_server:
        slow_server.push(Reply(provider.transcript, fault=Fault(http_error=503, stall_before=5.0)))
        fast_server.push("openai/chat-text-usage")
        slow = sk.stream(provider.name, "m", "hi", client=slow_server.client(provider.name))
        fast = sk.stream("openai", "m", "hi", client=fast_server.client("openai"))
        started = time.monotonic()
        response = await asyncio.to_thread(
            slow.pipe(ops.hedge(fast, after=0.3), ops.to_call_response()).run
        )
        assert response.provider == "openai" and "4242" in response.content
        record = await asyncio.to_thread(slow_server.wait_for_request_end, 0, 2.0)
        assert record.disconnected and time.monotonic() - started < 2.5
        assert settle(lambda: slow_server.open_connections == 0 and not source_threads())


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_the_hedge_starts_after_after_and_the_loser_is_closed_and_billed(
    async_: bool,
) -> None:
    """A primary that stalls after its first event (anthropic's ``message_start``, which
    reports its input tokens): the hedge request reaches the server no sooner than
    ``after`` past the subscription, wins with its first content, and the primary is
    closed within that one event; the response bills both."""
    after = 0.3
    with ReplayServer(pace=0.0) as slow_server, ReplayServer(pace=0.0) as fast_server:
        slow_server.push(
            Reply(
                "anthropic/messages-tool-result-followup",
                fault=Fault(stall_after_events=(1, 5.0)),
            )
        )
        fast_server.push("openai/chat-text-usage")
        slow_client = slow_server.client("anthropic", async_=async_)
        fast_client = fast_server.client("openai", async_=async_)
        slow = sk.stream("anthropic", "claude", "hi", client=slow_client, async_=async_)
        fast = sk.stream("openai", "gpt", "hi", client=fast_client, async_=async_)
        observable = slow.pipe(ops.hedge(fast, after=after), ops.to_call_response())
        subscribed_at = time.monotonic()
        try:
            if async_:
                response = await observable
            else:
                response = await asyncio.to_thread(observable.run)
        finally:
            if async_:
                await close_async_client(slow_client)
                await close_async_client(fast_client)
        loser = await asyncio.to_thread(slow_server.wait_for_request_end, 0, 3.0)
        winner = await asyncio.to_thread(fast_server.wait_for_request_end, 0, 3.0)
    assert winner.started_at - subscribed_at >= after  # started by the timer, not before
    assert loser.started_at < winner.started_at
    assert loser.disconnected and loser.events_sent == 1  # closed within its one event
    assert not loser.completed
    assert response.provider == "openai" and response.content == "4200 + 42 equals 4242."
    assert response.usage is not None
    assert response.usage.input_tokens == 602 + 16  # the loser's message_start is billed
    assert response.usage.output_tokens == 1 + 10


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_a_fast_primary_on_the_replay_server_never_sends_the_hedge(async_: bool) -> None:
    with ReplayServer("openai/chat-text-usage", pace=0.0) as server:
        client = server.client("openai", async_=async_)
        primary = sk.stream("openai", "gpt", "hi", client=client, async_=async_)
        hedge_stream = sk.stream("openai", "gpt", "hedge", client=client, async_=async_)
        observable = primary.pipe(ops.hedge(hedge_stream, after=2.0), ops.to_call_response())
        try:
            if async_:
                response = await observable
            else:
                response = await asyncio.to_thread(observable.run)
        finally:
            if async_:
                await close_async_client(client)
        record = await asyncio.to_thread(server.wait_for_request_end, 0, 3.0)
        assert response.content == "4200 + 42 equals 4242."
        assert record.completed and len(server.requests) == 1  # the timer was cancelled


@pytest.mark.parametrize(("provider", "fault", "async_"), GRID)
async def test_every_fault_schedule_on_the_primary_of_every_provider(
    provider: ProviderCase, fault: str, async_: bool
) -> None:
    """Before content (a 529, a stall before the headers or before the first chunk) the
    hedge takes over and the primary is closed at once, without a deadline of its own
    (sync too: a request stalled before its response headers is closed through the
    socket its thread is blocked on); after content the primary has already won: the
    hedge is never sent and the primary's own error is the result (with its idle
    deadline for a stall)."""
    missing = provider.missing()
    if missing:
        pytest.skip(missing)
    before = fault in BEFORE_CONTENT
    with ReplayServer(pace=0.001) as primary_server, ReplayServer(pace=0.0) as hedge_server:
        primary_server.push(Reply(provider.transcript, fault=FAULTS[fault](provider)))
        hedge_server.push("openai/chat-text-usage")
        primary_client = primary_server.client(provider.name, async_=async_)
        hedge_client = hedge_server.client("openai", async_=async_)
        deadlines = sk.Deadlines(idle=0.3) if fault == "stall-after-first-chunk" else None
        primary = sk.stream(
            provider.name, "m", "hi", client=primary_client, async_=async_, deadlines=deadlines
        )
        backup = sk.stream("openai", "m", "hi", client=hedge_client, async_=async_)
        # after content no hedge may start: give the primary ample time to its first chunk
        after = 0.2 if before else 3.0
        try:
            response, error = await outcome(
                primary.pipe(ops.hedge(backup, after=after), ops.to_call_response()), async_
            )
        finally:
            await close(async_, primary_client, hedge_client)
        sent = await asyncio.to_thread(settle, lambda: bool(primary_server.requests), 1.0)
        if sent:
            record = await asyncio.to_thread(primary_server.wait_for_request_end, 0, 2.0)
        hedged = len(hedge_server.requests)
    if before:
        assert error is None and response.provider == "openai"
        assert response.content == "4200 + 42 equals 4242."
        # (not sent at all when closed first: litellm's slow first async call, say)
        if fault.startswith("stall") and sent:
            assert record.disconnected and record.events_sent == 0
        return
    assert hedged == 0  # content came first: no extra request, no extra tokens
    assert error is not None and not isinstance(error, sk.AllFailedError)
    if fault == "stall-after-first-chunk":
        assert isinstance(error, sk.StreamTimeoutError) and error.kind == "idle"
        assert record.disconnected and record.events_sent == provider.at
    elif fault == "cut-mid-stream":
        assert isinstance(error, sk.IncompleteStreamError)
    else:
        assert primary.is_transient(error)  # the overload error event, as the provider says
