"""The one fold of chunks: rules, laziness, and split-invariance (hypothesis)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from hypothesis import given
from hypothesis import strategies as st

import streamkit as sk
from streamkit import Chunk, ToolCallDelta, Usage
from streamkit._accumulator import Accumulator
from streamkit._finish_reasons import FinishReason
from streamkit._messages import MessageBuilder
from streamkit.testing import strategies as sks


def fold(chunks: list[Chunk]) -> sk.CallResponse:
    accumulator = Accumulator()
    for chunk in chunks:
        accumulator.add(chunk)
    accumulator.finish()
    return accumulator.response()


@given(sks.chunk_streams())
def test_reducer_rebuilds_text_tool_calls_usage_and_finish(stream: sks.ChunkStream) -> None:
    response = fold(stream.chunks)
    assert response.content == stream.text
    assert [(c.id, c.name, c.args) for c in response.tool_calls] == stream.tool_calls
    assert response.usage == stream.usage
    assert response.finish_reasons == [stream.finish_reason]


@given(st.text(max_size=60), st.data())
def test_reducer_does_not_depend_on_where_the_text_was_split(
    text: str, data: st.DataObject
) -> None:
    first = data.draw(sks.split_text(text))
    second = data.draw(sks.split_text(text))
    responses = [
        fold(
            [Chunk(provider="openai", content=piece) for piece in pieces]
            + [Chunk(provider="openai", finish_reasons=["stop"])]
        )
        for pieces in (first, second)
    ]
    assert responses[0] == responses[1]
    assert responses[0].content == text


def test_usage_is_the_latest_report_never_a_sum() -> None:
    chunks = [
        Chunk(provider="anthropic", usage=Usage(input_tokens=10, output_tokens=1, total_tokens=11)),
        Chunk(provider="anthropic", content="a"),
        Chunk(provider="anthropic", usage=Usage(input_tokens=10, output_tokens=7, total_tokens=17)),
    ]
    assert fold(chunks).usage == Usage(input_tokens=10, output_tokens=7, total_tokens=17)


def test_a_later_chunk_without_finish_reasons_does_not_erase_them() -> None:
    chunks = [
        Chunk(provider="openai", content="x", finish_reasons=["length"]),
        Chunk(provider="openai", usage=Usage(input_tokens=1, output_tokens=1, total_tokens=2)),
    ]
    response = fold(chunks)
    assert response.finish_reasons == ["length"]
    assert response.finish_reason == "length"


def test_tool_calls_complete_on_new_index_explicit_mark_finish_or_end() -> None:
    accumulator = Accumulator()
    start = ToolCallDelta(index=0, id="a", name="f", arguments='{"x"')
    assert accumulator.add(Chunk(provider="openai", tool_calls=[start])) == []
    assert (
        accumulator.add(
            Chunk(provider="openai", tool_calls=[ToolCallDelta(index=0, arguments=": 1}")])
        )
        == []
    )
    completed = accumulator.add(
        Chunk(provider="openai", tool_calls=[ToolCallDelta(index=1, id="b", name="g")])
    )
    assert [(c.id, c.args) for c in completed] == [("a", {"x": 1})]
    marked = accumulator.add(
        Chunk(provider="openai", tool_calls=[ToolCallDelta(index=1, arguments="{}", complete=True)])
    )
    assert [c.id for c in marked] == ["b"]
    assert (
        accumulator.add(
            Chunk(provider="openai", tool_calls=[ToolCallDelta(index=2, id="c", name="h")])
        )
        == []
    )
    assert [c.id for c in accumulator.finish()] == ["c"]
    assert accumulator.finish() == []  # never twice


def test_snapshots_are_lazy_and_keep_their_own_prefix() -> None:
    accumulator = Accumulator()
    snapshots = []
    for piece in ["Hel", "lo", ", world"]:
        accumulator.add(Chunk(provider="openai", content=piece))
        snapshots.append(accumulator.snapshot())
    assert [s.content for s in snapshots] == ["Hel", "Hello", "Hello, world"]
    assert snapshots[0].to_call_response().content == "Hel"


def test_audio_and_transcript_are_kept_in_order() -> None:
    chunks = [
        Chunk(provider="openai", audio=b"\x01\x02", audio_transcript="Once"),
        Chunk(provider="openai", audio=b"\x03", audio_transcript=" upon"),
        Chunk(provider="openai", finish_reasons=["stop"]),
    ]
    response = fold(chunks)
    assert response.audio == b"\x01\x02\x03"
    assert response.audio_transcript == "Once upon"


def test_tool_call_parse_validates_into_a_user_model() -> None:
    from pydantic import BaseModel, ValidationError

    class Book(BaseModel):
        title: str
        author: str

    call = sk.ToolCall.from_arguments("id", "Book", '{"title": "Dune", "author": "Herbert"}')
    assert call.parse(Book) == Book(title="Dune", author="Herbert")
    broken = sk.ToolCall.from_arguments("id", "Book", '{"title": 1')
    assert broken.args == {}
    try:
        broken.parse(Book)
    except ValidationError:
        pass
    else:
        raise AssertionError("expected a ValidationError")


class ModelMessageBuilder(MessageBuilder):
    """Builds a Gemini-like ``{"role": "model", "parts": [...]}`` message."""

    def build(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        return {"role": "model", "parts": [{"text": fields["content"]}]}


class GeminiLikeChunk(Chunk):
    """A provider chunk type with its own rules, as each provider module declares them."""

    finish_reason_table: ClassVar[Mapping[str, FinishReason]] = {
        "STOP": "stop",
        "MAX_TOKENS": "length",
    }
    message_builder: ClassVar[type[MessageBuilder]] = ModelMessageBuilder


def test_a_normal_stop_with_tool_calls_is_the_tool_calls_reason() -> None:
    # Gemini ends a turn of function calls with STOP; the next step is to run the tools.
    call = ToolCallDelta(index=0, id="a", name="f", arguments="{}", complete=True)
    chunks: list[Chunk] = [
        GeminiLikeChunk(provider="google", tool_calls=[call]),
        GeminiLikeChunk(provider="google", finish_reasons=["STOP"]),
    ]
    assert fold(chunks).finish_reason == "tool_calls"
    plain: list[Chunk] = [GeminiLikeChunk(provider="google", content="hi", finish_reasons=["STOP"])]
    assert fold(plain).finish_reason == "stop"


def test_the_chunk_type_carries_the_finish_reason_table_and_message_builder() -> None:
    response = fold([GeminiLikeChunk(provider="x", content="hi", finish_reasons=["MAX_TOKENS"])])
    assert response.finish_reason == "length"
    assert response.message_param == {"role": "model", "parts": [{"text": "hi"}]}


def test_an_unknown_native_finish_reason_is_other_never_stop() -> None:
    # The Vercel AI SDK's rule: a reason streamkit does not know is not a normal stop.
    assert fold([GeminiLikeChunk(provider="x", finish_reasons=["NEW_REASON"])]).finish_reason == (
        "other"
    )
    assert fold([Chunk(provider="x", finish_reasons=["new_reason"])]).finish_reason == "other"
    # ...and a stop refined by tool calls or a refusal stays a stop's refinement only
    call = ToolCallDelta(index=0, id="a", name="f", arguments="{}")
    with_tools = [Chunk(provider="x", tool_calls=[call]), Chunk(provider="x", finish_reasons=["?"])]
    assert fold(with_tools).finish_reason == "other"


def test_a_plain_chunk_has_the_openai_chat_rules() -> None:
    assert Chunk.finish_reason_table["function_call"] == "tool_calls"
    response = fold([Chunk(provider="anything", content="hi", finish_reasons=["length"])])
    assert response.finish_reason == "length"
    assert response.message_param == {"role": "assistant", "content": "hi"}


def test_the_finish_reason_is_read_with_the_table_of_the_chunk_that_reported_it() -> None:
    # After a fallback the last finish reason is the second provider's: read with its table
    # (the message builder stays the first chunk's).
    chunks: list[Chunk] = [
        Chunk(provider="openai", content="Hel"),
        GeminiLikeChunk(provider="google", content="lo", finish_reasons=["MAX_TOKENS"]),
    ]
    response = fold(chunks)
    assert response.finish_reason == "length"
    assert response.message_param["role"] == "assistant"
    snapshot = Accumulator()
    for chunk in chunks:
        snapshot.add(chunk)
    assert snapshot.snapshot().finish_reason == "length"


def test_spans_say_which_provider_and_model_produced_which_text() -> None:
    accumulator = Accumulator()
    for chunk in [
        Chunk(provider="anthropic", model="claude", content=""),
        Chunk(provider="anthropic", content="Hello"),  # no model on a delta: still claude's
        Chunk(provider="anthropic", content=", wor"),
        Chunk(provider="openai", model="gpt-4o", content="ld"),
        Chunk(provider="openai", model="gpt-4o-mini", content="!"),
        Chunk(provider="openai", model="gpt-4o-mini", content=""),
    ]:
        accumulator.add(chunk)
    response = accumulator.response()
    assert [(s.provider, s.model, response.content[s.start : s.end]) for s in response.spans] == [
        ("anthropic", "claude", "Hello, wor"),
        ("openai", "gpt-4o", "ld"),
        ("openai", "gpt-4o-mini", "!"),
    ]
    assert [s.end for s in accumulator.snapshot().to_call_response().spans] == [10, 12, 13]
