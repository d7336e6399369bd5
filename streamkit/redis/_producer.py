"""The producer: runs a stream detached from any one client and appends it to the log.

One producer per key, through a ``SET NX PX`` lease renewed every third of its length.
Each chunk is one ``XADD`` with its own id (``<base>-<seq>``, so sending it again after
a lost connection cannot duplicate it) and ``MAXLEN ~``, encoded in the source's callback
and written there when the connection is free (else it waits, encoded, and goes with the
others in one write), with replies off on a connection the producer keeps from the
client's pool for its whole run, and confirmed in batches (``_appender.py``); once Redis
holds every chunk entry, the terminal entry says complete / error / cancelled with the
usage and cost so far (streamkit's, as ``ops.on_usage`` reports them: estimated where the
provider had not reported yet, as on a stop); then the stream gets its TTL and the lease is
released. A follower never slows the producer: it only appends. An explicit stop
(:func:`streamkit.redis.stop`) wakes a ``BLPOP`` on the stop list, which disposes the
source at once (closing the provider's HTTP response) before the next event is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from reactivex import Observable
from redis.exceptions import ResponseError

from streamkit._errors import StreamError
from streamkit._ledger import EndCollector, total_cost, total_usage
from streamkit._lifecycle import disposing, observing
from streamkit._models import Chunk, Usage
from streamkit.prices import Cost, cost_of
from streamkit.redis._appender import ChunkAppender
from streamkit.redis._codec import Terminal, encode_chunk, encode_terminal
from streamkit.redis._log import (
    END_FIELD,
    LOST,
    TRANSIENT,
    lease_key,
    retrying,
    stop_key,
)

__all__ = ["acquire", "produce"]

# Take the lease and clear the previous generation of the stream in one step, so a
# follower that starts after acquire() never sees an older answer under the key.
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('DEL', KEYS[2], KEYS[3])
  return 1
end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# The producer's own wake-up list always goes; the stop list only with a lease still
# held (after a lost lease it is the next producer's).
_RELEASE = """
redis.call('DEL', KEYS[3])
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
  return redis.call('DEL', KEYS[1])
end
return 0
"""


async def acquire(redis: aioredis.Redis, key: str, lease: float, retry_for: float) -> str | None:
    """Take ``key``'s producer lease; its token, or ``None`` when another producer holds it."""
    token = uuid.uuid4().hex

    async def run() -> Any:
        return await redis.eval(
            _ACQUIRE, 3, lease_key(key), key, stop_key(key), token, int(lease * 1000)
        )

    return token if await retrying(key, run, retry_for) else None


class _End:
    """How the source ended, or was ended: ``done``, ``error`` (``value``), ``stop``
    (an explicit stop) or ``lost`` (the lease)."""

    __slots__ = ("kind", "value")

    def __init__(self, kind: str, value: Any = None) -> None:
        self.kind = kind
        self.value = value


class _Inbox:
    """What the source hands the producer, in order: chunks, then an :class:`_End`.

    A deque and one future the producer awaits only when it has nothing to do: an
    async source's callback (on the loop) costs an append, not ``asyncio.Queue``'s
    bookkeeping per chunk; a sync source's thread hands each item over with
    ``call_soon_threadsafe``. While nothing is queued, ``take_now`` (when given) takes a
    chunk at once on the loop (``True``: taken; it calls :meth:`nudge` when the
    producer must run for it), so chunk objects wait here only when it cannot (it
    refused one: every later chunk queues behind it). Items after the first
    :class:`_End` are dropped.
    """

    __slots__ = ("_ended", "_items", "_loop", "_loop_thread", "_nudged", "_take_now", "_waiter")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        take_now: Callable[[Chunk], bool] | None = None,
    ) -> None:
        self._items: deque[Any] = deque()
        self._loop = loop
        self._loop_thread = threading.get_ident()  # made on the loop, by produce()
        self._waiter: asyncio.Future[None] | None = None
        self._take_now = take_now
        self._nudged = False
        self._ended = False  # an _End was handed over: what comes after is dropped

    def put(self, item: Any) -> None:
        """Hand over ``item`` (a chunk or an :class:`_End`) from any thread."""
        if threading.get_ident() == self._loop_thread:
            self._append(item)
            return
        with contextlib.suppress(RuntimeError):  # loop closed
            self._loop.call_soon_threadsafe(self._append, item)

    def close(self) -> None:
        """Take nothing more (the producer is ending, perhaps on an error)."""
        self._ended = True

    def nudge(self) -> None:
        """Have the producer run once more, with no item (on the loop)."""
        self._nudged = True
        self._wake()

    def _append(self, item: Any) -> None:
        if self._ended:
            # a chunk a sync source's thread handed over as a stop disposed it: it comes
            # after the end (it would take the terminal entry's id)
            return
        if type(item) is _End:
            self._ended = True
        # taken only behind nothing queued: order kept
        elif not self._items and self._take_now is not None and self._take_now(item):
            return
        self._items.append(item)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> deque[Any]:
        """The items handed over so far, once there is one or :meth:`nudge` was called
        (then maybe none); take them with ``popleft``."""
        while not self._items and not self._nudged:
            self._waiter = self._loop.create_future()
            await self._waiter
        self._nudged = False
        return self._items


class _LastReported:
    """What the terminal entry needs of a source that is not a streamkit stream (no end
    records): the usage its chunks last reported (a running total, as the reducer
    reads it) and the provider and model to price it at. Not a fold of the stream:
    publishing pays three attribute checks a chunk, not the reducer's work."""

    __slots__ = ("model", "provider", "usage")

    def __init__(self) -> None:
        self.provider: str | None = None
        self.model: str | None = None
        self.usage: Usage | None = None

    def add(self, chunk: Chunk) -> None:
        """Note what ``chunk`` reports."""
        if self.provider is None:
            self.provider = chunk.provider
        if chunk.model:
            self.model = chunk.model
        if chunk.usage is not None:
            self.usage = chunk.usage


def _usage_and_cost(
    requests: EndCollector, accumulator: _LastReported
) -> tuple[Usage | None, Cost | None]:
    """The usage and cost of the requests the source made (their ends: every attempt,
    estimated where the provider had not reported), else, for a source that is not a
    streamkit stream, the last usage its chunks reported."""
    ends = requests.ends
    if ends:
        usage = total_usage(ends)
        return usage, None if usage is None else total_cost(ends)
    usage = accumulator.usage
    if usage is None:
        return None, None
    return usage, cost_of(accumulator.provider or "", accumulator.model, usage)


async def produce(
    redis: aioredis.Redis,
    key: str,
    source: Observable[Chunk],
    *,
    ttl: float = 3600.0,
    maxlen: int = 10_000,
    lease: float = 10.0,
    retry_for: float = 30.0,
    token: str | None = None,
    batch_max: int = 64,
    linger: float = 0.0,
) -> Terminal | None:
    """Run ``source`` as ``key``'s producer; the terminal entry written, or ``None`` when
    another producer holds the lease (nothing is requested then).

    ``ttl``: seconds the finished stream is kept; ``maxlen``: entries kept (``MAXLEN ~``);
    ``lease``: seconds without renewal after which followers consider the producer dead;
    ``retry_for``: seconds to keep retrying Redis when it is unreachable. ``token`` is a
    lease already taken with :func:`acquire`. Each chunk is written as it comes (in
    the source's callback), with Redis's replies off; chunks that come while the
    producer waits on Redis go in one write (at most ``batch_max`` entries), and no
    chunk waits for another. Every few hundred
    entries, and before the terminal entry, one round trip checks that Redis holds them
    all, sending again (with replies on) what it does not; what it refuses is raised.
    ``linger`` (seconds, off by default) trades latency for CPU on a paced stream: a
    chunk that finds the producer idle waits that long for others to share its write,
    as Kafka's ``linger.ms`` does.
    """
    if maxlen < 1 or ttl <= 0 or lease <= 0 or batch_max < 1 or linger < 0:
        raise ValueError("maxlen, ttl, lease and batch_max must be positive, linger not negative")
    if token is None:
        token = await acquire(redis, key, lease, retry_for)
        if token is None:
            return None
    loop = asyncio.get_running_loop()
    base = int(time.time() * 1000)
    accumulator = _LastReported()

    # The producer's own connection for its XADDs, replies off, confirmed in batches
    # (_appender.py): redis-py's per-command path cost more CPU than the write itself.
    appender = ChunkAppender(
        redis.connection_pool,
        key,
        maxlen,
        base,
        lambda action: retrying(key, action, retry_for),
        batch_max,
    )

    def take_now(chunk: Chunk) -> bool:
        # Each chunk is encoded and handed to the appender here, in the source's
        # callback: a paced stream wakes no task per chunk, and chunks that arrive while
        # the producer waits on Redis wait as bytes, not objects (a long burst kept
        # thousands of chunks alive, and the collector's work grew with them).
        try:
            data = encode_chunk(chunk)
        except Exception:  # raised where it belongs: in the producer's loop below
            return False
        accumulator.add(chunk)
        if appender.take(data):
            inbox.nudge()
        return True

    inbox = _Inbox(loop, None if linger else take_now)
    put = inbox.put

    # The requests the source makes report their ends here (usage estimated on a stop).
    requests = EndCollector()
    with observing(requests):
        subscription = source.subscribe(
            on_next=put,
            on_error=lambda error: put(_End("error", error)),
            on_completed=lambda: put(_End("done")),
        )

    finished = asyncio.Event()  # set at the end: watch_stop returns, whatever it pops
    # A list of this producer's own, which watch_stop's BLPOP also waits on: pushed to at
    # the end to wake it (see the end below). Not the stop list: after a lost lease, that
    # is the next producer's, whose watcher could pop the wake-up as a stop.
    wake_key = f"{stop_key(key)}:{token}"
    woken = False  # the terminal's transaction pushed it

    async def watch_stop() -> None:
        while not finished.is_set():
            try:
                got = await redis.blpop([stop_key(key), wake_key], timeout=1)
            except TRANSIENT:
                await asyncio.sleep(0.05)
                continue
            if finished.is_set():
                return
            if got:
                with disposing("stop"):
                    subscription.dispose()  # closes the provider's response now
                put(_End("stop"))
                return

    async def renew() -> None:
        while True:
            await asyncio.sleep(lease / 3)
            try:
                held = await redis.eval(_RENEW, 1, lease_key(key), token, int(lease * 1000))
            except TRANSIENT:
                continue
            if not held:
                subscription.dispose()
                put(_End("lost"))
                return

    watching, renewing = loop.create_task(watch_stop()), loop.create_task(renew())
    tasks = [watching, renewing]

    async def append_terminal(terminal: Terminal) -> None:
        """``XADD`` the terminal entry and set the stream's ``ttl`` in one transaction,
        once Redis holds every chunk entry.

        A follower that reads the terminal entry may look at the key's TTL at once: it
        must already be set (it used to be set a round trip later). The same
        transaction wakes watch_stop (see the end of produce).
        """
        await appender.confirm()
        entry_id = f"{base}-{appender.seq + 1}"
        finished.set()
        wake_watcher = not watching.done()

        async def xadd_and_expire() -> None:
            pipe = redis.pipeline(transaction=True)
            pipe.xadd(
                key,
                {END_FIELD: encode_terminal(terminal)},
                id=entry_id,
                maxlen=maxlen,
                approximate=True,
            )
            pipe.pexpire(key, int(ttl * 1000))
            if wake_watcher:
                pipe.lpush(wake_key, b"1")
                pipe.pexpire(wake_key, 60_000)  # should the producer die before its DEL
            for result in await pipe.execute(raise_on_error=False):
                # "equal or smaller": a retry of an XADD whose reply was lost, already there.
                if isinstance(result, ResponseError) and "equal or smaller" not in str(result):
                    raise result

        await retrying(key, xadd_and_expire, retry_for)
        nonlocal woken
        woken = wake_watcher

    try:
        while True:
            items = await inbox.wait()  # none: a nudge (take_now left entries to send)
            if linger and items and type(items[0]) is not _End and len(items) < batch_max:
                # opt-in: this chunk waits for the ones behind it (a stop still closes
                # the provider's response at once: watch_stop disposes the source)
                await asyncio.sleep(linger)
            batch: list[bytes] = []
            end: _End | None = None
            while items and len(batch) < batch_max:
                item = items.popleft()
                if type(item) is _End:
                    end = item
                    break
                accumulator.add(item)
                batch.append(encode_chunk(item))
            if batch or end is None:
                await appender.add(batch)
            if end is None:
                continue
            kind, value = end.kind, end.value
            subscription.dispose()  # ended or disposed already: its requests have ended
            usage, cost = _usage_and_cost(requests, accumulator)
            if kind == "done":
                terminal = Terminal("complete", usage, cost=cost)
            elif kind == "error":
                # Only streamkit's own messages are kept: an SDK's can echo request headers.
                message = str(value) if isinstance(value, StreamError) else None
                terminal = Terminal("error", usage, type(value).__name__, message, cost)
            elif kind == "stop":
                terminal = Terminal("cancelled", usage, cost=cost)
            else:
                terminal = Terminal("error", usage, LOST, "lease lost", cost)
            break
        await append_terminal(terminal)
    finally:
        inbox.close()  # a sync source's thread may still hand chunks over
        subscription.dispose()
        finished.set()
        renewing.cancel()
        if not watching.done() and not woken:
            # Wake its BLPOP rather than cancel it: redis-py (8.2) can swallow a cancel
            # that lands early in a command and wait for the reply (a second here), and
            # a cancelled command costs its connection (a reconnect for the next one).
            try:
                pipe = redis.pipeline(transaction=False)
                pipe.lpush(wake_key, b"1")
                pipe.pexpire(wake_key, 60_000)
                await pipe.execute()
            except TRANSIENT:
                watching.cancel()
        await asyncio.wait(tasks, timeout=2)
        for task in tasks:
            task.cancel()  # still pending after 2 s: not left behind
        await appender.close()

    async def finish() -> None:
        # the TTL was set with the terminal entry (append_terminal), in its transaction;
        # the stop list goes with the lease, in one script
        await redis.eval(_RELEASE, 3, lease_key(key), stop_key(key), wake_key, token)

    await retrying(key, finish, retry_for)
    return terminal
