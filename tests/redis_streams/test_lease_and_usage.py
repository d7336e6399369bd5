"""The producer's lease, and the usage a stopped stream's terminal entry carries.

- A producer holding its lease longer than the lease's length keeps it while it runs
  (renewed every third of it): no other worker can start the chat, followers never see
  it as lost, and it is released at the end.
- A dead producer (``SIGKILL``) stops renewing: once the lease expires, followers get
  ``ProducerLostError`` and any worker can start the chat again (taking the lease
  clears the dead producer's partial answer: followers from the start get the new one).
- A stopped stream ends before the provider reports usage: the terminal entry carries
  streamkit's estimate (``source`` ``"estimated"``, or ``"mixed"`` when the provider
  had reported its input already) and its cost, the same figures ``ops.on_usage``
  reports for the stream (issue 14: usage on every exit path, a stop included).
"""

from __future__ import annotations

import asyncio
import signal

import pytest
import reactivex as rx
import redis.asyncio as aioredis
from reactivex.subject import Subject

import streamkit as sk
import streamkit.redis as skr
from streamkit import ops
from streamkit._ledger import UsageReport
from streamkit.redis._log import lease_key
from streamkit.redis._producer import acquire
from streamkit.testing import ReplayServer
from tests.redis_streams.helpers import (
    collect,
    producers_done,
    text_of,
    text_transcript,
    texts,
    until,
    xlen_at_least,
)
from tests.redis_streams.test_faults import _url, _worker


async def test_a_live_producer_keeps_its_lease_for_longer_than_the_lease(
    redis: aioredis.Redis,
) -> None:
    # Renewed every third of it. With 0.6 s this failed once in a run of the directory
    # beside two busy loops (not reproduced in four more; its assertion not captured):
    # a renewal that late is most likely, the loop sharing the GIL with the server's thread.
    lease = 1.0
    with ReplayServer(text_transcript(80), pace=0.05) as server:  # ~4 s: 4 leases
        stream = sk.stream("openai", "m", "hi", client=server.client("openai", async_=True))
        producer = asyncio.ensure_future(skr.produce(redis, "held", stream, lease=lease))
        await until(lambda: redis.exists(lease_key("held")))
        token = await redis.get(lease_key("held"))
        follower = asyncio.ensure_future(collect(skr.follow(redis, "held", poll=0.1)))
        loop = asyncio.get_running_loop()
        started = loop.time()
        checks = 0
        while not producer.done():
            # Still the same producer's, never expired, and no other worker gets it.
            held = await redis.get(lease_key("held"))
            if producer.done():
                break  # released at the end, just now
            assert held == token
            assert await acquire(redis, "held", lease, 1.0) is None
            checks += 1
            await asyncio.sleep(0.05)
        held_for = loop.time() - started
        terminal = await producer
        chunks = await follower
        assert server.wait_for_request_end().completed
    assert held_for > 3 * lease and checks > 10
    assert terminal is not None and terminal.state == "complete"
    assert texts(chunks) == text_of(80)  # the follower never took it for lost
    assert not await redis.exists(lease_key("held"))  # released at the end


async def test_a_dead_producers_lease_expires_and_the_chat_can_be_taken_over(
    redis: aioredis.Redis,
) -> None:
    with ReplayServer(text_transcript(300), pace=0.02) as server:
        producer = await _worker("produce", _url(redis), "t", f"{server.url}/v1", "1.0")
        await until(lambda: xlen_at_least(redis, "t", 10))
        follower = asyncio.ensure_future(collect(skr.follow(redis, "t", poll=0.2)))
        producer.send_signal(signal.SIGKILL)
        assert await producer.wait() == -signal.SIGKILL
        # Its lease outlives it for a while: nobody starts the chat twice meanwhile...
        assert await acquire(redis, "t", 1.0, 1.0) is None
        with pytest.raises(skr.ProducerLostError):
            await follower
        # ...then it expires, and the chat can be taken over.
        assert not await redis.exists(lease_key("t"))
        record = await asyncio.to_thread(server.wait_for_request_end)
        assert not record.completed
    with ReplayServer(text_transcript(20), pace=0.005) as server:
        stream = sk.stream("openai", "m", "hi", client=server.client("openai", async_=True))
        taken = await collect(stream.pipe(ops.publish(redis, "t", poll=0.2)))
        assert len(server.requests) == 1 and server.wait_for_request_end().completed
    await producers_done()
    assert texts(taken) == text_of(20)
    # A follower from the start reads the new answer alone: the dead one's is gone.
    assert texts(await collect(skr.follow(redis, "t"))) == text_of(20)
    terminal = [item async for _, item in skr.entries(redis, "t")][-1]
    assert isinstance(terminal, skr.Terminal) and terminal.state == "complete"


STOPPED = [
    # An OpenAI stream reports its usage in its last event: a stop estimates it all.
    ("openai", "gpt-4o-mini", text_transcript(300), 0.02, "estimated"),
    # Anthropic reports the input tokens first: a stop estimates only the output.
    ("anthropic", "claude-sonnet-4-0", "anthropic/messages-thinking", 0.05, "mixed"),
]


@pytest.mark.parametrize(
    ("provider", "model", "transcript", "pace", "source"),
    STOPPED,
    ids=["openai-estimated", "anthropic-mixed"],
)
async def test_a_stopped_streams_terminal_carries_estimated_usage_and_cost(
    redis: aioredis.Redis,
    provider: str,
    model: str,
    transcript: object,
    pace: float,
    source: str,
) -> None:
    reports: list[UsageReport] = []
    with ReplayServer(transcript, pace=pace) as server:  # type: ignore[arg-type]
        client = server.client(provider, async_=True)
        stream = sk.stream(provider, model, "hi", client=client).pipe(ops.on_usage(reports.append))
        producer = asyncio.ensure_future(skr.produce(redis, "stop", stream))
        await until(lambda: xlen_at_least(redis, "stop", 10))
        assert await skr.stop(redis, "stop")
        terminal = await producer
        record = await asyncio.to_thread(server.wait_for_request_end)
    assert record.disconnected and not record.completed  # stopped mid-stream
    assert terminal is not None and terminal.state == "cancelled"
    usage = terminal.usage
    assert usage is not None and usage.source == source
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    cost = terminal.cost
    assert cost is not None and cost.amount is not None and cost.amount > 0
    assert cost.usage_source == source
    # The same figures ops.on_usage reported for the stream, once.
    (report,) = reports
    assert report.outcome == "disposed"
    assert (report.usage, report.cost) == (usage, cost)
    # And that is what the log holds, for every follower.
    assert [item async for _, item in skr.entries(redis, "stop")][-1] == terminal


async def test_a_producer_leaves_no_task_or_connection_behind(
    redis: aioredis.Redis,
) -> None:
    # Its stop watcher's BLPOP is woken at the end, not cancelled: a cancel landing early
    # in the command was swallowed by redis-py and the watcher outlived produce() by a
    # second, and each cancelled BLPOP cost its connection.
    clients_before = len(await redis.client_list())
    for i in range(12):
        terminal = await skr.produce(
            redis, f"short:{i}", rx.of(sk.Chunk(provider="openai", content="x"))
        )
        assert terminal is not None and terminal.state == "complete"
        others = asyncio.all_tasks() - {asyncio.current_task()}
        assert not others, others
    assert len(await redis.client_list()) <= clients_before + 2
    assert await redis.keys("short:*:stop*") == []  # nor the stop or wake-up lists


async def test_a_producer_that_lost_its_lease_does_not_stop_the_next_one(
    redis: aioredis.Redis,
) -> None:
    # B holds the key's lease; A (whose lease was lost: a token that is not the lease's)
    # ends "lost" and wakes its own stop watcher: not through the key's stop list, which
    # B's watcher waits on too and would pop as a stop. (Found in review: it did.)
    source_b: Subject[sk.Chunk] = Subject()
    b = asyncio.ensure_future(skr.produce(redis, "k", source_b, lease=30))
    while not source_b.observers:
        await asyncio.sleep(0.001)
    source_b.on_next(sk.Chunk(provider="openai", content="b0"))
    await until(lambda: xlen_at_least(redis, "k", 1))
    a = await asyncio.wait_for(
        skr.produce(redis, "k", Subject(), lease=0.3, token="not-the-lease"), 10
    )
    assert a is not None and a.error_type is not None  # A: its lease lost
    await asyncio.sleep(0.3)
    assert not b.done(), b.result()
    source_b.on_completed()
    assert await asyncio.wait_for(b, 10) == skr.Terminal("complete", None)
    assert await redis.keys("k:stop*") == []
