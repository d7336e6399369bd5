"""ops.accumulate(): the running response after every chunk, linear in the stream."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex
from hypothesis import given
from hypothesis import strategies as st
from reactivex import operators as rx
from reactivex.testing import TestScheduler

import streamkit as sk
from streamkit import _accumulator as accumulator_module
from streamkit import ops
from streamkit.testing import ReplayServer
from streamkit.testing import strategies as sks

from ._pipelines import (
    chunks_of,
    cold_items,
    on_completed,
    on_error,
    on_next,
    replay_stream,
    run_either,
    subscribe,
    tick_of,
    values,
    wait_for_no_leftover_threads,
)


def without_message_param(response: sk.CallResponse) -> sk.CallResponse:
    """``to_call_response()``'s result as an earlier snapshot holds it (only the latest
    snapshot builds the next turn's message)."""
    return response.model_copy(update={"message_param": {}})


def final_response(chunks: list[sk.Chunk]) -> sk.CallResponse:
    responses: list[sk.CallResponse] = []
    reactivex.from_iterable(chunks).pipe(ops.to_call_response()).subscribe(responses.append)
    return responses[0]


# -- reactivex.testing examples --------------------------------------------------------
def test_one_snapshot_per_chunk_each_frozen_at_its_chunk() -> None:
    scheduler = TestScheduler()
    usage = sk.Usage(input_tokens=3, output_tokens=2, total_tokens=5)
    chunks = [
        sk.Chunk(provider="openai", content="Hel", model="gpt-4o", id="r1"),
        sk.Chunk(provider="openai", content="lo"),
        sk.Chunk(provider="openai", finish_reasons=["stop"], usage=usage),
    ]
    xs = cold_items(scheduler, chunks)

    results = scheduler.start(lambda: xs.pipe(ops.accumulate()))

    assert [message.time for message in results.messages] == [210, 220, 230, 240]
    assert results.messages[-1] == on_completed(240)
    assert xs.subscriptions == [subscribe(200, 240)]
    # Read only now, after the stream ended: each snapshot still shows its own moment.
    snapshots = values(results.messages)
    assert [s.content for s in snapshots] == ["Hel", "Hello", "Hello"]
    assert [s.chunks for s in snapshots] == [1, 2, 3]
    assert [s.finish_reason for s in snapshots] == [None, None, "stop"]
    assert [s.usage for s in snapshots] == [None, None, usage]
    assert snapshots[-1].model == "gpt-4o" and snapshots[-1].id == "r1"


def test_partial_tool_arguments_then_a_completed_call() -> None:
    scheduler = TestScheduler()
    fragments = ['{"ci', 'ty": "Pa', 'ris"}']
    chunks = [
        sk.Chunk(
            provider="openai",
            tool_calls=[
                sk.ToolCallDelta(
                    index=0,
                    id="c1" if i == 0 else None,
                    name="weather" if i == 0 else None,
                    arguments=fragment,
                )
            ],
        )
        for i, fragment in enumerate(fragments)
    ]
    chunks.append(sk.Chunk(provider="openai", finish_reasons=["tool_calls"]))
    xs = cold_items(scheduler, chunks)

    results = scheduler.start(lambda: xs.pipe(ops.accumulate()))

    snapshots = values(results.messages)
    assert [s.tool_calls[0].arguments for s in snapshots] == [
        '{"ci',
        '{"city": "Pa',
        '{"city": "Paris"}',
        '{"city": "Paris"}',
    ]
    assert snapshots[2].tool_calls[0].args == {}  # partial: not parsed yet
    assert snapshots[3].tool_calls[0].args == {"city": "Paris"}
    assert xs.subscriptions == [subscribe(200, tick_of(len(chunks)))]


def test_a_call_left_open_at_completion_gets_one_more_snapshot() -> None:
    scheduler = TestScheduler()
    delta = sk.ToolCallDelta(index=0, id="c1", name="lookup", arguments='{"q": 1}')
    chunks = [sk.Chunk(provider="openai", tool_calls=[delta])]
    xs = cold_items(scheduler, chunks)

    results = scheduler.start(lambda: xs.pipe(ops.accumulate()))

    assert [message.time for message in results.messages] == [210, 220, 220]
    first, last = values(results.messages)
    assert first.tool_calls[0].args == {}
    assert last.tool_calls[0].args == {"q": 1}
    assert last.to_call_response() == final_response(
        [sk.Chunk(provider="openai", tool_calls=[delta])]
    )


def test_an_error_ends_the_snapshots_and_disposes_upstream() -> None:
    scheduler = TestScheduler()
    failure = sk.IncompleteStreamError("openai", "[DONE]", events=2)
    xs = scheduler.create_cold_observable(
        on_next(10, sk.Chunk(provider="openai", content="cut")),
        on_error(20, failure),
        on_next(30, sk.Chunk(provider="openai", content="never")),
    )

    results = scheduler.start(lambda: xs.pipe(ops.accumulate()))

    assert results.messages[1:] == [on_error(220, failure)]
    assert values(results.messages)[0].content == "cut"
    assert xs.subscriptions == [subscribe(200, 220)]


def test_disposing_downstream_disposes_upstream() -> None:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(["a", "b", "c"]))

    results = scheduler.start(lambda: xs.pipe(ops.accumulate()), disposed=215)

    assert [s.content for s in values(results.messages)] == ["a"]
    assert xs.subscriptions == [subscribe(200, 215)]


def test_building_snapshots_joins_no_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """Linearity without a clock: however long the stream, emitting its snapshots never
    joins text, and reading the last one joins each piece once."""
    joined_pieces: list[int] = []
    original_join = accumulator_module._Pieces.join

    def counting_join(self: Any, count: int | None = None) -> Any:
        new = (len(self) if count is None else count) - self._cached_count
        joined_pieces.append(max(new, 0))
        return original_join(self, count)

    monkeypatch.setattr(accumulator_module._Pieces, "join", counting_join)
    pieces = [f"word{i} " for i in range(5000)]
    snapshots: list[sk.ResponseSnapshot] = []

    reactivex.from_iterable(chunks_of(pieces)).pipe(ops.accumulate()).subscribe(snapshots.append)

    assert len(snapshots) == 5000
    assert joined_pieces == []
    assert snapshots[-1].content == "".join(pieces)
    assert sum(joined_pieces) == 5000  # every piece joined exactly once
    assert snapshots[-1].content == "".join(pieces)
    assert sum(joined_pieces) == 5000  # and a second read is served from the cache


def test_each_subscription_has_its_own_accumulator() -> None:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(["x", "y"]))
    accumulated = xs.pipe(ops.accumulate())
    first: list[sk.ResponseSnapshot] = []
    second: list[sk.ResponseSnapshot] = []
    accumulated.subscribe(first.append, scheduler=scheduler)
    accumulated.subscribe(second.append, scheduler=scheduler)

    scheduler.start()

    assert [s.content for s in first] == [s.content for s in second] == ["x", "xy"]


# -- properties --------------------------------------------------------------------------
@given(sks.chunk_streams())
def test_last_snapshot_is_the_call_response(stream: sks.ChunkStream) -> None:
    snapshots: list[sk.ResponseSnapshot] = []
    reactivex.from_iterable(stream.chunks).pipe(ops.accumulate()).subscribe(snapshots.append)

    assert len(snapshots) == len(stream.chunks)
    assert snapshots[-1].is_final
    assert snapshots[-1].to_call_response() == final_response(stream.chunks)
    text = ""
    for chunk, snapshot in zip(stream.chunks, snapshots, strict=True):
        text += chunk.content
        assert snapshot.content == text
    for snapshot in snapshots[:-1]:  # earlier ones: all but the next turn's message
        assert not snapshot.is_final
        assert snapshot.to_call_response().message_param == {}


@given(sks.chunk_streams(), sks.chunk_streams())
def test_to_call_response_after_accumulate_is_to_call_response(
    stream: sks.ChunkStream, cut_stream: sks.ChunkStream
) -> None:
    """Ending a pipeline of snapshots gives the same response, message_param included,
    whether the stream finished or was cut with calls still open."""
    for chunks in (stream.chunks, cut_stream.chunks[:-1]):
        responses: list[sk.CallResponse] = []
        reactivex.from_iterable(chunks).pipe(ops.accumulate(), ops.to_call_response()).subscribe(
            responses.append
        )
        if chunks:
            assert responses == [final_response(chunks)]


@given(sks.chunk_streams())
def test_last_snapshot_is_the_call_response_of_a_stream_cut_short(
    stream: sks.ChunkStream,
) -> None:
    """Without its finishing chunk a tool call is still open at completion: the extra
    snapshot completes it, as to_call_response() does."""
    cut = stream.chunks[:-1]
    snapshots: list[sk.ResponseSnapshot] = []
    reactivex.from_iterable(cut).pipe(ops.accumulate()).subscribe(snapshots.append)

    extra = 1 if stream.tool_calls else 0
    assert len(snapshots) == len(cut) + extra
    if snapshots:
        assert snapshots[-1].to_call_response() == final_response(cut)


@given(sks.chunk_streams(), st.integers(min_value=1, max_value=40))
def test_snapshots_cut_after_accumulate_end_like_chunks_cut(
    stream: sks.ChunkStream, k: int
) -> None:
    """``take(k)`` after ``accumulate`` stops it before it sees the end: the response is
    that of the first k chunks, open tool calls completed as the end of a stream
    completes them; only the next turn's message is left out (it needs the end)."""
    from_snapshots: list[sk.CallResponse] = []
    reactivex.from_iterable(stream.chunks).pipe(
        ops.accumulate(), rx.take(k), ops.to_call_response()
    ).subscribe(from_snapshots.append)
    expected = final_response(stream.chunks[:k])
    if k > len(stream.chunks):  # take(k) never fired: accumulate saw the end
        assert from_snapshots == [expected]
    else:
        assert from_snapshots == [without_message_param(expected)]


# -- end to end: the real SDK against the replay server ---------------------------------
@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(
    ("provider", "transcript"),
    [
        ("openai", "openai/chat-text-usage"),
        ("openai", "openai/chat-parallel-tool-calls-usage"),
        ("anthropic", "anthropic/messages-parallel-tool-use"),
    ],
)
async def test_last_snapshot_equals_to_call_response(
    provider: str, transcript: str, async_: bool
) -> None:
    with ReplayServer(transcript) as server:
        async with replay_stream(server, provider, async_=async_) as stream:
            snapshots = await run_either(stream.pipe(ops.accumulate()), async_=async_)
            [response] = await run_either(stream.pipe(ops.to_call_response()), async_=async_)
            [from_snapshots] = await run_either(
                stream.pipe(ops.accumulate(), ops.to_call_response()), async_=async_
            )
    # A snapshot knows the chunks, not the request they came from: the reducer's
    # response also lists it (its provider, models and usage, for the cost).
    assert len(response.requests) == 1 and response.requests[0].usage == response.usage
    assert snapshots[-1].to_call_response() == response.model_copy(update={"requests": []})
    assert snapshots[-1].to_call_response().cost == response.cost
    assert from_snapshots == response and response.message_param
    assert snapshots[0].to_call_response().message_param == {}
    assert [s.chunks for s in snapshots] == list(range(1, len(snapshots) + 1))
    assert response.usage is not None and snapshots[-1].usage == response.usage
    wait_for_no_leftover_threads()
