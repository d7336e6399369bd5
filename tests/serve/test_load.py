"""Load: many concurrent SSE clients on one uvicorn worker against the paced replay
server, at the size the serve issue sets: 500 concurrent clients that all complete,
100 that disconnect at random points. ``STREAMKIT_SERVE_LOAD=quick`` runs 60 and 30
instead, for a quick local run; the suite runs the full size."""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections import Counter
from typing import Any

import httpx
import pytest
from reactivex import Observable

import streamkit as sk
from streamkit import ops
from streamkit.testing import ReplayServer, Reply
from tests.serve._harness import Ends, running

QUICK = os.environ.get("STREAMKIT_SERVE_LOAD") == "quick"
CLIENTS = 60 if QUICK else 500
DISCONNECTING = 30 if QUICK else 100
pytestmark = pytest.mark.timeout(240)  # the full size takes 15-35 s on 2 cores
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

    # The SDKs' connect timeout is 5 s: hundreds of requests started at once on a busy
    # 2-core machine (clients, server and replay server in this one process) can take
    # longer to get their connect seen by the loop. What is measured is the transport,
    # so the provider client waits as long as the test's clients do.
    client = replay.client(provider, async_=True, max_retries=0, timeout=60.0)

    def handler(messages: list[dict[str, Any]]) -> Observable[sk.Chunk]:
        return sk.stream(provider, "model", messages, client=client)

    return chat_app(handler, on_end=ends)


async def one(client: httpx.AsyncClient, url: str, leave_after: int | None) -> str:
    """The text the client read, ``"left"`` when it left as planned, or what ended its
    stream otherwise (``"error: ..."``, ``"abort"``)."""
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
            elif event["type"] == "error":
                return f"error: {event['errorText']}"
            elif event["type"] == "abort":
                return "abort"
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
    reports = ends.wait(CLIENTS)
    outcomes = Counter("the text" if text == expected_text else text for text in texts)
    failures = Counter(f"{end.reason}: {end.error!r}" for end in reports if end.error)
    assert outcomes == {"the text": CLIENTS}, f"{outcomes}; {failures}"
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
