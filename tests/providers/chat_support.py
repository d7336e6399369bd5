"""Checks shared by the tests of the OpenAI-shaped chat adapters (Groq, Mistral), the
cancellation checks by Anthropic's too.

Oracles read the transcript's JSON directly; the cancellation checks look at what the
replay server saw (``disconnected``, events sent), not at streamkit's own state.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from reactivex import operators as rx

import streamkit as sk
from streamkit.providers import get_adapter
from streamkit.testing import ReplayServer, Transcript, load_transcript

Pair = tuple[sk.Chunk, sk.ToolCall | None]


def data_events(name: str) -> list[dict[str, Any]]:
    """The chunk objects of a transcript: plain ``data:`` events, ``[DONE]`` and named
    events (``event: error``) left out."""
    return [
        json.loads(event.removeprefix("data:"))
        for event in load_transcript(name).events
        if event.startswith("data:") and event.strip() != "data: [DONE]"
    ]


def completing_events(name: str) -> list[int]:
    """For each tool call, the position of the data event that completes it: the one
    that starts the next call, carries a finish reason, or else the last one."""
    events = data_events(name)
    started: set[int] = set()
    open_calls = 0
    done: list[int] = []
    for position, data in enumerate(events):
        for choice in data["choices"]:
            for call in choice["delta"].get("tool_calls") or ():
                if call["index"] not in started:
                    started.add(call["index"])
                    done += [position] * open_calls
                    open_calls = 1
            if choice.get("finish_reason"):
                done += [position] * open_calls
                open_calls = 0
    return done + [len(events) - 1] * open_calls


def tool_positions(pairs: list[Pair]) -> list[int]:
    """For each tool yielded by ``for chunk, tool in stream``, the position of its raw
    SDK chunk in the stream (extra tools of one chunk share its raw chunk)."""
    positions: list[int] = []
    raw_seen: list[Any] = []
    for chunk, tool in pairs:
        if not raw_seen or chunk.chunk is not raw_seen[-1]:
            raw_seen.append(chunk.chunk)
        if tool is not None:
            positions.append(len(raw_seen) - 1)
    return positions


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def _assert_closed_early(server: ReplayServer) -> None:
    record = server.wait_for_request_end(0)
    assert record.disconnected and record.events_sent <= 5 < record.events_total


def assert_take_closes_sync(server: ReplayServer, stream: sk.Stream) -> None:
    """``take(3)`` on a sync stream over a paced server closes the response at once."""
    done = threading.Event()
    got: list[sk.Chunk] = []
    stream.pipe(rx.take(3)).subscribe(got.append, on_completed=done.set)
    assert done.wait(5)
    assert len(got) == 3
    _assert_closed_early(server)


async def assert_take_closes_async(server: ReplayServer, stream: sk.Stream) -> None:
    """``take(3)`` on an async stream closes the response and leaves no connection."""
    got = await stream.pipe(rx.take(3), rx.to_list())
    assert len(got) == 3
    await asyncio.to_thread(_assert_closed_early, server)
    await asyncio.to_thread(wait_until, lambda: server.open_connections == 0)


async def assert_break_closes_async(server: ReplayServer, stream: sk.Stream) -> None:
    """``break`` inside ``async with stream`` closes the response, with no error left in
    a background task (the loop finalizes the dropped iterator while ``aclose`` runs)."""
    loop_errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: loop_errors.append(context))
    async with stream:
        count = 0
        async for _ in stream:
            count += 1
            if count == 3:
                break
    await asyncio.to_thread(_assert_closed_early, server)
    await asyncio.sleep(0.05)
    assert loop_errors == []


def assert_break_closes_sync(server: ReplayServer, stream: sk.Stream) -> None:
    """``break`` inside ``with stream`` closes the response; what arrived is kept."""
    with stream:
        for count, _ in enumerate(stream, 1):
            if count == 3:
                break
    _assert_closed_early(server)
    assert stream.content or stream.thinking


def assert_dispose_wakes_a_blocked_read(server: ReplayServer, stream: sk.Stream) -> None:
    """Disposing from this thread while the reader thread is blocked in a stalled read
    (the server stalls after 3 events) closes the connection at once."""
    got: list[sk.Chunk] = []
    subscription = stream.subscribe(got.append)
    wait_until(lambda: len(got) == 3)
    time.sleep(0.05)  # the reader is now blocked in the stalled read
    subscription.dispose()
    record = server.wait_for_request_end(0, timeout=3)
    assert record.disconnected and record.events_sent == 3


def assert_cut_is_incomplete(
    stream: sk.Stream, public_cause: type[BaseException] | None = None
) -> None:
    """Iterating a stream whose connection the server cuts after 5 events raises
    :class:`sk.IncompleteStreamError`, a transient error (:func:`assert_transient_cut`);
    what arrived before the cut is kept."""
    received: list[str] = []
    with pytest.raises(sk.IncompleteStreamError) as raised:
        for chunk, _ in stream:
            received.append(chunk.content)
    assert len(received) == 5 and raised.value.events == 5
    assert stream.content == "".join(received)
    assert_transient_cut(stream.provider, raised.value, public_cause)


def assert_transient_cut(
    provider: str, error: BaseException, public_cause: type[BaseException] | None = None
) -> None:
    """streamkit's contract for a stream cut mid-body: an :class:`sk.IncompleteStreamError`
    the provider's adapter classifies as transient; the SDK's error it was raised from,
    if any, is transient too, and of ``public_cause`` where the SDK documents a type for
    it (litellm's ``MidStreamFallbackError``, azure-core's ``HttpResponseError``).

    Which HTTP library's error an SDK lets through (httpx's ``RemoteProtocolError``...)
    is the SDK's business and changes between releases (anthropic 2.17 began wrapping it
    in ``APIConnectionError``): never asserted."""
    adapter = get_adapter(provider)
    assert isinstance(error, sk.IncompleteStreamError), repr(error)
    assert adapter.is_transient(error)
    cause = error.__cause__
    if cause is not None:
        assert adapter.is_transient(cause), repr(cause)
    if public_cause is not None:
        assert isinstance(cause, public_cause), repr(cause)


def assert_truncated_body_is_incomplete(provider: str, name: str, events: int) -> None:
    """A well-formed body holding only the first ``events`` events (no finish chunk, no
    ``[DONE]``: the SDK ends quietly) is an :class:`sk.IncompleteStreamError`."""
    cut = Transcript.from_events(
        provider, "chat.completions", load_transcript(name).events[:events]
    )
    with ReplayServer(cut) as server:
        stream = sk.stream(provider, "model", "hi", client=server.client(provider))
        with pytest.raises(sk.IncompleteStreamError, match=f"ended after {events} events"):
            list(stream)
    expected = [d["choices"][0]["delta"].get("content") or "" for d in data_events(name)]
    assert stream.content == "".join(expected[:events]) != ""
