"""A real uvicorn server on 127.0.0.1 in a thread, serving an ASGI app for a test."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

from streamkit.serve import StreamEnd


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn (one worker) until the block ends; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class Ends:
    """Collects :class:`StreamEnd` reports (an ``on_end`` callback), waitable."""

    def __init__(self) -> None:
        self.ends: list[StreamEnd] = []
        self._changed = threading.Condition()

    def __call__(self, end: StreamEnd) -> None:
        with self._changed:
            self.ends.append(end)
            self._changed.notify_all()

    def wait(self, count: int = 1, timeout: float = 10.0) -> list[StreamEnd]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.ends) >= count, timeout):
                raise AssertionError(f"{len(self.ends)} of {count} streams ended")
            return list(self.ends)
