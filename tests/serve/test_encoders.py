"""The wire encoders, pure: examples per event type and hypothesis properties."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

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
