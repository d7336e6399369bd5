"""publish: run a stream as a detached producer appending to a Redis Stream.

    stream.pipe(ops.publish(redis, "chat:42", ttl=3600, maxlen=10_000)).subscribe(...)

Subscribing takes the key's producer lease and starts the producer as its own asyncio
task: it keeps running when the subscriber goes away (a tab closed is not a stop; only
``sk.redis.stop`` is). The subscriber itself reads the stream back through Redis like
any follower, so every client sees the same entries. When another worker already holds
the lease, no request is made: the subscriber just follows that producer's stream.
Needs ``pip install streamkit[redis]``; the implementation lives in
``streamkit.redis._producer``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from reactivex import Observable, abc
from reactivex.disposable import SerialDisposable

from streamkit._models import Chunk
from streamkit._timers import on_loop_thread

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["publish"]

_PRODUCERS: set[asyncio.Task[object]] = set()
"""Running producers, kept referenced until they finish."""


def publish(
    redis: aioredis.Redis,
    key: str,
    *,
    ttl: float = 3600.0,
    maxlen: int = 10_000,
    lease: float = 10.0,
    poll: float = 1.0,
    retry_for: float = 30.0,
    linger: float = 0.0,
) -> Callable[[Observable[Chunk]], Observable[Chunk]]:
    """Publish the source's chunks to the Redis Stream ``key`` from a detached producer.

    ``ttl``: seconds a finished stream is kept; ``maxlen``: entries kept (``MAXLEN ~``);
    ``lease``: the producer lease's expiry (renewed while it runs); ``poll``: the
    follower's blocking read; ``retry_for``: seconds to retry an unreachable Redis;
    ``linger``: seconds a chunk may wait for others to share its ``XADD`` round trip
    (off by default: less CPU per chunk on a paced stream, that much more latency).
    """
    if maxlen < 1 or ttl <= 0 or lease <= 0 or linger < 0:
        raise ValueError("maxlen, ttl and lease must be positive, linger not negative")
    from streamkit._source import _event_loop
    from streamkit.redis._follow import follow
    from streamkit.redis._producer import acquire, produce

    def operator(source: Observable[Chunk]) -> Observable[Chunk]:
        def subscribe(
            observer: abc.ObserverBase[Chunk], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            loop = _event_loop(scheduler)
            inner = SerialDisposable()

            async def start() -> None:
                try:
                    token = await acquire(redis, key, lease, retry_for)
                except Exception as error:
                    observer.on_error(error)
                    return
                if token is not None:
                    task: asyncio.Task[object] = loop.create_task(
                        produce(
                            redis,
                            key,
                            source,
                            ttl=ttl,
                            maxlen=maxlen,
                            lease=lease,
                            retry_for=retry_for,
                            token=token,
                            linger=linger,
                        )
                    )
                    _PRODUCERS.add(task)
                    task.add_done_callback(_PRODUCERS.discard)
                if not inner.is_disposed:
                    inner.disposable = follow(redis, key, poll=poll, retry_for=retry_for).subscribe(
                        observer, scheduler=scheduler
                    )

            starter = loop.create_task(start()) if on_loop_thread(loop) else None
            if starter is None:
                loop.call_soon_threadsafe(lambda: _PRODUCERS.add(loop.create_task(start())))
            else:
                _PRODUCERS.add(starter)
                starter.add_done_callback(_PRODUCERS.discard)
            return inner

        return Observable(subscribe)

    return operator
