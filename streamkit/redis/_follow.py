"""Followers: replay a stream from any entry id, then tail it with blocking ``XREAD``.

A follower reconnects by itself after a lost connection (resuming after the last entry
it delivered: nothing lost, nothing twice), and ends with a typed error rather than a
gap (:class:`StreamGapError`) or a hang (:class:`ProducerLostError`, after the
producer's lease expired with no terminal entry).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import weakref
from collections.abc import AsyncGenerator
from typing import Any

import redis.asyncio as aioredis
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from streamkit._models import Chunk
from streamkit._source import _event_loop
from streamkit._timers import on_loop_thread as _on_loop_thread
from streamkit.redis._codec import Terminal, decode_chunk, decode_terminal
from streamkit.redis._errors import (
    ProducerError,
    ProducerLostError,
    StreamGapError,
    StreamNotFoundError,
)
from streamkit.redis._log import CHUNK_FIELD, END_FIELD, LOST, lease_key, parse_id, retrying

__all__ = ["entries", "follow"]

BATCH = 500
FIRST_BATCH = 20
CATCH_UP = 16
"""Followers of one key in one process that replay history at the same time."""

Entry = tuple[str, dict[bytes, bytes]]


def _decoded(response: Any) -> list[Entry]:
    if not response:
        return []
    return [
        (raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id), fields)
        for raw_id, fields in response[0][1]
    ]


async def _exists(redis: aioredis.Redis, key: str) -> tuple[int, int]:
    pipe = redis.pipeline(transaction=False)
    pipe.exists(key)
    pipe.exists(lease_key(key))
    stream, lease = await pipe.execute()
    return int(stream), int(lease)


async def _first_read(
    redis: aioredis.Redis, key: str, after: str, count: int
) -> tuple[list[Entry], int, int]:
    """The first entries after ``after`` and whether the stream and the lease exist, in
    one round trip: a resume's first missed entry costs no separate existence check."""
    pipe = redis.pipeline(transaction=False)
    pipe.xread({key: after}, count=count)
    pipe.exists(key)
    pipe.exists(lease_key(key))
    response, stream, lease = await pipe.execute()
    return _decoded(response), int(stream), int(lease)


_LIMITS: weakref.WeakValueDictionary[tuple[object, ...], asyncio.Semaphore] = (
    weakref.WeakValueDictionary()
)
"""The replay limit (:data:`CATCH_UP`) of each key's followers in this process, held by
its followers and its shared read while any is alive."""


def _limit(ident: tuple[object, ...]) -> asyncio.Semaphore:
    limit = _LIMITS.get(ident)
    if limit is None:
        limit = _LIMITS[ident] = asyncio.Semaphore(CATCH_UP)
    return limit


class _Tail:
    """The one blocking ``XREAD`` of a key in this process (per client, loop, ``poll``
    and ``retry_for``): it hands every new entry to each follower's queue, so a thousand
    followers cost one read per batch of entries and one connection, not a thousand.

    It ends once no follower is left (after its current read). On a read that timed
    out it checks the producer's lease and tells the followers
    ``("idle", (stream exists, lease held))``; a Redis error that outlived ``retry_for``
    goes to them as ``("error", error)``.
    """

    def __init__(
        self, redis: aioredis.Redis, key: str, start: str, poll: float, retry_for: float
    ) -> None:
        self.redis, self.key, self.poll, self.retry_for = redis, key, poll, retry_for
        self.position = start
        self.reads = 0
        self.queues: set[asyncio.Queue[tuple[str, Any]]] = set()
        self.task = asyncio.get_running_loop().create_task(self._run())
        self.limit = _limit(self.ident)

    def _tell(self, message: tuple[str, Any]) -> None:
        for queue in self.queues:
            queue.put_nowait(message)

    async def _read(self, block: int | None) -> list[Entry]:
        # The first read is short: a follower resuming gets its first entry at once.
        count = BATCH if self.reads else FIRST_BATCH
        self.reads += 1
        response = await retrying(
            self.key,
            lambda: self.redis.xread({self.key: self.position}, count=count, block=block),
            self.retry_for,
        )
        return _decoded(response)

    async def _run(self) -> None:
        try:
            while self.queues:
                batch = await self._read(int(self.poll * 1000))
                if not batch:
                    stream, lease = await retrying(
                        self.key, lambda: _exists(self.redis, self.key), self.retry_for
                    )
                    if not lease:  # it may have finished since the read: look again
                        batch = await self._read(None)
                    if not batch:
                        self._tell(("idle", (stream, lease)))
                        continue
                self.position = batch[-1][0]
                self._tell(("entries", batch))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._tell(("error", error))
        finally:
            _TAILS.pop(self.ident, None)

    @property
    def ident(self) -> tuple[object, ...]:
        return (self.task.get_loop(), id(self.redis), self.key, self.poll, self.retry_for)

    def leave(self, queue: asyncio.Queue[tuple[str, Any]]) -> None:
        """Stop handing entries to ``queue``. The read goes on until its current
        ``XREAD`` returns (at most ``poll``), then ends if no follower is left: cancelling
        a blocking read would keep its connection out of the pool until the server
        answers anyway, and a follower reconnecting meanwhile reuses it."""
        self.queues.discard(queue)


_TAILS: dict[tuple[object, ...], _Tail] = {}


def _join(
    redis: aioredis.Redis, key: str, after: str, poll: float, retry_for: float
) -> tuple[_Tail, asyncio.Queue[tuple[str, Any]]]:
    ident = (asyncio.get_running_loop(), id(redis), key, poll, retry_for)
    tail = _TAILS.get(ident)
    if tail is None or tail.task.done():
        tail = _TAILS[ident] = _Tail(redis, key, after, poll, retry_for)
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    tail.queues.add(queue)
    return tail, queue


async def entries(
    redis: aioredis.Redis,
    key: str,
    after: str = "0-0",
    *,
    poll: float = 1.0,
    retry_for: float = 30.0,
) -> AsyncGenerator[tuple[str, Chunk | Terminal], None]:
    """``(entry id, chunk)`` for each entry after ``after``, then ``(id, Terminal)`` last.

    ``poll``: seconds each blocking read waits before checking the producer's lease.
    The followers of one key in one process share one blocking read (and connection).
    Raises :class:`StreamNotFoundError`, :class:`StreamGapError`,
    :class:`ProducerLostError` or :class:`RedisUnavailableError`.
    """
    base, seq = parse_id(after)
    expected: tuple[int | None, int] = (None, 1) if (base, seq) == (0, 0) else (base, seq + 1)
    last = after

    def check(entry_id: str) -> None:
        nonlocal expected, last
        got = parse_id(entry_id)
        if (expected[0] is not None and got[0] != expected[0]) or got[1] != expected[1]:
            raise StreamGapError(key, last, entry_id)
        expected = (got[0], got[1] + 1)
        last = entry_id

    async def replay(count: int) -> Any:
        return await redis.xread({key: last}, count=count)

    # Replay straight from ``after`` before joining the shared read: a resume's first
    # missed entry is one round trip away, and never waits for a shared read that is
    # still elsewhere in the stream (it used to, reading its way there 500 at a time).
    limit = _limit((asyncio.get_running_loop(), id(redis), key, poll, retry_for))
    async with limit:
        batch, stream, lease = await retrying(
            key, lambda: _first_read(redis, key, after, FIRST_BATCH), retry_for
        )
    if not stream and not lease:
        raise StreamNotFoundError(key)
    count = FIRST_BATCH
    while batch:
        for entry_id, fields in batch:
            check(entry_id)
            if END_FIELD in fields:
                yield entry_id, decode_terminal(fields[END_FIELD])
                return
            yield entry_id, decode_chunk(fields[CHUNK_FIELD])
        if len(batch) < count:
            break  # caught up with the end of the stream as it was then
        count = BATCH
        async with limit:
            batch = _decoded(await retrying(key, functools.partial(replay, count), retry_for))

    # Then tail it. A new shared read starts at ``last``; one already running may be
    # behind (its entries up to ``last`` are skipped below) or ahead: what it passed
    # before this follower joined is read here first.
    tail, queue = _join(redis, key, last, poll, retry_for)
    try:
        joined_at = parse_id(tail.position)
        while parse_id(last) < joined_at:  # replay what the shared read had passed
            async with limit:
                response = await retrying(key, functools.partial(replay, BATCH), retry_for)
            batch = _decoded(response)
            if not batch:
                break
            for entry_id, fields in batch:
                check(entry_id)
                if END_FIELD in fields:
                    yield entry_id, decode_terminal(fields[END_FIELD])
                    return
                yield entry_id, decode_chunk(fields[CHUNK_FIELD])
        while True:
            kind, value = await queue.get()
            if kind == "error":
                raise value
            if kind == "idle":
                stream, lease = value
                if lease:
                    continue
                if not stream and last != after:
                    raise StreamGapError(key, last, None)  # expired under us
                if not stream:
                    raise StreamNotFoundError(key)
                raise ProducerLostError(key)
            for entry_id, fields in value:
                if parse_id(entry_id) <= parse_id(last):
                    continue  # replayed already
                check(entry_id)
                if END_FIELD in fields:
                    yield entry_id, decode_terminal(fields[END_FIELD])
                    return
                yield entry_id, decode_chunk(fields[CHUNK_FIELD])
    finally:
        tail.leave(queue)


def follow(
    redis: aioredis.Redis,
    key: str,
    after: str = "0-0",
    *,
    poll: float = 1.0,
    retry_for: float = 30.0,
) -> Observable[Chunk]:
    """The chunks of ``key``'s stream after entry ``after`` (``"0-0"``: all of them), as a
    cold ``Observable[Chunk]`` on the running asyncio loop (or an ``AsyncIOScheduler``'s).

    Completes on a ``complete`` or ``cancelled`` terminal entry; errors with
    :class:`ProducerError` on an ``error`` one. Disposing it only stops this follower,
    never the producer. See :func:`entries` for ``poll``, ``retry_for`` and the errors.
    """
    parse_id(after)  # a bad id is a ValueError at the call, not later

    def subscribe(
        observer: abc.ObserverBase[Chunk], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        loop = _event_loop(scheduler)
        holder: list[asyncio.Task[None]] = []
        disposed = False

        async def run() -> None:
            try:
                items = entries(redis, key, after, poll=poll, retry_for=retry_for)
                async with contextlib.aclosing(items):
                    async for _, item in items:
                        if disposed:
                            return
                        if isinstance(item, Terminal):
                            if item.error_type == LOST:
                                observer.on_error(ProducerLostError(key))
                            elif item.state == "error":
                                observer.on_error(ProducerError(key, item.error_type, item.message))
                            else:
                                observer.on_completed()
                            return
                        observer.on_next(item)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not disposed:
                    observer.on_error(error)

        def start() -> None:
            if not disposed:
                holder.append(loop.create_task(run()))

        def dispose() -> None:
            nonlocal disposed
            disposed = True

            def cancel() -> None:
                for task in holder:
                    if task is not asyncio.current_task():
                        task.cancel()

            if _on_loop_thread(loop):
                cancel()
            else:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(cancel)

        if _on_loop_thread(loop):
            start()
        else:
            loop.call_soon_threadsafe(start)
        return Disposable(dispose)

    return Observable(subscribe)
