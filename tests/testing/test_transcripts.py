"""The bundled transcripts and the Transcript type (streamkit.testing.transcripts)."""

from __future__ import annotations

import base64
import importlib.util
import json
import math
import os
import struct
import subprocess
import sys
from importlib import resources
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamkit.testing import Transcript, load_transcript, transcript_names
from streamkit.testing.transcripts import API_NAMES, split_sse_events

ALL_NAMES = transcript_names()
# The synthetic transcripts written by make_synthetic.py (others may sit beside them).
MY_SYNTHETIC = (
    "synthetic/anthropic-midstream-overloaded-error",
    "synthetic/openai-chat-audio-pcm16",
)
DATA_DIR = Path(str(resources.files("streamkit.testing").joinpath("transcripts")))


def test_bundle_has_the_recordings_and_the_synthetic_ones() -> None:
    recorded = transcript_names(synthetic=False)
    synthetic = transcript_names(synthetic=True)
    assert len(recorded) >= 28
    assert all(not n.startswith("synthetic/") for n in recorded)
    assert set(MY_SYNTHETIC) <= set(synthetic)
    assert all(n.startswith("synthetic/") for n in synthetic)
    assert sorted(recorded + synthetic) == ALL_NAMES


def test_provider_filter_uses_the_provider_field() -> None:
    openai = transcript_names(provider="openai")
    assert "openai/chat-text-usage" in openai
    assert "synthetic/openai-chat-audio-pcm16" in openai
    assert all(load_transcript(n).provider == "openai" for n in openai)
    openai_synthetic = transcript_names(provider="openai", synthetic=True)
    assert "synthetic/openai-chat-audio-pcm16" in openai_synthetic
    assert set(openai_synthetic) <= set(openai)
    assert all(load_transcript(n).synthetic for n in openai_synthetic)
    assert transcript_names(provider="nobody") == []


@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_transcript_loads_and_events_join_to_body(name: str) -> None:
    t = load_transcript(name)
    assert t.name == name
    assert t.api in API_NAMES
    assert t.provider
    assert t.headers["content-type"]
    assert t.events, "a transcript has at least one event"
    assert "".join(t.events) == t.body
    assert b"".join(e.encode() for e in t.events) == t.body_bytes
    raw = json.loads((DATA_DIR / f"{name}.json").read_text(encoding="utf-8"))
    assert t.body == raw["response"]["body"]
    assert t.status == raw["response"]["status"]
    assert t.synthetic == name.startswith("synthetic/")
    if t.is_stream:
        for event in t.events:
            assert event.endswith(("\n\n", "\r\n\r\n")), (name, event[-20:])
        # The recorder's validation counted data events plus comments.
        v = raw.get("validation", {})
        if "events" in v:
            assert len(t.events) == v["events"] + v.get("comments", 0)
    else:
        assert t.events == [t.body]


@pytest.mark.parametrize(
    "name",
    [
        "openai/chat-error-404-model-not-found",
        "anthropic/messages-error-404-model-not-found",
        "google/gemini-error-404-model-not-found",
    ],
)
def test_error_bodies_are_one_event(name: str) -> None:
    t = load_transcript(name)
    assert t.status == 404
    assert not t.is_stream  # google's says text/event-stream but carries JSON
    assert t.events == [t.body]
    json.loads(t.body)


def test_gemini_crlf_separators_are_kept() -> None:
    t = load_transcript("google/gemini-text")
    assert len(t.events) == 2
    assert all(e.startswith("data: ") and e.endswith("\r\n\r\n") for e in t.events)


def test_anthropic_padding_is_kept() -> None:
    t = load_transcript("anthropic/messages-text")
    assert t.events[-1] == 'event: message_stop\ndata: {"type":"message_stop"         }\n\n'


def test_load_accepts_json_suffix_and_returns_fresh_objects() -> None:
    a = load_transcript("openai/chat-text-usage.json")
    b = load_transcript("openai/chat-text-usage")
    assert a == b and a is not b
    a.events.append("x")
    assert load_transcript("openai/chat-text-usage").events == b.events


@pytest.mark.parametrize("bad", ["openai/nope", "nope", "../openai/chat-text-usage", ""])
def test_unknown_name_raises_lookup_error(bad: str) -> None:
    with pytest.raises(LookupError, match="known:"):
        load_transcript(bad)


def test_from_file_names_by_folder_and_stem(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    src = DATA_DIR / "cohere" / "chat-v2-text-usage.json"
    (folder / "copy.json").write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    t = Transcript.from_file(folder / "copy.json")
    assert t.name == "mine/copy"
    assert t.events == load_transcript("cohere/chat-v2-text-usage").events


def test_from_events_terminates_events() -> None:
    t = Transcript.from_events(
        "openai", "chat.completions", ['data: {"a":1}', "data: [DONE]\n", "data: x\r\n\r\n"]
    )
    assert t.events == ['data: {"a":1}\n\n', "data: [DONE]\n\n", "data: x\r\n\r\n"]
    assert t.body == "".join(t.events)
    assert t.content_type == "text/event-stream"
    assert t.is_stream and t.synthetic
    assert t.name == "openai/in-memory"


def test_from_events_verbatim_and_error_defaults() -> None:
    t = Transcript.from_events(
        "anthropic", "messages", ["event: ping\nda", "ta: {}"], terminate=False
    )
    assert t.events == ["event: ping\nda", "ta: {}"]
    err = Transcript.from_events("openai", "chat.completions", ['{"error": {}}'], status=429)
    assert err.content_type == "application/json"
    assert not err.is_stream
    custom = Transcript.from_events(
        "x", "v2/chat", ["data: 1"], name="x/y", content_type="text/event-stream; charset=utf-8"
    )
    assert custom.name == "x/y"
    assert custom.headers == {"content-type": "text/event-stream; charset=utf-8"}


# ------------------------------------------------------------------ splitting
def test_split_handles_lf_crlf_cr_comments_and_cut_streams() -> None:
    assert split_sse_events("data: a\n\ndata: b\n\n") == ["data: a\n\n", "data: b\n\n"]
    assert split_sse_events("data: a\r\n\r\ndata: b\r\n\r\n") == [
        "data: a\r\n\r\n",
        "data: b\r\n\r\n",
    ]
    assert split_sse_events("data: a\r\rdata: b\r\r") == ["data: a\r\r", "data: b\r\r"]
    assert split_sse_events(": ping\n\nevent: x\ndata: 1\n\n") == [
        ": ping\n\n",
        "event: x\ndata: 1\n\n",
    ]
    # extra blank lines stay with the event before them
    assert split_sse_events("data: a\n\n\n\ndata: b\n\n") == ["data: a\n\n\n\n", "data: b\n\n"]
    # a cut stream keeps its unterminated tail
    assert split_sse_events("data: a\n\ndata: b") == ["data: a\n\n", "data: b"]
    assert split_sse_events("data: a\n\ndata: b\n") == ["data: a\n\n", "data: b\n"]
    assert split_sse_events("") == []


@given(st.lists(st.sampled_from(["data: x", "\n", "\r\n", "\r", ": c", "é", "{}"]), max_size=30))
def test_split_is_lossless(parts: list[str]) -> None:
    body = "".join(parts)
    events = split_sse_events(body)
    assert "".join(events) == body
    assert all(events)


@given(st.text(max_size=200))
def test_split_is_lossless_on_any_text(body: str) -> None:
    assert "".join(split_sse_events(body)) == body


# ------------------------------------------------------------------ synthetic
def _data_events(t: Transcript) -> list[str]:
    out = []
    for event in t.events:
        for line in event.splitlines():
            if line.startswith("data: "):
                out.append(line[len("data: ") :])
    return out


def test_synthetic_openai_audio_follows_the_documented_format() -> None:
    t = load_transcript("synthetic/openai-chat-audio-pcm16")
    assert t.synthetic and t.provider == "openai" and t.api == "chat.completions"
    assert any("not recorded" in n for n in t.notes)
    payloads = _data_events(t)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    audio = [
        c["choices"][0]["delta"]["audio"]
        for c in chunks
        if c["choices"] and "audio" in c["choices"][0]["delta"]
    ]
    assert audio[0]["id"].startswith("audio_")
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(a.get("transcript", "") for a in audio) == "Once upon a time, a dragon slept."
    assert audio[-1] == {"expires_at": audio[-1]["expires_at"]}
    assert sum("expires_at" in a for a in audio) == 1
    pcm = b"".join(base64.b64decode(a["data"]) for a in audio if "data" in a)
    assert sum("data" in a for a in audio) == 10
    assert len(pcm) == 24_000  # 0.5 s of 24 kHz 16-bit mono
    samples = struct.unpack(f"<{len(pcm) // 2}h", pcm)
    # a 440 Hz sine: check a few samples against the formula
    peak = max(samples)
    assert 9000 < peak < 10_000
    for n in (0, 7, 100, 5000):
        expected = peak * math.sin(2 * math.pi * 440 * n / 24_000)
        assert abs(samples[n] - expected) <= 2
    finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert [c["choices"][0]["finish_reason"] for c in finish] == ["stop"]
    usage = chunks[-1]
    assert usage["choices"] == []
    details = usage["usage"]["completion_tokens_details"]
    assert details["audio_tokens"] > 0
    assert usage["usage"]["completion_tokens"] == details["audio_tokens"] + details["text_tokens"]


def test_synthetic_anthropic_overloaded_error_ends_the_stream() -> None:
    t = load_transcript("synthetic/anthropic-midstream-overloaded-error")
    assert t.synthetic and t.provider == "anthropic" and t.api == "messages"
    assert any("not recorded" in n for n in t.notes)
    names = [e.split("\n", 1)[0] for e in t.events]
    assert names[:2] == ["event: message_start", "event: content_block_start"]
    assert names.count("event: content_block_delta") == 3
    assert names[-1] == "event: error"
    assert "event: message_stop" not in names
    assert t.events[-1] == (
        'event: error\ndata: {"type": "error", "error": '
        '{"type": "overloaded_error", "message": "Overloaded"}}\n\n'
    )


def _load_make_synthetic() -> ModuleType:
    path = DATA_DIR / "synthetic" / "make_synthetic.py"
    if not path.is_file():  # an installed wheel ships only the JSON files
        pytest.skip("make_synthetic.py is not installed with the package data")
    spec = importlib.util.spec_from_file_location("_streamkit_make_synthetic", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_synthetic_reproduces_the_bundled_files(tmp_path: Path) -> None:
    written = _load_make_synthetic().main(tmp_path)
    assert len(written) == 2
    for path in written:
        assert path.read_bytes() == (DATA_DIR / "synthetic" / path.name).read_bytes()


def test_attribution_has_a_row_for_every_bundled_transcript() -> None:
    text = (DATA_DIR / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "## Synthetic transcripts" in text
    rows = {line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ")}
    bundled = {path.relative_to(DATA_DIR).as_posix() for path in DATA_DIR.rglob("*.json")}
    assert bundled, "no transcripts bundled"
    assert bundled - rows == set(), "transcripts without an attribution row"
    assert {row for row in rows if row.endswith(".json")} - bundled == set(), "rows without a file"
    for name in MY_SYNTHETIC:
        assert f"{name}.json" in rows


def test_importing_streamkit_testing_imports_no_sdk() -> None:
    code = (
        "import sys, streamkit.testing\n"
        "heavy = {'openai', 'anthropic', 'groq', 'mistralai', 'google', 'cohere', 'hypothesis'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    import streamkit

    root = str(Path(streamkit.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd=root,
        env=env,
    )
    assert out.stdout.strip() == "[]"
