"""OpenAI-compatible servers (vLLM, Ollama, llama.cpp, OpenRouter) through ``"openai"``
and the client's ``base_url``, on the recorded OpenRouter stream.

That stream has SSE comment lines, reasoning in ``delta.reasoning``, a finish reason
``length``, and then its error inside the 200 response: a data line with a top-level
``error`` object, which the openai SDK raises as ``openai.APIError`` mid-stream.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import openai
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk
from reactivex import operators as rx

import streamkit as sk
from streamkit import ops
from streamkit.providers import get_adapter
from streamkit.testing import ReplayServer, load_transcript

OPENROUTER = "openrouter/chat-midstream-error-chunk"
MODEL = "minimax/minimax-m2:free"
ADAPTER = get_adapter("openai")


def data_lines(name: str) -> list[dict[str, Any]]:
    """The JSON data lines of a transcript (comments and ``[DONE]`` left out)."""
    lines = []
    for event in load_transcript(name).events:
        if event.startswith("data: {"):
            lines.append(json.loads(event.removeprefix("data:")))
    return lines


def before_the_error() -> list[dict[str, Any]]:
    lines = data_lines(OPENROUTER)
    position = next(i for i, line in enumerate(lines) if "error" in line)
    return lines[:position]


def oracle() -> tuple[Any, str]:
    """The SDK's accumulation of the chunks before the error: (snapshot, reasoning)."""
    state = ChatCompletionStreamState()
    for line in before_the_error():
        state.handle_chunk(ChatCompletionChunk.model_validate(line))
    snapshot = state.current_completion_snapshot
    reasoning = (snapshot.choices[0].message.model_extra or {}).get("reasoning") or ""
    return snapshot, reasoning


def test_the_recording_is_what_this_test_is_about() -> None:
    lines = data_lines(OPENROUTER)
    assert len(before_the_error()) == 3 == len(lines) - 1
    assert lines[-1]["error"] == {"code": 400, "message": "Token limit reached"}
    assert load_transcript(OPENROUTER).events[0].startswith(": OPENROUTER PROCESSING")
    _, reasoning = oracle()
    assert reasoning == "We need to respond to a greeting. The user"


def client_of(server: ReplayServer, *, async_: bool = False) -> Any:
    return server.client("openai", async_=async_, base_url=server.url + "/api/v1")


def assert_error(error: BaseException) -> None:
    assert isinstance(error, openai.APIError)
    assert error.message == "Token limit reached"
    assert error.body == {"code": 400, "message": "Token limit reached"}
    assert error.code == "400"
    assert not ADAPTER.is_transient(error)


def assert_received_what_came_before(stream: sk.Stream, chunks: list[sk.Chunk]) -> None:
    snapshot, reasoning = oracle()
    assert len(chunks) == len(before_the_error())
    assert "".join(chunk.thinking for chunk in chunks) == reasoning
    assert stream.thinking == reasoning and stream.content == ""
    assert stream.finish_reasons == [snapshot.choices[0].finish_reason] == ["length"]
    assert stream.model == MODEL and stream.id == snapshot.id


def test_iteration_delivers_the_chunks_then_raises_the_sdks_error() -> None:
    with ReplayServer(OPENROUTER) as server:
        stream = sk.stream("openai", MODEL, "Hello there", client=client_of(server))
        chunks: list[sk.Chunk] = []
        with pytest.raises(openai.APIError) as raised:
            for chunk, _ in stream:
                chunks.append(chunk)
        request = server.requests[0]
    assert request.path == "/api/v1/chat/completions"
    assert request.json["stream_options"] == {"include_usage": True}
    assert_error(raised.value)
    assert_received_what_came_before(stream, chunks)
    # a second iteration replays, with the same error, without a new request
    with pytest.raises(openai.APIError):
        list(stream)


def test_observable_calls_on_error_after_the_chunks() -> None:
    with ReplayServer(OPENROUTER) as server:
        stream = sk.stream("openai", MODEL, "Hello there", client=client_of(server))
        notifications: list[Any] = []
        done = threading.Event()

        def on_error(error: Exception) -> None:
            notifications.append(error)
            done.set()

        stream.subscribe(notifications.append, on_error=on_error, on_completed=done.set)
        assert done.wait(5)
    *chunks, error = notifications
    assert all(isinstance(chunk, sk.Chunk) for chunk in chunks)
    assert_error(error)
    _, reasoning = oracle()
    assert "".join(chunk.thinking for chunk in chunks) == reasoning
    assert [c.finish_reasons for c in chunks] == [None, ["length"], ["length"]]


async def test_async_iteration_and_observable_raise_the_sdks_error() -> None:
    with ReplayServer(OPENROUTER) as server:
        client = client_of(server, async_=True)
        stream = sk.stream("openai", MODEL, "Hello there", client=client)
        chunks: list[sk.Chunk] = []
        with pytest.raises(openai.APIError) as raised:
            async for chunk, _ in stream:
                chunks.append(chunk)
        assert_error(raised.value)
        assert_received_what_came_before(stream, chunks)
        collected: list[sk.Chunk] = []
        with pytest.raises(openai.APIError) as again:
            await stream.pipe(rx.do_action(collected.append), ops.to_call_response())
        assert_error(again.value)
        assert len(collected) == len(before_the_error())
        await client.close()


async def test_take_before_the_error_closes_the_response_quietly() -> None:
    with ReplayServer(OPENROUTER, pace=0.02) as server:
        client = client_of(server, async_=True)
        stream = sk.stream("openai", MODEL, "Hello there", client=client)
        got = await stream.pipe(rx.take(2), rx.to_list())
        record = await asyncio.to_thread(server.wait_for_request_end, 0)
        assert [chunk.thinking for chunk in got] == [
            "We need",
            " to respond to a greeting. The user",
        ]
        assert record.disconnected and record.events_sent < record.events_total
        await client.close()
