"""Hypothesis strategies for property-testing streamkit pipelines (yours and ours).

    from hypothesis import given
    from streamkit.testing import strategies as sks

    @given(sks.text_splits())
    def test_my_operator(split):
        text, pieces = split
        ...

Requires ``hypothesis`` (``pip install streamkit[testing]``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from streamkit.models import Chunk, ToolCallDelta, Usage

__all__ = [
    "AudioChunkStream",
    "FaultSchedule",
    "audio_chunk_streams",
    "chunk_streams",
    "fault_schedules",
    "rechunked",
    "split_text",
    "text_splits",
    "tool_arguments",
]


@st.composite
def split_text(draw: st.DrawFn, text: str) -> list[str]:
    """``text`` cut into pieces at arbitrary boundaries (empty pieces included);
    ``"".join(pieces) == text`` always."""
    if not text:
        return draw(st.lists(st.just(""), max_size=3))
    cuts = draw(st.lists(st.integers(0, len(text)), max_size=len(text) + 3))
    bounds = sorted(cuts)
    pieces: list[str] = []
    start = 0
    for cut in bounds:
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return pieces


def text_splits(
    texts: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[tuple[str, list[str]]]:
    """``(text, pieces)``: a unicode text and a split of it (one character per piece,
    empty pieces, or a single piece are all reachable)."""
    source = texts if texts is not None else st.text(max_size=80)
    one_char_each = source.map(lambda text: (text, list(text)))
    arbitrary = source.flatmap(lambda text: split_text(text).map(lambda pieces: (text, pieces)))
    return st.one_of(arbitrary, one_char_each)


def tool_arguments() -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects as tool arguments (unicode keys and values, nesting)."""
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.text(max_size=12)
    )
    values = st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
        ),
        max_leaves=6,
    )
    return st.dictionaries(st.text(min_size=1, max_size=8), values, max_size=4)


@dataclass(frozen=True)
class ChunkStream:
    """A normalized chunk sequence with what it should reduce to."""

    chunks: list[Chunk]
    text: str
    tool_calls: list[tuple[str, str, dict[str, Any]]]
    """``(id, name, args)`` of each tool call, in order."""
    usage: Usage
    finish_reason: str


@st.composite
def chunk_streams(draw: st.DrawFn, provider: str = "openai") -> ChunkStream:
    """A whole normalized stream: text split at arbitrary boundaries, then zero or more
    tool calls with arguments fragmented arbitrarily, running-total usage reports, and
    a finish reason on the last chunk."""
    text, pieces = draw(text_splits())
    calls = draw(st.lists(tool_arguments(), max_size=3))
    chunks: list[Chunk] = []
    output_tokens = 0
    input_tokens = draw(st.integers(1, 10_000))
    for piece in pieces:
        output_tokens += 1
        report = draw(st.booleans())
        usage = (
            Usage(
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                total_tokens=input_tokens + output_tokens,
            )
            if report
            else None
        )
        chunks.append(Chunk(provider=provider, content=piece, usage=usage, id="resp-1"))
    expected_calls: list[tuple[str, str, dict[str, Any]]] = []
    for index, args in enumerate(calls):
        call_id, name = f"call_{index}", f"tool_{index}"
        expected_calls.append((call_id, name, args))
        arguments = json.dumps(args, ensure_ascii=False)
        fragments = draw(split_text(arguments))
        for position, fragment in enumerate(fragments):
            delta = ToolCallDelta(
                index=index,
                id=call_id if position == 0 else None,
                name=name if position == 0 else None,
                arguments=fragment,
            )
            chunks.append(Chunk(provider=provider, tool_calls=[delta]))
    finish_reason = "tool_calls" if calls else draw(st.sampled_from(["stop", "length"]))
    output_tokens += 1
    final_usage = Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
    )
    chunks.append(Chunk(provider=provider, finish_reasons=[finish_reason], usage=final_usage))
    return ChunkStream(chunks, text, expected_calls, final_usage, finish_reason)


@dataclass(frozen=True)
class AudioChunkStream:
    """A chunk sequence carrying audio, with the audio and the text it holds."""

    chunks: list[Chunk]
    audio: bytes
    """Every chunk's audio bytes, in order."""
    text: str
    """Every chunk's ``audio_transcript`` then ``content``, in order."""


@st.composite
def audio_chunk_streams(draw: st.DrawFn, provider: str = "openai") -> AudioChunkStream:
    """A stream whose chunks each may carry audio bytes (empty pieces included), a
    transcript piece and a content piece, ending with a finish reason."""
    chunks: list[Chunk] = []
    for _ in range(draw(st.integers(0, 12))):
        audio = draw(st.one_of(st.none(), st.binary(max_size=16)))
        transcript = draw(st.one_of(st.none(), st.text(max_size=6)))
        content = draw(st.one_of(st.just(""), st.text(max_size=6)))
        chunks.append(
            Chunk(provider=provider, audio=audio, audio_transcript=transcript, content=content)
        )
    chunks.append(Chunk(provider=provider, finish_reasons=["stop"]))
    audio = b"".join(chunk.audio or b"" for chunk in chunks)
    text = "".join((chunk.audio_transcript or "") + chunk.content for chunk in chunks)
    return AudioChunkStream(chunks, audio, text)


@dataclass(frozen=True)
class FaultSchedule:
    """Where each attempt of a request breaks: ``breaks[i]`` is the number of events
    attempt ``i`` delivers before it fails (``None``: that attempt succeeds)."""

    breaks: tuple[int | None, ...]

    @property
    def attempts_needed(self) -> int:
        """Attempts until the first fault-free one (``len(breaks) + 1`` if none is)."""
        for position, cut in enumerate(self.breaks):
            if cut is None:
                return position + 1
        return len(self.breaks) + 1


def fault_schedules(
    events: int, *, max_faults: int = 3, always_recovers: bool = False
) -> st.SearchStrategy[FaultSchedule]:
    """Fault schedules for a stream of ``events`` events: up to ``max_faults`` attempts
    that break after a drawn number of events, optionally ending with one that succeeds."""
    cut = st.integers(0, max(events - 1, 0))
    faults = st.lists(cut, max_size=max_faults)
    if always_recovers:
        return faults.map(lambda cuts: FaultSchedule((*cuts, None)))
    return st.lists(st.one_of(cut, st.none()), max_size=max_faults + 1).map(
        lambda cuts: FaultSchedule(tuple(cuts))
    )


@st.composite
def rechunked(draw: st.DrawFn, stream: ChunkStream, *, id_prefix: str = "retry_") -> list[Chunk]:
    """The same output as ``stream`` split at other boundaries: what a retried request
    may send. Text and tool-call arguments are split anew, tool calls get new ids
    (``id_prefix`` + index, as a provider assigns new ids to a new request), usage
    reports fall elsewhere; the last chunk (finish reason and final usage) is the same."""
    provider = stream.chunks[-1].provider
    input_tokens = stream.usage.input_tokens
    chunks: list[Chunk] = []
    for count, piece in enumerate(draw(split_text(stream.text)), start=1):
        usage = (
            Usage(input_tokens=input_tokens, output_tokens=count, total_tokens=input_tokens + count)
            if draw(st.booleans())
            else None
        )
        chunks.append(Chunk(provider=provider, content=piece, usage=usage, id="resp-retry"))
    for index, (_, name, args) in enumerate(stream.tool_calls):
        fragments = draw(split_text(json.dumps(args, ensure_ascii=False)))
        for position, fragment in enumerate(fragments):
            delta = ToolCallDelta(
                index=index,
                id=f"{id_prefix}{index}" if position == 0 else None,
                name=name if position == 0 else None,
                arguments=fragment,
            )
            chunks.append(Chunk(provider=provider, tool_calls=[delta]))
    chunks.append(stream.chunks[-1])
    return chunks


def pieces_of(chunks: Sequence[Chunk]) -> list[str]:
    """The content deltas of ``chunks`` (a helper for assertions)."""
    return [chunk.content for chunk in chunks]
