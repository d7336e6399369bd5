"""publish / follow / stop end to end: the official OpenAI SDK against the ReplayServer,
a real Redis in between."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

import streamkit as sk
import streamkit.redis as skr
from streamkit import ops
from streamkit.redis._log import lease_key
from streamkit.testing import ReplayServer
from tests.redis_streams.helpers import collect, producers_done, texts

TRANSCRIPT = "openai/chat-text-after-tool-results"


def _expected() -> sk.CallResponse:
    with ReplayServer(TRANSCRIPT) as server:
        response: sk.CallResponse = (
            sk.stream("openai", "m", "hi", client=server.client("openai"))
            .pipe(ops.to_call_response())
            .run()
        )
    return response


async def test_publisher_and_late_followers_see_the_whole_answer(redis: aioredis.Redis) -> None:
    expected = _expected()
    with ReplayServer(TRANSCRIPT, pace=0.005) as server:
        stream = sk.stream("openai", "m", "hi", client=server.client("openai", async_=True))
        live = await collect(stream.pipe(ops.publish(redis, "chat:1", poll=0.2)))
        late = await collect(skr.follow(redis, "chat:1", poll=0.2))
        assert len(server.requests) == 1
        assert server.wait_for_request_end().completed
    assert texts(live) == texts(late) == expected.content
    assert [c.model_dump(exclude={"chunk"}) for c in live] == [
        c.model_dump(exclude={"chunk"}) for c in late
    ]
    await producers_done()
    assert await redis.ttl("chat:1") > 0  # finished streams expire
    assert not await redis.exists(lease_key("chat:1"))
    ids = [entry_id async for entry_id, _ in skr.entries(redis, "chat:1")]
    assert len(ids) == len(live) + 1  # one entry per chunk, then the terminal
    last = [item async for _, item in skr.entries(redis, "chat:1", ids[-2])]
    # The terminal carries the usage the provider reported, and its cost.
    assert last == [skr.Terminal("complete", expected.usage, cost=expected.cost)]
    assert expected.cost.amount is not None


async def test_resume_after_any_id_gives_exactly_the_rest(redis: aioredis.Redis) -> None:
    chunks = [sk.Chunk(provider="openai", content=str(i)) for i in range(20)]
    import reactivex

    terminal = await skr.produce(redis, "s", reactivex.from_iterable(chunks))
    assert terminal == skr.Terminal("complete", None)
    ids = [entry_id async for entry_id, _ in skr.entries(redis, "s")]
    for position, entry_id in enumerate(ids[:-1]):
        rest = await collect(skr.follow(redis, "s", after=entry_id))
        assert texts(rest) == "".join(str(i) for i in range(position + 1, 20))


async def test_stop_closes_the_provider_response_within_one_event(
    redis: aioredis.Redis,
) -> None:
    with ReplayServer(TRANSCRIPT, pace=0.05) as server:
        stream = sk.stream("openai", "m", "hi", client=server.client("openai", async_=True))
        seen: list[sk.Chunk] = []
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        stream.pipe(ops.publish(redis, "chat:2", poll=0.2)).subscribe(
            seen.append, done.set_exception, lambda: done.set_result(None)
        )
        while len(seen) < 3:
            await asyncio.sleep(0.01)
        other = aioredis.Redis.from_url(_url(redis))
        assert await skr.stop(other, "chat:2")
        await other.aclose()
        sent_at_stop = server.requests[0].events_sent
        await asyncio.wait_for(done, 10)
        record = server.wait_for_request_end()
    assert record.disconnected and not record.completed
    assert record.events_sent <= sent_at_stop + 1  # closed within one event of the stop
    terminal = [item async for _, item in skr.entries(redis, "chat:2")][-1]
    assert isinstance(terminal, skr.Terminal) and terminal.state == "cancelled"
    await producers_done()
    assert not await skr.stop(redis, "chat:2")  # nothing active any more


def _url(redis: aioredis.Redis) -> str:
    kwargs = redis.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/0"


async def test_follower_leaving_never_stops_the_producer(redis: aioredis.Redis) -> None:
    with ReplayServer(TRANSCRIPT, pace=0.01) as server:
        stream = sk.stream("openai", "m", "hi", client=server.client("openai", async_=True))
        seen: list[sk.Chunk] = []
        subscription = stream.pipe(ops.publish(redis, "chat:3", poll=0.2)).subscribe(seen.append)
        while len(seen) < 2:
            await asyncio.sleep(0.01)
        subscription.dispose()  # the tab closed
        whole = await collect(skr.follow(redis, "chat:3", poll=0.2))
        record = await asyncio.to_thread(server.wait_for_request_end)
    assert record.completed and not record.disconnected
    assert texts(whole) == _expected().content


async def test_second_publisher_follows_instead_of_requesting(redis: aioredis.Redis) -> None:
    with ReplayServer(TRANSCRIPT, pace=0.01) as server:
        client = server.client("openai", async_=True)
        first = sk.stream("openai", "m", "hi", client=client).pipe(ops.publish(redis, "chat:4"))
        second = sk.stream("openai", "m", "hi", client=client).pipe(ops.publish(redis, "chat:4"))
        a, b = await asyncio.gather(collect(first), collect(second))
        assert len(server.requests) == 1
    assert texts(a) == texts(b) == _expected().content


async def test_provider_error_reaches_followers_typed(redis: aioredis.Redis) -> None:
    with ReplayServer("openai/chat-error-404-model-not-found") as server:
        stream = sk.stream("openai", "m", "hi", client=server.client("openai", async_=True))
        with pytest.raises(skr.ProducerError) as info:
            await collect(stream.pipe(ops.publish(redis, "chat:5", poll=0.2)))
    assert info.value.error_type == "NotFoundError"


async def test_behind_retention_is_a_typed_error(redis: aioredis.Redis) -> None:
    import reactivex

    chunks = [sk.Chunk(provider="openai", content="x") for _ in range(500)]
    await skr.produce(redis, "trim", reactivex.from_iterable(chunks), maxlen=10)
    assert await redis.xlen("trim") < 200  # MAXLEN ~ trimmed the log
    with pytest.raises(skr.StreamGapError):
        await collect(skr.follow(redis, "trim"))
    with pytest.raises(skr.StreamNotFoundError):
        await collect(skr.follow(redis, "nothing-here"))
    with pytest.raises(ValueError):
        skr.follow(redis, "trim", after="not-an-id")


async def test_followers_coming_and_going_do_not_exhaust_the_connection_pool(
    redis: aioredis.Redis,
) -> None:
    import reactivex

    chunks = [sk.Chunk(provider="openai", content=f"w{i} ") for i in range(300)]
    await skr.produce(redis, "churn", reactivex.from_iterable(chunks))
    ids = [entry_id async for entry_id, _ in skr.entries(redis, "churn")]
    # More reconnects than redis-py's default pool (100 connections) within one poll.
    for position in range(150):
        items = skr.entries(redis, "churn", ids[position], poll=5.0, retry_for=2.0)
        entry_id, item = await items.__anext__()
        await items.aclose()
        assert entry_id == ids[position + 1]
        assert isinstance(item, sk.Chunk) and item.content == f"w{position + 1} "


async def test_a_slow_follower_never_makes_the_producer_wait(redis: aioredis.Redis) -> None:
    from reactivex.subject import Subject

    subject: Subject[sk.Chunk] = Subject()
    producer = asyncio.ensure_future(skr.produce(redis, "slow", subject))
    while not subject.observers:
        await asyncio.sleep(0.001)
    subject.on_next(sk.Chunk(provider="openai", content="w0 "))
    slow = skr.entries(redis, "slow", poll=0.2)
    _, first = await slow.__anext__()  # then it stops reading for a while
    for i in range(1, 2000):
        subject.on_next(sk.Chunk(provider="openai", content=f"w{i} "))
    subject.on_completed()
    terminal = await asyncio.wait_for(producer, 20)  # done without the follower reading
    assert terminal is not None and terminal.state == "complete"
    rest = [item async for _, item in slow]
    assert isinstance(first, sk.Chunk)
    texts = [first.content]
    for chunk in rest[:-1]:
        assert isinstance(chunk, sk.Chunk)
        texts.append(chunk.content)
    assert texts == [f"w{i} " for i in range(2000)]
    assert rest[-1] == terminal


async def test_resume_beside_a_shared_read_elsewhere_gives_exactly_the_rest(
    redis: aioredis.Redis,
) -> None:
    # A follower resuming reads from its own id first, then joins the key's shared read
    # wherever that is: still behind it (the shared read of a follower that was waiting
    # at the start when 1,500 entries arrived at once) or ahead of it. Either way: every
    # entry after its id, once, in order.
    from reactivex.subject import Subject

    from streamkit.redis._producer import acquire

    token = await acquire(redis, "live", 30.0, 5.0)
    assert token is not None
    subject: Subject[sk.Chunk] = Subject()
    producer = asyncio.ensure_future(skr.produce(redis, "live", subject, token=token))
    while not subject.observers:
        await asyncio.sleep(0.001)
    subject.on_next(sk.Chunk(provider="openai", content="0,"))

    async def rest(after: str) -> list[str]:
        got = []
        async for _, item in skr.entries(redis, "live", after, poll=0.2):
            if isinstance(item, skr.Terminal):
                return got
            got.append(item.content)
        raise AssertionError("no terminal entry")

    first = asyncio.ensure_future(rest("0-0"))  # caught up: waits on the shared read
    while await redis.xlen("live") < 1:
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)
    for i in range(1, 1500):
        subject.on_next(sk.Chunk(provider="openai", content=f"{i},"))
    while await redis.xlen("live") < 1500:
        await asyncio.sleep(0.001)
    ids = [entry_id.decode() for entry_id, _ in await redis.xrange("live")]
    resumed = {at: asyncio.ensure_future(rest(ids[at])) for at in (1200, 700, 10, 1499)}
    await asyncio.sleep(0.05)
    for i in range(1500, 1600):
        subject.on_next(sk.Chunk(provider="openai", content=f"{i},"))
    subject.on_completed()
    await producer
    assert await first == [f"{i}," for i in range(1600)]
    for at, task in resumed.items():
        assert await task == [f"{i}," for i in range(at + 1, 1600)]


async def test_linger_shares_round_trips_and_loses_nothing(redis: aioredis.Redis) -> None:
    from reactivex.subject import Subject

    with pytest.raises(ValueError, match="linger"):
        await skr.produce(redis, "x", Subject(), linger=-1)
    subject: Subject[sk.Chunk] = Subject()
    producer = asyncio.ensure_future(skr.produce(redis, "linger", subject, linger=0.05))
    while not subject.observers:
        await asyncio.sleep(0.001)
    for i in range(30):
        subject.on_next(sk.Chunk(provider="openai", content=f"{i},"))
        await asyncio.sleep(0.001)
    # which chunks shared a round trip depends on timing: every chunk once, in order
    subject.on_completed()
    assert await producer == skr.Terminal("complete", None)
    got = [item async for _, item in skr.entries(redis, "linger")]
    assert got[-1] == skr.Terminal("complete", None)
    assert "".join(c.content for c in got[:-1] if isinstance(c, sk.Chunk)) == "".join(
        f"{i}," for i in range(30)
    )
