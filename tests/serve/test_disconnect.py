"""Disconnects, heartbeats, headers and back-pressure, verified from the replay server's
side: a client that goes away closes the provider connection within one event."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from typing import Any

import httpx
import pytest
from reactivex import Observable
from reactivex import operators as rxo
from reactivex.abc import ObserverBase, SchedulerBase
from reactivex.disposable import Disposable

import streamkit as sk
from streamkit import ops
from streamkit.serve import BURST_FACTOR, HEARTBEAT, StreamResponse, UIMessageEncoder, chat_app
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
    reports: list[sk.UsageReport] = []
    with ReplayServer(TRANSCRIPT, pace=0.05) as replay:

        def handler(messages: list[dict[str, Any]]) -> Observable[sk.Chunk]:
            stream = sk.stream(
                "openai", "gpt", messages, client=replay.client("openai", async_=shape == "async")
            )
            shared = stream.pipe(ops.share_replay()) if shape == "share_replay" else stream
            return shared.pipe(ops.on_usage(reports.append))

        with running(chat_app(handler, on_end=ends)) as url:
            lines = read_then_leave(url, 2)
            sent_when_client_left = replay.requests[0].events_sent
            (end,) = ends.wait()
            record = replay.wait_for_request_end()
    assert end.reason == "disconnected"
    assert record.disconnected and not record.completed
    assert sum('"text-delta"' in line for line in lines) == 2
    # OpenAI reports usage in its last chunk: the client left before it, so the end
    # carries streamkit's estimate, and its cost, once (one request, however shared).
    assert end.usage is not None and end.usage.source == "estimated"
    assert end.usage.input_tokens > 0 and end.usage.output_tokens > 0
    assert end.cost is not None and end.cost.usage_source == "estimated"
    (report,) = reports  # the request's own record names the disconnect
    assert report.attempts[0].disposed_by == "disconnect" and report.usage == end.usage
    # At most one more provider event was written after the client closed its socket.
    assert record.events_sent <= sent_when_client_left + 1
    assert record.events_sent < record.events_total - 2


def _address(url: str) -> tuple[str, int]:
    """``(host, port)`` of an ``http://host:port`` URL."""
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def _never(observer: ObserverBase[sk.Chunk], scheduler: SchedulerBase | None = None) -> Disposable:
    """An Observable's subscribe function that emits nothing."""
    return Disposable()


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


def test_a_burst_from_an_async_source_past_max_queue_reaches_a_client_that_keeps_up() -> None:
    """An async client reads a whole burst (every event in one socket read) and emits it
    without letting the loop run: the writer takes it once the loop turns, nothing lost."""
    ends = Ends()
    with ReplayServer("anthropic/messages-thinking") as replay:  # 118 events, no pacing
        expected = sk.stream("anthropic", "m", "hi", client=replay.client("anthropic"))
        reference = expected.pipe(ops.to_call_response()).run()

        def handler(messages: list[dict[str, Any]]) -> Observable[sk.Chunk]:
            client = replay.client("anthropic", async_=True)
            return sk.stream("anthropic", "m", messages, client=client)

        # 117 chunks in one burst: past max_queue, within BURST_FACTOR times it.
        with running(chat_app(handler, on_end=ends, max_queue=16)) as url:
            body = httpx.post(f"{url}/api/chat", json=BODY, timeout=10).text
    events = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: {")]
    text = "".join(e["delta"] for e in events if e["type"] == "text-delta")
    thinking = "".join(e["delta"] for e in events if e["type"] == "reasoning-delta")
    (end,) = ends.wait()
    assert end.reason == "completed"
    assert (text, thinking) == (reference.content, reference.thinking)
    assert 16 < end.chunks <= 16 * BURST_FACTOR


def test_a_slow_client_with_an_async_source_aborts_the_stream_at_max_queue() -> None:
    """Bounded queue, a source on the event loop (it cannot be made to wait) and a client
    that stops reading: once uvicorn waits for the client and the queue is full, the
    source is disposed and the response ends with ``abort`` (``slow_client``)."""
    ends = Ends()
    disposed = threading.Event()
    big = "x" * 65_536

    def endless(observer: Any, scheduler: Any = None) -> Any:
        async def emit() -> None:
            while not disposed.is_set():
                observer.on_next(sk.Chunk(provider="openai", content=big))
                await asyncio.sleep(0)  # a real async source awaits its socket

        task = asyncio.get_running_loop().create_task(emit())

        def dispose() -> None:
            disposed.set()
            task.cancel()

        return Disposable(dispose)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        response = StreamResponse(
            Observable(endless), UIMessageEncoder("m"), max_queue=8, on_end=ends
        )
        await response(scope, receive, send)

    with (
        running(app) as url,
        socket.create_connection(_address(url)) as sock,
    ):
        sock.sendall(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
        sock.recv(1024)  # the headers and the first events; then the client stops reading
        # The source is disposed while the client is still connected, not reading.
        assert disposed.wait(10)
    (end,) = ends.wait()
    assert end.reason == "slow_client"
    # Only what the client's socket took was sent; the rest was held (at most max_queue
    # chunks) and then dropped.
    assert end.chunks < 8 * BURST_FACTOR


def test_a_runaway_burst_on_the_event_loop_is_cut_at_its_limit() -> None:
    """A source on the loop that emits without ever letting the loop run: past
    ``BURST_FACTOR`` times ``max_queue`` chunks it is disposed and the response ends with
    ``abort`` (``slow_client``), so even such a source cannot grow memory without bound."""
    ends = Ends()

    def burst(observer: Any, scheduler: Any = None) -> Any:
        disposed: list[bool] = []
        for index in range(4 * BURST_FACTOR + 50):
            if disposed:
                break
            observer.on_next(sk.Chunk(provider="openai", content=str(index)))
        observer.on_completed()
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
    assert end.chunks == 0  # the backlog is dropped: the abort goes out at once
    assert body.count("text-delta") == 0


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="max_queue"):
        StreamResponse(Observable(_never), UIMessageEncoder(), max_queue=0)
    with pytest.raises(ValueError, match="heartbeat"):
        StreamResponse(Observable(_never), UIMessageEncoder(), heartbeat=0)
