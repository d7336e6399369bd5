"""The faults of issue 13, each against a real Redis and the official OpenAI SDK on the
ReplayServer: no chunk lost, none duplicated, no hang, a clear error.

The issue's sizes run by default (10,000 entries behind, 1,000 followers, 50 followers
at a stop): the followers of one process share one blocking read, so they stay fast.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import reactivex
import redis.asyncio as aioredis
from reactivex import operators as rx_ops

import streamkit as sk
import streamkit.redis as skr
from streamkit import ops
from streamkit.testing import ReplayServer
from streamkit.testing.redis_server import RedisServer
from tests.redis_streams.helpers import (
    TcpProxy,
    collect,
    count_timeouts,
    producers_done,
    text_of,
    text_transcript,
    texts,
    until,
    xlen_at_least,
)

ROOT = Path(__file__).resolve().parents[2]


def _url(redis: aioredis.Redis) -> str:
    kwargs = redis.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/0"


async def _worker(*args: str) -> asyncio.subprocess.Process:
    """``python -m tests.redis_streams._worker ARGS`` with its stdout piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.redis_streams._worker",
        *args,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
    )


async def _lines(process: asyncio.subprocess.Process) -> AsyncIterator[str]:
    assert process.stdout is not None
    while line := await asyncio.wait_for(process.stdout.readline(), 30):
        yield line.decode().rstrip("\n")


def _exact(chunks: list[sk.Chunk]) -> None:
    """The chunks are the first ``len(chunks)`` deltas, in order, none twice."""
    got = [c.content for c in chunks if c.content]
    assert got == [f"w{i} " for i in range(len(got))]


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A server of the test's own, to restart (persistent: acknowledged writes survive)."""
    with RedisServer(persistent=True) as server:
        yield server


async def test_redis_restarted_mid_stream_producer_and_followers_resume(
    own_server: RedisServer,
) -> None:
    redis = aioredis.Redis.from_url(own_server.url)
    with ReplayServer(text_transcript(60), pace=0.01) as server:
        stream = sk.stream("openai", "m", "hi", client=server.client("openai", async_=True))
        live = asyncio.ensure_future(collect(stream.pipe(ops.publish(redis, "r", poll=0.2))))
        await until(lambda: redis.exists("r"))
        other = asyncio.ensure_future(collect(skr.follow(redis, "r", poll=0.2)))
        await until(lambda: xlen_at_least(redis, "r", 15))
        await asyncio.to_thread(own_server.restart)  # SIGKILL, then start on the same port
        chunks, others = await asyncio.gather(live, other)
        await producers_done()
        record = await asyncio.to_thread(server.wait_for_request_end)
    assert record.completed  # the producer kept the provider stream through the restart
    assert texts(chunks) == texts(others) == text_of(60)
    _exact(chunks)
    ids = [entry_id async for entry_id, _ in skr.entries(redis, "r")]
    assert [int(i.split("-")[1]) for i in ids] == list(range(1, len(ids) + 1))
    await redis.aclose()


async def test_redis_restarted_with_its_data_lost_is_a_typed_error() -> None:
    with RedisServer() as own:  # no persistence: the log is gone after the restart
        redis = aioredis.Redis.from_url(own.url)
        with ReplayServer(text_transcript(80), pace=0.01) as server:
            stream = sk.stream("openai", "m", "hi", client=server.client("openai", async_=True))
            live = asyncio.ensure_future(
                collect(stream.pipe(ops.publish(redis, "r", poll=0.2, lease=0.6)))
            )

            async def ten_entries() -> bool:
                if live.done():  # the follower ended before the restart: say how
                    raise AssertionError(f"ended early: {live.exception()!r}")
                return await xlen_at_least(redis, "r", 10)

            await until(ten_entries)
            await asyncio.to_thread(own.restart)
            with pytest.raises((skr.StreamGapError, skr.ProducerLostError)):
                await live
            await producers_done()
            record = await asyncio.to_thread(server.wait_for_request_end)
        assert record.disconnected  # the producer saw its lease gone and let go
        await redis.aclose()


async def test_redis_not_answering_times_out_and_the_retry_duplicates_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The producer writes chunk entries with replies off and confirms them in a round
    # trip it bounds by the client's socket_timeout itself (on the connection it holds):
    # a server that stops answering (SIGSTOP) makes that confirmation a timeout, the
    # connection is dropped, and the retry re-sends the unconfirmed ids with replies on.
    from reactivex.subject import Subject

    from streamkit.redis import _appender

    timeouts = count_timeouts(monkeypatch)

    with RedisServer() as own:
        redis = aioredis.Redis.from_url(own.url, socket_timeout=0.3)
        subject: Subject[sk.Chunk] = Subject()
        producer = asyncio.ensure_future(skr.produce(redis, "h", subject, lease=30))
        while not subject.observers:
            await asyncio.sleep(0.001)
        for i in range(5):
            subject.on_next(sk.Chunk(provider="openai", content=f"{i},"))
        await until(lambda: xlen_at_least(redis, "h", 5))
        assert own.pid is not None
        os.kill(own.pid, signal.SIGSTOP)
        try:
            for i in range(5, 10):
                subject.on_next(sk.Chunk(provider="openai", content=f"{i},"))
                # past the confirmation interval: the next write checks what Redis holds
                await asyncio.sleep(_appender.CONFIRM_AFTER / 2)
            await asyncio.sleep(1.0)  # a few round trips time out meanwhile
        finally:
            os.kill(own.pid, signal.SIGCONT)
        subject.on_completed()
        assert await producer == skr.Terminal("complete", None)
        assert timeouts  # the round trip in flight at the SIGSTOP timed out
        got = [item async for _, item in skr.entries(redis, "h")]
        assert [c.content for c in got[:-1] if isinstance(c, sk.Chunk)] == [
            f"{i}," for i in range(10)
        ]
        pool = redis.connection_pool
        # the connection went back to the pool as it was lent: with the client's timeout
        assert all(c.socket_timeout == 0.3 for c in pool._available_connections)
        await redis.aclose()


async def test_producer_process_killed_followers_get_lost_producer(
    redis: aioredis.Redis,
) -> None:
    with ReplayServer(text_transcript(300), pace=0.02) as server:
        producer = await _worker("produce", _url(redis), "k", f"{server.url}/v1", "1.0")
        await until(lambda: xlen_at_least(redis, "k", 10))
        follower = asyncio.ensure_future(collect(skr.follow(redis, "k", poll=0.2)))
        await until(lambda: xlen_at_least(redis, "k", 20))
        producer.send_signal(signal.SIGKILL)
        assert await producer.wait() == -signal.SIGKILL
        with pytest.raises(skr.ProducerLostError):
            await follower  # after the lease expired (1 s), not a hang
        # ...and a follower joining afterwards gets the same error at once.
        seen: list[sk.Chunk] = []
        with pytest.raises(skr.ProducerLostError):
            await collect(skr.follow(redis, "k", poll=0.2).pipe(rx_ops.do_action(seen.append)))
        record = await asyncio.to_thread(server.wait_for_request_end)
    assert record.disconnected and not record.completed
    _exact(seen)
    assert len(seen) >= 20


async def test_follower_process_killed_and_restarted_with_its_last_id(
    redis: aioredis.Redis,
) -> None:
    with ReplayServer(text_transcript(120), pace=0.01) as server:
        stream = sk.stream("openai", "m", "hi", client=server.client("openai", async_=True))
        live = asyncio.ensure_future(collect(stream.pipe(ops.publish(redis, "f", poll=0.2))))
        await until(lambda: redis.exists("f"))
        first = await _worker("follow", _url(redis), "f", "0-0")
        got: list[str] = []
        last = "0-0"
        async for line in _lines(first):
            last, _, content = line.partition(" ")
            got.append(content)
            if len(got) == 25:
                break
        first.send_signal(signal.SIGKILL)
        await first.wait()
        second = await _worker("follow", _url(redis), "f", last)
        end = ""
        async for line in _lines(second):
            if line.startswith(("END", "ERROR")):
                end = line
                break
            got.append(line.partition(" ")[2])
        assert await second.wait() == 0
        await live
    import json

    assert end == "END complete"
    assert "".join(json.loads(c) for c in got) == text_of(120)


async def test_network_cut_to_redis_producer_and_followers_resume(
    redis_server: RedisServer,
) -> None:
    proxy = TcpProxy(redis_server.port)
    redis = aioredis.Redis.from_url(proxy.url)
    await redis.flushdb()
    with ReplayServer(text_transcript(100), pace=0.01) as server:
        stream = sk.stream("openai", "m", "hi", client=server.client("openai", async_=True))
        live = asyncio.ensure_future(collect(stream.pipe(ops.publish(redis, "n", poll=0.2))))
        await until(lambda: xlen_at_least(redis, "n", 5))
        followers = [asyncio.ensure_future(collect(skr.follow(redis, "n", poll=0.2)))]
        for cut_at in (20, 40):
            await until(lambda: xlen_at_least(redis, "n", cut_at))  # noqa: B023
            proxy.drop()  # every connection reset
        await until(lambda: xlen_at_least(redis, "n", 60))
        proxy.cut()  # unreachable for a while
        await asyncio.sleep(0.5)
        proxy.restore()
        results = await asyncio.gather(live, *followers)
        await producers_done()
        record = await asyncio.to_thread(server.wait_for_request_end)
    assert record.completed
    for chunks in results:
        assert texts(chunks) == text_of(100)
        _exact(chunks)
    proxy.close()
    await redis.aclose()


async def test_redis_unreachable_for_good_is_a_typed_error(redis_server: RedisServer) -> None:
    proxy = TcpProxy(redis_server.port)
    redis = aioredis.Redis.from_url(proxy.url)
    await redis.flushdb()
    await skr.produce(redis, "u", reactivex.from_iterable([sk.Chunk(provider="openai")]))
    await redis.delete("u")
    await redis.xadd("u", {b"c": skr.encode_chunk(sk.Chunk(provider="openai"))}, id="1-1")
    await redis.set("u:lease", "someone", px=60_000)  # a producer that never writes
    follower = asyncio.ensure_future(collect(skr.follow(redis, "u", poll=0.2, retry_for=1.0)))
    await asyncio.sleep(0.3)
    proxy.cut()
    with pytest.raises(skr.RedisUnavailableError):
        await follower
    proxy.close()
    await redis.aclose()


async def test_a_follower_10000_entries_behind_gets_them_all(redis: aioredis.Redis) -> None:
    count = 10_000
    chunks = [sk.Chunk(provider="openai", content=f"w{i} ") for i in range(count)]
    terminal = await skr.produce(redis, "b", reactivex.from_iterable(chunks), maxlen=20_000)
    assert terminal is not None and terminal.state == "complete"
    got = await collect(skr.follow(redis, "b"), timeout=60)
    assert len(got) == count
    _exact(got)
    middle = [entry_id async for entry_id, _ in skr.entries(redis, "b")]
    assert len(middle) == count + 1
    rest = await collect(skr.follow(redis, "b", after=middle[count // 2 - 1]))
    assert texts(rest) == "".join(f"w{i} " for i in range(count // 2, count))


async def test_1000_followers_on_one_stream(redis: aioredis.Redis) -> None:
    count = 1000
    with ReplayServer(text_transcript(40), pace=0.01) as server:
        stream = sk.stream("openai", "m", "hi", client=server.client("openai", async_=True))
        producer = asyncio.ensure_future(collect(stream.pipe(ops.publish(redis, "many"))))
        await until(lambda: redis.exists("many:lease"))
        followers = [collect(skr.follow(redis, "many", poll=2.0), timeout=60) for _ in range(count)]
        results = await asyncio.gather(producer, *followers)
        await producers_done()
        assert len(server.requests) == 1
        assert server.wait_for_request_end().completed
    assert all(texts(chunks) == text_of(40) for chunks in results)
    assert len(results) == count + 1


async def test_stop_from_another_process_while_50_followers_read(
    redis: aioredis.Redis,
) -> None:
    with ReplayServer(text_transcript(400), pace=0.02) as server:
        stream = sk.stream("openai", "m", "hi", client=server.client("openai", async_=True))
        producer = asyncio.ensure_future(collect(stream.pipe(ops.publish(redis, "s", poll=0.2))))
        await until(lambda: redis.exists("s"))
        seen: list[list[sk.Chunk]] = [[] for _ in range(50)]
        followers = [
            asyncio.ensure_future(
                collect(skr.follow(redis, "s", poll=0.2).pipe(rx_ops.do_action(into.append)))
            )
            for into in seen
        ]
        await until(lambda: _all_have(seen, 5))
        stopper = await _worker("stop", _url(redis), "s")
        assert [line async for line in _lines(stopper)] == ["True"]
        assert await stopper.wait() == 0
        sent_at_stop = server.requests[0].events_sent
        results = await asyncio.gather(producer, *followers)
        await producers_done()
        record = await asyncio.to_thread(server.wait_for_request_end)
    assert record.disconnected and not record.completed
    assert record.events_sent <= sent_at_stop + 1  # closed within one event of the stop
    assert record.events_sent < record.events_total  # stopped mid-stream
    assert len({texts(chunks) for chunks in results}) == 1  # everyone saw the same
    _exact(results[0])
    assert text_of(400).startswith(texts(results[0]))
    terminal = [item async for _, item in skr.entries(redis, "s")][-1]
    assert isinstance(terminal, skr.Terminal) and terminal.state == "cancelled"


async def _all_have(seen: list[list[sk.Chunk]], n: int) -> bool:
    return all(len(chunks) >= n for chunks in seen)


async def test_two_worker_processes_racing_start_one_provider_request(
    redis: aioredis.Redis,
) -> None:
    with ReplayServer(text_transcript(30), pace=0.01) as server:
        args = ("produce", _url(redis), "race", f"{server.url}/v1", "5.0")
        workers = await asyncio.gather(_worker(*args), _worker(*args))
        outputs = []
        for worker in workers:
            outputs.append([line async for line in _lines(worker)])
        assert [await w.wait() for w in workers] == [0, 0]
        assert len(server.requests) == 1
        assert server.wait_for_request_end().completed
    import json

    assert [json.loads(out[-1]) for out in outputs] == [text_of(30)] * 2
