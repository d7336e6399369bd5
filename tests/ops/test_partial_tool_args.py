"""ops.partial_tool_args(Model): tool-call arguments validated as they stream in, and
``sk.ToolCall.parse(Model)`` on recorded tool calls."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, ValidationError
from reactivex.notification import OnError, OnNext
from reactivex.testing import TestScheduler
from reactivex.testing.recorded import Recorded

import streamkit as sk
from streamkit import ops
from streamkit.testing import ReplayServer, load_transcript
from streamkit.testing import strategies as sks

from ._pipelines import (
    SPACING,
    cold_items,
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
from .partial_support import Shelf, consistent, shelf_json_splits

ONE_CALL = "openai/chat-tool-call-gpt-4o-mini"
PARALLEL = "openai/chat-parallel-tool-calls-usage"
ANTHROPIC_PARALLEL = "anthropic/messages-parallel-tool-use"


class GetCapital(BaseModel):
    """The one tool of ``openai/chat-tool-call-gpt-4o-mini``."""

    country: str


class SecretRetrievalTool(BaseModel):
    """The tool of the parallel-call transcripts (OpenAI and Anthropic)."""

    password: str


class AnyArgs(BaseModel):
    """Takes any JSON object (its keys land in ``model_extra``)."""

    model_config = ConfigDict(extra="allow")


Item = sk.ToolCallDelta


def tool_chunk(*deltas: sk.ToolCallDelta, finish: str | None = None) -> sk.Chunk:
    return sk.Chunk(
        provider="openai", tool_calls=list(deltas), finish_reasons=[finish] if finish else None
    )


def items_of(messages: list[Recorded[Any]]) -> list[tuple[int, int, bool, dict[str, Any]]]:
    """``(tick, index, complete, fields known)`` of each emitted item."""
    out = []
    for message in messages:
        if isinstance(message.value, OnNext):
            item = message.value.value
            known = item.args.model_dump(include=item.args.model_fields_set)
            out.append((message.time, item.index, item.complete, known))
    return out


# -- reactivex.testing examples --------------------------------------------------------
def test_parallel_calls_each_stream_then_complete_when_the_next_starts() -> None:
    scheduler = TestScheduler()
    chunks = [
        tool_chunk(Item(index=0, id="call_a", name="get_capital", arguments='{"coun')),
        tool_chunk(Item(index=0, arguments='try": "Fr')),
        tool_chunk(Item(index=0, arguments='ance"}')),
        tool_chunk(Item(index=1, id="call_b", name="get_capital", arguments='{"country": "P')),
        tool_chunk(Item(index=1, arguments='eru"}')),
        tool_chunk(finish="tool_calls"),
    ]
    xs = cold_items(scheduler, chunks)

    results = scheduler.start(lambda: xs.pipe(ops.partial_tool_args(GetCapital)))

    assert items_of(results.messages) == [
        (220, 0, False, {"country": "Fr"}),
        (230, 0, False, {"country": "France"}),
        (240, 0, True, {"country": "France"}),  # call 1 starts: call 0 is complete
        (240, 1, False, {"country": "P"}),
        (250, 1, False, {"country": "Peru"}),
        (260, 1, True, {"country": "Peru"}),  # the finish reason completes it
    ]
    first = values(results.messages)[2]
    assert (first.id, first.name, first.args) == (
        "call_a",
        "get_capital",
        GetCapital(country="France"),
    )
    assert results.messages[-1] == on_completed(270)
    assert xs.subscriptions == [subscribe(200, 270)]


def test_name_keeps_only_the_calls_of_that_tool() -> None:
    scheduler = TestScheduler()
    chunks = [
        tool_chunk(Item(index=0, id="a", name="lookup", arguments='{"query": "x"}')),
        tool_chunk(Item(index=1, id="b", name="get_capital", arguments='{"country": "UK"}')),
        tool_chunk(finish="tool_calls"),
    ]
    xs = cold_items(scheduler, chunks)

    results = scheduler.start(
        lambda: xs.pipe(ops.partial_tool_args(GetCapital, name="get_capital"))
    )

    assert items_of(results.messages) == [
        (220, 1, False, {"country": "UK"}),
        (230, 1, True, {"country": "UK"}),
    ]


def test_without_a_name_every_call_is_read_into_the_model() -> None:
    scheduler = TestScheduler()
    chunks = [
        tool_chunk(Item(index=0, id="a", name="lookup", arguments='{"query": "x"}')),
        tool_chunk(finish="tool_calls"),
    ]
    xs = cold_items(scheduler, chunks)

    results = scheduler.start(lambda: xs.pipe(ops.partial_tool_args(GetCapital)))

    # "lookup" has no "country": its closing brace makes it fail validation.
    time, error = results.messages[-1].time, results.messages[-1].value
    assert time == 210 and isinstance(error, OnError)
    assert isinstance(error.exception, ValidationError)
    assert xs.subscriptions == [subscribe(200, 210)]


def test_an_explicitly_complete_fragment_completes_its_call_at_once() -> None:
    scheduler = TestScheduler()
    chunks = [  # Anthropic: content_block_stop marks the call complete
        tool_chunk(Item(index=1, id="toolu_1", name="secret", arguments="")),
        tool_chunk(Item(index=1, arguments='{"password": "mellon"}')),
        tool_chunk(Item(index=1, complete=True)),
        tool_chunk(finish="tool_use"),
    ]
    xs = cold_items(scheduler, chunks)

    results = scheduler.start(lambda: xs.pipe(ops.partial_tool_args(SecretRetrievalTool)))

    assert items_of(results.messages) == [
        (220, 1, False, {"password": "mellon"}),
        (230, 1, True, {"password": "mellon"}),
    ]


def test_a_whole_call_in_one_complete_fragment_is_one_complete_item() -> None:
    scheduler = TestScheduler()
    whole = Item(index=0, id="g", name="s", arguments='{"password": "pw"}', complete=True)
    xs = cold_items(scheduler, [tool_chunk(whole), tool_chunk(finish="STOP")])

    results = scheduler.start(lambda: xs.pipe(ops.partial_tool_args(SecretRetrievalTool)))

    assert items_of(results.messages) == [(210, 0, True, {"password": "pw"})]


def test_calls_still_open_complete_when_the_stream_ends() -> None:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, [tool_chunk(Item(index=0, id="c", name="f", arguments=""))])

    results = scheduler.start(lambda: xs.pipe(ops.partial_tool_args(AnyArgs)))

    # No arguments at all read as {}, as ToolCall.parse reads them.
    assert items_of(results.messages) == [(220, 0, True, {})]
    assert results.messages[-1] == on_completed(220)


def test_arguments_that_do_not_fit_fail_at_their_closing_brace_after_earlier_items() -> None:
    scheduler = TestScheduler()
    chunks = [
        tool_chunk(Item(index=0, id="a", name="s", arguments='{"password": "ok"}')),
        tool_chunk(Item(index=1, id="b", name="s", arguments='{"password": 42}')),
        tool_chunk(finish="tool_calls"),
        tool_chunk(Item(index=2, id="never", name="s", arguments="{}")),
    ]
    xs = cold_items(scheduler, chunks)

    results = scheduler.start(lambda: xs.pipe(ops.partial_tool_args(SecretRetrievalTool)))

    assert items_of(results.messages) == [
        (210, 0, False, {"password": "ok"}),
        (220, 0, True, {"password": "ok"}),
    ]
    last = results.messages[-1]
    assert last.time == 220 and isinstance(last.value, OnError)
    assert isinstance(last.value.exception, ValidationError)
    assert xs.subscriptions == [subscribe(200, 220)]


def test_arguments_that_never_close_fail_when_the_call_completes() -> None:
    scheduler = TestScheduler()
    chunks = [
        tool_chunk(Item(index=0, id="a", name="s", arguments='{"password": "cut')),
        tool_chunk(finish="length"),
    ]
    xs = cold_items(scheduler, chunks)

    results = scheduler.start(lambda: xs.pipe(ops.partial_tool_args(SecretRetrievalTool)))

    assert items_of(results.messages) == [(210, 0, False, {"password": "cut"})]
    last = results.messages[-1]
    assert last.time == 220 and isinstance(last.value, OnError)
    assert isinstance(last.value.exception, ValidationError)


def test_arguments_that_are_not_an_object_fail_as_soon_as_they_show() -> None:
    scheduler = TestScheduler()
    chunks = [
        tool_chunk(Item(index=0, id="a", name="s", arguments="[1, ")),
        tool_chunk(Item(index=0, arguments="2]")),
    ]
    xs = cold_items(scheduler, chunks)

    results = scheduler.start(lambda: xs.pipe(ops.partial_tool_args(SecretRetrievalTool)))

    assert results.messages[-1].time == 210
    assert isinstance(results.messages[-1].value, OnError)
    assert xs.subscriptions == [subscribe(200, 210)]


def test_an_upstream_error_passes_through() -> None:
    scheduler = TestScheduler()
    failure = sk.IncompleteStreamError("openai", "[DONE]", events=1)
    partial = tool_chunk(Item(index=0, id="a", name="s", arguments='{"password": "me'))
    xs = scheduler.create_cold_observable(on_next(10, partial), on_error(20, failure))

    results = scheduler.start(lambda: xs.pipe(ops.partial_tool_args(SecretRetrievalTool)))

    assert items_of(results.messages) == [(210, 0, False, {"password": "me"})]
    assert results.messages[-1] == on_error(220, failure)


def test_disposing_downstream_disposes_upstream_at_that_tick() -> None:
    scheduler = TestScheduler()
    chunks = [
        tool_chunk(Item(index=0, id="a", name="s", arguments='{"password": "a')),
        tool_chunk(Item(index=0, arguments="b")),
        tool_chunk(Item(index=0, arguments='c"}')),
    ]
    xs = cold_items(scheduler, chunks)

    results = scheduler.start(
        lambda: xs.pipe(ops.partial_tool_args(SecretRetrievalTool)), disposed=215
    )

    assert items_of(results.messages) == [(210, 0, False, {"password": "a"})]
    assert xs.subscriptions == [subscribe(200, 215)]


def test_bad_arguments_fail_before_anything_runs() -> None:
    with pytest.raises(TypeError, match="pydantic model class"):
        ops.partial_tool_args(dict)  # type: ignore[type-var]
    with pytest.raises(TypeError, match="name must be a str"):
        ops.partial_tool_args(GetCapital, name=3)  # type: ignore[arg-type]


# -- properties --------------------------------------------------------------------------
@given(sks.chunk_streams())
def test_calls_complete_where_and_as_the_accumulator_completes_them(
    stream: sks.ChunkStream,
) -> None:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, stream.chunks)

    results = scheduler.start(lambda: xs.pipe(ops.partial_tool_args(AnyArgs)))

    accumulator = sk.Accumulator()
    expected = []
    for position, chunk in enumerate(stream.chunks):
        expected += [(tick_of(position), call) for call in accumulator.add(chunk)]
    expected += [(tick_of(len(stream.chunks)), call) for call in accumulator.finish()]
    completed = [(m.time, m.value.value) for m in results.messages if isinstance(m.value, OnNext)]
    completed = [(time, item) for time, item in completed if item.complete]
    assert [(t, i.id, i.name, i.args.model_dump()) for t, i in completed] == [
        (t, call.id, call.name, call.args) for t, call in expected
    ]
    assert [item.args for _, item in completed] == [call.parse(AnyArgs) for _, call in expected]


def shelve_calls(fragments: list[list[str]]) -> list[sk.Chunk]:
    """One ``shelve`` call per list of argument fragments, each fragment in a chunk of
    its own, then a finish reason."""
    chunks = []
    for index, pieces in enumerate(fragments):
        for position, piece in enumerate(pieces):
            first = position == 0
            delta = Item(
                index=index,
                id=f"call_{index}" if first else None,
                name="shelve" if first else None,
                arguments=piece,
            )
            chunks.append(tool_chunk(delta))
    chunks.append(tool_chunk(finish="tool_calls"))
    return chunks


def shelve_partials(scheduler: TestScheduler, chunks: list[sk.Chunk]) -> Any:
    """``ops.partial_tool_args(Shelf)`` over ``chunks``, recorded until after their end
    (a drawn case can outlast ``start()``'s default window, ticks 200 to 1000)."""
    xs = cold_items(scheduler, chunks)
    return scheduler.start(
        lambda: xs.pipe(ops.partial_tool_args(Shelf, name="shelve")),
        disposed=tick_of(len(chunks)) + SPACING,
    )


@st.composite
def fragmented_shelf_calls(draw: st.DrawFn) -> tuple[list[Shelf], list[sk.Chunk]]:
    """Up to three calls whose arguments are Shelf JSON cut at arbitrary points, the
    fragments of each call in their own chunks, then a finish reason."""
    cases = draw(st.lists(shelf_json_splits(), min_size=1, max_size=3))
    return [shelf for shelf, _, _ in cases], shelve_calls([pieces for _, _, pieces in cases])


@given(fragmented_shelf_calls())
def test_each_call_ends_with_its_validated_arguments_and_partials_are_prefixes(
    case: tuple[list[Shelf], list[sk.Chunk]],
) -> None:
    shelves, chunks = case
    results = shelve_partials(TestScheduler(), chunks)

    items = values(results.messages)
    for index, shelf in enumerate(shelves):
        mine = [item for item in items if item.index == index]
        assert [item.complete for item in mine] == [False] * (len(mine) - 1) + [True]
        assert mine[-1].args == shelf and mine[-1].id == f"call_{index}"
        assert all(consistent(item.args, shelf) for item in mine)
    assert results.messages[-1] == on_completed(tick_of(len(chunks)))


def test_a_stream_longer_than_the_default_test_window_completes_every_call() -> None:
    # What hypothesis found once: three calls of empty fragments then their whole
    # arguments, more chunks than TestScheduler.start's default window (ticks 200-1000).
    shelf = Shelf(label="", count=0, weight=0.0, code="")
    chunks = shelve_calls([[""] * 29 + [shelf.model_dump_json()] for _ in range(3)])
    assert tick_of(len(chunks)) > 1000
    results = shelve_partials(TestScheduler(), chunks)
    items = values(results.messages)
    assert [(item.index, item.complete) for item in items if item.complete] == [
        (0, True),
        (1, True),
        (2, True),
    ]
    assert all(item.args == shelf for item in items if item.complete)
    assert results.messages[-1] == on_completed(tick_of(len(chunks)))


# -- end to end: real SDK clients against the replay server -----------------------------
def recorded_arguments(name: str) -> list[str]:
    """Each tool call's whole argument string, read from the transcript's JSON."""
    calls: dict[int, str] = {}
    for event in load_transcript(name).events:
        for line in event.splitlines():
            if not line.startswith("data: {"):
                continue
            data = json.loads(line.removeprefix("data: "))
            for choice in data.get("choices", []):
                for call in choice["delta"].get("tool_calls") or []:
                    arguments = call.get("function", {}).get("arguments") or ""
                    calls[call["index"]] = calls.get(call["index"], "") + arguments
            delta = data.get("delta", {})
            if data.get("type") == "content_block_delta" and "partial_json" in delta:
                calls[data["index"]] = calls.get(data["index"], "") + delta["partial_json"]
    return [calls[index] for index in sorted(calls)]


E2E = [
    pytest.param("openai", ONE_CALL, GetCapital, id="openai-one-call"),
    pytest.param("openai", PARALLEL, SecretRetrievalTool, id="openai-parallel"),
    pytest.param("anthropic", ANTHROPIC_PARALLEL, SecretRetrievalTool, id="anthropic-parallel"),
]


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(("provider", "transcript", "model"), E2E)
async def test_recorded_tool_calls_stream_into_partial_arguments(
    provider: str, transcript: str, model: type[BaseModel], async_: bool
) -> None:
    expected = [model.model_validate_json(raw) for raw in recorded_arguments(transcript)]
    with ReplayServer(transcript, pace=0.0) as server:
        async with replay_stream(server, provider, async_=async_) as stream:
            items = await run_either(stream.pipe(ops.partial_tool_args(model)), async_=async_)
        assert (await request_end(server)).completed
    completed = [item for item in items if item.complete]
    assert [item.args for item in completed] == expected
    final_by_index = {item.index: item.args for item in completed}
    assert len(final_by_index) == len(expected)
    assert all(consistent(item.args, final_by_index[item.index]) for item in items)
    assert len(items) > len(completed)  # the arguments were seen growing
    wait_for_no_leftover_threads()


@pytest.mark.parametrize(("provider", "transcript", "model"), E2E)
def test_tool_call_parse_validates_recorded_calls(
    provider: str, transcript: str, model: type[BaseModel]
) -> None:
    with ReplayServer(transcript, pace=0.0) as server:
        stream = sk.stream(provider, "replayed-model", "hi", client=server.client(provider))
        tools = [tool for _, tool in stream if tool is not None]
    raw = recorded_arguments(transcript)
    assert [tool.arguments for tool in tools] == raw
    assert [tool.parse(model) for tool in tools] == [model.model_validate_json(r) for r in raw]
    assert all(tool.args == json.loads(r) for tool, r in zip(tools, raw, strict=True))
    with pytest.raises(ValidationError):
        tools[0].parse(Shelf)
