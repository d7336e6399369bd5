"""The producer's chunk writes (``_appender.py``): ``XADD`` with replies off, confirmed in
batches, sent again with replies on when Redis does not hold them; a server without
``CLIENT REPLY`` gets a round trip per write. Each against a real server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import types
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

import pytest
import redis.asyncio as aioredis
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex.subject import Subject
from redis.connection import Connection
from redis.exceptions import ResponseError

import streamkit as sk
import streamkit.redis as skr
from streamkit.redis import _appender, _producer
from streamkit.redis._appender import CONFIRM_EVERY, ChunkAppender, encode_xadd, xadd_prefix
from streamkit.testing.redis_server import RedisServer
from tests.redis_streams.helpers import (
    TcpProxy,
    count_timeouts,
    producers_done,
    until,
    xlen_at_least,
)

COMPLETE = skr.Terminal("complete", None)


@pytest.mark.parametrize(
    ("key", "maxlen", "entry_id", "data"),
    [
        ("chat:1", 10_000, "1733000000000-1", b'{"p":"openai","c":"hi"}'),
        ("ch\u00e4t:\u4e16\u754c", 1, "1-123456", b"\r\n$3\r\n*1\r\n\x00\xff"),
        ("k", 99, "0-0", b""),
    ],
)
def test_an_entry_is_encoded_as_redis_py_encodes_it(
    key: str, maxlen: int, entry_id: str, data: bytes
) -> None:
    # redis-py's own encoding (its Connection is untyped)
    connection: Any = Connection()  # type: ignore[no-untyped-call]
    packed = connection.pack_command("XADD", key, "MAXLEN", "~", maxlen, entry_id, b"c", data)
    ours = encode_xadd(xadd_prefix(key.encode(), maxlen), entry_id.encode(), data)
    assert ours == b"".join(packed)


@pytest.fixture
async def own_redis() -> AsyncIterator[tuple[RedisServer, aioredis.Redis]]:
    """A server of the test's own (its statistics count this test's commands only)."""
    with RedisServer() as server:
        client = aioredis.Redis.from_url(server.url)
        yield server, client
        await producers_done()
        await client.aclose()


async def _stats(redis: aioredis.Redis) -> tuple[dict[str, int], int]:
    commands = await redis.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in commands.items()}
    return calls, int((await redis.info("stats"))["total_net_output_bytes"])


async def _contents(redis: aioredis.Redis, key: str) -> tuple[list[str | None], Any]:
    items = [item async for _, item in skr.entries(redis, key)]
    return [c.content for c in items[:-1] if isinstance(c, sk.Chunk)], items[-1]


async def _producing(redis: aioredis.Redis, key: str) -> tuple[Subject[sk.Chunk], Any]:
    subject: Subject[sk.Chunk] = Subject()
    producer = asyncio.ensure_future(skr.produce(redis, key, subject, lease=30))
    while not subject.observers:
        await asyncio.sleep(0.001)
    return subject, producer


async def _refused(redis: aioredis.Redis, at_least: int) -> bool:
    errors = await redis.info("errorstats")
    return int(errors.get("errorstat_OOM", {}).get("count", 0)) >= at_least


@contextlib.asynccontextmanager
async def out_of_memory(redis: aioredis.Redis) -> AsyncIterator[None]:
    """Redis refuses writes (``maxmemory`` 1 byte, no eviction) inside the block."""
    await redis.config_set("maxmemory-policy", "noeviction")
    await redis.config_set("maxmemory", 1)
    try:
        yield
    finally:
        await redis.config_set("maxmemory", 0)


async def test_chunk_entries_go_without_replies_and_are_confirmed(
    own_redis: tuple[RedisServer, aioredis.Redis],
) -> None:
    _, redis = own_redis
    count = 3 * CONFIRM_EVERY
    before, sent_before = await _stats(redis)
    subject, producer = await _producing(redis, "s")
    for i in range(count):
        subject.on_next(sk.Chunk(provider="openai", content=f"{i},"))
        if i % 50 == 0:
            await asyncio.sleep(0)  # let the producer write as it goes
    subject.on_completed()
    assert await producer == COMPLETE
    after, sent_after = await _stats(redis)
    assert await _contents(redis, "s") == ([f"{i}," for i in range(count)], COMPLETE)
    assert after["xadd"] - before.get("xadd", 0) >= count + 1
    # confirmed in batches: at least one check per CONFIRM_EVERY entries, not one a chunk
    checks = after.get("xinfo|stream", 0) - before.get("xinfo|stream", 0)
    assert 1 <= checks <= count // 16
    # replies off: an XADD's reply (its id, ~24 bytes) was not sent for each chunk
    assert (sent_after - sent_before) < 8 * count


async def test_entries_redis_refused_at_the_end_are_sent_again(
    own_redis: tuple[RedisServer, aioredis.Redis],
) -> None:
    # Redis out of memory refuses the last XADDs (their error replies are off); the
    # confirmation before the terminal entry finds them missing and sends them again.
    _, redis = own_redis
    subject, producer = await _producing(redis, "m")
    for i in range(3):
        subject.on_next(sk.Chunk(provider="openai", content=f"{i},"))
    await until(lambda: xlen_at_least(redis, "m", 3))
    async with out_of_memory(redis):
        for i in range(3, 6):
            subject.on_next(sk.Chunk(provider="openai", content=f"{i},"))
        await until(lambda: _refused(redis, 3))
    subject.on_completed()
    assert await producer == COMPLETE
    assert await _contents(redis, "m") == ([f"{i}," for i in range(6)], COMPLETE)


async def test_a_refused_entry_followed_by_a_taken_one_is_an_error(
    own_redis: tuple[RedisServer, aioredis.Redis],
) -> None:
    # Entry 2 refused, entry 3 taken: 2 cannot be added behind 3 (ids only grow), so the
    # producer says so instead of leaving a silent gap.
    _, redis = own_redis
    subject, producer = await _producing(redis, "g")
    subject.on_next(sk.Chunk(provider="openai", content="0,"))
    await until(lambda: xlen_at_least(redis, "g", 1))
    async with out_of_memory(redis):
        subject.on_next(sk.Chunk(provider="openai", content="1,"))
        await until(lambda: _refused(redis, 1))
    subject.on_next(sk.Chunk(provider="openai", content="2,"))
    subject.on_completed()
    with pytest.raises(skr.RedisStreamError, match="holds 2 of the 3 chunk entries"):
        await producer
    with pytest.raises(skr.StreamGapError):  # and a follower is told, not left a gap
        await _contents(redis, "g")


async def test_an_entry_on_a_key_that_is_no_longer_a_stream_raises_redis_error(
    own_redis: tuple[RedisServer, aioredis.Redis],
) -> None:
    _, redis = own_redis
    subject, producer = await _producing(redis, "w")
    subject.on_next(sk.Chunk(provider="openai", content="0,"))
    await until(lambda: xlen_at_least(redis, "w", 1))
    await redis.delete("w")
    await redis.set("w", "not a stream")
    subject.on_next(sk.Chunk(provider="openai", content="1,"))
    subject.on_completed()
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await producer


async def test_a_server_without_client_reply_gets_a_round_trip_per_write() -> None:
    with RedisServer(server_args=["--rename-command", "CLIENT", ""]) as server:
        redis = aioredis.Redis.from_url(server.url)
        subject, producer = await _producing(redis, "o")
        for i in range(40):
            subject.on_next(sk.Chunk(provider="openai", content=f"{i},"))
            await asyncio.sleep(0)
        subject.on_completed()
        assert await producer == COMPLETE
        assert await _contents(redis, "o") == ([f"{i}," for i in range(40)], COMPLETE)
        calls, _ = await _stats(redis)
        assert "xinfo|stream" not in calls  # every XADD's reply was read instead
        await producers_done()
        await redis.aclose()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="3.10 bounds each write by wait_for")
async def test_a_write_redis_does_not_take_times_out_and_is_sent_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Redis stopped (SIGSTOP) while megabytes of entries go out: the buffers fill, the
    # write blocks; the producer's one write timer cancels it after the client's
    # socket_timeout, and the retry sends the unconfirmed entries again once Redis is
    # back. Nothing lost, nothing twice.
    timeouts = count_timeouts(monkeypatch)
    big = "x" * 200_000
    with RedisServer() as own:
        redis = aioredis.Redis.from_url(own.url, socket_timeout=0.3)
        subject, producer = await _producing(redis, "t")
        subject.on_next(sk.Chunk(provider="openai", content="start"))
        await until(lambda: xlen_at_least(redis, "t", 1))
        assert own.pid is not None
        os.kill(own.pid, signal.SIGSTOP)
        try:
            for i in range(40):
                subject.on_next(sk.Chunk(provider="openai", content=f"{i}:{big}"))
                await asyncio.sleep(0)

            async def write_timed_out() -> bool:
                return any("writes" in message for message in timeouts)

            await until(write_timed_out)
        finally:
            os.kill(own.pid, signal.SIGCONT)
        subject.on_completed()
        assert await producer == COMPLETE
        assert await _contents(redis, "t") == (
            ["start"] + [f"{i}:{big}" for i in range(40)],
            COMPLETE,
        )
        await producers_done()
        await redis.aclose()


async def test_a_paced_chunk_is_written_in_the_sources_callback(
    own_redis: tuple[RedisServer, aioredis.Redis], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each chunk is taken in the source's callback (take): written at once when the
    # connection is ready, the producer's task not woken. It runs once, for the first
    # chunk (to take the connection and turn replies off), and never gets a chunk.
    _, redis = own_redis
    added: list[int] = []
    add = ChunkAppender.add

    async def counting_add(self: ChunkAppender, batch: list[bytes]) -> None:
        added.append(len(batch))
        await add(self, batch)

    monkeypatch.setattr(ChunkAppender, "add", counting_add)
    subject, producer = await _producing(redis, "p")
    for i in range(40):
        subject.on_next(sk.Chunk(provider="openai", content=f"{i},"))
        await until(lambda i=i: xlen_at_least(redis, "p", i + 1))  # written as it came
    subject.on_completed()
    assert await producer == COMPLETE
    assert await _contents(redis, "p") == ([f"{i}," for i in range(40)], COMPLETE)
    assert added == [0]


async def test_chunks_of_one_pass_of_the_loop_are_written_together(
    own_redis: tuple[RedisServer, aioredis.Redis],
) -> None:
    # A burst in one callback: the first chunk is written at once, the rest join one
    # write at the end of the loop's pass; Redis reads them as a few reads, not 300.
    _, redis = own_redis
    subject, producer = await _producing(redis, "b")
    subject.on_next(sk.Chunk(provider="openai", content="first"))
    await until(lambda: xlen_at_least(redis, "b", 1))
    reads_before = int((await redis.info("stats"))["total_reads_processed"])
    for i in range(300):
        subject.on_next(sk.Chunk(provider="openai", content=f"{i},"))
    await until(lambda: xlen_at_least(redis, "b", 301))
    reads = int((await redis.info("stats"))["total_reads_processed"]) - reads_before
    subject.on_completed()
    assert await producer == COMPLETE
    assert await _contents(redis, "b") == (["first"] + [f"{i}," for i in range(300)], COMPLETE)
    # ~25 KB in two writes: Redis reads 16 KB at a time; the test's own commands (INFO,
    # XLEN polls) take a few more reads
    assert reads < 40


Step = tuple[Literal["burst", "pause", "drop"], int]

steps = st.lists(
    st.tuples(
        st.sampled_from(["burst", "burst", "pause", "drop"]), st.integers(min_value=0, max_value=12)
    ),
    max_size=12,
)


def test_any_schedule_of_bursts_pauses_and_drops_writes_each_chunk_once_in_order(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chunks written at once, kept for the loop's pass and queued for the producer's
    # task, with confirmations every 5 entries and the network reset at random points:
    # the stream holds each chunk once, in order.
    monkeypatch.setattr(_appender, "CONFIRM_EVERY", 5)
    proxy = TcpProxy(redis_server.port)

    @settings(max_examples=30, deadline=None)
    @given(schedule=steps)
    def prop(schedule: list[Step]) -> None:
        async def run() -> tuple[list[str | None], Any, list[str]]:
            redis = aioredis.Redis.from_url(proxy.url)
            key = f"sched:{uuid.uuid4().hex}"
            sent: list[str] = []
            try:
                subject, producer = await _producing(redis, key)
                for kind, count in schedule:
                    if kind == "burst":  # in one callback of the loop
                        for _ in range(count):
                            sent.append(f"{len(sent)},")
                            subject.on_next(sk.Chunk(provider="openai", content=sent[-1]))
                    elif kind == "pause":
                        await asyncio.sleep(count / 2000)
                    else:
                        proxy.drop()  # every connection reset, the producer's included
                        await asyncio.sleep(0)
                subject.on_completed()
                assert await asyncio.wait_for(producer, 30) == COMPLETE
                return (*await _contents(redis, key), sent)
            finally:
                await producers_done()
                await redis.aclose()

        contents, terminal, sent = asyncio.run(run())
        assert terminal == COMPLETE
        assert contents == sent

    try:
        prop()
    finally:
        proxy.close()


async def test_with_a_write_in_flight_a_chunk_waits_behind_it(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Python 3.10's bound on a write (asyncio.wait_for) runs it in a task of its own, a
    # pass of the loop later: a chunk taken meanwhile must not be written before it.
    # (Found in review: it was, Redis refused the earlier ids and the stream failed.)
    monkeypatch.setattr(_appender, "sys", types.SimpleNamespace(version_info=(3, 10, 0)))
    monkeypatch.setattr(_appender, "CONFIRM_EVERY", 5)
    redis = aioredis.Redis.from_url(redis_server.url, socket_timeout=5)
    key = f"r310:{uuid.uuid4().hex}"
    try:
        subject, producer = await _producing(redis, key)
        sent = [f"{i}," for i in range(500)]
        for part in sent:
            subject.on_next(sk.Chunk(provider="openai", content=part))
            await asyncio.sleep(0)
        subject.on_completed()
        assert await asyncio.wait_for(producer, 30) == COMPLETE
        assert await _contents(redis, key) == (sent, COMPLETE)
    finally:
        await producers_done()
        await redis.aclose()


async def test_nothing_handed_over_after_the_end_is_taken() -> None:
    # A sync source's thread can hand a chunk over (call_soon_threadsafe) just as a stop
    # disposes the source: it lands after the end and must not be taken, or it would
    # take the terminal entry's id. (Found in review.)
    taken: list[sk.Chunk] = []

    def take_now(chunk: sk.Chunk) -> bool:
        taken.append(chunk)
        return True

    inbox = _producer._Inbox(asyncio.get_running_loop(), take_now)
    inbox.put(sk.Chunk(provider="openai", content="before"))
    inbox.put(_producer._End("stop"))
    inbox.put(sk.Chunk(provider="openai", content="late"))
    items = await inbox.wait()
    assert [c.content for c in taken] == ["before"]
    assert [type(item) for item in items] == [_producer._End]
    # nor after the producer ended on an error (no _End: it closes its inbox)
    failed = _producer._Inbox(asyncio.get_running_loop(), take_now)
    failed.close()
    failed.put(sk.Chunk(provider="openai", content="after an error"))
    assert [c.content for c in taken] == ["before"]
