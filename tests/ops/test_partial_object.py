"""ops.partial_object(Model): structured output validated as its JSON content streams in."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from pydantic_core import from_json
from reactivex.notification import OnError, OnNext
from reactivex.testing import TestScheduler
from reactivex.testing.recorded import Recorded

import streamkit as sk
from streamkit import ops
from streamkit._partial_json import (
    DEFAULT_REPARSE_DIVISOR,
    PartialModelParser,
    _ObjectMembers,
)
from streamkit.testing import ReplayServer
from streamkit.testing import strategies as sks

from ._pipelines import (
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
from .partial_support import Book, Shelf, consistent, shelf_json_splits

STRUCTURED = "synthetic/openai-chat-structured-output-json"
REFUSAL = "openai/chat-refusal-structured-output"


class Point(BaseModel):
    x: int
    label: str


def shown(messages: list[Recorded[Any]]) -> list[tuple[int, dict[str, Any]]]:
    """``(tick, fields known)`` of each emitted object."""
    return [
        (m.time, m.value.value.model_dump(include=m.value.value.model_fields_set))
        for m in messages
        if isinstance(m.value, OnNext)
    ]


def error_at(messages: list[Recorded[Any]]) -> tuple[int, Exception]:
    last = messages[-1]
    assert isinstance(last.value, OnError), messages
    return last.time, last.value.exception


# -- reactivex.testing examples --------------------------------------------------------
def test_fields_show_as_they_become_known_and_the_closing_brace_gives_the_object() -> None:
    scheduler = TestScheduler()
    pieces = ['{"x": 1', '2, "lab', 'el": "ab', 'c"}']
    usage = sk.Chunk(provider="openai", usage=sk.Usage(input_tokens=5, output_tokens=9))
    xs = cold_items(scheduler, [*chunks_of(pieces), usage])

    results = scheduler.start(lambda: xs.pipe(ops.partial_object(Point)))

    # 210: "x": 1 may go on (12, 123...), so nothing is known yet.
    assert shown(results.messages) == [
        (220, {"x": 12}),
        (230, {"x": 12, "label": "ab"}),
        (240, {"x": 12, "label": "abc"}),
    ]
    final = values(results.messages)[-1]
    assert final == Point(x=12, label="abc") and final.model_fields_set == {"x", "label"}
    assert results.messages[-1] == on_completed(tick_of(5))
    assert xs.subscriptions == [subscribe(200, tick_of(5))]


def test_unset_required_fields_are_missing_not_none() -> None:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(['{"label": "a', 'b", "x": 3}']))

    results = scheduler.start(lambda: xs.pipe(ops.partial_object(Point)))

    first = values(results.messages)[0]
    assert isinstance(first, Point) and first.model_fields_set == {"label"}
    assert first.label == "a"
    with pytest.raises(AttributeError):
        _ = first.x


def test_whitespace_and_a_growing_number_emit_nothing_until_the_value_changes() -> None:
    scheduler = TestScheduler()
    pieces = ['{"x": 1', "2", "3 ", "   ", ', "label"', ': "z"', "}"]
    xs = cold_items(scheduler, chunks_of(pieces))

    results = scheduler.start(lambda: xs.pipe(ops.partial_object(Point)))

    assert shown(results.messages) == [
        (tick_of(2), {"x": 123}),  # "123 ": a space ends the number
        (tick_of(5), {"x": 123, "label": "z"}),
        (tick_of(6), {"x": 123, "label": "z"}),  # the closing brace: the validated object
    ]


def test_chunks_without_content_are_ignored() -> None:
    scheduler = TestScheduler()
    chunks = [
        sk.Chunk(provider="openai", content=""),
        sk.Chunk(provider="openai", tool_calls=[sk.ToolCallDelta(index=0, name="f")]),
        *chunks_of(['{"x": 1, "label": "q"}']),
    ]
    xs = cold_items(scheduler, chunks)

    results = scheduler.start(lambda: xs.pipe(ops.partial_object(Point)))

    assert shown(results.messages) == [(tick_of(2), {"x": 1, "label": "q"})]


def test_a_stream_that_ends_before_the_object_closes_is_a_validation_error() -> None:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(['{"x": 4, ', '"label": "unfinis']))

    results = scheduler.start(lambda: xs.pipe(ops.partial_object(Point)))

    assert shown(results.messages) == [
        (tick_of(0), {"x": 4}),
        (tick_of(1), {"x": 4, "label": "unfinis"}),
    ]
    time, error = error_at(results.messages)
    assert time == tick_of(2) and isinstance(error, ValidationError)
    assert xs.subscriptions == [subscribe(200, tick_of(2))]


def test_content_that_is_not_an_object_fails_at_once_and_disposes_upstream() -> None:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(["  ", "Sure! {", '"x": 1}']))

    results = scheduler.start(lambda: xs.pipe(ops.partial_object(Point)))

    time, error = error_at(results.messages)
    assert time == tick_of(1) and isinstance(error, ValueError)
    assert "expected a JSON object" in str(error)
    assert xs.subscriptions == [subscribe(200, tick_of(1))]


def test_an_object_that_does_not_fit_the_model_fails_at_its_closing_brace() -> None:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(['{"x": "not a number",', ' "label": "a"}', " "]))

    results = scheduler.start(lambda: xs.pipe(ops.partial_object(Point)))

    # The invalid finished member is left out of the partials, not raised mid-stream:
    # the validation of the whole object decides.
    assert shown(results.messages) == []
    time, error = error_at(results.messages)
    assert time == tick_of(1) and isinstance(error, ValidationError)
    assert xs.subscriptions == [subscribe(200, tick_of(1))]


def test_text_after_the_closing_brace_fails_when_the_stream_ends() -> None:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(['{"x": 1, "label": "a"}', "\n", "and more"]))

    results = scheduler.start(lambda: xs.pipe(ops.partial_object(Point)))

    assert shown(results.messages) == [(tick_of(0), {"x": 1, "label": "a"})]
    time, error = error_at(results.messages)
    assert time == tick_of(3) and isinstance(error, ValueError)


def test_a_refusal_is_reported_with_its_text() -> None:
    scheduler = TestScheduler()
    chunks = [
        sk.Chunk(provider="openai", refusal="I can't"),
        sk.Chunk(provider="openai", refusal=" help."),
        sk.Chunk(provider="openai", finish_reasons=["stop"]),
    ]
    xs = cold_items(scheduler, chunks)

    results = scheduler.start(lambda: xs.pipe(ops.partial_object(Point)))

    time, error = error_at(results.messages)
    assert time == tick_of(3) and isinstance(error, ValueError)
    assert "I can't help." in str(error)


def test_an_upstream_error_passes_through_after_what_was_shown() -> None:
    scheduler = TestScheduler()
    failure = sk.IncompleteStreamError("openai", "[DONE]", events=1)
    xs = scheduler.create_cold_observable(
        on_next(10, sk.Chunk(provider="openai", content='{"x": 1, "label": "pa')),
        on_error(20, failure),
    )

    results = scheduler.start(lambda: xs.pipe(ops.partial_object(Point)))

    assert shown(results.messages) == [(210, {"x": 1, "label": "pa"})]
    assert error_at(results.messages) == (220, failure)


def test_disposing_downstream_disposes_upstream_at_that_tick() -> None:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(['{"x": 1,', ' "label": "a', 'b"', "}"]))

    results = scheduler.start(lambda: xs.pipe(ops.partial_object(Point)), disposed=225)

    assert shown(results.messages) == [(210, {"x": 1}), (220, {"x": 1, "label": "a"})]
    assert xs.subscriptions == [subscribe(200, 225)]


def test_each_subscription_parses_on_its_own() -> None:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(['{"x": 7, "label": "s"}']))
    partial = xs.pipe(ops.partial_object(Point))
    first = scheduler.create_observer()
    second = scheduler.create_observer()
    scheduler.schedule_absolute(200, lambda *_: partial.subscribe(first))
    scheduler.schedule_absolute(300, lambda *_: partial.subscribe(second))

    scheduler.start()

    assert values(first.messages) == values(second.messages) == [Point(x=7, label="s")]


def test_a_model_class_is_required_before_anything_runs() -> None:
    with pytest.raises(TypeError, match="pydantic model class"):
        ops.partial_object(dict)  # type: ignore[type-var]
    with pytest.raises(TypeError, match="pydantic model class"):
        ops.partial_object(Point(x=1, label="a"))  # type: ignore[arg-type]


# -- the cost bound ----------------------------------------------------------------------
def test_a_long_string_streamed_in_small_pieces_is_parsed_a_linear_amount() -> None:
    text = json.dumps({"x": 1, "label": "lorem ipsum " * 4000})  # ~48k characters
    parser = PartialModelParser(Point)
    pieces = [text[i : i + 4] for i in range(0, len(text), 4)]
    shown_lengths = []
    for piece in pieces:
        update = parser.feed(piece)
        if update is not None and "label" in update.model_fields_set:
            shown_lengths.append(len(update.label))

    assert parser.final == Point.model_validate_json(text)
    # A re-parse of the whole buffer per piece would hand jiter ~len²/8 characters.
    assert parser.parsed_characters <= (DEFAULT_REPARSE_DIVISOR + 3) * len(text)
    assert parser.parses < len(pieces) // 20
    # The string is still shown growing, in steps of at most 1/32 of its length.
    steps = [b - a for a, b in itertools.pairwise(shown_lengths)]
    assert len(shown_lengths) > 100 and max(steps) <= len(text) // DEFAULT_REPARSE_DIVISOR + 8


def parsed_per_character(text: str, model: type[BaseModel], piece: int) -> float:
    """Characters jiter was given per character of ``text`` fed in ``piece``-long pieces."""
    parser = PartialModelParser(model)
    for i in range(0, len(text), piece):
        parser.feed(text[i : i + piece])
    assert parser.final == model.model_validate_json(text)
    return parser.parsed_characters / len(text)


class Wide(BaseModel):
    f0: int
    label: str = ""


def test_parsing_work_per_character_does_not_grow_with_the_object() -> None:
    def many_members(count: int) -> str:
        return json.dumps({"label": "x", **{f"f{i}": i for i in range(count)}})

    def one_long_list(count: int) -> str:
        return json.dumps({"f0": 1, "label": "y", "items": [{"n": i} for i in range(count)]})

    for shape in (many_members, one_long_list):
        small, large = shape(300), shape(3000)  # ~4k and ~40k characters
        small_cost = parsed_per_character(small, Wide, 3)
        large_cost = parsed_per_character(large, Wide, 3)
        # Linear: about the same work per character; a re-parse per piece would make
        # the large object cost ~10 times more per character than the small one.
        assert large_cost < 1.2 * small_cost + 1, (shape.__name__, small_cost, large_cost)
        assert large_cost < DEFAULT_REPARSE_DIVISOR + 3


# -- properties --------------------------------------------------------------------------
@given(shelf_json_splits())
def test_the_last_object_is_the_validated_whole_and_each_partial_is_a_prefix_of_it(
    case: tuple[Shelf, str, list[str]],
) -> None:
    shelf, text, pieces = case
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(pieces))

    results = scheduler.start(lambda: xs.pipe(ops.partial_object(Shelf)))

    objects = values(results.messages)
    assert objects[-1] == Shelf.model_validate_json(text) == shelf
    assert all(consistent(partial, shelf) for partial in objects)
    # Emitted only on a change: of a value, or of which fields are known (a field that
    # becomes known with its default's value is news too).
    known = [(partial.model_fields_set, partial) for partial in objects[:-1]]
    assert all(a != b for a, b in itertools.pairwise(known))
    assert results.messages[-1] == on_completed(tick_of(len(pieces)))
    assert xs.subscriptions == [subscribe(200, tick_of(len(pieces)))]


@given(sks.tool_arguments(), st.booleans(), st.data())
def test_the_scanner_cuts_any_object_into_its_top_level_members(
    obj: dict[str, Any], ascii_only: bool, data: st.DataObject
) -> None:
    text = json.dumps(obj, ensure_ascii=ascii_only, indent=data.draw(st.sampled_from([None, 1])))
    members = _ObjectMembers()
    finished: list[str] = []
    for piece in data.draw(sks.split_text(text)):
        members.feed(piece)
        finished += members.finished
        members.finished.clear()

    assert members.closed and not members.trailing and members.text() == text
    assert len(finished) == len(obj)
    rebuilt: dict[str, Any] = {}
    for member in finished:
        rebuilt.update(from_json("{" + member + "}"))
    assert rebuilt == obj


# -- end to end: the openai SDK against the replay server -------------------------------
@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_structured_output_streams_into_partial_books(async_: bool) -> None:
    content = "".join(content_per_event(STRUCTURED))
    expected = Book.model_validate_json(content)
    with ReplayServer(STRUCTURED, pace=0.0) as server:
        async with replay_stream(server, "openai", async_=async_) as stream:
            books = await run_either(stream.pipe(ops.partial_object(Book)), async_=async_)
        assert (await request_end(server)).completed
    assert books[-1] == expected
    assert all(consistent(book, expected) for book in books)
    summaries = [book.summary for book in books if "summary" in book.model_fields_set]
    assert len(summaries) > 5 and summaries[-1] == expected.summary
    assert books[0].model_fields_set <= {"title"}
    wait_for_no_leftover_threads()


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_a_recorded_refusal_fails_with_the_refusal_text(async_: bool) -> None:
    with ReplayServer(REFUSAL, pace=0.0) as server:
        async with replay_stream(server, "openai", async_=async_) as stream:
            with pytest.raises(ValueError, match="I'm very sorry"):
                await run_either(stream.pipe(ops.partial_object(Book)), async_=async_)
    wait_for_no_leftover_threads()
