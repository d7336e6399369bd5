"""``sk.race`` / ``sk.first_match`` / ``sk.best_of``: virtual-time examples (who is
subscribed and disposed when), hypothesis properties (never chunks of two streams),
and end to end, one replay server per candidate so each server's records show what
happened to its request (losers closed during a stall after their first event)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import reactivex.operators as rx
from hypothesis import given
from hypothesis import strategies as st
from reactivex import Observable
from reactivex.testing import ReactiveTest, TestScheduler

import streamkit as sk
from streamkit import ops
from streamkit.testing import Fault, ReplayServer, Reply, load_transcript
from tests.ops._fault_grid import BEFORE_CONTENT, FAULTS, GRID, close, run
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


def text(content: str, provider: str = "openai", **fields: Any) -> sk.Chunk:
    return sk.Chunk(provider=provider, content=content, **fields)


def emitted(messages: list[Any]) -> list[sk.Chunk]:
    return [value_of(m) for m in messages if kind_of(m) == "N"]


# -- race / first_match: reactivex.testing examples -------------------------------------
def test_the_first_to_match_wins_and_the_others_are_disposed_at_that_instant() -> None:
    scheduler = TestScheduler()
    slow = scheduler.create_cold_observable(
        on_next(10, text("thinking", "a")), on_next(50, text(" ANSWER", "a")), on_completed(60)
    )
    fast = scheduler.create_cold_observable(
        on_next(20, text("the ", "b")),
        on_next(30, text("ANSWER: 4", "b")),
        on_next(40, text(".", "b")),
        on_completed(45),
    )

    results = scheduler.start(lambda: sk.race(slow, fast, until=lambda t: "ANSWER" in t))

    assert [c.content for c in emitted(results.messages)] == ["the ", "ANSWER: 4", "."]
    assert [m.time for m in results.messages] == [230, 230, 240, 245]
    assert slow.subscriptions == [subscribe(200, 230)]
    assert fast.subscriptions == [subscribe(200, 245)]


def test_without_until_the_first_to_complete_wins() -> None:
    scheduler = TestScheduler()
    a = scheduler.create_cold_observable(on_next(5, text("long", "a")), on_completed(50))
    b = scheduler.create_cold_observable(on_next(10, text("short", "b")), on_completed(20))

    results = scheduler.start(lambda: sk.race(a, b))

    assert [c.provider for c in emitted(results.messages)] == ["b"]
    assert a.subscriptions == [subscribe(200, 220)]


def test_a_tie_goes_to_the_earlier_stream() -> None:
    scheduler = TestScheduler()
    a = scheduler.create_cold_observable(on_next(10, text("yes", "a")), on_completed(20))
    b = scheduler.create_cold_observable(on_next(10, text("yes", "b")), on_completed(20))

    results = scheduler.start(lambda: sk.first_match(a, b, until=lambda t: "yes" in t))

    assert {c.provider for c in emitted(results.messages)} == {"a"}
    assert b.subscriptions == [subscribe(200, 210)]


def test_failures_and_non_matches_drop_out_and_all_failing_lists_each_cause() -> None:
    scheduler = TestScheduler()
    boom = ConnectionResetError("reset")
    a = scheduler.create_cold_observable(on_error(10, boom))
    b = scheduler.create_cold_observable(on_next(5, text("no", "b")), on_completed(15))

    results = scheduler.start(lambda: sk.first_match(a, b, until=lambda t: "yes" in t))

    failure = error_of(results.messages[-1])
    assert isinstance(failure, sk.AllFailedError)
    assert failure.errors[0] is boom and isinstance(failure.errors[1], sk.NoMatchError)
    assert results.messages[-1].time == 215
    assert emitted(results.messages) == []


def test_one_failure_leaves_the_other_to_win() -> None:
    scheduler = TestScheduler()
    a = scheduler.create_cold_observable(on_next(5, text("ye", "a")), on_error(10, cut_error()))
    b = scheduler.create_cold_observable(on_next(30, text("yes", "b")), on_completed(40))

    results = scheduler.start(lambda: sk.race(a, b, until=lambda t: "yes" in t))

    assert [c.provider for c in emitted(results.messages)] == ["b"]
    assert kind_of(results.messages[-1]) == "C"


def test_the_winner_usage_includes_what_losers_reported() -> None:
    scheduler = TestScheduler()
    a = scheduler.create_cold_observable(
        on_next(5, text("", "a", usage=sk.Usage(input_tokens=10, output_tokens=0)))
    )
    b = scheduler.create_cold_observable(
        on_next(10, text("ok", "b")),
        on_next(11, text("", "b", usage=sk.Usage(input_tokens=7, output_tokens=2))),
        on_completed(12),
    )
    results = scheduler.start(
        lambda: sk.race(a, b, until=lambda t: t == "ok").pipe(ops.to_call_response())
    )
    usage = value_of(results.messages[0]).usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens) == (17, 2)


def test_disposing_before_the_decision_disposes_every_stream() -> None:
    scheduler = TestScheduler()
    a = scheduler.create_cold_observable(on_next(100, text("a")))
    b = scheduler.create_cold_observable(on_next(100, text("b")))
    scheduler.start(lambda: sk.race(a, b, until=bool), disposed=250)
    assert a.subscriptions == b.subscriptions == [subscribe(200, 250)]


def test_empty_and_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        sk.race()
    with pytest.raises(ValueError):
        sk.best_of(score=len)
    with pytest.raises(TypeError):
        sk.race("openai")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        sk.first_match(_never(), until=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        sk.best_of(_never(), _never(), n=2, score=len)


def _never() -> Observable[sk.Chunk]:
    import reactivex

    return reactivex.never()


def cut_error() -> sk.IncompleteStreamError:
    return sk.IncompleteStreamError("openai", "[DONE]", events=1)


# -- race: hypothesis -------------------------------------------------------------------
schedules = st.lists(
    st.lists(st.tuples(st.integers(1, 5), st.sampled_from(["a", "b", "!"])), max_size=6),
    min_size=1,
    max_size=4,
)


@given(schedules, st.booleans())
def test_race_never_emits_chunks_of_two_streams(
    schedule: list[list[tuple[int, str]]], fail: bool
) -> None:
    scheduler = TestScheduler()
    sources = []
    for index, events in enumerate(schedule):
        now, messages = 0, []
        for gap, piece in events:
            now += gap
            messages.append(on_next(now, text(piece, f"p{index}")))
        end = on_error(now + 1, cut_error()) if fail and index % 2 else on_completed(now + 1)
        sources.append(scheduler.create_cold_observable(*messages, end))
    results = scheduler.start(lambda: sk.race(*sources, until=lambda t: "!" in t))
    providers = {c.provider for c in emitted(results.messages)}
    assert len(providers) <= 1
    if providers:
        (winner,) = providers
        index = int(winner[1:])
        expected = [piece for _, piece in schedule[index]]
        got = [c.content for c in emitted(results.messages)]
        assert got == expected[: len(got)] and "!" in "".join(got)
        # every loser was disposed no later than the decision
        decided = next(m.time for m in results.messages if "!" in value_of(m).content)
        for other, source in enumerate(sources):
            if other != index:
                assert all(s.unsubscribe <= decided for s in source.subscriptions)
    else:
        assert isinstance(error_of(results.messages[-1]), sk.AllFailedError)


# -- best_of ----------------------------------------------------------------------------
def test_best_of_waits_for_all_and_keeps_the_best_score() -> None:
    scheduler = TestScheduler()
    a = scheduler.create_cold_observable(on_next(5, text("short", "a")), on_completed(10))
    b = scheduler.create_cold_observable(on_next(5, text("much longer", "b")), on_completed(30))

    results = scheduler.start(lambda: sk.best_of(a, b, score=len))

    assert [c.content for c in emitted(results.messages)] == ["much longer"]
    assert [m.time for m in results.messages] == [230, 230]
    assert a.subscriptions == [subscribe(200, 210)]
    assert b.subscriptions == [subscribe(200, 230)]


def test_best_of_stops_a_candidate_that_can_no_longer_win() -> None:
    scheduler = TestScheduler()
    # shorter is better: a candidate longer than the best finished one cannot win
    a = scheduler.create_cold_observable(on_next(5, text("ok", "a")), on_completed(10))
    b = scheduler.create_cold_observable(
        on_next(5, text("rambling", "b")), on_next(20, text(" on", "b")), on_completed(100)
    )

    def brevity(t: str) -> float:
        return -len(t)

    results = scheduler.start(lambda: sk.best_of(a, b, score=brevity, bound=brevity))

    assert [c.content for c in emitted(results.messages)] == ["ok"]
    assert b.subscriptions == [subscribe(200, 210)]  # stopped when a finished
    assert results.messages[-1].time == 210


def test_best_of_n_samples_one_cold_stream_and_ties_go_to_the_first() -> None:
    scheduler = TestScheduler()
    a = scheduler.create_cold_observable(on_next(5, text("same")), on_completed(10))
    results = scheduler.start(lambda: sk.best_of(a, n=3, score=len))
    assert [c.content for c in emitted(results.messages)] == ["same"]
    assert len(a.subscriptions) == 3


def test_best_of_all_failing_lists_each_cause() -> None:
    scheduler = TestScheduler()
    errors = [cut_error(), TimeoutError("slow")]
    sources = [scheduler.create_cold_observable(on_error(5, e)) for e in errors]
    results = scheduler.start(lambda: sk.best_of(*sources, score=len))
    failure = error_of(results.messages[-1])
    assert isinstance(failure, sk.AllFailedError) and failure.errors == errors


@given(st.lists(st.text("xy", max_size=6), min_size=1, max_size=5))
def test_best_of_output_is_a_best_scored_candidate(answers: list[str]) -> None:
    scheduler = TestScheduler()
    sources = [
        scheduler.create_cold_observable(on_next(1 + i, text(a, f"p{i}")), on_completed(10 + i))
        for i, a in enumerate(answers)
    ]
    results = scheduler.start(
        lambda: sk.best_of(*sources, score=lambda t: -len(t), bound=lambda t: -len(t))
    )
    out = emitted(results.messages)
    best = min(len(a) for a in answers)
    assert len(out) == 1 and len(out[0].content) == best
    assert out[0].provider == f"p{[len(a) for a in answers].index(best)}"


# -- end to end: one replay server per candidate ----------------------------------------
def _reported_usage(transcript: str) -> tuple[int, int]:
    """``(prompt_tokens, completion_tokens)`` of a chat transcript's last usage, read
    from the wire JSON (no streamkit decoder involved)."""
    for event in reversed(load_transcript(transcript).events):
        if '"usage":{' in event:
            usage = json.loads(event.removeprefix("data: "))["usage"]
            return usage["prompt_tokens"], usage["completion_tokens"]
    raise AssertionError(f"{transcript} reports no usage")


PROVIDERS = [pytest.param(case, id=case.name) for case in PROVIDER_CASES]
WINNER = "openai/chat-text-usage"


async def _run(observable: Observable[Any], async_: bool) -> Any:
    if async_:
        return await observable
    return await asyncio.to_thread(observable.run)


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_race_closes_the_stalled_loser_of_every_provider(
    provider: ProviderCase, async_: bool
) -> None:
    missing = provider.missing()
    if missing:
        pytest.skip(missing)
    with ReplayServer(pace=0.0) as loser_server, ReplayServer(pace=0.0) as winner_server:
        loser_server.push(Reply(provider.transcript, fault=Fault(stall_after_events=(1, 5.0))))
        winner_server.push(Reply(WINNER, fault=Fault(stall_before=0.2)))
        loser_client = loser_server.client(provider.name, async_=async_)
        winner_client = winner_server.client("openai", async_=async_)
        loser = sk.stream(provider.name, "m", "hi", client=loser_client, async_=async_)
        winner = sk.stream("openai", "m", "hi", client=winner_client, async_=async_)
        try:
            response = await _run(
                sk.race(loser, winner, until=lambda t: "equals 4242" in t).pipe(
                    ops.to_call_response()
                ),
                async_,
            )
        finally:
            if async_:
                await close_async_client(loser_client)
                await close_async_client(winner_client)
        assert "4242" in response.content and response.provider == "openai"
        record = await asyncio.to_thread(loser_server.wait_for_request_end, 0, 3.0)
        # closed during its stall after the first event: within one event of the decision
        assert record.disconnected and record.events_sent <= 1 < record.events_total


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_sync_loser_stalled_before_its_headers_is_closed_without_a_deadline(
    provider: ProviderCase,
) -> None:
    """Sync, the loser stalled before its response headers and no deadline given: it is
    closed at the decision (through the socket its thread is blocked on, the SDK still
    inside its ``create()``), and neither its connection nor its thread is left."""
    missing = provider.missing()
    if missing:
        pytest.skip(missing)
    with ReplayServer(pace=0.0) as loser_server, ReplayServer(pace=0.0) as winner_server:
        loser_server.push(Reply(provider.transcript, fault=Fault(http_error=503, stall_before=5.0)))
        winner_server.push(Reply(WINNER, fault=Fault(stall_before=0.2)))
        loser = sk.stream(provider.name, "m", "hi", client=loser_server.client(provider.name))
        winner = sk.stream("openai", "m", "hi", client=winner_server.client("openai"))
        started = time.monotonic()
        response = await _run(
            sk.race(loser, winner, until=lambda t: "equals 4242" in t).pipe(ops.to_call_response()),
            async_=False,
        )
        assert "4242" in response.content and response.provider == "openai"
        record = await asyncio.to_thread(loser_server.wait_for_request_end, 0, 2.0)
        assert record.disconnected and time.monotonic() - started < 2.5
        assert settle(lambda: loser_server.open_connections == 0 and not source_threads())


@pytest.mark.parametrize(("provider", "fault", "async_"), GRID)
async def test_a_faulty_candidate_of_every_provider_loses_and_is_closed(
    provider: ProviderCase, fault: str, async_: bool
) -> None:
    """One candidate meets a fault schedule, the other (paced, slower) matches: the
    faulty one drops out (a failure) or is closed at the decision (a stall, before the
    response headers too, sync and async, without a deadline of its own); only the
    winner's chunks are emitted."""
    missing = provider.missing()
    if missing:
        pytest.skip(missing)
    with ReplayServer(pace=0.001) as faulty_server, ReplayServer(pace=0.0) as ok_server:
        faulty_server.push(Reply(provider.transcript, fault=FAULTS[fault](provider)))
        ok_server.push(Reply(WINNER, pace=0.02))
        faulty_client = faulty_server.client(provider.name, async_=async_)
        ok_client = ok_server.client("openai", async_=async_)
        faulty = sk.stream(provider.name, "m", "hi", client=faulty_client, async_=async_)
        ok = sk.stream("openai", "m", "hi", client=ok_client, async_=async_)
        chunks: list[sk.Chunk] = []
        try:
            response = await run(
                sk.race(faulty, ok, until=lambda t: "equals 4242" in t).pipe(
                    rx.do_action(chunks.append), ops.to_call_response()
                ),
                async_,
            )
        finally:
            await close(async_, faulty_client, ok_client)
        record = await asyncio.to_thread(faulty_server.wait_for_request_end, 0, 2.0)
    assert response.content == "4200 + 42 equals 4242."
    assert {c.provider for c in chunks} == {"openai"}
    if fault.startswith("stall"):
        # closed at the decision, during its stall: nothing sent after it
        assert record.disconnected and not record.completed
        assert record.events_sent == (0 if fault in BEFORE_CONTENT else provider.at)


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_best_of_runs_every_sample_to_its_end(async_: bool) -> None:
    with ReplayServer(pace=0.0) as server:
        server.push(WINNER, WINNER, WINNER)
        client = server.client("openai", async_=async_)
        stream = sk.stream("openai", "m", "hi", client=client, async_=async_)
        reports: list[sk.UsageReport] = []
        try:
            response = await _run(
                sk.best_of(stream, n=3, score=len).pipe(
                    ops.on_usage(reports.append), ops.to_call_response()
                ),
                async_,
            )
        finally:
            if async_:
                await close_async_client(client)
        assert len(server.requests) == 3
        assert all(server.wait_for_request_end(i, 3.0).completed for i in range(3))
        assert "4242" in response.content
    # the response bills all three samples: each candidate's own reported usage (the
    # transcript's figure, read from the wire), summed, and each one's cost
    (report,) = reports
    candidates = report.attempts
    assert len(candidates) == 3
    wire = _reported_usage(WINNER)
    for candidate in candidates:
        assert candidate.outcome == "completed" and candidate.usage is not None
        assert candidate.usage.source == "reported"
        assert (candidate.usage.input_tokens, candidate.usage.output_tokens) == wire
    first, second, third = (c.usage for c in candidates if c.usage is not None)
    total = first + second + third
    assert response.usage == total
    assert (total.input_tokens, total.output_tokens) == (3 * wire[0], 3 * wire[1])
    assert len(response.requests) == 3
    assert response.cost == candidates[0].cost + candidates[1].cost + candidates[2].cost


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_best_of_stops_a_candidate_that_can_no_longer_win_on_the_server(
    async_: bool,
) -> None:
    """Shorter is better: once the short answer has finished, the long one (paced, as a
    model writes) is closed as soon as its partial text is longer; the server saw the
    connection close before the end of its stream."""
    with ReplayServer(pace=0.0) as short_server, ReplayServer(pace=0.02) as long_server:
        short_server.push(WINNER)
        long_server.push("anthropic/messages-tool-result-followup")
        short_client = short_server.client("openai", async_=async_)
        long_client = long_server.client("anthropic", async_=async_)
        short = sk.stream("openai", "m", "hi", client=short_client, async_=async_)
        long = sk.stream("anthropic", "m", "hi", client=long_client, async_=async_)

        def brevity(text: str) -> float:
            return -len(text)

        try:
            response = await run(
                sk.best_of(long, short, score=brevity, bound=brevity).pipe(ops.to_call_response()),
                async_,
            )
        finally:
            await close(async_, short_client, long_client)
        record = await asyncio.to_thread(long_server.wait_for_request_end, 0, 3.0)
    assert response.provider == "openai" and response.content == "4200 + 42 equals 4242."
    assert record.disconnected and record.events_sent < record.events_total
    assert response.usage is not None  # the stopped candidate's message_start is billed
    assert response.usage.input_tokens == 16 + 602


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_a_streaming_loser_is_closed_within_one_event_of_the_decision(
    async_: bool,
) -> None:
    """The loser is mid-stream (paced, as a model writes) when the winner matches: after
    the decision the loser's server sends it at most one more event (the one being
    written at that instant), then sees the connection closed."""
    with ReplayServer(pace=0.0) as loser_server, ReplayServer(pace=0.0) as winner_server:
        loser_server.push(Reply("anthropic/messages-tool-result-followup", pace=0.05))
        winner_server.push(Reply(WINNER, fault=Fault(stall_before=0.3)))
        loser_client = loser_server.client("anthropic", async_=async_)
        winner_client = winner_server.client("openai", async_=async_)
        sent_at_decision: list[int] = []
        loser = sk.stream("anthropic", "m", "hi", client=loser_client, async_=async_)
        winner = sk.stream("openai", "m", "hi", client=winner_client, async_=async_)

        def decided(chunk: sk.Chunk) -> None:
            if not sent_at_decision:  # the winner's first chunk: emitted at the decision
                sent_at_decision.append(loser_server.requests[0].events_sent)

        try:
            response = await run(
                sk.race(loser, winner, until=lambda t: "equals 4242" in t).pipe(
                    rx.do_action(decided), ops.to_call_response()
                ),
                async_,
            )
        finally:
            await close(async_, loser_client, winner_client)
        record = await asyncio.to_thread(loser_server.wait_for_request_end, 0, 3.0)
    assert response.provider == "openai"
    assert 0 < sent_at_decision[0] < record.events_total  # it was mid-stream
    assert record.disconnected and not record.completed
    assert record.events_sent <= sent_at_decision[0] + 1
