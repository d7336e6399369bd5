"""Chunks and terminal entries survive the Redis serialization unchanged."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streamkit.models import Chunk, Usage
from streamkit.redis._codec import (
    Terminal,
    decode_chunk,
    decode_terminal,
    encode_chunk,
    encode_terminal,
)
from streamkit.testing import strategies as sks


def _fields(chunk: Chunk) -> dict[str, object]:
    return chunk.model_dump(exclude={"chunk"})


@given(sks.chunk_streams())
def test_chunk_streams_round_trip(stream: sks.ChunkStream) -> None:
    for chunk in stream.chunks:
        assert _fields(decode_chunk(encode_chunk(chunk))) == _fields(chunk)


@given(sks.audio_chunk_streams())
def test_audio_chunks_round_trip(stream: sks.AudioChunkStream) -> None:
    for chunk in stream.chunks:
        assert _fields(decode_chunk(encode_chunk(chunk))) == _fields(chunk)


@given(
    st.builds(
        Chunk,
        provider=st.text(max_size=5),
        content=st.text(),
        thinking=st.text(),
        refusal=st.text(),
        finish_reasons=st.none() | st.lists(st.text(max_size=5), max_size=2),
        model=st.none() | st.text(max_size=5),
        id=st.none() | st.text(max_size=5),
        audio=st.none() | st.binary(max_size=20),
        audio_transcript=st.none() | st.text(max_size=5),
    )
)
def test_any_chunk_fields_round_trip(chunk: Chunk) -> None:
    assert _fields(decode_chunk(encode_chunk(chunk))) == _fields(chunk)


def test_provider_event_stays_behind_and_encoding_is_compact() -> None:
    chunk = Chunk(provider="openai", content="hi", chunk=object())
    data = encode_chunk(chunk)
    assert data == b'{"p":"openai","c":"hi"}'
    assert decode_chunk(data).chunk is None


@given(
    st.sampled_from(["complete", "error", "cancelled"]),
    st.none() | st.builds(Usage, cached_tokens=st.none() | st.integers(0, 9)),
    st.none() | st.text(),
)
def test_terminal_round_trip(state: str, usage: Usage | None, message: str | None) -> None:
    terminal = Terminal(state, usage, "ValueError" if message else None, message)  # type: ignore[arg-type]
    assert decode_terminal(encode_terminal(terminal)) == terminal
