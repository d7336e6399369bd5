"""streamkit.testing.marbles: recording pipeline runs and drawing them.

The recorder is checked against reactivex's own test recording (``TestScheduler.start``
and a cold test observable's ``subscriptions``) on the same pipelines, so the times it
reports are reactivex's; the SVG is checked as XML and for its geometry.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import reactivex
import reactivex.operators as rx
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel
from reactivex import Observable
from reactivex.testing import ReactiveTest, TestScheduler

import streamkit as sk
from streamkit import ops
from streamkit.ops import PartialToolArgs
from streamkit.testing import ReplayServer, marbles
from tests.recorded import kind_of

ROOT = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"


def chunks_of(*pieces: str) -> list[sk.Chunk]:
    return [sk.Chunk(provider="openai", content=piece) for piece in pieces]


def until_moria(stream: Observable[sk.Chunk]) -> Observable[sk.Chunk]:
    return stream.pipe(ops.take_until_match("Moria"))


# -- recording in virtual time -----------------------------------------------------------
def test_a_plain_run_records_every_event_and_the_whole_subscription() -> None:
    diagram = marbles.record(lambda s: s, marbles.cold(["a", "b"], name="letters"))

    source, output = diagram.line("letters"), diagram.line("output")
    assert [(e.time, e.kind, e.label) for e in source.events] == [
        (10.0, "next", "'a'"),
        (20.0, "next", "'b'"),
        (30.0, "completed", ""),
    ]
    assert output.events == source.events
    assert source.subscriptions == (marbles.Subscription(0.0, 30.0, disposed=False),)
    assert output.subscriptions == (marbles.Subscription(0.0, 30.0, disposed=False),)
    assert diagram.end == 30.0 and diagram.title == "pipeline"


def test_times_and_subscriptions_agree_with_reactivex_own_recording() -> None:
    chunks = chunks_of("Welcome", " to", " M", "oria", "!", " Speak")
    # reactivex's recording: created at 100, subscribed at 200, items every 10 ticks.
    scheduler = TestScheduler()
    messages = [ReactiveTest.on_next(10 * (i + 1), c) for i, c in enumerate(chunks)]
    messages.append(ReactiveTest.on_completed(10 * (len(chunks) + 1)))
    cold = scheduler.create_cold_observable(messages)
    observed = scheduler.start(lambda: until_moria(cold))

    diagram = marbles.record(until_moria, marbles.cold(chunks, name="stream"))

    offset = 200.0
    expected_output = [(m.time - offset, kind_of(m)) for m in observed.messages]
    output = [
        (e.time, {"next": "N", "completed": "C", "error": "E"}[e.kind])
        for e in diagram.line("output").events
    ]
    assert output == expected_output
    (subscription,) = cold.subscriptions
    (recorded,) = diagram.line("stream").subscriptions
    assert (recorded.start, recorded.end) == (
        subscription.subscribe - offset,
        subscription.unsubscribe - offset,
    )
    assert recorded.disposed  # upstream was cut at the match, before its own end


def test_what_a_disposed_source_would_have_sent_is_kept_as_never_delivered() -> None:
    diagram = marbles.record(until_moria, marbles.cold(chunks_of(" M", "oria", "!"), name="stream"))

    source = diagram.line("stream")
    assert [(e.time, e.delivered) for e in source.events] == [
        (10.0, True),
        (20.0, True),
        (30.0, False),
        (40.0, False),
    ]
    assert source.labels == ["' M'", "'oria'"]
    assert diagram.end == 40.0  # the axis shows what was spared


def test_a_marble_string_with_values_and_an_error() -> None:
    boom = ValueError("boom")
    source = marbles.cold("-a--b-#", values={"a": "x", "b": "y"}, error=boom, spacing=5)

    diagram = marbles.record(lambda s: s.pipe(rx.map(str.upper)), source)

    events = diagram.line("output").events
    assert [(e.time, e.kind, e.label) for e in events] == [
        (5.0, "next", "'X'"),
        (20.0, "next", "'Y'"),
        (30.0, "error", "ValueError"),
    ]
    assert diagram.line("source").subscriptions[0].disposed is False


def test_a_late_subscriber_of_share_replay_gets_the_replay_at_once() -> None:
    diagram = marbles.record(
        lambda s: s.pipe(ops.share_replay()),
        marbles.cold(["a", "b", "c"]),
        subscribers={"first": 0, "late": 25, "gone": (0, 15)},
    )

    late = diagram.line("late").events
    assert [(e.time, e.label) for e in late] == [
        (25.0, "'a'"),
        (25.0, "'b'"),
        (30.0, "'c'"),
        (40.0, ""),
    ]
    assert diagram.line("gone").subscriptions == (marbles.Subscription(0.0, 15.0, disposed=True),)
    assert len(diagram.line("source").subscriptions) == 1  # one request for everyone


def test_a_hot_source_plays_at_absolute_times_to_whoever_listens() -> None:
    diagram = marbles.record(lambda s: s, marbles.hot(["a", "b", "c"]), subscribers={"output": 15})

    assert diagram.line("output").labels == ["'b'", "'c'"]
    source = diagram.line("source")
    assert [(e.label, e.delivered) for e in source.events if e.kind == "next"] == [
        ("'a'", False),
        ("'b'", True),
        ("'c'", True),
    ]


def test_attempts_play_one_source_per_subscription_for_a_retry() -> None:
    scheduler = TestScheduler()
    cut = sk.IncompleteStreamError("openai", "[DONE]", events=1)
    source = marbles.attempts(
        marbles.cold(chunks_of("Once"), error=cut), marbles.cold(chunks_of("Once", " upon"))
    )
    retry = ops.retry_on_error(2, backoff=5, jitter=0, scheduler=scheduler)

    diagram = marbles.record(lambda s: s.pipe(retry), source, scheduler=scheduler)

    starts = [s.start for s in diagram.line("source").subscriptions]
    assert starts == [0.0, 25.0]  # the error at 20, then the 5 s backoff
    assert diagram.line("output").labels == ["'Once'", "' upon'"]


def test_several_named_outputs_and_subscription_times() -> None:
    chunks = [
        sk.Chunk(provider="openai", audio=b"\x00\x01", audio_transcript="Hi"),
        sk.Chunk(provider="openai", audio=b"\x02"),
    ]
    diagram = marbles.record(
        ops.tee_audio_text, marbles.cold(chunks), subscribers={"audio": 0, "text": 12}
    )

    assert [t.name for t in diagram.outputs] == ["audio", "text"]
    assert diagram.line("audio").labels == ["2B", "1B"]
    assert diagram.line("text").labels == ["'Hi'"]
    assert diagram.line("source").subscriptions[0].start == 12.0  # connected when both are


def test_until_stops_the_clock() -> None:
    diagram = marbles.record(lambda s: s, marbles.cold(["a", "b", "c"]), until=25)
    assert diagram.line("output").labels == ["'a'", "'b'"]
    assert diagram.line("output").subscriptions[0].end is None


def test_bad_arguments_are_refused() -> None:
    source = marbles.cold(["a"])
    with pytest.raises(TypeError, match="pipeline"):
        marbles.record("not callable", source)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one source"):
        marbles.record(lambda s: s)
    with pytest.raises(TypeError, match=r"marbles\.cold"):
        marbles.record(lambda s: s, reactivex.of(1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must return an Observable"):
        marbles.record(lambda s: [s], source)
    with pytest.raises(ValueError, match="not outputs"):
        marbles.record(ops.tee_audio_text, source, subscribers={"video": 0})
    with pytest.raises(ValueError, match="before subscribing"):
        marbles.record(lambda s: s, source, subscribers={"output": (10, 5)})
    with pytest.raises(ValueError, match="spacing"):
        marbles.cold(["a"], spacing=0)
    with pytest.raises(TypeError, match="values="):
        marbles.cold(["a"], values={"a": 1})
    with pytest.raises(ValueError, match="at least one"):
        marbles.attempts()
    with pytest.raises(ValueError, match="cold"):
        marbles.attempts(marbles.hot(["a"]))
    with pytest.raises(KeyError, match="no line named"):
        marbles.record(lambda s: s, source).line("nope")


# -- labels --------------------------------------------------------------------------------
class Book(BaseModel):
    title: str
    year: int


def test_labels_tell_the_items_of_a_stream_apart() -> None:
    describe = marbles.describe
    assert describe(" to") == "' to'"
    assert describe(b"\x00" * 2400) == "2400B"
    assert describe(sk.Chunk(provider="openai")) == "''"
    assert (
        describe(sk.Chunk(provider="openai", content="Hi", finish_reasons=["stop"])) == "'Hi' stop"
    )
    assert describe(sk.Chunk(provider="openai", usage=sk.Usage(input_tokens=1))) == "usage"
    assert describe(sk.Chunk(provider="openai", thinking="hmm")) == "think:'hmm'"
    delta = sk.ToolCallDelta(index=0, name="get_capital")
    assert describe(sk.Chunk(provider="openai", tool_calls=[delta])) == "tool:get_capital"
    assert describe(sk.Chunk(provider="openai", audio=b"ab", audio_transcript="x")) == "♪2B 'x'"
    assert describe(sk.CallResponse(provider="openai", content="4242")) == "response '4242'"
    assert describe(ValueError("x")) == "ValueError"
    partial = Book.model_construct(title="The Ho")
    assert describe(partial) == '{"title":"The Ho"}'
    item = PartialToolArgs(0, "id", "book", Book(title="T", year=1), complete=True)
    assert describe(item, limit=40) == '{"title":"T","year":1} ✓'
    long = describe("x" * 100)
    assert len(long) == marbles.MAX_LABEL and long.endswith("…'")


# -- rendering -------------------------------------------------------------------------------
def test_render_text_shows_subscriptions_cuts_and_unsent_events() -> None:
    diagram = marbles.record(
        until_moria, marbles.cold(chunks_of(" M", "oria", "!"), name="stream"), title="t"
    )
    assert marbles.render_text(diagram) == (
        "t  (time in virtual s)\n"
        "stream  0:^ 10:' M' 20:'oria' 20:! (30:'!') (40:|)\n"
        "        [t]\n"
        "output  0:^ 10:' M' 20:'oria' 20:|"
    )


def _pills(svg: str) -> list[tuple[float, float, float]]:
    """(y, x, width) of every marble."""
    root = ET.fromstring(svg)
    return [
        (float(r.get("y", 0)), float(r.get("x", 0)), float(r.get("width", 0)))
        for r in root.iter(f"{SVG}rect")
        if r.get("rx") == "11"
    ]


def test_the_svg_is_well_formed_escaped_and_deterministic() -> None:
    boom = RuntimeError("x")
    source = marbles.cold(["<a & b>", "c"], error=boom)
    diagram = marbles.record(
        lambda s: s.pipe(ops.take_until_match("c"), ops.share_replay()),
        source,
        subscribers={"first": 0, "leaves": (0, 15)},
    )

    svg = marbles.render_svg(diagram)

    assert svg == marbles.render_svg(diagram)
    root = ET.fromstring(svg)  # raises if the labels were not escaped
    assert root.tag == f"{SVG}svg"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "'<a & b>'" in texts
    # One marble per item on every line: 2 in the source, 2 for "first", 1 for "leaves".
    assert len(_pills(svg)) == 5
    cuts = [line for line in root.iter(f"{SVG}line") if line.get("stroke-dasharray") == "4 2"]
    assert len(cuts) == 2  # "leaves" disposed at 15, and the source cut at the match


def test_an_error_is_drawn_as_a_cross_with_its_type() -> None:
    diagram = marbles.record(lambda s: s, marbles.cold(["a"], error=ValueError("no")))
    root = ET.fromstring(marbles.render_svg(diagram))
    crosses = [
        p
        for p in root.iter(f"{SVG}path")
        if (p.findtext(f"{SVG}title") or "").startswith("ValueError")
    ]
    assert len(crosses) == 2  # on the source and on the output
    assert "ValueError" in [t.text for t in root.iter(f"{SVG}text")]


@given(
    st.lists(st.text(alphabet="abc xyz", min_size=0, max_size=12), min_size=1, max_size=8),
    st.integers(1, 20),
)
def test_marbles_on_a_line_never_overlap_and_record_is_faithful(
    labels: list[str], spacing: int
) -> None:
    diagram = marbles.record(lambda s: s, marbles.cold(labels, spacing=spacing))

    assert diagram.line("output").labels == [marbles.describe(label) for label in labels]
    assert [e.time for e in diagram.line("output").events] == [
        e.time for e in diagram.line("source").events
    ]
    rows: dict[float, list[tuple[float, float]]] = {}
    for y, x, width in _pills(marbles.render_svg(diagram)):
        rows.setdefault(y, []).append((x, width))
    for pills in rows.values():
        pills.sort()
        for (x1, w1), (x2, _) in itertools.pairwise(pills):
            assert x1 + w1 <= x2 + 0.05


# -- recording a real run ----------------------------------------------------------------------
def test_record_live_shows_take_until_match_closing_the_request() -> None:
    with ReplayServer("openai/chat-text-after-tool-results", pace=0.005) as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        diagram = marbles.record_live(until_moria, stream, names=["stream"])
        request = server.wait_for_request_end()

    assert request.disconnected
    (subscription,) = diagram.line("stream").subscriptions
    assert subscription.disposed and subscription.end is not None
    output = diagram.line("output")
    assert output.labels[-2:] == ["' M'", "'oria'"] and output.events[-1].kind == "completed"
    times = [e.time for e in output.events]
    assert times == sorted(times) and diagram.unit == "s"
    assert marbles.render_svg(diagram).startswith("<svg")


def test_record_live_gives_up_after_its_timeout() -> None:
    diagram = marbles.record_live(lambda s: s, reactivex.never(), timeout=0.1)
    (subscription,) = diagram.line("output").subscriptions
    assert subscription.disposed
    assert diagram.line("source").subscriptions[0].disposed


def test_record_live_refuses_async_streams_and_non_observables() -> None:
    with ReplayServer("openai/chat-text-usage") as server:
        client = server.client("openai", async_=True)
        stream = sk.stream("openai", "gpt-4o", "hi", client=client)
        with pytest.raises(ValueError, match="sync client"):
            marbles.record_live(lambda s: s, stream)
    with pytest.raises(TypeError, match="Observables"):
        marbles.record_live(lambda s: s, [1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="names"):
        marbles.record_live(lambda s: s, reactivex.empty(), names=["a", "b"])


def test_importing_streamkit_testing_imports_no_sdk_and_no_hypothesis() -> None:
    code = (
        "import sys, streamkit.testing\n"
        "heavy = {'hypothesis', 'openai', 'anthropic', 'groq', 'mistralai', 'google', 'cohere',"
        " 'litellm', 'azure'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
