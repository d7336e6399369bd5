"""The wire encoders, pure: examples per event type and hypothesis properties."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

import streamkit as sk
import streamkit.testing.strategies as sks
from streamkit import Chunk, StreamError, ToolCallDelta, Usage
from streamkit.serve import (
    DONE,
    OpenAIChunkEncoder,
    PlainChunkEncoder,
    UIMessageEncoder,
    sse_event,
)


def parse(events: list[bytes]) -> list[Any]:
    """The data of each event, JSON-decoded ("[DONE]" kept as the string)."""
    out: list[Any] = []
    for event in events:
        text = event.decode()
        assert text.endswith("\n\n")
        data = "\n".join(
            line[6:] for line in text.strip("\n").split("\n") if line.startswith("data: ")
        )
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


def run_ui(chunks: list[Chunk], end: str = "finish") -> list[Any]:
    encoder = UIMessageEncoder("m1")
    events = encoder.open()
    for chunk in chunks:
        events += encoder.chunk(chunk)
    if end == "finish":
        events += encoder.finish()
    elif end == "error":
        events += encoder.error(StreamError("boom"))
    else:
        events += encoder.abort()
    return parse(events)


def c(**fields: Any) -> Chunk:
    return Chunk(provider="openai", **fields)


def test_sse_event_splits_multiline_data() -> None:
    assert sse_event("a\nb", "x") == b"event: x\ndata: a\ndata: b\n\n"


def test_ui_text_reasoning_and_finish_with_usage() -> None:
    usage = Usage(input_tokens=3, output_tokens=4, total_tokens=7)
    events = run_ui(
        [
            c(thinking="hm"),
            c(content="Hel"),
            c(content="lo", finish_reasons=["stop"], usage=usage, model="gpt"),
        ]
    )
    assert events == [
        {"type": "start", "messageId": "m1"},
        {"type": "start-step"},
        {"type": "reasoning-start", "id": "reasoning-0"},
        {"type": "reasoning-delta", "id": "reasoning-0", "delta": "hm"},
        {"type": "reasoning-end", "id": "reasoning-0"},
        {"type": "text-start", "id": "text-1"},
        {"type": "text-delta", "id": "text-1", "delta": "Hel"},
        {"type": "text-delta", "id": "text-1", "delta": "lo"},
        {"type": "text-end", "id": "text-1"},
        {"type": "finish-step"},
        {
            "type": "finish",
            "finishReason": "stop",
            "messageMetadata": {
                "model": "gpt",
                "usage": {
                    "input_tokens": 3,
                    "output_tokens": 4,
                    "total_tokens": 7,
                    "source": "reported",
                },
            },
        },
        "[DONE]",
    ]


def test_ui_tool_call_input_events() -> None:
    events = run_ui(
        [
            c(tool_calls=[ToolCallDelta(index=0, id="call_1", name="get", arguments='{"a"')]),
            c(tool_calls=[ToolCallDelta(index=0, arguments=": 1}")]),
            c(finish_reasons=["tool_calls"]),
        ]
    )
    assert events[2:7] == [
        {"type": "tool-input-start", "toolCallId": "call_1", "toolName": "get"},
        {"type": "tool-input-delta", "toolCallId": "call_1", "inputTextDelta": '{"a"'},
        {"type": "tool-input-delta", "toolCallId": "call_1", "inputTextDelta": ": 1}"},
        {
            "type": "tool-input-available",
            "toolCallId": "call_1",
            "toolName": "get",
            "input": {"a": 1},
        },
        {"type": "finish-step"},
    ]
    assert events[7]["finishReason"] == "tool-calls"


def test_ui_error_and_abort_close_open_parts_and_end() -> None:
    assert run_ui([c(content="x")], end="error")[-3:] == [
        {"type": "text-end", "id": "text-0"},
        {"type": "error", "errorText": "StreamError: boom"},
        "[DONE]",
    ]
    assert run_ui([c(content="x")], end="abort")[-2:] == [{"type": "abort"}, "[DONE]"]


def test_ui_error_and_abort_carry_the_usage_so_far_as_message_metadata() -> None:
    estimated = Usage(input_tokens=5, output_tokens=2, total_tokens=7, source="estimated")
    metadata = {
        "type": "message-metadata",
        "messageMetadata": {"model": "gpt", "usage": estimated.model_dump(exclude_none=True)},
    }
    for end in ("error", "abort"):
        encoder = UIMessageEncoder("m1")
        encoder.open()
        encoder.chunk(c(content="x", model="gpt"))
        raw = (
            encoder.error(StreamError("boom"), estimated)
            if end == "error"
            else encoder.abort(estimated)
        )
        events = parse(raw)
        assert events[:2] == [{"type": "text-end", "id": "text-0"}, metadata]
        assert events[2]["type"] == end and events[3] == "[DONE]"


def test_ui_finish_takes_streamkits_usage_over_the_chunks() -> None:
    reported = Usage(input_tokens=3, output_tokens=1, total_tokens=4)
    mixed = Usage(input_tokens=3, output_tokens=9, total_tokens=12, source="mixed")
    encoder = UIMessageEncoder("m1")
    encoder.chunk(c(content="x", usage=reported, finish_reasons=["stop"]))
    finish = parse(encoder.finish(mixed))[-2]
    assert finish["messageMetadata"]["usage"] == mixed.model_dump(exclude_none=True)


def test_error_text_of_an_sdk_error_is_only_its_type() -> None:
    encoder = UIMessageEncoder("m")
    events = parse(encoder.error(RuntimeError("Authorization: Bearer sk-secret")))
    assert events[0] == {"type": "error", "errorText": "the stream failed (RuntimeError)"}


def test_openai_chunks_and_usage_chunk() -> None:
    encoder = OpenAIChunkEncoder("m", include_usage=True, id="chatcmpl-1")
    usage = Usage(input_tokens=1, output_tokens=2, total_tokens=3)
    events = parse(
        encoder.open()
        + encoder.chunk(c(content="hi"))
        + encoder.chunk(c(finish_reasons=["stop"], usage=usage))
        + encoder.finish()
    )
    assert [e["choices"][0]["delta"] for e in events[:2]] == [
        {"role": "assistant", "content": ""},
        {"content": "hi"},
    ]
    assert events[2]["choices"][0]["finish_reason"] == "stop"
    assert events[3]["choices"] == []
    assert events[3]["usage"] == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    assert events[4] == "[DONE]"


def test_plain_chunk_events() -> None:
    encoder = PlainChunkEncoder()
    (event,) = encoder.chunk(c(content="hi", audio=b"\x00\x01"))
    assert event.startswith(b"event: chunk\n")
    data = parse([event])[0]
    assert data["content"] == "hi" and data["audio"] == "AAE=" and "chunk" not in data
    assert encoder.finish() == [b'event: end\ndata: {"reason":"finish"}\n\n']
    assert encoder.abort() == [] and encoder.chunk(c(content="late")) == []


def test_plain_end_and_error_carry_the_usage() -> None:
    reported = Usage(input_tokens=1, output_tokens=2, total_tokens=3)
    estimated = Usage(input_tokens=1, output_tokens=5, total_tokens=6, source="estimated")
    encoder = PlainChunkEncoder()
    encoder.chunk(c(content="hi", usage=reported))
    assert parse(encoder.finish()) == [
        {"reason": "finish", "usage": reported.model_dump(exclude_none=True)}
    ]
    encoder = PlainChunkEncoder()
    (event,) = encoder.error(RuntimeError("sk-secret"), estimated)
    assert event.startswith(b"event: error\n")
    assert parse([event]) == [
        {
            "message": "the stream failed (RuntimeError)",
            "usage": estimated.model_dump(exclude_none=True),
        }
    ]


def openai_events(chunks: list[Chunk], usage: Usage | None = None, **options: Any) -> list[Any]:
    encoder = OpenAIChunkEncoder("m", **options)
    events = encoder.open()
    for chunk in chunks:
        events += encoder.chunk(chunk)
    return parse(events + encoder.finish(usage))


def test_openai_usage_chunk_when_asked_whatever_was_reported() -> None:
    """Asked for, the usage chunk always comes: streamkit's usage when given, else the
    chunks' report, else an estimate of the output (no request to count the input of);
    not asked for, never."""
    text = [c(content="Hello there, how are you?"), c(finish_reasons=["stop"])]
    estimated = openai_events(text, include_usage=True)[-2]["usage"]
    assert estimated["prompt_tokens"] == 0 and estimated["completion_tokens"] > 0
    assert estimated["total_tokens"] == estimated["completion_tokens"]
    given = Usage(input_tokens=7, output_tokens=6, total_tokens=13, source="estimated")
    assert openai_events(text, given, include_usage=True)[-2]["usage"] == {
        "prompt_tokens": 7,
        "completion_tokens": 6,
        "total_tokens": 13,
    }
    assert all("usage" not in e for e in openai_events(text)[:-1])
    encoder = OpenAIChunkEncoder("m", include_usage=True)
    encoder.chunk(c(content="hi"))
    aborted = parse(encoder.abort(given))
    assert aborted[0]["choices"] == [] and aborted[0]["usage"]["prompt_tokens"] == 7
    assert aborted[1] == "[DONE]"


def test_openai_tool_calls_whatever_the_backends_shape() -> None:
    """Anthropic's block indices (3, 5), the Responses API's id and name repeated when a
    call is done, a call streaming no arguments: OpenAI's shape comes out (indices 0, 1;
    id, type and name once, in the first delta; "{}" for no arguments)."""
    chunks = [
        c(tool_calls=[ToolCallDelta(index=3, id="a", name="get", arguments="")]),
        c(tool_calls=[ToolCallDelta(index=3, arguments='{"x": 1}')]),
        c(tool_calls=[ToolCallDelta(index=3, id="a", name="get", arguments="", complete=True)]),
        c(tool_calls=[ToolCallDelta(index=5, id="b", name="now", arguments="")]),
        c(tool_calls=[ToolCallDelta(index=5, id="b", name="now", arguments="", complete=True)]),
        c(finish_reasons=["tool_calls"]),
    ]
    deltas = [e["choices"][0]["delta"] for e in openai_events(chunks)[:-1] if e["choices"]]
    calls = [call for d in deltas for call in d.get("tool_calls", [])]
    assert calls == [
        {"index": 0, "id": "a", "type": "function", "function": {"name": "get", "arguments": ""}},
        {"index": 0, "function": {"arguments": '{"x": 1}'}},
        {"index": 1, "id": "b", "type": "function", "function": {"name": "now", "arguments": ""}},
        {"index": 1, "function": {"arguments": "{}"}},
    ]


@st.composite
def backend_shaped_streams(draw: st.DrawFn) -> list[Chunk]:
    """``sks.chunk_streams`` with each backend's habits drawn in: sparse indices (an
    Anthropic content block per call), the id and name repeated on later deltas or in a
    last ``complete`` delta (the Responses API)."""
    stream = draw(sks.chunk_streams())
    offset = draw(st.integers(0, 3))
    gap = draw(st.integers(1, 3))
    out: list[Chunk] = []
    names: dict[int, tuple[str | None, str | None]] = {}
    for chunk in stream.chunks:
        if not chunk.tool_calls:
            out.append(chunk)
            continue
        deltas = []
        for delta in chunk.tool_calls:
            index = offset + gap * delta.index
            if delta.name is not None:
                names[index] = (delta.id, delta.name)
            call_id, name = names[index]
            repeat = delta.name is None and draw(st.booleans())
            deltas.append(
                delta.model_copy(
                    update={"index": index} | ({"id": call_id, "name": name} if repeat else {})
                )
            )
        out.append(chunk.model_copy(update={"tool_calls": deltas}))
        if draw(st.booleans()):  # a "done" delta repeating what was said
            index = deltas[-1].index
            call_id, name = names[index]
            done = ToolCallDelta(index=index, id=call_id, name=name, arguments="", complete=True)
            out.append(c(tool_calls=[done]))
    return out


@given(backend_shaped_streams())
def test_openai_tool_calls_rebuild_what_the_reducer_folds(chunks: list[Chunk]) -> None:
    """Folded the way OpenAI clients fold a stream (per ``index``, strings concatenated),
    the tool calls are the reducer's: names once, arguments whole, indices 0, 1, ..."""
    accumulator = sk.Accumulator()
    for chunk in chunks:
        accumulator.add(chunk)
    accumulator.finish()
    expected = accumulator.tool_calls
    deltas = [e["choices"][0]["delta"] for e in openai_events(chunks)[:-1] if e["choices"]]
    calls: dict[int, dict[str, str]] = {}
    for delta in deltas:
        for call in delta.get("tool_calls", []):
            entry = calls.setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
            entry["id"] += call.get("id", "")
            entry["name"] += call["function"].get("name", "")
            entry["arguments"] += call["function"].get("arguments", "")
    assert sorted(calls) == list(range(len(expected)))
    got = [calls[i] for i in range(len(expected))]
    assert [(g["name"], json.loads(g["arguments"])) for g in got] == [
        (call.name, call.args) for call in expected
    ]
    assert [g["id"] for g in got] == [call.id for call in expected]


def check_well_formed(events: list[Any]) -> None:
    """Every start has its end (ids consistent, nothing interleaved inside a kind),
    deltas only inside their part, exactly one terminal right before [DONE]."""
    assert events[-1] == "[DONE]" and "[DONE]" not in events[:-1]
    assert events[0]["type"] == "start"
    terminals = [e for e in events[:-1] if e["type"] in ("finish", "error", "abort")]
    assert len(terminals) == 1 and events[-2] is terminals[0]
    open_parts: set[str] = set()
    seen: set[str] = set()
    tools_started: set[str] = set()
    for event in events[1:-1]:
        kind = event["type"]
        if kind.endswith("-start") and kind != "start-step" and kind != "tool-input-start":
            assert event["id"] not in seen
            seen.add(event["id"])
            open_parts.add(event["id"])
            assert len(open_parts) == 1
        elif kind.endswith("-delta") and kind != "tool-input-delta":
            assert event["id"] in open_parts
        elif kind.endswith("-end"):
            open_parts.remove(event["id"])
        elif kind == "tool-input-start":
            tools_started.add(event["toolCallId"])
        elif kind in ("tool-input-delta", "tool-input-available"):
            assert event["toolCallId"] in tools_started
    assert not open_parts


@given(sks.chunk_streams(), st.sampled_from(["finish", "error", "abort"]))
def test_any_chunk_sequence_gives_a_well_formed_ui_stream(
    stream: sks.ChunkStream, end: str
) -> None:
    events = run_ui(list(stream.chunks), end)
    check_well_formed(events)
    events = events[:-1]
    text = "".join(e["delta"] for e in events if e.get("type") == "text-delta")
    assert text == "".join(ch.content + ch.refusal for ch in stream.chunks)
    if end == "finish":
        available = [
            (e["toolCallId"], e["toolName"], e["input"])
            for e in events
            if e.get("type") == "tool-input-available"
        ]
        assert [(name, args) for _, name, args in available] == [
            (name, args) for _, name, args in stream.tool_calls
        ]


@given(
    st.lists(
        st.builds(
            c,
            content=st.text(max_size=5),
            thinking=st.text(max_size=5),
        ),
        max_size=12,
    )
)
def test_interleaved_text_and_reasoning_stay_well_formed(chunks: list[Chunk]) -> None:
    events = run_ui(chunks)
    check_well_formed(events)
    events = events[:-1]
    assert "".join(e["delta"] for e in events if e["type"] == "reasoning-delta") == "".join(
        ch.thinking for ch in chunks
    )


@given(sks.chunk_streams())
def test_openai_encoding_rebuilds_text_and_tool_calls(stream: sks.ChunkStream) -> None:
    encoder = OpenAIChunkEncoder("m", include_usage=True)
    events = encoder.open()
    for chunk in stream.chunks:
        events += encoder.chunk(chunk)
    events += encoder.finish()
    assert events[-1] == DONE
    data = parse(events)[:-1]
    deltas = [e["choices"][0]["delta"] for e in data if e["choices"]]
    assert "".join(d.get("content", "") for d in deltas) == stream.text
    calls: dict[int, list[str]] = {}
    for delta in deltas:
        for call in delta.get("tool_calls", []):
            entry = calls.setdefault(call["index"], ["", ""])
            entry[0] += call["function"].get("name", "")
            entry[1] += call["function"]["arguments"]
    assert [(n, json.loads(a)) for n, a in (calls[i] for i in sorted(calls))] == [
        (name, args) for _, name, args in stream.tool_calls
    ]
    finishes = [e["choices"][0]["finish_reason"] for e in data if e["choices"]]
    assert [f for f in finishes if f] and finishes[-1] is not None
