"""The Redis integration says who ended a request: a stop (``streamkit.redis.stop``,
from another client) ends the producer's request span with ``disposed_by="stop"``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis
from opentelemetry.trace import SpanKind

import streamkit as sk
import streamkit.redis as skr
from streamkit import ops
from streamkit.testing import ReplayServer
from tests.redis_streams.helpers import producers_done
from tests.telemetry._harness import Telemetry, attrs


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    harness = Telemetry()
    try:
        yield harness
    finally:
        harness.close()


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_a_stop_is_disposed_by_stop(
    redis: aioredis.Redis, telemetry: Telemetry, async_: bool
) -> None:
    with ReplayServer("openai/chat-text-usage", pace=0.05) as server:
        client = server.client("openai", async_=async_)
        stream = sk.stream("openai", "m", "hi", client=client)
        seen: list[sk.Chunk] = []
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        stream.pipe(ops.publish(redis, "chat:t", poll=0.2)).subscribe(
            seen.append, done.set_exception, lambda: done.set_result(None)
        )
        while len(seen) < 3:
            await asyncio.sleep(0.01)
        assert await skr.stop(redis, "chat:t")
        await asyncio.wait_for(done, 10)
        await producers_done()
        await asyncio.to_thread(server.wait_for_request_end)
        if async_:
            await client.close()
    await asyncio.to_thread(telemetry.wait_for, 1, SpanKind.CLIENT)
    (span,) = telemetry.requests()
    telemetry.check_ended_once()
    assert attrs(span)["streamkit.end.outcome"] == "disposed"
    assert attrs(span)["streamkit.end.disposed_by"] == "stop"
    assert attrs(span)["streamkit.chunks"] >= 3
