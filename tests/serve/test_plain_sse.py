"""Plain SSE (``serve.sse_response``) over real HTTP, read with httpx: ``chunk`` events,
then ``end`` for a stream that finished, or ``error`` with a safe message for one that
failed midway, after which the response ends."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import streamkit as sk
from streamkit.serve import safe_error_text, sse_response
from streamkit.testing import FAKE_API_KEY, ReplayServer
from tests.serve._harness import Ends, running

MIDSTREAM_ERRORS = [
    # Anthropic's `event: error` (overloaded_error) after three text deltas.
    ("anthropic", "claude-sonnet-4-5", "synthetic/anthropic-midstream-overloaded-error", {}),
    # OpenRouter's error chunk in an OpenAI-compatible stream.
    ("openai", "gpt-4o-mini", "openrouter/chat-midstream-error-chunk", {}),
    # The Responses API's `error` event.
    ("openai", "gpt-4.1-mini", "synthetic/openai-responses-error-event", {"api": "responses"}),
]


def app_for(
    replay: ReplayServer, provider: str, model: str, params: dict[str, Any], ends: Ends
) -> Starlette:
    async def events(request: Request) -> Response:
        stream = sk.stream(provider, model, "hi", client=replay.client(provider), **params)
        return sse_response(stream, on_end=ends)

    return Starlette(routes=[Route("/events", events, methods=["POST"])])


def read_events(url: str) -> list[tuple[str, Any]]:
    """Every SSE event of the response as ``(event, data)``, until the server ends it."""
    events: list[tuple[str, Any]] = []
    name = "message"
    with httpx.Client(timeout=10) as client, client.stream("POST", f"{url}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():  # returns only when the body has ended
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
                name = "message"
    return events


def direct(
    provider: str, model: str, transcript: str, params: dict[str, Any]
) -> tuple[list[sk.Chunk], Exception]:
    """The chunks the stream delivers before it fails, and its error, read directly."""
    chunks: list[sk.Chunk] = []
    with ReplayServer(transcript) as replay:
        stream = sk.stream(provider, model, "hi", client=replay.client(provider), **params)
        with pytest.raises(Exception) as raised:
            for chunk in sk.iterate(stream):
                chunks.append(chunk)
    return chunks, raised.value


@pytest.mark.parametrize(
    ("provider", "model", "transcript", "params"),
    MIDSTREAM_ERRORS,
    ids=[case[2] for case in MIDSTREAM_ERRORS],
)
def test_a_provider_error_midway_is_the_error_event_then_the_end(
    provider: str, model: str, transcript: str, params: dict[str, Any]
) -> None:
    chunks, error = direct(provider, model, transcript, params)
    assert chunks  # it fails midway, after some chunks
    ends = Ends()
    with ReplayServer(transcript) as replay:
        with running(app_for(replay, provider, model, params, ends)) as url:
            events = read_events(url)
        (end,) = ends.wait()
    names = [name for name, _ in events]
    # The chunks, then one error event, last: no end event, nothing after it.
    assert names == ["chunk"] * len(chunks) + ["error"]
    assert [data["content"] for _, data in events[:-1]] == [c.content for c in chunks]
    _, data = events[-1]
    assert set(data) == {"message", "usage"}
    # The safe message: the error's type, never the provider's text, a key, a traceback.
    assert data["message"] == safe_error_text(error)
    assert data["message"] == f"the stream failed ({type(error).__name__})"
    for secret in ("Traceback", FAKE_API_KEY, str(error)):
        assert secret not in data["message"]
    # The usage so far (streamkit's count where the provider had not reported it all).
    assert end.reason == "error" and type(end.error) is type(error)
    assert end.usage is not None and end.usage.source in ("estimated", "mixed")
    assert data["usage"] == end.usage.model_dump(exclude_none=True)


def test_a_stream_that_finishes_ends_with_the_end_event_and_its_usage() -> None:
    ends = Ends()
    with ReplayServer("openai/chat-text-usage") as replay:
        with running(app_for(replay, "openai", "gpt-4o", {}, ends)) as url:
            events = read_events(url)
        (end,) = ends.wait()
    name, data = events[-1]
    assert name == "end" and [n for n, _ in events[:-1]] == ["chunk"] * (len(events) - 1)
    assert end.reason == "completed" and end.usage is not None
    assert data == {"reason": "finish", "usage": end.usage.model_dump(exclude_none=True)}
    assert data["usage"]["source"] == "reported"
