"""Small helpers for the Redis tests: collect an observable on the running loop."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from reactivex import Observable


async def collect(observable: Observable[Any], timeout: float = 20.0) -> list[Any]:
    """Every item until completion; re-raises the observable's error."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[list[Any]] = loop.create_future()
    items: list[Any] = []

    def on_error(error: Exception) -> None:
        if not done.done():
            done.set_exception(error)

    def on_completed() -> None:
        if not done.done():
            done.set_result(items)

    subscription = observable.subscribe(items.append, on_error, on_completed)
    try:
        return await asyncio.wait_for(done, timeout)
    finally:
        subscription.dispose()


def texts(chunks: list[Any]) -> str:
    """The concatenated content of chunks."""
    return "".join(chunk.content for chunk in chunks)


async def producers_done() -> None:
    """Wait for the producers started on this loop (they outlive their subscribers)."""
    from streamkit.ops._publish import _PRODUCERS

    running = [task for task in _PRODUCERS if task.get_loop() is asyncio.get_running_loop()]
    if running:
        await asyncio.wait(running, timeout=10)


def text_transcript(deltas: int) -> Any:
    """An OpenAI chat stream of ``deltas`` distinct text deltas (``"w0 "``, ``"w1 "``...)
    then a finish and a usage event, in the provider's wire format."""
    import json

    from streamkit.testing.transcripts import Transcript

    def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        body = {
            "id": "chatcmpl-redis",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [choice] if delta is not None else [],
            **extra,
        }
        return f"data: {json.dumps(body)}\n\n"

    events = [event({"role": "assistant", "content": ""})]
    events += [event({"content": f"w{i} "}) for i in range(deltas)]
    events.append(event({}, "stop"))
    usage = {"prompt_tokens": 3, "completion_tokens": deltas, "total_tokens": deltas + 3}
    events.append(event(None, usage=usage))  # type: ignore[arg-type]
    events.append("data: [DONE]\n\n")
    return Transcript.from_events("openai", "chat", events, name="openai/redis-text")


def text_of(deltas: int) -> str:
    """The answer :func:`text_transcript` streams."""
    return "".join(f"w{i} " for i in range(deltas))


class TcpProxy:
    """A TCP proxy on 127.0.0.1 in front of ``port``, to cut the network to Redis.

    ``cut()`` drops every connection (both sides) and refuses new ones until
    ``restore()``; ``drop()`` drops the current connections and lets new ones in.
    """

    def __init__(self, port: int) -> None:
        import socket
        import threading

        self.target = port
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = int(probe.getsockname()[1])
        probe.close()
        self.cuts = 0
        self.restore()

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` through the proxy."""
        return f"redis://127.0.0.1:{self.port}/0"

    def restore(self) -> None:
        """Listen again (after :meth:`cut`)."""
        import socket
        import threading

        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(512)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: Any) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: Any, sink: Any) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._close(source)
            self._close(sink)

    def _close(self, sock: Any) -> None:
        import socket

        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def drop(self) -> None:
        """Drop every open connection (clients see a reset or EOF)."""
        self.cuts += 1
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._close(sock)

    def cut(self) -> None:
        """Stop listening and drop every connection: Redis is unreachable."""
        import socket

        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept()
            self._listener.close()
            self._listener = None
        self.drop()

    def close(self) -> None:
        """Stop the proxy."""
        self.cut()


async def until(condition: Any, timeout: float = 20.0) -> None:
    """Wait until the awaitable-returning ``condition()`` is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def xlen_at_least(redis: Any, key: str, n: int) -> bool:
    """Whether the stream at ``key`` holds ``n`` entries (false while Redis is away or
    the key is not a stream)."""
    with contextlib.suppress(Exception):
        return int(await redis.xlen(key)) >= n
    return False


def count_timeouts(monkeypatch: Any) -> list[str]:
    """The messages of the Redis timeouts the producer's writes raise from now on
    (``_appender``'s ``RedisTimeoutError`` replaced by a counting subclass)."""
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from streamkit.redis import _appender

    timeouts: list[str] = []

    class Counted(RedisTimeoutError):
        def __init__(self, message: str) -> None:
            timeouts.append(message)
            super().__init__(message)

    monkeypatch.setattr(_appender, "RedisTimeoutError", Counted)
    return timeouts
