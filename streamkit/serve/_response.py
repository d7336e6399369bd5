"""The ASGI side: an observable of chunks streamed to one HTTP client.

One subscription per response. The chunks pass through a bounded channel to the task
that writes the socket:

- the client disconnects (``http.disconnect``): the subscription is disposed at once,
  which closes the provider's HTTP response (streamkit sources cancel to the socket);
- nothing to send for ``heartbeat`` seconds: an SSE comment line is written;
- back-pressure: the channel holds at most ``max_queue`` chunks. A source on its own
  thread (a sync client) is made to wait when it is full, so a slow client slows the
  provider read (TCP back-pressure) and memory stays bounded. A source on the event
  loop (an async client) cannot wait. While the client keeps up, a burst (chunks the
  source had already read, emitted without letting the loop run, so the writer could
  not take them yet) is taken in, up to ``BURST_FACTOR`` times ``max_queue`` chunks; but
  when the channel is full while the writer is stuck on the client (uvicorn waits for
  the client to read: a slow client), or a burst goes past that limit, the subscription
  is disposed, the chunks still queued are dropped and the client gets the protocol's
  abort event (reason ``"slow_client"``);
- an error from the stream becomes the protocol's error event with a safe message.

How every response ended is reported to ``on_end`` with the stream's usage and cost, on
every path: the requests the stream made are recorded like any streamkit pipeline's
(the record :func:`streamkit.ops.on_usage` and a :class:`~streamkit.Ledger` read), so a
stream cut by a disconnect, a stop or an error has streamkit's estimate where the
provider had not reported yet. The same usage goes to the encoder's terminal (the UI
message stream's metadata, OpenAI's usage chunk, plain SSE's ``end``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from reactivex import Observable
from reactivex.abc import DisposableBase
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from streamkit._ledger import EndCollector, total_cost, total_usage
from streamkit._lifecycle import StreamEnd as RequestEnd
from streamkit._lifecycle import disposing, observing
from streamkit._models import Chunk, Usage
from streamkit.prices import Cost
from streamkit.serve._encoder import Encoder
from streamkit.serve._sse import HEARTBEAT

__all__ = ["BURST_FACTOR", "EndReason", "Heartbeat", "StreamEnd", "StreamResponse"]

BURST_FACTOR = 16
"""How many times ``max_queue`` a source on the event loop may emit in one burst (without
letting the loop run) while the client keeps up."""

EndReason = Literal["completed", "error", "stopped", "disconnected", "slow_client"]
"""Why a response ended (:attr:`StreamEnd.reason`)."""

SSE_HEADERS = {
    "cache-control": "no-cache, no-transform",
    "x-accel-buffering": "no",
    "connection": "keep-alive",
}
"""Headers every streamed response carries: no caching, no proxy buffering."""


@dataclass(frozen=True)
class StreamEnd:
    """How one streamed response ended.

    ``reason``: ``completed`` (the stream finished), ``error`` (it failed; ``error`` is
    set), ``stopped`` (:meth:`StreamResponse.stop` was called: a stop request, such as
    ``chat_app``'s ``POST /api/chat/stop``), ``disconnected`` (the client went away: a
    closed tab, a lost network, or a stop button that only aborts the request, which
    the server cannot tell apart) or ``slow_client`` (the send queue overflowed).

    ``usage`` is what the stream's requests used, on every path, with its ``source``:
    the provider's figures (``reported``), or streamkit's estimate where the stream
    ended before the provider reported (``estimated``, or ``mixed`` when it had
    reported its input only), summed over the requests (every attempt of a retry);
    for an observable that is not a streamkit stream (no request recorded), the latest
    usage its chunks reported (``None`` if none). ``requests`` are the end records of
    those requests (what ``ops.on_usage`` and a :class:`~streamkit.Ledger` read: each
    one's ``outcome``, ``disposed_by`` ``"disconnect"`` or ``"stop"``, usage).
    ``chunks`` is how many chunks were sent.
    """

    reason: EndReason
    usage: Usage | None
    chunks: int
    error: BaseException | None = None
    requests: tuple[RequestEnd, ...] = ()

    @property
    def cost(self) -> Cost | None:
        """What ``usage`` costs (:class:`~streamkit.prices.Cost`: ``amount`` ``None``
        with a ``reason`` when a model's price is unknown); ``None`` when no request
        was recorded. Priced when read, not at the end of every response."""
        return total_cost(self.requests) if self.requests else None


class _Channel:
    """Chunks from the subscription (any thread) to the writer task (the loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int) -> None:
        self.loop = loop
        self.capacity = capacity
        self.items: deque[Chunk] = deque()
        self.space = threading.Condition()
        self.ready = asyncio.Event()
        self.terminal: tuple[EndReason, BaseException | None] | None = None
        self.closed = False
        self.writer_blocked = False  # the writer waits for the client to take bytes
        self.last_sent = loop.time()  # when the writer last sent bytes (loop time)

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def _wake(self) -> None:
        if self._on_loop():
            self.ready.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
                self.loop.call_soon_threadsafe(self.ready.set)

    def put(self, chunk: Chunk) -> bool:
        """Queue a chunk; ``False`` when it had to be refused (on the loop: full while
        the client is slow, or past a burst's limit)."""
        on_loop = self._on_loop()
        with self.space:
            full = len(self.items) >= self.capacity
            burst_over = len(self.items) >= self.capacity * BURST_FACTOR
            if on_loop and full and (self.writer_blocked or burst_over):
                return False
            while not on_loop and len(self.items) >= self.capacity and not self.closed:
                self.space.wait(0.25)  # a source thread: it waits for the writer
            if self.closed:
                return True
            self.items.append(chunk)
        self._wake()
        return True

    def end(self, reason: EndReason, error: BaseException | None = None) -> None:
        with self.space:
            if self.terminal is None:
                self.terminal = (reason, error)
        self._wake()

    def close(self) -> None:
        with self.space:
            self.closed = True
            self.space.notify_all()
        self._wake()

    def take(self) -> list[Chunk]:
        with self.space:
            items = list(self.items)
            self.items.clear()
            self.space.notify_all()
        return items


class Heartbeat:
    """One timer on the loop that tells a response's writer when nothing was sent for
    ``every`` seconds (re-armed from the last send, so a busy stream costs no timer per
    event). ``last_sent()`` is the loop time of the last send; ``wake()`` is called when
    a heartbeat is due (:attr:`due` set). Shared by :class:`StreamResponse` and the
    Redis transport's ``EntriesResponse``."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        last_sent: Callable[[], float],
        wake: Callable[[], None],
    ) -> None:
        self.loop = loop
        self.last_sent = last_sent
        self.wake = wake
        self.due = False
        self.every = 0.0
        self.timer: asyncio.TimerHandle | None = None

    def arm(self, every: float) -> None:
        self.every = every
        self.timer = self.loop.call_at(self.last_sent() + every, self._fire)

    def _fire(self) -> None:
        idle = self.loop.time() - self.last_sent()
        if idle >= self.every:
            self.due = True
            self.wake()
            idle = 0.0
        self.timer = self.loop.call_later(self.every - idle, self._fire)

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class StreamResponse(Response):
    """A Starlette/FastAPI response streaming ``observable`` through ``encoder``.

    Subscribes when the response starts; see the module docstring for disconnects,
    heartbeats, back-pressure and errors.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        observable: Observable[Chunk],
        encoder: Encoder,
        *,
        headers: Mapping[str, str] | None = None,
        heartbeat: float | None = 15.0,
        max_queue: int = 256,
        on_end: Callable[[StreamEnd], None] | None = None,
    ) -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, not {max_queue}")
        if heartbeat is not None and heartbeat <= 0:
            raise ValueError(f"heartbeat must be positive seconds or None, not {heartbeat}")
        super().__init__(
            content=None,
            status_code=200,
            headers={**SSE_HEADERS, **dict(headers or {})},
            media_type=self.media_type,
        )
        # A stream has no length: drop the ``content-length: 0`` of the empty body.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.observable = observable
        self.encoder = encoder
        self.heartbeat = heartbeat
        self.max_queue = max_queue
        self.on_end = on_end
        self.end: StreamEnd | None = None
        self._stop: Callable[[], None] | None = None
        self._stop_requested = False

    def stop(self) -> None:
        """Stop the stream at the server's request (a stop button that says so): the
        subscription is disposed at once (the provider's response closed), the client
        gets the protocol's abort event and the end is reported as ``stopped``. Call it
        on the event loop's thread; before the response started, it stops it at once."""
        if self._stop is None:
            self._stop_requested = True
        else:
            self._stop()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the stream to the client (ASGI)."""
        loop = asyncio.get_running_loop()
        channel = _Channel(loop, self.max_queue)
        usage: list[Usage | None] = [None]  # the latest a chunk reported
        requests = EndCollector()  # the end record of each request the stream makes
        subscription: list[DisposableBase] = []
        overflowed = threading.Event()

        def dispose() -> None:
            channel.close()
            for disposable in subscription:
                disposable.dispose()

        def usage_so_far() -> Usage | None:
            """The requests' usage (estimated where they ended unreported), else the
            latest a chunk reported (an observable with no streamkit request)."""
            total = total_usage(requests.ends)
            return usage[0] if total is None else total

        def on_next(chunk: Chunk) -> None:
            if chunk.usage is not None:
                usage[0] = chunk.usage
            if not channel.put(chunk) and not overflowed.is_set():
                overflowed.set()
                channel.end("slow_client")
                with disposing("stop"):  # the server stops it: recorded as a stop
                    dispose()

        def stop() -> None:
            channel.end("stopped")
            with disposing("stop"):
                dispose()

        self._stop = stop
        disconnected = asyncio.Event()

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    disconnected.set()
                    with disposing("disconnect"):  # the request records who disposed it
                        dispose()
                    channel.ready.set()
                    return

        heartbeat = Heartbeat(loop, lambda: channel.last_sent, channel.ready.set)
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        watcher = loop.create_task(watch())
        sent = 0
        reason: EndReason = "completed"
        error: BaseException | None = None
        try:
            with observing(requests):
                subscription.append(
                    self.observable.subscribe(
                        on_next,
                        lambda e: channel.end("error", e),
                        lambda: channel.end("completed"),
                    )
                )
            if self._stop_requested:
                stop()
            if channel.closed:  # disconnected or stopped while subscribing
                dispose()
            await self._send(send, channel, self.encoder.open())
            if self.heartbeat is not None:
                heartbeat.arm(self.heartbeat)
            while True:
                await channel.ready.wait()
                channel.ready.clear()
                if disconnected.is_set():
                    reason = "disconnected"
                    break
                if heartbeat.due:
                    heartbeat.due = False
                    if not channel.items and channel.terminal is None:
                        await self._send(send, channel, [HEARTBEAT])
                        continue
                items = channel.take()
                if channel.terminal is not None and channel.terminal[0] == "slow_client":
                    items = []  # a client that cannot keep up gets the abort, not a backlog
                events: list[bytes] = []
                for chunk in items:
                    events += self.encoder.chunk(chunk)
                sent += len(items)
                await self._send(send, channel, events)
                if channel.terminal is not None and not channel.items:
                    reason, error = channel.terminal
                    # The requests have ended by now (a source records its end before
                    # it completes or fails; a stop disposed it), so this is their usage.
                    final = usage_so_far()
                    if reason == "completed":
                        await self._send(send, channel, self.encoder.finish(final))
                    elif reason == "error":
                        assert error is not None
                        await self._send(send, channel, self.encoder.error(error, final))
                    else:
                        await self._send(send, channel, self.encoder.abort(final))
                    break
            if not disconnected.is_set():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            reason = "disconnected"
        finally:
            heartbeat.cancel()
            if reason == "disconnected":
                with disposing("disconnect"):
                    dispose()
            else:
                dispose()
            if channel.terminal is not None and channel.terminal[0] in ("slow_client", "stopped"):
                reason = channel.terminal[0]  # what ended it, even if the client left after
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            self.end = StreamEnd(
                reason=reason,
                usage=usage_so_far(),
                chunks=sent,
                error=error,
                requests=tuple(requests.ends),
            )
            if self.on_end is not None:
                self.on_end(self.end)

    async def _send(self, send: Send, channel: _Channel, events: list[bytes]) -> None:
        if events:
            body = b"".join(events)
            # A chunk emitted on the loop while this is suspended found the writer stuck
            # on the client (uvicorn's send only waits when the client is not reading).
            channel.writer_blocked = True
            try:
                await send({"type": "http.response.body", "body": body, "more_body": True})
            finally:
                channel.writer_blocked = False
                channel.last_sent = channel.loop.time()
