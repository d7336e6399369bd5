"""Streams that survive: chunks on Redis Streams, across processes and reconnects.

    import redis.asyncio as redis
    import streamkit as sk
    from streamkit import ops

    r = redis.Redis.from_url("redis://localhost")
    stream.pipe(ops.publish(r, "chat:42")).subscribe()      # one worker produces
    sk.redis.follow(r, "chat:42", after=last_id)            # any worker, any time
    await sk.redis.stop(r, "chat:42")                       # any worker stops it

Needs ``pip install streamkit[redis]`` (the official ``redis`` client, asyncio API).
"""

from streamkit.ops._publish import publish
from streamkit.redis._codec import Terminal, decode_chunk, encode_chunk
from streamkit.redis._control import is_active, stop
from streamkit.redis._errors import (
    ProducerError,
    ProducerLostError,
    RedisStreamError,
    RedisUnavailableError,
    StreamGapError,
    StreamNotFoundError,
)
from streamkit.redis._follow import entries, follow
from streamkit.redis._producer import produce

__all__ = [
    "ProducerError",
    "ProducerLostError",
    "RedisStreamError",
    "RedisUnavailableError",
    "StreamGapError",
    "StreamNotFoundError",
    "Terminal",
    "decode_chunk",
    "encode_chunk",
    "entries",
    "follow",
    "is_active",
    "produce",
    "publish",
    "stop",
]
