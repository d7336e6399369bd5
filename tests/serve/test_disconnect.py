"""Disconnects, heartbeats, headers and back-pressure, verified from the replay server's
side: a client that goes away closes the provider connection within one event."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from reactivex import Observable
from reactivex import operators as rxo

import streamkit as sk
from streamkit import ops
from streamkit.serve import HEARTBEAT, StreamResponse, UIMessageEncoder, chat_app
from streamkit.testing import ReplayServer
from tests.serve._harness import Ends, running

TRANSCRIPT = "openai/chat-text-usage"
BODY = {
    "id": "c",
    "messages": [{"id": "u", "role": "user", "parts": [{"type": "text", "text": "hi"}]}],
}


def read_then_leave(url: str, events_to_read: int) -> list[str]:
    lines: list[str] = []
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", f"{url}/api/chat", json=BODY) as response,
    ):
        assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
        assert response.headers["x-accel-buffering"] == "no"
        assert "no-cache" in response.headers["cache-control"]
        for line in response.iter_lines():
            if line.startswith("data: "):
                lines.append(line)
            if sum('"text-delta"' in seen for seen in lines) >= events_to_read:
                break
    return lines


@pytest.mark.parametrize("shape", ["sync", "async", "share_replay"])
def test_client_disconnect_closes_the_provider_connection_within_one_event(shape: str) -> None:
    ends = Ends()
    with ReplayServer(TRANSCRIPT, pace=0.05) as replay:

        def handler(messages: list[dict[str, Any]]) -> Observable[sk.Chunk]:
            stream = sk.stream(
                "openai", "gpt", messages, client=replay.client("openai", async_=shape == "async")
            )
            return stream.pipe(ops.share_replay()) if shape == "share_replay" else stream

        with running(chat_app(handler, on_end=ends)) as url:
            lines = read_then_leave(url, 2)
            sent_when_client_left = replay.requests[0].events_sent
            (end,) = ends.wait()
            record = replay.wait_for_request_end()
    assert end.reason == "disconnected"
    assert record.disconnected and not record.completed
    assert sum('"text-delta"' in line for line in lines) == 2
    # At most one more provider event was written after the client closed its socket.
    assert record.events_sent <= sent_when_client_left + 1
    assert record.events_sent < record.events_total - 2


def test_heartbeats_are_sent_while_the_stream_is_idle() -> None:
    # A source that waits before its first chunk: the response sends comments meanwhile.
    import reactivex

    chunks = reactivex.timer(0.35).pipe(
        rxo.map(lambda _: sk.Chunk(provider="openai", content="late", finish_reasons=["stop"]))
    )

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await StreamResponse(chunks, UIMessageEncoder("m"), heartbeat=0.1)(scope, receive, send)

    with running(app) as url:
        body = httpx.get(url, timeout=10).content
    assert body.count(HEARTBEAT) >= 2
    assert b'"delta":"late"' in body and body.endswith(b"data: [DONE]\n\n")


def test_a_slow_client_makes_a_sync_source_wait_instead_of_buffering() -> None:
    """Bounded queue, sync source: the source thread waits; nothing is dropped."""
    ends = Ends()
    with ReplayServer(TRANSCRIPT) as replay:

        def handler(messages: list[dict[str, Any]]) -> Observable[sk.Chunk]:
            return sk.stream("openai", "gpt", messages, client=replay.client("openai"))

        with running(chat_app(handler, on_end=ends, max_queue=1)) as url:

            async def slow() -> str:
                async with httpx.AsyncClient(timeout=10) as client:
                    text = ""
                    async with client.stream("POST", f"{url}/api/chat", json=BODY) as response:
                        async for line in response.aiter_lines():
                            await asyncio.sleep(0.002)
                            if line.startswith("data: {"):
                                event = json.loads(line[6:])
                                text += (
                                    event.get("delta", "") if event["type"] == "text-delta" else ""
                                )
                    return text

            text = asyncio.run(slow())
        expected = sk.stream("openai", "gpt", "hi", client=replay.client("openai"))
        content = expected.pipe(ops.to_call_response()).run().content
    (end,) = ends.wait()
    assert end.reason == "completed"
    assert text == content


def test_a_full_queue_with_a_source_on_the_event_loop_aborts_the_stream() -> None:
    """Bounded queue, a source that cannot wait (emits on the loop): the policy is to
    dispose it and end the response with ``abort``, reported as ``slow_client``."""
    ends = Ends()

    def burst(observer: Any, scheduler: Any = None) -> Any:
        disposed: list[bool] = []
        for index in range(50):
            if disposed:
                break
            observer.on_next(sk.Chunk(provider="openai", content=str(index)))
        observer.on_completed()
        from reactivex.disposable import Disposable

        return Disposable(lambda: disposed.append(True))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        response = StreamResponse(
            Observable(burst), UIMessageEncoder("m"), max_queue=4, on_end=ends
        )
        await response(scope, receive, send)

    with running(app) as url:
        body = httpx.get(url, timeout=10).text
    (end,) = ends.wait()
    assert end.reason == "slow_client"
    assert '{"type":"abort"}' in body and body.endswith("data: [DONE]\n\n")
    assert end.chunks == 4


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="max_queue"):
        StreamResponse(Observable(lambda o, s=None: None), UIMessageEncoder(), max_queue=0)
    with pytest.raises(ValueError, match="heartbeat"):
        StreamResponse(Observable(lambda o, s=None: None), UIMessageEncoder(), heartbeat=0)
