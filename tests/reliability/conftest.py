"""Leak checks for the reliability tests, applied to every test in this folder.

After each test:

- every :class:`ReplayServer` made with the ``replay`` fixture has no connection left
  open (its servers say ``Connection: close``, so a client that released a response
  has closed its connection: an open one is a response nobody closed), then it is
  closed and none of its threads is left;
- no thread streamkit started (``streamkit-source-N``) and no timer thread is alive,
  and no non-daemon thread has appeared that was not there before;
- no asyncio task other than the test's own is still pending on its loop.

Each check waits briefly first (up to :data:`SETTLE` seconds): closing is
asynchronous on the server side, and a fault that ended a stream on another thread
needs a moment to unwind.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from streamkit._source import THREAD_NAME_PREFIX
from streamkit.testing import ReplayServer
from streamkit.testing.replay import ReplyLike
from tests.reliability._matrix import PACE, SETTLE, settle
from tests.telemetry._harness import Telemetry


def _lingering(before: set[threading.Thread]) -> list[str]:
    """Threads that should be gone: streamkit's sources, timers, new non-daemon ones."""
    return [
        thread.name
        for thread in threading.enumerate()
        if thread.is_alive()
        and (
            thread.name.startswith(THREAD_NAME_PREFIX)
            or isinstance(thread, threading.Timer)
            # asyncio_N: the event loop's default executor, shut down with the loop
            # (after this check); it resolves host names for async clients.
            or (
                not thread.daemon
                and thread not in before
                and not thread.name.startswith("asyncio_")
            )
        )
    ]


@pytest.fixture(autouse=True)
def no_thread_left_behind() -> Iterator[None]:
    """Fail a test that leaves a streamkit thread, a timer or a new non-daemon thread."""
    before = set(threading.enumerate())
    yield
    settle(lambda: not _lingering(before))
    assert _lingering(before) == [], "threads left running after the test"


@pytest.fixture(autouse=True)
async def no_task_left_pending() -> AsyncIterator[None]:
    """Fail an async test that leaves a task pending on its event loop."""
    yield
    this = asyncio.current_task()

    def pending() -> list[asyncio.Task[object]]:
        return [task for task in asyncio.all_tasks() if task is not this and not task.done()]

    deadline = time.monotonic() + SETTLE
    while pending() and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    assert pending() == [], "asyncio tasks left pending after the test"


def _closed(server: ReplayServer) -> bool:
    return server.open_connections == 0


@pytest.fixture
def replay() -> Iterator[Callable[..., ReplayServer]]:
    """``replay(default=None, pace=PACE)``: a started ReplayServer that answers
    ``Connection: close``; after the test it must hold no open connection."""
    servers: list[ReplayServer] = []

    def make(default: ReplyLike | None = None, *, pace: float = PACE) -> ReplayServer:
        server = ReplayServer(default, pace=pace, keep_alive=False).start()
        servers.append(server)
        return server

    yield make
    open_left = []
    for server in servers:
        if not settle(functools.partial(_closed, server)):
            open_left.append(server.open_connections)
        server.close()
        assert server.threads == [], "replay server threads left after close"
    assert not open_left, f"HTTP connections left open on the server side: {open_left}"


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """streamkit instrumented with the OpenTelemetry SDK's in-memory exporter."""
    harness = Telemetry()
    try:
        yield harness
    finally:
        harness.close()
