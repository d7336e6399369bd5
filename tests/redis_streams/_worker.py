"""A worker process for the Redis fault tests: ``python -m tests.redis_streams._worker CMD ...``.

- ``produce REDIS_URL KEY OPENAI_URL LEASE``: stream from the (replay) provider at
  OPENAI_URL with ``ops.publish`` and follow it; prints each chunk's content as JSON.
- ``follow REDIS_URL KEY AFTER``: prints ``<entry id> <content as JSON>`` per chunk as it
  arrives, then ``END <state>`` (or ``ERROR <type>``).
- ``stop REDIS_URL KEY``: ``sk.redis.stop``; prints whether a producer was active.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import redis.asyncio as aioredis

import streamkit as sk
import streamkit.redis as skr
from streamkit import ops
from tests.redis_streams.helpers import collect, producers_done


def say(*parts: str) -> None:
    print(*parts, flush=True)


async def produce(url: str, key: str, openai_url: str, lease: str) -> None:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=openai_url, api_key="sk-fake-key", max_retries=0)
    redis = aioredis.Redis.from_url(url)
    stream = sk.stream("openai", "m", "hi", client=client)
    chunks = await collect(
        stream.pipe(ops.publish(redis, key, lease=float(lease), poll=0.2)), timeout=60
    )
    await producers_done()
    say(json.dumps("".join(c.content for c in chunks)))
    await redis.aclose()


async def follow(url: str, key: str, after: str) -> None:
    redis = aioredis.Redis.from_url(url)
    try:
        async for entry_id, item in skr.entries(redis, key, after, poll=0.2, retry_for=10):
            if isinstance(item, skr.Terminal):
                say("END", item.state)
            else:
                say(entry_id, json.dumps(item.content))
    except skr.RedisStreamError as error:
        say("ERROR", type(error).__name__)
    await redis.aclose()


async def stop(url: str, key: str) -> None:
    redis = aioredis.Redis.from_url(url)
    say(str(await skr.stop(redis, key)))
    await redis.aclose()


COMMANDS: dict[str, Callable[..., Coroutine[Any, Any, None]]] = {
    "produce": produce,
    "follow": follow,
    "stop": stop,
}

if __name__ == "__main__":
    asyncio.run(COMMANDS[sys.argv[1]](*sys.argv[2:]))
