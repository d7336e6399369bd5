"""Load: many concurrent SSE clients on one uvicorn worker against the paced replay
server. Default sizes keep the suite fast; ``STREAMKIT_SERVE_LOAD=full`` runs the full
size (500 clients completing, 100 disconnecting at random points)."""

from __future__ import annotations

import asyncio
import json
import os
import random
from typing import Any

import httpx
from reactivex import Observable

import streamkit as sk
from streamkit import ops
from streamkit.testing import ReplayServer, Reply
from tests.serve._harness import Ends, running

FULL = os.environ.get("STREAMKIT_SERVE_LOAD") == "full"
CLIENTS = 500 if FULL else 60
DISCONNECTING = 100 if FULL else 30
TRANSCRIPT = "openai/chat-text-usage"
LONG_TRANSCRIPT = "anthropic/messages-thinking"
"""118 provider events: clients leaving within the first 40 UI events leave mid-stream
with seconds of stream still to come, however loaded the machine."""
BODY = {
    "id": "c",
    "messages": [{"id": "u", "role": "user", "parts": [{"type": "text", "text": "hi"}]}],
}
RSS_BOUND_MB = 400
"""Growth allowed for the whole test process (server, replay server and clients)."""


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def app_for(replay: ReplayServer, ends: Ends, provider: str = "openai") -> Any:
    from streamkit.serve import chat_app

    client = replay.client(provider, async_=True, max_retries=0)

    def handler(messages: list[dict[str, Any]]) -> Observable[sk.Chunk]:
        return sk.stream(provider, "model", messages, client=client)

    return chat_app(handler, on_end=ends)


async def one(client: httpx.AsyncClient, url: str, leave_after: int | None) -> str:
    text = ""
    seen = 0
    async with client.stream("POST", f"{url}/api/chat", json=BODY) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: {"):
                continue
            seen += 1
            event = json.loads(line[6:])
            if event["type"] in ("text-delta", "reasoning-delta"):
                text += event["delta"]
            if leave_after is not None and seen >= leave_after:
                return "left"
    return text


async def crowd(url: str, plan: list[int | None]) -> list[str]:
    limits = httpx.Limits(max_connections=len(plan) + 10)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        return await asyncio.gather(*(one(client, url, leave) for leave in plan))


def test_many_concurrent_clients_all_complete_with_bounded_memory() -> None:
    ends = Ends()
    with ReplayServer(Reply(TRANSCRIPT, pace=0.01), keep_alive=False) as replay:
        expected = sk.stream("openai", "gpt", "hi", client=replay.client("openai"))
        expected_text = expected.pipe(ops.to_call_response()).run().content
        before = rss_mb()
        with running(app_for(replay, ends)) as url:
            texts = asyncio.run(crowd(url, [None] * CLIENTS))
        growth = rss_mb() - before
        assert replay.wait_until_idle(10)
    reference = texts[0]
    assert reference and all(text == reference for text in texts)
    assert reference == expected_text
    reports = ends.wait(CLIENTS)
    assert [end.reason for end in reports] == ["completed"] * CLIENTS
    assert growth < RSS_BOUND_MB, f"RSS grew by {growth:.0f} MB"


def test_clients_leaving_at_random_points_close_every_provider_connection() -> None:
    ends = Ends()
    rng = random.Random(12)
    plan: list[int | None] = [rng.randint(1, 40) for _ in range(DISCONNECTING)]
    with ReplayServer(Reply(LONG_TRANSCRIPT, pace=0.03), keep_alive=False) as replay:
        with running(app_for(replay, ends, "anthropic")) as url:
            outcomes = asyncio.run(crowd(url, plan))
            reports = ends.wait(DISCONNECTING)
        assert replay.wait_until_idle(10), f"{replay.open_connections} provider connections open"
        # A client that leaves at the first events may go before the provider request
        # was even sent: no request at all is also a closed connection.
        records = [replay.wait_for_request_end(i) for i in range(len(replay.requests))]
    assert outcomes == ["left"] * DISCONNECTING
    assert [end.reason for end in reports] == ["disconnected"] * DISCONNECTING
    assert records and all(record.disconnected and not record.completed for record in records)
