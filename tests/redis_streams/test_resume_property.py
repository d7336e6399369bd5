"""Hypothesis: for any schedule of client disconnects (resume from the last entry id) and
network drops (every connection to Redis reset, the producer's too), the chunks a client
sees are the producer's output exactly: none lost, none twice, in order."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Literal

import redis.asyncio as aioredis
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex.subject import Subject

import streamkit as sk
import streamkit.redis as skr
from streamkit.testing.redis_server import RedisServer
from tests.redis_streams.helpers import TcpProxy

Action = tuple[Literal["resume", "drop"], int]

actions = st.lists(
    st.tuples(st.sampled_from(["resume", "drop"]), st.integers(min_value=0, max_value=8)),
    max_size=6,
)
contents = st.lists(st.text(max_size=4), min_size=0, max_size=30)


async def _produce(redis: aioredis.Redis, key: str, parts: list[str]) -> None:
    subject: Subject[sk.Chunk] = Subject()
    producer = asyncio.ensure_future(skr.produce(redis, key, subject, retry_for=10))
    while not subject.observers:  # the producer took the lease and subscribed
        await asyncio.sleep(0.001)
    for part in parts:  # paced: the client reads live, not only history
        subject.on_next(sk.Chunk(provider="openai", content=part))
        await asyncio.sleep(0.001)
    subject.on_completed()
    await producer


async def _client(
    redis: aioredis.Redis, key: str, schedule: list[Action], proxy: TcpProxy
) -> list[str]:
    seen: list[str] = []
    last = "0-0"
    steps = list(schedule)
    while True:
        kind, count = steps.pop(0) if steps else ("end", -1)
        items = skr.entries(redis, key, last, poll=0.1, retry_for=10)
        async with contextlib.aclosing(items):
            async for entry_id, item in items:
                last = entry_id
                if isinstance(item, skr.Terminal):
                    assert item.state == "complete"
                    return seen
                seen.append(item.content)
                if count == 0 and kind == "drop":
                    proxy.drop()  # every connection reset, the producer's included
                    kind, count = steps.pop(0) if steps else ("end", -1)
                elif count == 0:
                    break  # the client goes away; it comes back with its last id
                count -= 1


def test_any_disconnect_schedule_gives_the_producers_output_exactly(
    redis_server: RedisServer,
) -> None:
    proxy = TcpProxy(redis_server.port)

    @settings(max_examples=25)
    @given(parts=contents, schedule=actions)
    def prop(parts: list[str], schedule: list[Action]) -> None:
        async def run() -> list[str]:
            redis = aioredis.Redis.from_url(proxy.url)
            key = f"prop:{uuid.uuid4().hex}"
            try:
                producer = asyncio.ensure_future(_produce(redis, key, parts))
                while not await redis.exists(f"{key}:lease") and not producer.done():
                    await asyncio.sleep(0.001)
                seen = await asyncio.wait_for(_client(redis, key, schedule, proxy), 30)
                await producer
                return seen
            finally:
                await redis.aclose()

        assert asyncio.run(run()) == parts

    try:
        prop()
    finally:
        proxy.close()
