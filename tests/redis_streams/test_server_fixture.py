"""The session fixture runs a real server (no fake): it answers the Streams commands."""

from __future__ import annotations

import os
from typing import cast

import redis.asyncio as aioredis

from streamkit.testing.redis_server import RedisServer


async def test_real_server_speaks_streams(redis: aioredis.Redis, redis_server: RedisServer) -> None:
    assert redis_server.pid is not None
    os.kill(redis_server.pid, 0)  # a real process with that pid
    first = await redis.xadd("s", {"d": b"1"})
    await redis.xadd("s", {"d": b"2"})
    # redis-py types replies loosely (their shape depends on the connection's decoding)
    entries = cast(
        "list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]",
        await redis.xread({"s": first}, block=10),
    )
    assert [fields[b"d"] for _, fields in entries[0][1]] == [b"2"]
    info = await redis.info("server")
    assert info["tcp_port"] == redis_server.port
