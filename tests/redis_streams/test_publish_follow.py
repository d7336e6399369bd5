"""publish / follow / stop end to end: the official OpenAI SDK against the ReplayServer,
a real Redis in between."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
import redis.asyncio as aioredis

import streamkit as sk
import streamkit.redis as skr
from streamkit import ops
from streamkit.redis._log import lease_key, parse_id
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


async def _live(redis: aioredis.Redis, key: str) -> tuple[Any, asyncio.Future[Any]]:
    """A producer of ``key`` fed by hand: its subject and its task."""
    from reactivex.subject import Subject

    from streamkit.redis._producer import acquire

    token = await acquire(redis, key, 30.0, 5.0)
    assert token is not None
    subject: Subject[sk.Chunk] = Subject()
    producer = asyncio.ensure_future(skr.produce(redis, key, subject, token=token))
    while not subject.observers:
        await asyncio.sleep(0.001)
    return subject, producer


async def _rest(redis: aioredis.Redis, key: str, after: str) -> list[str]:
    got: list[str] = []
    async for _, item in skr.entries(redis, key, after, poll=0.2):
        if isinstance(item, skr.Terminal):
            return got
        got.append(item.content)
    raise AssertionError("no terminal entry")


async def _ids(redis: aioredis.Redis, key: str, count: int) -> list[str]:
    """The ids of the first ``count`` entries, once they are there."""
    while await redis.xlen(key) < count:
        await asyncio.sleep(0.001)
    entries = cast(list[tuple[bytes, Any]], await redis.xrange(key, count=count))
    return [entry_id.decode() for entry_id, _ in entries]


def _record_joins(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Where the key's shared read was when each follower joined it, against the
    follower's own position: "behind", "at" or "ahead"."""
    from streamkit.redis import _follow

    joins: list[str] = []
    join = _follow._join

    def recording(*args: Any) -> Any:
        tail, queue = join(*args)
        mine, shared = parse_id(args[2]), parse_id(tail.position)
        joins.append("behind" if shared < mine else "ahead" if shared > mine else "at")
        return tail, queue

    monkeypatch.setattr(_follow, "_join", recording)
    return joins


async def test_resume_with_the_shared_read_behind_gives_exactly_the_rest(
    redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A follower resuming reads from its own id, then joins the key's shared read,
    # which may still be catching up (held back here): what it brings again is skipped.
    from streamkit.redis import _follow

    joins = _record_joins(monkeypatch)
    slow = asyncio.Event()
    read = _follow._Tail._read

    async def held_back(self: Any, block: int | None) -> Any:
        if slow.is_set():
            await asyncio.sleep(0.3)
        return await read(self, block)

    monkeypatch.setattr(_follow._Tail, "_read", held_back)
    subject, producer = await _live(redis, "live")
    subject.on_next(sk.Chunk(provider="openai", content="0,"))
    first = asyncio.ensure_future(_rest(redis, "live", "0-0"))  # then on the shared read
    while joins != ["at"]:
        await asyncio.sleep(0.005)
    slow.set()
    for i in range(1, 1500):
        subject.on_next(sk.Chunk(provider="openai", content=f"{i},"))
    ids = await _ids(redis, "live", 1500)
    resumed = {at: asyncio.ensure_future(_rest(redis, "live", ids[at])) for at in (1200, 10)}
    while len(joins) < 3:
        await asyncio.sleep(0.005)
    slow.clear()
    subject.on_completed()
    await producer
    assert "behind" in joins[1:]
    assert await first == [f"{i}," for i in range(1500)]
    for at, task in resumed.items():
        assert await task == [f"{i}," for i in range(at + 1, 1500)]


async def test_resume_with_the_shared_read_ahead_gives_exactly_the_rest(
    redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Entries that arrive while a resuming follower's last replay read is in flight
    # are passed by the shared read before the follower joins it: it reads them itself.
    from streamkit.redis import _follow

    joins = _record_joins(monkeypatch)
    subject, producer = await _live(redis, "live")
    for i in range(100):
        subject.on_next(sk.Chunk(provider="openai", content=f"{i},"))
    first = asyncio.ensure_future(_rest(redis, "live", "0-0"))  # holds the shared read
    while joins != ["at"]:
        await asyncio.sleep(0.005)
    ids = await _ids(redis, "live", 100)
    first_read = _follow._first_read

    async def while_in_flight(*args: Any) -> Any:
        got = await first_read(*args)
        for i in range(100, 150):  # arrive meanwhile, and the shared read takes them
            subject.on_next(sk.Chunk(provider="openai", content=f"{i},"))
        while not any(parse_id(t.position)[1] >= 150 for t in _follow._TAILS.values()):
            await asyncio.sleep(0.005)
        return got

    monkeypatch.setattr(_follow, "_first_read", while_in_flight)
    late = asyncio.ensure_future(_rest(redis, "live", ids[98]))
    while len(joins) < 2:
        await asyncio.sleep(0.005)
    subject.on_completed()
    await producer
    assert joins[1] == "ahead"
    assert await first == [f"{i}," for i in range(150)]
    assert await late == [f"{i}," for i in range(99, 150)]


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
