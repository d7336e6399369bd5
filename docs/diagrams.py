"""The marble diagrams of the docs, each drawn from a real run of the operator.

Every diagram here runs the operator's own code with ``streamkit.testing.marbles`` on
reactivex's ``TestScheduler`` (virtual time, so each run gives the same SVG, byte for
byte), on chunks that the real SDK clients produced from the recorded transcripts
(replayed by ``ReplayServer``) or on a few hand-written ones where that reads better.

    python docs/diagrams.py          # write docs/diagrams/*.svg
    python docs/diagrams.py --check  # exit 1 when a committed SVG differs from the code

The docs build (``docs/hooks.py``) draws them again and serves the fresh ones, and
``tests/test_docs.py`` fails when a committed SVG differs from what the code draws, so
a diagram can never disagree with the operator it shows.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path

import reactivex.operators as rx
from pydantic import BaseModel
from reactivex import Observable
from reactivex.testing import TestScheduler

import streamkit as sk
from streamkit import ops
from streamkit.testing import ReplayServer, load_transcript, marbles
from streamkit.testing.spans import render_span_svg

DIAGRAM_DIR = Path(__file__).resolve().parent / "diagrams"


@functools.cache
def recorded_chunks(transcript: str) -> tuple[sk.Chunk, ...]:
    """The chunks the real SDK client yields for a recorded transcript."""
    provider = load_transcript(transcript).provider
    provider = "openai" if provider == "openrouter" else provider
    with ReplayServer(transcript) as server:
        stream = sk.stream(provider, "recorded-model", "hi", client=server.client(provider))
        return tuple(stream.pipe(rx.to_list()).run())


def text_chunks(*pieces: str) -> list[sk.Chunk]:
    """One content chunk per piece."""
    return [sk.Chunk(provider="openai", content=piece) for piece in pieces]


# -- one function per diagram ----------------------------------------------------------
def to_call_response() -> marbles.Diagram:
    source = marbles.cold(recorded_chunks("openai/chat-text-usage"), name="stream")
    return marbles.record(
        lambda stream: stream.pipe(ops.to_call_response()), source, title="to_call_response()"
    )


def accumulate() -> marbles.Diagram:
    source = marbles.cold(recorded_chunks("anthropic/messages-text"), name="stream")
    return marbles.record(
        lambda stream: stream.pipe(ops.accumulate()), source, title="accumulate()"
    )


def text() -> marbles.Diagram:
    source = marbles.cold(recorded_chunks("openai/chat-text-usage"), name="stream")
    return marbles.record(lambda stream: stream.pipe(ops.text()), source, title="text()")


def take_until_match() -> marbles.Diagram:
    # Chunks 15 to 21 of a recorded answer: '... Welcome to Moria!\n- "radiance" ...'
    chunks = recorded_chunks("openai/chat-text-after-tool-results")[15:22]
    source = marbles.cold(chunks, name="stream")
    return marbles.record(
        lambda stream: stream.pipe(ops.take_until_match("Moria")),
        source,
        title='take_until_match("Moria")',
    )


def first_chunk_timeout() -> marbles.Diagram:
    chunks = text_chunks("Hello", " there")
    source = marbles.cold("----a-b|", values={"a": chunks[0], "b": chunks[1]}, name="stream")
    return marbles.record(
        lambda stream: stream.pipe(ops.first_chunk_timeout(25)),
        source,
        title="first_chunk_timeout(25)",
    )


def idle_timeout() -> marbles.Diagram:
    chunks = text_chunks("Hello", " there", "!")
    source = marbles.cold(
        "-a-b------c|", values={"a": chunks[0], "b": chunks[1], "c": chunks[2]}, name="stream"
    )
    return marbles.record(
        lambda stream: stream.pipe(ops.idle_timeout(25)), source, title="idle_timeout(25)"
    )


def share_replay() -> marbles.Diagram:
    source = marbles.cold(text_chunks("Once", " upon", " a", " time"), name="stream")
    return marbles.record(
        lambda stream: stream.pipe(ops.share_replay()),
        source,
        subscribers={"first": 0, "late": 25, "after the end": 60},
        title="share_replay()",
    )


def share_replay_everyone_leaves() -> marbles.Diagram:
    source = marbles.cold(text_chunks("Once", " upon", " a", " time"), name="stream")
    return marbles.record(
        lambda stream: stream.pipe(ops.share_replay()),
        source,
        subscribers={"first": (0, 15), "second": (5, 25)},
        title="share_replay(): every subscriber leaves",
    )


def tee_audio_text() -> marbles.Diagram:
    chunks = recorded_chunks("synthetic/openai-chat-audio-pcm16")[1:8]
    source = marbles.cold(chunks, name="stream")
    return marbles.record(
        ops.tee_audio_text,
        source,
        subscribers={"audio": 0, "text": 25},
        title="tee_audio_text(stream)",
    )


def retry_on_error() -> marbles.Diagram:
    scheduler = TestScheduler()
    cut = sk.IncompleteStreamError("openai", "data: [DONE]", events=2)
    source = marbles.attempts(
        marbles.cold(text_chunks("Once", " upon"), error=cut),
        marbles.cold(text_chunks("Once", " upon", " a time")),
        name="stream",
    )

    def pipeline(stream: Observable[sk.Chunk]) -> Observable[sk.Chunk]:
        return stream.pipe(ops.retry_on_error(3, backoff=10, jitter=0, scheduler=scheduler))

    return marbles.record(
        pipeline,
        source,
        scheduler=scheduler,
        title="retry_on_error(3, backoff=10, jitter=0)",
    )


class GetCapital(BaseModel):
    """The arguments of the recorded tool call."""

    country: str


class Book(BaseModel):
    """A structured output."""

    title: str
    year: int


def partial_tool_args() -> marbles.Diagram:
    source = marbles.cold(recorded_chunks("openai/chat-tool-call-gpt-4o-mini"), name="stream")
    return marbles.record(
        lambda stream: stream.pipe(ops.partial_tool_args(GetCapital)),
        source,
        label=functools.partial(marbles.describe, limit=24),
        title="partial_tool_args(GetCapital)",
    )


def partial_object() -> marbles.Diagram:
    chunks = text_chunks('{"title": "The Ho', 'bbit", "ye', 'ar": 19', "37}")
    source = marbles.cold(chunks, name="stream")
    return marbles.record(
        lambda stream: stream.pipe(ops.partial_object(Book)),
        source,
        label=functools.partial(marbles.describe, limit=34),
        title="partial_object(Book)",
    )


def cold_stream() -> marbles.Diagram:
    source = marbles.cold(text_chunks("Hi", "!"), name="stream")
    return marbles.record(
        lambda stream: stream,
        source,
        subscribers={"first subscriber": 0, "second subscriber": 15},
        title="two subscriptions, two requests",
    )


def cancellation() -> marbles.Diagram:
    source = marbles.cold(text_chunks("One", " two", " three", " four", " five"), name="stream")
    return marbles.record(lambda stream: stream.pipe(rx.take(2)), source, title="take(2)")


def chunks_of(provider: str, *pieces: str) -> list[sk.Chunk]:
    """One content chunk of ``provider`` per piece."""
    return [sk.Chunk(provider=provider, content=piece) for piece in pieces]


def fallback() -> marbles.Diagram:
    cut = sk.IncompleteStreamError("anthropic", "message_stop", events=2)
    primary = marbles.cold(chunks_of("anthropic", "Once", " upon"), error=cut, name="claude")
    # the backup, asked to continue "Once upon", answers with the rest only
    backup = marbles.cold(chunks_of("openai", " a", " time"), name="gpt")

    def pipeline(claude: Observable[sk.Chunk], gpt: Observable[sk.Chunk]) -> Observable[sk.Chunk]:
        return claude.pipe(ops.fallback(lambda delivered: gpt))

    return marbles.record(pipeline, primary, backup, title="fallback(gpt)")


def hedge() -> marbles.Diagram:
    scheduler = TestScheduler()
    slow = marbles.cold(
        "------a-b|", values=dict(zip("ab", text_chunks("Late", "!"), strict=True)), name="first"
    )
    fast = marbles.cold(chunks_of("openai", "Quick", " answer"), name="hedge")

    def pipeline(first: Observable[sk.Chunk], hedge: Observable[sk.Chunk]) -> Observable[sk.Chunk]:
        return first.pipe(ops.hedge(hedge, after=25, scheduler=scheduler))

    return marbles.record(pipeline, slow, fast, scheduler=scheduler, title="hedge(hedge, after=25)")


def race() -> marbles.Diagram:
    a = marbles.cold(
        chunks_of("openai", "Well,", " 4200", " plus", " 42", " is", " 4242"), name="a"
    )
    b = marbles.cold(
        "--x--y-z|",
        values=dict(zip("xyz", chunks_of("anthropic", "It is", " 4242", "."), strict=True)),
        name="b",
    )

    def pipeline(a: Observable[sk.Chunk], b: Observable[sk.Chunk]) -> Observable[sk.Chunk]:
        return sk.race(a, b, until=lambda text: "4242" in text)

    return marbles.record(pipeline, a, b, title='race(a, b, until="4242" in text)')


# -- pictures that are not marble diagrams ------------------------------------------------
def telemetry_spans() -> str:
    """The spans of a retried, early-stopped stream, from a real run: an application span,
    ``retry_on_error``'s span for the logical call, and one request span per attempt
    (the first cut mid-body, the second stopped by ``take_until_match``).

    Bars are placed by the order of what happened (each start, event and end gets the
    next column), not by the clock, so every run draws the same picture.
    """
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from streamkit.testing import Fault, Reply

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    transcript = "openai/chat-text-usage"
    with sk.telemetry.instrument(tracer_provider=provider), ReplayServer(pace=0.002) as server:
        server.push(Reply(transcript, fault=Fault(close_after_events=3)), transcript)
        stream = sk.stream("openai", "gpt-4o-mini", "hi", client=server.client("openai"))
        with provider.get_tracer("app").start_as_current_span("answer the question"):
            stream.pipe(
                ops.retry_on_error(3, backoff=0.01, jitter=0.0),
                ops.take_until_match("4242"),
                rx.to_list(),
            ).run()
        server.wait_for_request_end(-1, 5.0)
    provider.shutdown()
    return render_span_svg(
        exporter.get_finished_spans(), title="spans of a retried, early-stopped stream"
    )


PICTURES: dict[str, Callable[[], str]] = {"telemetry-spans": telemetry_spans}
"""Pictures drawn by code of their own: name -> the run that returns the SVG text."""


DIAGRAMS: dict[str, Callable[[], marbles.Diagram]] = {
    "to_call_response": to_call_response,
    "accumulate": accumulate,
    "text": text,
    "take_until_match": take_until_match,
    "first_chunk_timeout": first_chunk_timeout,
    "idle_timeout": idle_timeout,
    "share_replay": share_replay,
    "share_replay-everyone-leaves": share_replay_everyone_leaves,
    "tee_audio_text": tee_audio_text,
    "retry_on_error": retry_on_error,
    "fallback": fallback,
    "hedge": hedge,
    "race": race,
    "partial_tool_args": partial_tool_args,
    "partial_object": partial_object,
    "cold-stream": cold_stream,
    "cancellation": cancellation,
}
"""Diagram name (``docs/diagrams/<name>.svg``) -> the run that draws it."""


def render_all() -> dict[str, str]:
    """Every diagram's SVG text, by file name."""
    rendered = {f"{name}.svg": marbles.render_svg(draw()) for name, draw in DIAGRAMS.items()}
    rendered.update({f"{name}.svg": draw() for name, draw in PICTURES.items()})
    return rendered


def main(argv: list[str]) -> int:
    """Write the SVGs, or with ``--check`` report those that differ from the code."""
    rendered = render_all()
    if "--check" in argv:
        stale = [
            name
            for name, svg in rendered.items()
            if not (DIAGRAM_DIR / name).is_file()
            or (DIAGRAM_DIR / name).read_text(encoding="utf-8") != svg
        ]
        for name in stale:
            print(f"stale: docs/diagrams/{name}")
        return 1 if stale else 0
    DIAGRAM_DIR.mkdir(exist_ok=True)
    for name, svg in rendered.items():
        (DIAGRAM_DIR / name).write_text(svg, encoding="utf-8")
        print(f"wrote docs/diagrams/{name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
