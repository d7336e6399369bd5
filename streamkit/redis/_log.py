"""The layout of one stream in Redis, shared by the producer, followers and stop.

- ``key``: the Redis Stream. Entry ids are ``<base>-<seq>``: ``base`` is the producer's
  start time in ms, ``seq`` counts from 1 with no holes, so a follower can tell a gap
  (retention) from the end, and a producer's retried ``XADD`` of the same id is
  idempotent. A chunk entry has field ``c``, the terminal entry field ``end``.
- ``key:lease``: the producer's ``SET NX PX`` lease (a random token), renewed while it runs.
- ``key:stop``: a list; ``stop()`` pushes to it, the producer waits on it with ``BLPOP``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from streamkit.redis._errors import RedisUnavailableError

T = TypeVar("T")

CHUNK_FIELD = b"c"
END_FIELD = b"end"
LOST = "ProducerLostError"
"""The ``error_type`` of the terminal entry a producer writes when it lost its lease."""
TRANSIENT = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)


def lease_key(key: str) -> str:
    """The producer lease's key."""
    return f"{key}:lease"


def stop_key(key: str) -> str:
    """The stop list's key."""
    return f"{key}:stop"


def parse_id(entry_id: str) -> tuple[int, int]:
    """``(base, seq)`` of an entry id; ``ValueError`` for something that is not one."""
    base, _, seq = entry_id.partition("-")
    if not base.isdigit() or not seq.isdigit():
        raise ValueError(f"not a stream entry id: {entry_id!r}")
    return int(base), int(seq)


async def retrying(
    key: str, action: Callable[[], Awaitable[T]], retry_for: float, backoff: float = 0.05
) -> T:
    """Run ``action`` until it succeeds, retrying connection failures for ``retry_for`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + retry_for
    delay = backoff
    while True:
        try:
            return await action()
        except TRANSIENT as error:
            if loop.time() >= deadline:
                raise RedisUnavailableError(key, retry_for, error) from error
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
