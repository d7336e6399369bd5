"""Running one observable to its end, sync or async, for the reliability tests."""

from __future__ import annotations

import asyncio
import functools
import inspect
from typing import Any, TypeVar

from reactivex import Observable

from tests.ops._pipelines import collect_sync

T = TypeVar("T")

LIMIT = 15.0
"""Seconds an observable may take to end before it counts as hung."""


def run_sync(observable: Observable[T]) -> tuple[list[T], Exception | None]:
    """Subscribe (a sync source runs on its own thread) and block until it ends."""
    return collect_sync(observable, LIMIT)


async def run_async(observable: Observable[T]) -> tuple[list[T], Exception | None]:
    """Subscribe on the running loop and wait until it ends."""
    loop = asyncio.get_running_loop()
    ended = asyncio.Event()
    items: list[T] = []
    errors: list[Exception] = []

    def fail(error: Exception) -> None:
        errors.append(error)
        loop.call_soon_threadsafe(ended.set)

    def complete() -> None:
        loop.call_soon_threadsafe(ended.set)

    subscription = observable.subscribe(items.append, fail, complete)
    try:
        await asyncio.wait_for(ended.wait(), LIMIT)
    except TimeoutError:
        raise AssertionError(f"no end within {LIMIT} s: it hangs") from None
    finally:
        subscription.dispose()
    return items, errors[0] if errors else None


async def run(observable: Observable[T], *, async_: bool) -> tuple[list[T], Exception | None]:
    """:func:`run_async` on this loop, or :func:`run_sync` on a worker thread (no loop
    there, as in a sync application)."""
    if async_:
        return await run_async(observable)
    return await asyncio.to_thread(run_sync, observable)


async def close_async_client(client: Any) -> None:
    """Close an async SDK client the way its SDK offers (litellm's client, a completion
    function, holds no connection of its own: nothing to close)."""
    if isinstance(client, functools.partial) or inspect.isfunction(client):
        return
    aio = getattr(client, "aio", None)  # google-genai
    if aio is not None:
        await aio.aclose()
        return
    close = getattr(client, "close", None)
    if close is not None and inspect.iscoroutinefunction(close):
        await close()
        return
    await client.__aexit__(None, None, None)  # cohere's AsyncClientV2, mistralai
