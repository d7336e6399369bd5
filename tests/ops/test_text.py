"""ops.text(): the content deltas, empty ones dropped."""

from __future__ import annotations

import pytest
from hypothesis import given
from reactivex.testing import TestScheduler
from reactivex.testing.marbles import marbles_testing

import streamkit as sk
from streamkit import ops
from streamkit.testing import ReplayServer
from streamkit.testing import strategies as sks

from ._pipelines import (
    E2E_RUNS,
    chunks_of,
    cold_items,
    content_per_event,
    on_completed,
    on_error,
    on_next,
    replay_stream,
    request_end,
    run_either,
    subscribe,
    tick_of,
    values,
    wait_for_no_leftover_threads,
)


# -- reactivex.testing examples --------------------------------------------------------
def test_emits_each_non_empty_delta_when_it_arrives() -> None:
    scheduler = TestScheduler()
    chunks = chunks_of(["", "Hel", "", "lo", "!"])
    xs = cold_items(scheduler, chunks)

    results = scheduler.start(lambda: xs.pipe(ops.text()))

    assert results.messages == [
        on_next(220, "Hel"),
        on_next(240, "lo"),
        on_next(250, "!"),
        on_completed(260),
    ]
    assert xs.subscriptions == [subscribe(200, 260)]


def test_disposing_downstream_disposes_upstream_at_that_tick() -> None:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(["a", "b", "c", "d"]))

    results = scheduler.start(lambda: xs.pipe(ops.text()), disposed=225)

    assert results.messages == [on_next(210, "a"), on_next(220, "b")]
    assert xs.subscriptions == [subscribe(200, 225)]


def test_an_error_passes_through_after_the_text_before_it() -> None:
    scheduler = TestScheduler()
    failure = sk.IncompleteStreamError("openai", "[DONE]", events=1)
    xs = scheduler.create_hot_observable(
        on_next(150, sk.Chunk(provider="openai", content="too early")),
        on_next(210, sk.Chunk(provider="openai", content="partial")),
        on_error(220, failure),
    )

    results = scheduler.start(lambda: xs.pipe(ops.text()))

    assert results.messages == [on_next(210, "partial"), on_error(220, failure)]
    assert xs.subscriptions == [subscribe(200, 220)]


def test_marbles_tool_call_and_usage_chunks_carry_no_text() -> None:
    tool = sk.Chunk(provider="openai", tool_calls=[sk.ToolCallDelta(index=0, name="f")])
    usage = sk.Chunk(provider="openai", usage=sk.Usage(input_tokens=1, output_tokens=2))
    with marbles_testing(timespan=1.0) as (start, cold, _hot, exp):
        source = cold(
            "-a-t-b-u-|",
            {
                "a": sk.Chunk(provider="openai", content="x"),
                "t": tool,
                "b": sk.Chunk(provider="openai", content="y"),
                "u": usage,
            },
            None,  # reactivex's MarblesContext types every argument as required
        )
        expected = exp("-a---b---|", {"a": "x", "b": "y"}, None)
        assert start(source.pipe(ops.text())) == expected


# -- properties --------------------------------------------------------------------------
@given(sks.text_splits())
def test_deltas_rebuild_the_text_and_none_is_empty(split: tuple[str, list[str]]) -> None:
    text, pieces = split
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(pieces))

    results = scheduler.start(lambda: xs.pipe(ops.text()))

    deltas = values(results.messages)
    assert deltas == [piece for piece in pieces if piece]
    assert "".join(deltas) == text
    assert results.messages[-1] == on_completed(tick_of(len(pieces)))
    assert xs.subscriptions == [subscribe(200, tick_of(len(pieces)))]


@given(sks.chunk_streams())
def test_text_of_a_whole_stream_is_the_reduced_content(stream: sks.ChunkStream) -> None:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, stream.chunks)

    results = scheduler.start(lambda: xs.pipe(ops.text()))

    assert "".join(values(results.messages)) == stream.text


# -- end to end: the real SDK against the replay server ---------------------------------
@pytest.mark.parametrize(("provider", "transcript", "_phrase", "async_"), E2E_RUNS)
async def test_the_text_is_the_recorded_text(
    provider: str, transcript: str, _phrase: str, async_: bool
) -> None:
    with ReplayServer(transcript, pace=0.0) as server:
        async with replay_stream(server, provider, async_=async_) as stream:
            deltas = await run_either(stream.pipe(ops.text()), async_=async_)
        assert (await request_end(server)).completed
    assert "".join(deltas) == "".join(content_per_event(transcript))
    assert all(deltas)
    wait_for_no_leftover_threads()
