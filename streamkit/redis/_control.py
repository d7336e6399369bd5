"""Stopping a stream from any process, and asking whether one is active."""

from __future__ import annotations

import redis.asyncio as aioredis

from streamkit.redis._log import lease_key, stop_key

__all__ = ["is_active", "stop"]


async def stop(redis: aioredis.Redis, key: str) -> bool:
    """Ask ``key``'s producer to stop (from any process or worker).

    Returns whether a producer was active. The producer closes the provider's HTTP
    response as soon as it sees the request and writes a ``cancelled`` terminal entry
    with the usage so far; followers then complete.
    """
    if not await redis.exists(lease_key(key)):
        return False
    pipe = redis.pipeline(transaction=True)
    pipe.rpush(stop_key(key), b"1")
    pipe.expire(stop_key(key), 60)
    await pipe.execute()
    return True


async def is_active(redis: aioredis.Redis, key: str) -> bool:
    """Whether a producer currently holds ``key``'s lease."""
    return bool(await redis.exists(lease_key(key)))
