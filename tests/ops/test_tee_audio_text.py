"""``ops.tee_audio_text``: examples on a ``TestScheduler``, hypothesis properties (the two
sides hold exactly the input's audio and text; random subscribe/dispose/connect
interleavings checked against a model), and end to end with the openai SDK (sync and
async) on the synthetic audio transcript, including the audio ``CallResponse``."""

from __future__ import annotations

import asyncio
import base64
import json
import wave
from pathlib import Path
from typing import Any

import pytest
import reactivex
from hypothesis import event, given
from hypothesis import strategies as st
from reactivex import Observable, abc
from reactivex import operators as rx
from reactivex.testing import ReactiveTest, TestScheduler

import streamkit as sk
from streamkit import ops
from streamkit.testing import ReplayServer, load_transcript
from streamkit.testing import strategies as sks
from tests.ops.share_model import (
    Recorder,
    assert_recorded,
    cancel_tick,
    close_client,
    cold_source,
    element_offset,
    expected_messages,
    no_source_thread_left_behind,  # noqa: F401 (an autouse fixture)
    plans,
    run_plan,
    until,
)
from tests.recorded import value_of

on_next, on_completed = ReactiveTest.on_next, ReactiveTest.on_completed
subscribe = ReactiveTest.subscribe


def chunk(audio: bytes | None = None, transcript: str | None = None, content: str = "") -> sk.Chunk:
    return sk.Chunk(provider="openai", audio=audio, audio_transcript=transcript, content=content)


def at(scheduler: TestScheduler, tick: int, action: Any) -> None:
    scheduler.schedule_absolute(tick, lambda *_: action())


AUDIO_STREAM = [
    chunk(b"\x01\x02", "Once"),
    chunk(None, " upon"),
    chunk(b"\x03\x04"),
    chunk(b"", " a time"),
]


def audio_source(scheduler: TestScheduler) -> Any:
    return scheduler.create_cold_observable(
        *(on_next(10 * (i + 1), c) for i, c in enumerate(AUDIO_STREAM)), on_completed(50)
    )


# -- examples on a TestScheduler ------------------------------------------------------
def test_connects_once_both_sides_are_subscribed() -> None:
    scheduler = TestScheduler()
    xs = audio_source(scheduler)
    audio, text = ops.tee_audio_text(xs)
    heard, read = scheduler.create_observer(), scheduler.create_observer()
    at(scheduler, 100, lambda: audio.subscribe(heard))
    at(scheduler, 150, lambda: text.subscribe(read))
    scheduler.start()

    assert xs.subscriptions == [subscribe(150, 200)]
    assert heard.messages == [
        on_next(160, b"\x01\x02"),
        on_next(180, b"\x03\x04"),
        on_completed(200),
    ]
    assert read.messages == [
        on_next(160, "Once"),
        on_next(170, " upon"),
        on_next(190, " a time"),
        on_completed(200),
    ]


def test_explicit_connect_and_a_late_side_replays_what_it_missed() -> None:
    scheduler = TestScheduler()
    xs = audio_source(scheduler)
    tee = ops.tee_audio_text(xs)
    heard, read = scheduler.create_observer(), scheduler.create_observer()
    at(scheduler, 100, lambda: tee.audio.subscribe(heard))
    at(scheduler, 120, tee.connect)
    at(scheduler, 145, lambda: tee.text.subscribe(read))
    scheduler.start()

    assert xs.subscriptions == [subscribe(120, 170)]
    assert heard.messages == [
        on_next(130, b"\x01\x02"),
        on_next(150, b"\x03\x04"),
        on_completed(170),
    ]
    assert read.messages == [
        on_next(145, "Once"),
        on_next(145, " upon"),
        on_next(160, " a time"),
        on_completed(170),
    ]


def test_one_side_leaving_does_not_starve_the_other() -> None:
    scheduler = TestScheduler()
    xs = audio_source(scheduler)
    audio, text = ops.tee_audio_text(xs)
    heard, read = scheduler.create_observer(), scheduler.create_observer()
    at(scheduler, 100, lambda: audio.pipe(rx.take(1)).subscribe(heard))
    at(scheduler, 100, lambda: text.subscribe(read))
    scheduler.start()

    assert xs.subscriptions == [subscribe(100, 150)]  # ran to completion for the text
    assert heard.messages == [on_next(110, b"\x01\x02"), on_completed(110)]
    assert [value_of(m) for m in read.messages[:-1]] == ["Once", " upon", " a time"]
    assert read.messages[-1] == on_completed(150)


def test_upstream_is_disposed_when_both_sides_left() -> None:
    scheduler = TestScheduler()
    xs = audio_source(scheduler)
    audio, text = ops.tee_audio_text(xs)
    subscriptions: dict[str, abc.DisposableBase] = {}
    at(scheduler, 100, lambda: subscriptions.update(a=audio.subscribe(scheduler.create_observer())))
    at(scheduler, 100, lambda: subscriptions.update(t=text.subscribe(scheduler.create_observer())))
    at(scheduler, 115, lambda: subscriptions["a"].dispose())
    at(scheduler, 125, lambda: subscriptions["t"].dispose())
    scheduler.start()

    assert xs.subscriptions == [subscribe(100, 125)]


def test_text_is_each_chunks_transcript_then_content() -> None:
    chunks = [chunk(content="plain "), chunk(b"\x00\x01", "spoken"), chunk(content="!")]
    audio, text = ops.tee_audio_text(reactivex.from_iterable(chunks))
    heard: list[bytes] = []
    audio.subscribe(heard.append)
    assert text.pipe(rx.to_list()).run() == ["plain ", "spoken", "!"]
    assert heard == [b"\x00\x01"]


def test_not_an_observable_is_rejected() -> None:
    with pytest.raises(TypeError):
        ops.tee_audio_text([chunk(content="x")])  # type: ignore[arg-type]


# -- properties -----------------------------------------------------------------------------
ORDERS = ("audio first", "text first", "connect first", "connect between")


@given(stream=sks.audio_chunk_streams(), order=st.sampled_from(ORDERS))
def test_the_two_sides_hold_exactly_the_inputs_audio_and_text(
    stream: sks.AudioChunkStream, order: str
) -> None:
    subscriptions = 0

    def counted(observer: abc.ObserverBase[sk.Chunk], scheduler: Any = None) -> Any:
        nonlocal subscriptions
        subscriptions += 1
        return reactivex.from_iterable(stream.chunks).subscribe(observer, scheduler=scheduler)

    tee = ops.tee_audio_text(Observable(counted))
    heard: list[bytes] = []
    read: list[str] = []
    if order == "connect first":
        tee.connect()
    tee.audio.subscribe(heard.append) if order != "text first" else tee.text.subscribe(read.append)
    if order == "connect between":
        tee.connect()
    tee.text.subscribe(read.append) if order != "text first" else tee.audio.subscribe(heard.append)

    assert b"".join(heard) == stream.audio
    assert "".join(read) == stream.text
    assert all(heard) and all(read)  # no empty pieces
    assert subscriptions == 1


@given(
    stream=sks.audio_chunk_streams(),
    plan=plans(("audio", "text", "connect"), max_steps=20, min_slots=2, min_steps=6),
    fails=st.booleans(),
)
def test_any_interleaving_matches_the_model(
    stream: sks.AudioChunkStream, plan: list[str | None], fails: bool
) -> None:
    scheduler = TestScheduler()
    error = ConnectionError("cut") if fails else None
    xs = cold_source(scheduler, stream.chunks, error)
    tee = ops.tee_audio_text(xs)
    connects: list[int] = []

    def connect(_slot: str, tick: int) -> None:
        connects.append(tick)
        tee.connect()

    subscriptions = run_plan(
        scheduler,
        plan,
        lambda slot: tee.audio if slot == "audio" else tee.text,
        on_step=connect,
    )
    # Connected at the first explicit connect, or when both sides have been subscribed.
    starts = {
        side: min((s.start for s in subscriptions if s.slot == side), default=None)
        for side in ("audio", "text")
    }
    both = None if None in starts.values() else max(t for t in starts.values() if t is not None)
    candidates = [t for t in (*connects[:1], both) if t is not None]
    if not candidates:
        event("never connected")
        assert xs.subscriptions == []
        assert all(s.recorded() == [] for s in subscriptions)
        return
    connected = min(candidates)
    terminal = connected + element_offset(len(stream.chunks))
    cancelled = cancel_tick(subscriptions, connected, terminal)
    event("both sides left before the end" if cancelled else "ran to its end")
    assert xs.subscriptions == [subscribe(connected, cancelled or terminal)]
    stop = cancelled if cancelled is not None else terminal
    ending = (terminal, "E", error) if error else (terminal, "C", None)
    for subscription in subscriptions:
        elements = [
            (connected + element_offset(i), value)
            for i, c in enumerate(stream.chunks)
            if (
                value := c.audio
                if subscription.slot == "audio"
                else (c.audio_transcript or "") + c.content
            )
            and connected + element_offset(i) < stop
        ]
        assert_recorded(subscription, expected_messages(subscription, elements, ending, cancelled))


# -- end to end: openai SDK, synthetic audio transcript ----------------------------------------
AUDIO = "synthetic/openai-chat-audio-pcm16"
AUDIO_PARAMS: dict[str, Any] = {
    "modalities": ["text", "audio"],
    "audio": {"voice": "alloy", "format": "pcm16"},
}


def transcript_audio(name: str) -> tuple[bytes, str, str | None]:
    """The audio bytes, transcript and audio id of a chat transcript, read from its JSON."""
    audio: list[bytes] = []
    text: list[str] = []
    audio_id = None
    for sse in load_transcript(name).events:
        data = sse.strip().removeprefix("data:").strip()
        if not data or data == "[DONE]":
            continue
        for choice in json.loads(data).get("choices", []):
            part = (choice.get("delta") or {}).get("audio") or {}
            audio.append(base64.b64decode(part.get("data") or ""))
            text.append(part.get("transcript") or "")
            audio_id = audio_id or part.get("id")
    return b"".join(audio), "".join(text), audio_id


EXPECTED_AUDIO, EXPECTED_TRANSCRIPT, EXPECTED_AUDIO_ID = transcript_audio(AUDIO)


def test_the_oracle_reads_the_transcript() -> None:
    assert len(EXPECTED_AUDIO) == 24_000
    assert EXPECTED_TRANSCRIPT == "Once upon a time, a dragon slept."
    assert EXPECTED_AUDIO_ID


def audio_stream(server: ReplayServer, async_: bool) -> tuple[sk.Stream, Any]:
    client = server.client("openai", async_=async_)
    stream = sk.stream(
        "openai", "gpt-4o-audio-preview", "Tell me a one-line story.", client=client, **AUDIO_PARAMS
    )
    return stream, client


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_audio_response_end_to_end(async_: bool, tmp_path: Path) -> None:
    with ReplayServer(AUDIO) as server:
        stream, client = audio_stream(server, async_)
        responses = Recorder()
        responses.attach(stream.pipe(ops.to_call_response()))
        await until(responses.done.is_set)
        assert responses.errors == []
        (response,) = responses.values
        body = server.requests[0].json
        assert body["modalities"] == ["text", "audio"]
        assert body["audio"] == {"voice": "alloy", "format": "pcm16"}
        assert response.audio == EXPECTED_AUDIO
        assert response.audio_transcript == EXPECTED_TRANSCRIPT
        assert response.message_param["audio"] == {"id": EXPECTED_AUDIO_ID}
        assert response.finish_reason == "stop"
        path = response.write_wav(tmp_path / "story.wav")
        with wave.open(str(path), "rb") as wav:
            assert wav.getframerate() == 24_000
            assert wav.getnchannels() == 1
            assert wav.getsampwidth() == 2
            assert wav.getnframes() == len(EXPECTED_AUDIO) // 2
            assert wav.readframes(wav.getnframes()) == EXPECTED_AUDIO
        await close_client(client)


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_tee_gets_all_audio_and_the_transcript_from_one_request(async_: bool) -> None:
    with ReplayServer(AUDIO, pace=0.005) as server:
        stream, client = audio_stream(server, async_)
        audio, text = ops.tee_audio_text(stream)
        heard, read = Recorder(), Recorder()
        heard.attach(audio)
        await asyncio.sleep(0.1)
        assert server.requests == []  # not connected until both sides are subscribed
        read.attach(text)
        await until(lambda: heard.done.is_set() and read.done.is_set())
        assert heard.errors == read.errors == []
        assert b"".join(heard.values) == EXPECTED_AUDIO
        assert "".join(read.values) == EXPECTED_TRANSCRIPT
        assert len(server.requests) == 1
        await close_client(client)


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("leaving", ["audio", "text"])
async def test_one_side_leaving_early_does_not_starve_the_other(async_: bool, leaving: str) -> None:
    with ReplayServer(AUDIO, pace=0.02) as server:
        stream, client = audio_stream(server, async_)
        tee = ops.tee_audio_text(stream)
        early, full = Recorder(), Recorder()
        stays = tee.text if leaving == "audio" else tee.audio
        early.attach(getattr(tee, leaving).pipe(rx.take(1)))
        full.attach(stays)
        await until(lambda: early.done.is_set() and full.done.is_set())
        assert len(early.values) == 1
        if leaving == "audio":
            assert "".join(full.values) == EXPECTED_TRANSCRIPT
        else:
            assert b"".join(full.values) == EXPECTED_AUDIO
        record = await asyncio.to_thread(server.wait_for_request_end, 0)
        assert record.completed and not record.disconnected
        assert len(server.requests) == 1
        await close_client(client)


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_both_sides_leaving_early_closes_the_response(async_: bool) -> None:
    with ReplayServer(AUDIO, pace=0.03) as server:
        stream, client = audio_stream(server, async_)
        audio, text = ops.tee_audio_text(stream)
        heard, read = Recorder(), Recorder()
        subscriptions = [heard.attach(audio), read.attach(text)]
        await until(lambda: len(read.values) >= 1)
        for subscription in subscriptions:
            subscription.dispose()
        record = await asyncio.to_thread(server.wait_for_request_end, 0)
        assert record.disconnected and record.events_sent < record.events_total
        assert len(server.requests) == 1
        await close_client(client)
