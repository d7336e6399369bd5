"""ops.take_until_match(): stop at the first match and close the request."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import reactivex
from hypothesis import assume, given
from hypothesis import strategies as st
from reactivex.testing import TestScheduler

import streamkit as sk
from streamkit import ops
from streamkit.ops import _take_until_match as module
from streamkit.testing import ReplayServer
from streamkit.testing import strategies as sks
from tests.recorded import error_of, value_of

from ._pipelines import (
    E2E_RUNS,
    chunks_of,
    cold_items,
    first_event_matching,
    on_completed,
    on_error,
    on_next,
    replay_stream,
    request_end,
    run_either,
    subscribe,
    text_until,
    tick_of,
    values,
    wait_for_no_leftover_threads,
)


# -- reactivex.testing examples --------------------------------------------------------
def test_a_match_split_across_chunks_stops_and_disposes_at_its_chunk() -> None:
    scheduler = TestScheduler()
    chunks = chunks_of(["Welcome", " to", " M", "oria", "!", " Speak", " friend"])
    xs = cold_items(scheduler, chunks)

    results = scheduler.start(lambda: xs.pipe(ops.take_until_match("Moria")))

    assert results.messages == [
        on_next(210, chunks[0]),
        on_next(220, chunks[1]),
        on_next(230, chunks[2]),
        on_next(240, chunks[3]),
        on_completed(240),
    ]
    assert xs.subscriptions == [subscribe(200, 240)]


def test_not_inclusive_drops_the_completing_chunk_and_still_stops_there() -> None:
    scheduler = TestScheduler()
    chunks = chunks_of(["Welcome", " to", " M", "oria", "!"])
    xs = cold_items(scheduler, chunks)

    results = scheduler.start(lambda: xs.pipe(ops.take_until_match("Moria", inclusive=False)))

    assert values(results.messages) == chunks[:3]
    assert results.messages[-1] == on_completed(240)
    assert xs.subscriptions == [subscribe(200, 240)]


def test_without_a_match_everything_passes_and_upstream_completes() -> None:
    scheduler = TestScheduler()
    chunks = chunks_of(["no", " match", " here"])
    xs = cold_items(scheduler, chunks)

    results = scheduler.start(lambda: xs.pipe(ops.take_until_match("Moria")))

    assert values(results.messages) == chunks
    assert results.messages[-1] == on_completed(240)
    assert xs.subscriptions == [subscribe(200, 240)]


def test_hot_source_regex_predicate_and_bounded_regex_stop_at_the_same_tick() -> None:
    patterns: list[tuple[Any, int | None]] = [
        (r"\d{4}", None),  # a regex: the whole text is searched
        (r"\d{4}", 4),  # the same, with a bound on the match
        (lambda text: bool(re.search(r"\d{4}", text)), None),
    ]
    for pattern, bound in patterns:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(150, sk.Chunk(provider="openai", content="1999")),  # before subscribing
            on_next(210, sk.Chunk(provider="openai", content="year 2")),
            on_next(220, sk.Chunk(provider="openai", content="0")),
            on_next(230, sk.Chunk(provider="openai", content="24 was")),
            on_next(240, sk.Chunk(provider="openai", content=" good")),
            on_completed(250),
        )

        operator = ops.take_until_match(pattern, max_match_length=bound)

        def create(
            source: reactivex.Observable[sk.Chunk] = xs,
            op: Callable[
                [reactivex.Observable[sk.Chunk]], reactivex.Observable[sk.Chunk]
            ] = operator,
        ) -> reactivex.Observable[sk.Chunk]:
            return source.pipe(op)

        results = scheduler.start(create)

        assert "".join(c.content for c in values(results.messages)) == "year 2024 was"
        assert results.messages[-1] == on_completed(230)
        assert xs.subscriptions == [subscribe(200, 230)]


def test_text_deltas_can_be_matched_after_ops_text() -> None:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(["", "Gan", "", "dalf", " said"]))

    results = scheduler.start(lambda: xs.pipe(ops.text(), ops.take_until_match("Gandalf")))

    assert results.messages == [on_next(220, "Gan"), on_next(240, "dalf"), on_completed(240)]
    assert xs.subscriptions == [subscribe(200, 240)]


def test_after_accumulate_it_stops_at_the_snapshot_that_completes_the_match() -> None:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(["Gan", "", "da", "lf said", " more"]))

    results = scheduler.start(lambda: xs.pipe(ops.accumulate(), ops.take_until_match("Gandalf")))

    assert [m.time for m in results.messages] == [210, 220, 230, 240, 240]
    assert [value_of(m).content for m in results.messages[:-1]] == [
        "Gan",
        "Gan",
        "Ganda",
        "Gandalf said",
    ]
    assert results.messages[-1] == on_completed(240)
    assert xs.subscriptions == [subscribe(200, 240)]


def test_other_items_are_refused_with_a_type_error() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, 42))

    results = scheduler.start(lambda: xs.pipe(ops.take_until_match("b")))  # type: ignore[arg-type]

    [message] = results.messages
    assert message.time == 210
    assert isinstance(error_of(message), TypeError)
    assert xs.subscriptions == [subscribe(200, 210)]


def test_a_failing_predicate_errors_and_disposes_upstream() -> None:
    scheduler = TestScheduler()
    failure = RuntimeError("predicate broke")

    def predicate(text: str) -> bool:
        if "b" in text:
            raise failure
        return False

    xs = cold_items(scheduler, chunks_of(["a", "b", "c"]))

    results = scheduler.start(lambda: xs.pipe(ops.take_until_match(predicate)))

    assert results.messages[1:] == [on_error(220, failure)]
    assert xs.subscriptions == [subscribe(200, 220)]


def test_an_upstream_error_before_a_match_passes_through() -> None:
    scheduler = TestScheduler()
    failure = sk.IncompleteStreamError("openai", "[DONE]", events=1)
    xs = scheduler.create_cold_observable(
        on_next(10, sk.Chunk(provider="openai", content="Mor")), on_error(20, failure)
    )

    results = scheduler.start(lambda: xs.pipe(ops.take_until_match("Moria")))

    assert results.messages[1:] == [on_error(220, failure)]
    assert xs.subscriptions == [subscribe(200, 220)]


def test_a_pattern_matching_empty_text_stops_after_the_first_chunk() -> None:
    scheduler = TestScheduler()
    chunks = chunks_of(["", "a"])
    xs = cold_items(scheduler, chunks)

    results = scheduler.start(lambda: xs.pipe(ops.take_until_match(r"x*")))

    assert results.messages == [on_next(210, chunks[0]), on_completed(210)]
    assert xs.subscriptions == [subscribe(200, 210)]


@pytest.mark.timeout(10)
def test_an_endless_synchronous_source_is_not_pulled_past_the_match() -> None:
    pulled: list[int] = []

    def endless() -> Iterator[sk.Chunk]:
        for number in itertools.count():
            pulled.append(number)
            yield sk.Chunk(provider="openai", content=str(number))

    received: list[sk.Chunk] = []
    reactivex.from_iterable(endless()).pipe(ops.take_until_match("1011")).subscribe(received.append)

    assert "".join(c.content for c in received) == "01234567891011"
    assert pulled == list(range(12))


# -- arguments are checked before any request ------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "kwargs", "error"),
    [
        ("(unclosed", {}, ValueError),
        ("[z-a]", {}, ValueError),
        (b"bytes", {}, TypeError),
        (re.compile(b"bytes"), {}, TypeError),
        (42, {}, TypeError),
        (None, {}, TypeError),
        ("a.b", {"max_match_length": 0}, ValueError),
        ("a.b", {"max_match_length": True}, TypeError),
        ("a.b", {"max_match_length": 2.5}, TypeError),
        (lambda text: True, {"max_match_length": 5}, ValueError),
    ],
)
def test_bad_arguments_raise_before_any_request(
    pattern: Any, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with ReplayServer("openai/chat-text-usage") as server:
        stream = sk.stream("openai", "gpt-4o", "hello", client=server.client("openai"))
        with pytest.raises(error):
            stream.pipe(ops.take_until_match(pattern, **kwargs))
        assert server.requests == []


# -- cost: what each chunk searches ----------------------------------------------------
class RecordingPattern:
    """Stands in for a compiled pattern and records how much text each search reads."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern)
        self.scanned: list[int] = []

    def search(self, string: str, pos: int = 0) -> re.Match[str] | None:
        self.scanned.append(len(string) - pos)
        return self.pattern.search(string, pos)


@pytest.mark.parametrize(
    ("pattern", "bound", "window", "kept"),
    [
        ("needle", None, 5, 5),  # literal: len - 1 old characters, no context
        (re.escape("a.b(c)"), None, 5, 5),  # escaped literal
        (r"ne+dle", 8, 7, 15),  # bounded regex: m - 1, plus m of context
    ],
)
def test_a_literal_or_bounded_pattern_searches_only_its_window(
    pattern: str, bound: int | None, window: int, kept: int
) -> None:
    new_matcher = module._matcher_factory(pattern, bound)
    matcher = new_matcher()
    assert isinstance(matcher, module._WindowSearch)
    recording = RecordingPattern(pattern)
    matcher._pattern = recording  # type: ignore[assignment]
    pieces = [f"hay{i % 97} " for i in range(3000)]

    assert not any(matcher.feed(piece) for piece in pieces)

    assert all(
        scanned <= window + len(piece)
        for scanned, piece in zip(recording.scanned, pieces, strict=True)
    )
    assert len(matcher._tail) == kept
    assert sum(recording.scanned) <= sum(map(len, pieces)) + window * len(pieces)


def test_an_unbounded_regex_searches_the_whole_text_as_documented() -> None:
    matcher = module._matcher_factory(r"a.*z", None)()
    assert isinstance(matcher, module._FullSearch)
    recording = RecordingPattern(r"a.*z")
    matcher._pattern = recording  # type: ignore[assignment]

    for piece in ["ab", "cd", "ef"]:
        assert not matcher.feed(piece)

    assert recording.scanned == [2, 4, 6]


def test_the_predicate_sees_the_text_so_far_once_per_text_adding_chunk() -> None:
    seen: list[str] = []

    def predicate(text: str) -> bool:
        seen.append(text)
        return text.endswith("!")

    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(["", "a", "", "b", "!", "c"]))
    scheduler.start(lambda: xs.pipe(ops.take_until_match(predicate)))

    assert seen == ["", "a", "ab", "ab!"]


# -- properties --------------------------------------------------------------------------
ALPHABET_TEXTS = sks.text_splits(st.text(alphabet="ab.xy \n", max_size=40))

# (pattern, max_match_length): literal, escaped literal, flagged literal, bounded
# regexes whose bound covers their lookaround, unbounded regexes, a predicate.
PATTERNS: list[tuple[Any, int | None]] = [
    ("xy", None),
    (re.escape("a.b"), None),
    (re.compile("AB", re.IGNORECASE), None),
    ("a.b", 3),
    (r"(?<=x)y", 2),
    (r"\bab\b", 4),
    (r"^y", 1),
    (r"(?m)^y", 2),
    (r"a$", 2),
    ("a.b", None),
    (r"x[^\n]*y", None),
    (lambda text: text.count("a") >= 3, None),
    ("", None),
]


def first_matching_prefix(pattern: Any, pieces: list[str]) -> int | None:
    """The oracle: the smallest k >= 1 whose first k pieces' text matches (re-searching
    the whole prefix every time, the obviously right and slow way)."""
    if callable(pattern):
        matches: Callable[[str], bool] = pattern
    else:
        compiled = re.compile(pattern) if isinstance(pattern, str) else pattern

        def matches(text: str) -> bool:
            return compiled.search(text) is not None

    for k in range(1, len(pieces) + 1):
        if matches("".join(pieces[:k])):
            return k
    return None


def run_virtual(pattern: Any, bound: int | None, pieces: list[str], *, inclusive: bool) -> Any:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(pieces))
    operator = ops.take_until_match(pattern, inclusive=inclusive, max_match_length=bound)
    results = scheduler.start(lambda: xs.pipe(operator))
    return results.messages, xs.subscriptions


@given(ALPHABET_TEXTS, st.sampled_from(PATTERNS), st.booleans())
def test_emits_the_smallest_matching_prefix_and_disposes_there(
    split: tuple[str, list[str]], case: tuple[Any, int | None], inclusive: bool
) -> None:
    _text, pieces = split
    pattern, bound = case
    chunks = chunks_of(pieces)

    messages, subscriptions = run_virtual(pattern, bound, pieces, inclusive=inclusive)

    k = first_matching_prefix(pattern, pieces)
    if k is None:
        assert values(messages) == chunks
        end = tick_of(len(pieces))
    else:
        assert values(messages) == chunks[: k if inclusive else k - 1]
        end = tick_of(k - 1)
    assert messages[-1] == on_completed(end)
    assert subscriptions == [subscribe(200, end)]


@st.composite
def text_with_needle(draw: st.DrawFn) -> tuple[str, list[str], str]:
    """A unicode text, a split of it, and a non-empty needle: mostly a piece of the
    text, sometimes anything."""
    text, pieces = draw(sks.text_splits(st.text(min_size=1, max_size=60)))
    start = draw(st.integers(0, len(text) - 1))
    end = draw(st.integers(start + 1, len(text)))
    needle = draw(st.one_of(st.just(text[start:end]), st.text(min_size=1, max_size=4)))
    return text, pieces, needle


def _matches(pattern: Any, text: str) -> bool:
    return bool(pattern(text)) if callable(pattern) else re.search(pattern, text) is not None


@given(text_with_needle(), st.sampled_from(["regex", "escaped", "bounded", "predicate"]))
def test_the_outcome_does_not_depend_on_where_the_text_was_split(
    case: tuple[str, list[str], str], form: str
) -> None:
    text, pieces, needle = case
    pattern: Any = {
        "regex": needle,  # the needle read as a regex, when it is one
        "escaped": re.escape(needle),
        "bounded": "(?:" + re.escape(needle) + ")",
        "predicate": lambda so_far: needle in so_far,
    }[form]
    if form == "regex":
        try:
            assume(re.compile(needle).search("") is None)
        except re.error:
            assume(False)
    bound = len(needle) if form == "bounded" else None
    # Split invariance holds for patterns whose match, once found in a prefix, stays
    # found as the text grows; an anchor (``$``, ``\\b``) can match only at the end of
    # the text so far (the docstring says so), which the split then decides.
    matched = [_matches(pattern, text[: i + 1]) for i in range(len(text))]
    assume(all(matched[matched.index(True) :]) if True in matched else True)

    arbitrary, _ = run_virtual(pattern, bound, pieces, inclusive=True)
    per_character, subscriptions = run_virtual(pattern, bound, list(text), inclusive=True)

    emitted = [c.content for c in values(arbitrary)]
    shortest = "".join(c.content for c in values(per_character))
    end = first_matching_prefix(pattern, list(text))
    if end is None:
        assert "".join(emitted) == shortest == text
        assert subscriptions == [subscribe(200, tick_of(len(text)))]
    else:
        # One character per chunk stops exactly where the text first matches; any
        # other split stops at the end of the chunk holding that character.
        assert shortest == text[:end]
        assert subscriptions == [subscribe(200, tick_of(end - 1))]
        assert text.startswith("".join(emitted))
        assert "".join(emitted).startswith(shortest)
        assert len("".join(emitted[:-1])) < end


# -- end to end: the real SDK against a paced replay server -----------------------------
@pytest.mark.parametrize(("provider", "transcript", "phrase", "async_"), E2E_RUNS)
async def test_the_server_sees_the_disconnect_right_after_the_match(
    provider: str, transcript: str, phrase: str, async_: bool
) -> None:
    with ReplayServer(transcript, pace=0.05) as server:
        async with replay_stream(server, provider, async_=async_) as stream:
            deltas = await run_either(
                stream.pipe(ops.take_until_match(phrase), ops.text()), async_=async_
            )
        record = await request_end(server)
        matching_event = first_event_matching(transcript, phrase)
        assert record.disconnected
        assert record.events_sent <= matching_event + 2
        assert record.events_sent < record.events_total
        wait_for_no_open_connections(server)
    assert "".join(deltas) == text_until(transcript, phrase)
    wait_for_no_leftover_threads()


@pytest.mark.parametrize(("provider", "transcript", "phrase", "async_"), E2E_RUNS)
async def test_a_slow_end_observer_does_not_keep_the_response_open(
    provider: str, transcript: str, phrase: str, async_: bool
) -> None:
    # The end's observers run on the thread (or loop) that stopped on the match, before
    # the pull unwinds and closes its stream; the first cost lookup in a process imports
    # the price table, and a user's on_usage can be slow. The socket is shut down first.
    slow_observer_seconds = 0.5
    pace = 0.02  # the server would send ~25 more events while the observer runs

    def slow_on_usage(*_args: Any) -> None:
        time.sleep(slow_observer_seconds)

    with ReplayServer(transcript, pace=pace) as server:
        async with replay_stream(server, provider, async_=async_, on_usage=slow_on_usage) as stream:
            await run_either(stream.pipe(ops.take_until_match(phrase)), async_=async_)
        record = await request_end(server)
        assert record.disconnected
        assert record.events_sent <= first_event_matching(transcript, phrase) + 2
        wait_for_no_open_connections(server)
    wait_for_no_leftover_threads()


@pytest.mark.parametrize(("provider", "transcript", "phrase", "async_"), E2E_RUNS)
async def test_accumulate_and_reduce_after_take_until_match_end_at_the_match(
    provider: str, transcript: str, phrase: str, async_: bool
) -> None:
    with ReplayServer(transcript, pace=0.0) as server:
        async with replay_stream(server, provider, async_=async_) as stream:
            stop_at_phrase = ops.take_until_match(phrase)
            snapshots = await run_either(
                stream.pipe(stop_at_phrase, ops.accumulate()), async_=async_
            )
            [response] = await run_either(
                stream.pipe(stop_at_phrase, ops.to_call_response()), async_=async_
            )
    assert snapshots[-1].content == response.content == text_until(transcript, phrase)
    assert response.finish_reason is None  # cut before the model finished


def wait_for_no_open_connections(server: ReplayServer, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while server.open_connections and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.open_connections == 0


# -- literal= (issue 11: a plain str is a regular expression) ------------------------------
def test_a_str_is_a_regex_and_literal_true_searches_plain_text() -> None:
    from reactivex import from_iterable

    pieces = ["What is 2+2", "? (four)", " done"]
    as_regex = from_iterable(pieces).pipe(ops.take_until_match("2+2?")).run()
    as_literal: list[str] = []
    from_iterable(pieces).pipe(ops.take_until_match("2+2?", literal=True)).subscribe(
        as_literal.append
    )
    assert as_regex == "What is 2+2"  # regex "2+2?" matches "2" in the first piece
    assert as_literal == ["What is 2+2", "? (four)"]  # the literal needs the "?"
    with pytest.raises(TypeError, match="literal=True takes a str"):
        ops.take_until_match(re.compile("x"), literal=True)
