"""Small helpers for the Redis tests: collect an observable on the running loop."""

from __future__ import annotations

import asyncio
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
