"""ops.publish with reactivex.testing: the source's subscription and dispose times on a
TestScheduler (virtual time advanced by the test) while the producer runs on asyncio.

A reader leaving never disposes the source (the subscription stays open, no dispose
time); a stop disposes it at the virtual time of the stop, before the next event."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import redis.asyncio as aioredis
from reactivex.testing import TestScheduler
from reactivex.testing.reactivetest import ReactiveTest
from reactivex.testing.subscription import Subscription

import streamkit as sk
import streamkit.redis as skr
from streamkit import ops
from tests.redis_streams.helpers import producers_done

on_next, on_completed = ReactiveTest.on_next, ReactiveTest.on_completed


def chunk(text: str) -> sk.Chunk:
    return sk.Chunk(provider="openai", content=text)


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not met in time")


async def test_a_reader_leaving_keeps_the_subscription_a_stop_disposes_it(
    redis: aioredis.Redis,
) -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(
        on_next(100, chunk("a")),
        on_next(200, chunk("b")),
        on_next(300, chunk("c")),
        on_completed(400),
    )
    seen: list[sk.Chunk] = []
    reader = source.pipe(ops.publish(redis, "m", poll=0.1)).subscribe(seen.append)
    await _until(lambda: len(source.subscriptions) == 1)
    scheduler.advance_to(150)
    await _until(lambda: len(seen) == 1)
    reader.dispose()  # the tab closed at 150
    scheduler.advance_to(250)
    assert source.subscriptions == [Subscription(0)]  # still subscribed: no dispose time
    while await redis.xlen("m") < 2:
        await asyncio.sleep(0.005)
    assert await skr.stop(redis, "m")  # at 250
    await _until(lambda: source.subscriptions != [Subscription(0)])
    assert source.subscriptions == [Subscription(0, 250)]
    scheduler.advance_to(500)  # "c" at 300 is never emitted to the producer
    await producers_done()
    items = [item async for _, item in skr.entries(redis, "m")]
    assert [c.content for c in items[:-1]] == ["a", "b"]  # type: ignore[union-attr]
    assert items[-1] == skr.Terminal("cancelled", None)
    assert [c.content for c in seen] == ["a"]


async def test_a_completed_source_is_disposed_once_at_its_end(redis: aioredis.Redis) -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(
        on_next(10, chunk("x")), on_next(20, chunk("y")), on_completed(30)
    )
    first: list[sk.Chunk] = []
    second: list[sk.Chunk] = []
    source.pipe(ops.publish(redis, "n", poll=0.1)).subscribe(first.append)
    await _until(lambda: len(source.subscriptions) == 1)
    # A second publisher of the same key follows; it never subscribes to its source.
    other = scheduler.create_cold_observable(on_next(5, chunk("never")), on_completed(6))
    other.pipe(ops.publish(redis, "n", poll=0.1)).subscribe(second.append)
    scheduler.advance_to(40)
    await producers_done()
    await _until(lambda: len(first) == 2 and len(second) == 2)
    assert source.subscriptions == [Subscription(0, 30)]
    assert other.subscriptions == []  # one producer per key: no second request
    assert [c.content for c in first] == [c.content for c in second] == ["x", "y"]
