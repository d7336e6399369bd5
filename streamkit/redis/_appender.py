"""The producer's writes of chunk entries: ``XADD`` without waiting for each reply.

Each chunk entry is one ``XADD key MAXLEN ~ n <base>-<seq> c <data>``, encoded here
(redis-py's general ``pack_command`` costs ~10 us a command; the producer's commands all
share one shape). The producer holds one connection from the client's pool for its whole
run and turns its replies off (``CLIENT REPLY OFF``): a paced stream then costs one
``send`` per chunk, not a round trip whose reply wakes the process once more per chunk.
:meth:`ChunkAppender.take` does that write in the source's own callback, with no task
woken; a chunk that arrives while the producer waits on Redis waits as its encoded entry
(never as a chunk object: a long burst kept thousands alive, and the garbage collector's
work grew with them), and the producer's task sends what waits in one write per
``batch_max`` entries. Nothing is taken on trust: every :data:`CONFIRM_EVERY` entries, after
:data:`CONFIRM_AFTER` seconds, and always before the terminal entry, one round trip
(``CLIENT REPLY ON`` + ``XINFO STREAM``) checks that the stream counts every entry sent
(``entries-added``, Redis 7 and later). Entries not yet confirmed are kept: after a lost
connection, or when the count falls short, they are sent again with replies on; their ids
make that idempotent (Redis refuses an id "equal or smaller" than the last one), and any
other error reply is raised. A server without ``CLIENT REPLY`` or ``entries-added`` (older
Redis, some proxies) gets one round trip per write, chunks that queued up meanwhile
pipelined together, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from streamkit.redis._errors import RedisStreamError
from streamkit.redis._log import CHUNK_FIELD

__all__ = [
    "COALESCE",
    "CONFIRM_AFTER",
    "CONFIRM_EVERY",
    "ChunkAppender",
    "encode_xadd",
    "xadd_prefix",
]

CONFIRM_EVERY = 256
"""Unconfirmed entries after which the producer checks that Redis holds them."""
CONFIRM_AFTER = 0.5
"""Seconds after which an unconfirmed entry is checked at the next write."""
COALESCE = 50e-6
"""Seconds: a chunk written this soon after the last write (a burst) joins the write made
at the end of the event loop's current pass instead of making one of its own."""

_REPLY_OFF = b"*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$3\r\nOFF\r\n"
_REPLY_ON = b"*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$2\r\nON\r\n"


# What the probe in ChunkAppender._connect learned, per connection pool (one server or
# proxy): each producer of a pool would otherwise pay it a round trip.
_UNACKNOWLEDGED_WRITES: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def xadd_prefix(key: bytes, maxlen: int) -> bytes:
    """The RESP encoding of ``XADD key MAXLEN ~ maxlen`` (the start every entry shares)."""
    return (
        b"*8\r\n"
        + _bulk(b"XADD")
        + _bulk(key)
        + _bulk(b"MAXLEN")
        + _bulk(b"~")
        + _bulk(str(maxlen).encode())
    )


def encode_xadd(prefix: bytes, entry_id: bytes, data: bytes) -> bytes:
    """The RESP encoding of one chunk entry's ``XADD`` (``prefix`` from :func:`xadd_prefix`)."""
    return b"%s$%d\r\n%s\r\n$1\r\n%s\r\n$%d\r\n%s\r\n" % (
        prefix,
        len(entry_id),
        entry_id,
        CHUNK_FIELD,
        len(data),
        data,
    )


def _is_duplicate(error: ResponseError) -> bool:
    # A resent XADD whose first sending reached Redis: "The ID specified in XADD is
    # equal or smaller than the target stream top item".
    return "equal or smaller" in str(error)


def _entries_added(info: Any) -> int | None:
    """``entries-added`` of an ``XINFO STREAM`` reply (RESP2 list or RESP3 map, bytes or
    str keys), or ``None`` when the server does not report it (before Redis 7)."""
    if isinstance(info, list):
        info = dict(zip(info[::2], info[1::2], strict=False))
    if not isinstance(info, dict):
        return None
    for name in (b"entries-added", "entries-added"):
        if name in info:
            return int(info[name])
    return None


class ChunkAppender:
    """Appends a producer's chunk entries to ``key`` over one connection it holds.

    ``pool`` is the client's (redis-py's) connection pool; ``base`` the entry ids' first
    part. :meth:`take` appends one entry without a task (writing it at once when it
    can), :meth:`add` sends (the producer's task), :meth:`confirm` makes sure Redis holds
    everything sent, :meth:`close` gives the connection back. ``retrying`` runs an
    action, retrying it while Redis is unreachable (the producer's policy); ``batch_max``
    bounds the entries of one write.
    """

    def __init__(
        self,
        pool: Any,
        key: str,
        maxlen: int,
        base: int,
        retrying: Callable[[Callable[[], Awaitable[None]]], Awaitable[None]],
        batch_max: int = 64,
    ) -> None:
        self._pool = pool  # redis-py's pool is untyped
        self._batch_max = batch_max
        self._key = key
        self._maxlen = maxlen
        self._base = b"%d-" % base
        self._retrying = retrying
        # the key as the client encodes it (its encoding); every entry starts the same
        self._key_bytes: bytes = pool.get_encoder().encode(key)
        self._prefix = xadd_prefix(self._key_bytes, maxlen)
        self._connection: Any = None
        self._io_timeout: float | None = None
        self._replies_off = False  # the held connection's replies are off now
        # None: not known yet; False: the server lacks CLIENT REPLY or entries-added
        self._unacknowledged: bool | None = None
        self._seq = 0  # entries handed to add() and take()
        # encoded, not sent yet: always the last entries (the others are written or held,
        # and every round trip writes the held ones first)
        self._pending: list[bytes] = []
        self._unconfirmed: list[bytes] = []  # sent with replies off, not confirmed yet
        self._unconfirmed_since = 0.0
        # the one timer bounding writes (_send): the write in progress, since when
        self._write_timer: asyncio.TimerHandle | None = None
        self._write_started: float | None = None
        self._writer_task: asyncio.Task[Any] | None = None
        self._write_stuck = False
        self._sending = False  # the producer's task is in _send
        # take()'s state: the held connection's stream writer while its replies are off
        # (None otherwise), entries kept for the write at the end of the loop's pass
        self._writer: asyncio.StreamWriter | None = None
        self._held: list[bytes] = []
        self._flush: asyncio.Handle | None = None
        self._last_write = 0.0

    @property
    def seq(self) -> int:
        """The number of chunk entries appended so far (the last one's ``seq``)."""
        return self._seq

    async def add(self, batch: list[bytes]) -> None:
        """Append the encoded chunks of ``batch``, each an entry with the next id, after
        those :meth:`take` left waiting; confirm them when it is due."""
        prefix = self._prefix  # ids given before any wait: take() cannot come between
        base = self._base
        first = self._seq + 1
        self._seq += len(batch)
        self._pending.extend(
            encode_xadd(prefix, base + b"%d" % (first + offset), data)
            for offset, data in enumerate(batch)
        )
        await self._retrying(self._deliver)
        if self._unconfirmed and self._confirmation_due(time.monotonic()):
            # replies off again in the same round trip: the next chunk is written at once
            await self._retrying(self._settle_replies_off)

    def take(self, data: bytes) -> bool:
        """Append the encoded chunk ``data`` as the next entry, without a task; ``True``
        when the producer must run :meth:`add` (with nothing) to send it or to confirm.

        The entry is written at once if the held connection takes writes with its
        replies off, nothing waits to be sent before it and its buffers are empty: a
        paced stream's chunk is one ``send`` here, with no task woken; chunks of a burst
        (within :data:`COALESCE` of the last write) share one write at the end of the
        loop's pass. Else it waits, encoded, for the producer (a chunk object is never
        kept). Entries written so are kept until confirmed, as :meth:`add`'s; a write
        that fails surfaces at the next round trip, which sends them again.
        """
        self._seq += 1
        entry = encode_xadd(self._prefix, self._base + b"%d" % self._seq, data)
        writer = self._writer
        if writer is None or self._pending or self._sending:
            self._pending.append(entry)
            return True
        transport = writer.transport
        if transport.is_closing() or transport.get_write_buffer_size():
            self._pending.append(entry)
            return True
        unconfirmed = self._unconfirmed
        now = time.monotonic()
        if not unconfirmed:
            self._unconfirmed_since = now
        unconfirmed.append(entry)
        held = self._held
        if held or now - self._last_write < COALESCE:
            held.append(entry)
            if len(held) >= self._batch_max:
                self._write_held()
            elif self._flush is None:
                self._flush = asyncio.get_running_loop().call_soon(self._write_held)
        else:
            writer.write(entry)
            self._last_write = now
        return self._confirmation_due(now)

    def _confirmation_due(self, now: float) -> bool:
        """Whether the unconfirmed entries (at least one) are to be confirmed now."""
        return (
            len(self._unconfirmed) >= CONFIRM_EVERY
            or now - self._unconfirmed_since >= CONFIRM_AFTER
        )

    async def confirm(self) -> None:
        """Return once Redis holds every entry sent; raise what it refused."""
        if self._pending or self._unconfirmed:
            await self._retrying(self._settle)

    async def close(self) -> None:
        """Give the held connection back to the pool, its replies on (or disconnected
        when that is not sure: the pool then reconnects it afresh)."""
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        self._stop_direct_writes()
        connection = self._connection
        if connection is None:
            return
        if self._replies_off and not (self._unconfirmed or self._pending):
            # left off by a confirmation mid-stream with nothing written since: turned on
            # in a round trip, cheaper than the pool's reconnecting it
            with contextlib.suppress(Exception):
                await self._round_trip([_REPLY_ON], expect=1)
                self._replies_off = False
        self._connection = None
        connection.socket_timeout = self._io_timeout  # as the pool lent it
        if self._replies_off or self._unconfirmed or self._pending:
            await connection.disconnect(nowait=True)
        await self._pool.release(connection)

    # -- the actions retried while Redis is unreachable --------------------------------
    async def _connect(self) -> None:
        """Take a connection (afresh after a failure); learn whether it takes writes
        without replies; send again, with replies, what may not have reached Redis."""
        if self._connection is None:
            connection = await self._pool.get_connection()
            self._io_timeout, connection.socket_timeout = connection.socket_timeout, None
            self._connection = connection
            self._replies_off = False
        connection = self._connection
        if not connection.is_connected:
            self._replies_off = False
        if self._unacknowledged is None:
            self._unacknowledged = _UNACKNOWLEDGED_WRITES.get(self._pool)
        if self._unacknowledged is None:
            # OFF then ON: a server that knows CLIENT REPLY answers only the ON; one that
            # does not answers both with an error. Should the probe itself fail, this
            # producer keeps replies on (slower, never wrong).
            self._unacknowledged = False
            replies = await self._round_trip([_REPLY_OFF, _REPLY_ON], expect=1)
            if isinstance(replies[0], ResponseError):
                await self._read_more(1)
            else:
                self._unacknowledged = True
            _UNACKNOWLEDGED_WRITES[self._pool] = self._unacknowledged
        if self._unconfirmed:
            await self._resend_unconfirmed()

    async def _deliver(self) -> None:
        """Send the pending entries (at most ``batch_max`` a write): with replies off, or
        in one round trip each."""
        try:
            if self._connection is None or not self._connection.is_connected:
                await self._connect()
            self._write_held()  # written at once before: they go first
            while self._pending:
                # take() may add entries while a write waits: they queue behind these
                part = self._pending[: self._batch_max]
                del self._pending[: len(part)]
                if not self._unacknowledged:
                    try:
                        await self._write_acknowledged(part)
                    except BaseException:
                        self._pending[:0] = part
                        raise
                    continue
                # unconfirmed from now on, in order: a failed write is sent again from there
                if not self._unconfirmed:
                    self._unconfirmed_since = time.monotonic()
                self._unconfirmed.extend(part)
                if self._replies_off:
                    await self._send(part)
                else:
                    self._replies_off = True
                    await self._send([_REPLY_OFF, *part])
                writer = getattr(self._connection, "_writer", None)
                if isinstance(writer, asyncio.StreamWriter):  # else: no direct writes
                    self._writer = writer
        except BaseException:
            await self._drop_connection()
            raise

    async def _settle_replies_off(self) -> None:
        await self._settle(replies_off=True)

    async def _settle(self, *, replies_off: bool = False) -> None:
        """Confirm the unconfirmed entries; send again what Redis does not hold. With
        ``replies_off`` (a confirmation mid-stream), replies are off again after it,
        unless entries had to be sent again."""
        try:
            await self._deliver()
            if not self._unconfirmed:
                return
            # entries handed to the socket: take() queues more behind, unsent, meanwhile
            sent = self._seq - len(self._pending)
            added = await self._entries_added(replies_off=replies_off)
            if added is None:  # no entries-added on this server: replies from now on
                self._unacknowledged = _UNACKNOWLEDGED_WRITES[self._pool] = False
            elif added >= sent:
                self._unconfirmed.clear()
                return
            await self._resend_unconfirmed()
            added = await self._entries_added()
            if added is not None and added < sent:
                raise RedisStreamError(
                    self._key,
                    f"redis holds {added} of the {sent} chunk entries written to "
                    f"{self._key!r}: an entry it refused is followed by one it took",
                )
        except BaseException:
            await self._drop_connection()
            raise

    # -- the wire ------------------------------------------------------------------------
    async def _resend_unconfirmed(self) -> None:
        """Send the unconfirmed entries again, in one round trip with replies on."""
        await self._write_acknowledged(self._unconfirmed)
        self._unconfirmed.clear()

    async def _write_acknowledged(self, commands: list[bytes]) -> None:
        """Send ``commands`` (chunk entries) with replies on and read every reply; an
        entry already there is no error, any other refusal is raised."""
        self._stop_direct_writes()
        if self._replies_off:
            commands = [_REPLY_ON, *commands]
            self._replies_off = False
        await self._round_trip(commands, expect=len(commands), check=True)

    async def _entries_added(self, *, replies_off: bool = False) -> int | None:
        """Read the stream's ``entries-added``, replies on (they stay on, unless
        ``replies_off``: turned off again in the same write)."""
        xinfo = b"*3\r\n" + _bulk(b"XINFO") + _bulk(b"STREAM") + _bulk(self._key_bytes)
        self._write_held()
        writer, self._writer = self._writer, None  # no direct writes while replies are on
        commands = [_REPLY_ON, xinfo] if self._replies_off else [xinfo]
        expect = len(commands)
        self._replies_off = False
        if replies_off:
            commands.append(_REPLY_OFF)  # answered by no reply
        reply = (await self._round_trip(commands, expect=expect))[-1]
        if replies_off:
            self._replies_off = True
            self._writer = writer
        if isinstance(reply, ResponseError):
            if "no such key" in str(reply).lower():
                return 0
            raise reply
        return _entries_added(reply)

    async def _send(self, commands: list[bytes]) -> None:
        """Write ``commands`` (no reply awaited), bounded by the client's socket timeout.

        A write returns at once unless Redis stopped reading and the buffers filled up,
        so rather than a timer per write (asyncio.timeout: ~4 us a chunk) one timer, armed
        at most once per timeout, looks at the write in progress and cancels it when it
        is older than the timeout."""
        # take() writes nothing of its own meanwhile: on 3.10, wait_for runs this write
        # in a task of its own, a pass of the loop later
        self._sending = True
        try:
            await self._send_bounded(commands)
        finally:
            self._sending = False

    async def _send_bounded(self, commands: list[bytes]) -> None:
        send = self._connection.send_packed_command(commands, check_health=False)
        timeout = self._io_timeout
        if timeout is None:
            await send
            return
        if sys.version_info < (3, 11):  # no Task.uncancel: a timer per write
            await self._with_timeout(send)
            return
        loop = asyncio.get_running_loop()
        self._writer_task = asyncio.current_task()
        self._write_started = loop.time()
        if self._write_timer is None:
            self._write_timer = loop.call_at(self._write_started + timeout, self._check_write)
        try:
            await send
        except asyncio.CancelledError:
            if not self._write_stuck:
                raise
            self._write_stuck = False
            if self._writer_task is not None:
                self._writer_task.uncancel()
            raise RedisTimeoutError("redis did not take the producer's writes in time") from None
        finally:
            self._write_started = None

    def _check_write(self) -> None:
        """The write timer: cancel a write older than the timeout, else re-arm while one
        is in progress."""
        self._write_timer = None
        started = self._write_started
        if started is None or self._io_timeout is None:
            return
        loop = asyncio.get_running_loop()
        deadline = started + self._io_timeout
        if loop.time() < deadline:
            self._write_timer = loop.call_at(deadline, self._check_write)
        elif self._writer_task is not None:
            self._write_stuck = True
            self._writer_task.cancel()

    async def _round_trip(
        self, commands: list[bytes], *, expect: int, check: bool = False
    ) -> list[Any]:
        """Send ``commands``, read ``expect`` replies (error replies returned, not raised;
        with ``check``, a refusal other than a duplicate id is raised once all are read)."""
        connection = self._connection

        async def exchange() -> list[Any]:
            await connection.send_packed_command(commands, check_health=False)
            replies: list[Any] = []
            for _ in range(expect):
                try:
                    replies.append(await connection.read_response())
                except ResponseError as error:
                    replies.append(error)
            return replies

        replies: list[Any] = await self._with_timeout(exchange())
        if check:
            for reply in replies:
                if isinstance(reply, ResponseError) and not _is_duplicate(reply):
                    raise reply
        return replies

    async def _read_more(self, count: int) -> None:
        connection = self._connection
        for _ in range(count):
            with contextlib.suppress(ResponseError):
                await self._with_timeout(connection.read_response())

    async def _with_timeout(self, awaitable: Awaitable[Any]) -> Any:
        """``awaitable`` bounded by the client's socket timeout (one timer, not redis-py's
        ``wait_for``, which runs each send in a task of its own)."""
        timeout = self._io_timeout
        if timeout is None:
            return await awaitable
        try:
            if sys.version_info >= (3, 11):
                async with asyncio.timeout(timeout):
                    return await awaitable
            return await asyncio.wait_for(awaitable, timeout)
        except asyncio.TimeoutError as error:
            raise RedisTimeoutError("redis did not answer the producer in time") from error

    async def _drop_connection(self) -> None:
        """After a failure: replies left unread (or off) would confuse the next command."""
        self._stop_direct_writes()
        connection = self._connection
        if connection is not None:
            await connection.disconnect(nowait=True)
        self._replies_off = False

    def _write_held(self) -> None:
        """Write the entries :meth:`take` kept for the end of the loop's pass."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        held = self._held
        if held and self._writer is not None:
            self._writer.writelines(held)
            self._last_write = time.monotonic()
        held.clear()  # unconfirmed: sent again with the rest should they not be written

    def _stop_direct_writes(self) -> None:
        """No more writes from :meth:`take`; entries it kept stay unconfirmed (to be
        sent again)."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        self._held.clear()
        self._writer = None
