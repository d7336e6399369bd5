"""Followers: replay a stream from any entry id, then tail it with blocking ``XREAD``.

A follower reconnects by itself after a lost connection (resuming after the last entry
it delivered: nothing lost, nothing twice), and ends with a typed error rather than a
gap (:class:`StreamGapError`) or a hang (:class:`ProducerLostError`, after the
producer's lease expired with no terminal entry).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from streamkit.models import Chunk
from streamkit.redis._codec import Terminal, decode_chunk, decode_terminal
from streamkit.redis._errors import (
    ProducerError,
    ProducerLostError,
    StreamGapError,
    StreamNotFoundError,
)
from streamkit.redis._log import CHUNK_FIELD, END_FIELD, LOST, lease_key, parse_id, retrying
from streamkit.source import _event_loop, _on_loop_thread

__all__ = ["entries", "follow"]

BATCH = 500


async def entries(
    redis: aioredis.Redis,
    key: str,
    after: str = "0-0",
    *,
    poll: float = 1.0,
    retry_for: float = 30.0,
) -> AsyncIterator[tuple[str, Chunk | Terminal]]:
    """``(entry id, chunk)`` for each entry after ``after``, then ``(id, Terminal)`` last.

    ``poll``: seconds each blocking read waits before checking the producer's lease.
    Raises :class:`StreamNotFoundError`, :class:`StreamGapError`,
    :class:`ProducerLostError` or :class:`RedisUnavailableError`.
    """
    base, seq = parse_id(after)
    expected: tuple[int | None, int] = (None, 1) if (base, seq) == (0, 0) else (base, seq + 1)
    last = after

    async def read(block: int | None) -> Any:
        return await redis.xread({key: last}, count=BATCH, block=block)

    async def exists() -> tuple[int, int]:
        pipe = redis.pipeline(transaction=False)
        pipe.exists(key)
        pipe.exists(lease_key(key))
        stream, lease = await pipe.execute()
        return int(stream), int(lease)

    stream, lease = await retrying(key, exists, retry_for)
    if not stream and not lease:
        raise StreamNotFoundError(key)
    while True:
        response = await retrying(key, lambda: read(int(poll * 1000)), retry_for)
        if not response:
            stream, lease = await retrying(key, exists, retry_for)
            if lease:
                continue
            response = await retrying(key, lambda: read(None), retry_for)
            if not response:
                if not stream and last != after:
                    raise StreamGapError(key, last, None)  # expired under us
                if not stream:
                    raise StreamNotFoundError(key)
                raise ProducerLostError(key)
        for raw_id, fields in response[0][1]:
            entry_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            got = parse_id(entry_id)
            if (expected[0] is not None and got[0] != expected[0]) or got[1] != expected[1]:
                raise StreamGapError(key, last, entry_id)
            expected = (got[0], got[1] + 1)
            last = entry_id
            if END_FIELD in fields:
                yield entry_id, decode_terminal(fields[END_FIELD])
                return
            yield entry_id, decode_chunk(fields[CHUNK_FIELD])


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
                async for _, item in entries(redis, key, after, poll=poll, retry_for=retry_for):
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
