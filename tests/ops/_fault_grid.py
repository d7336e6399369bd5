"""The fault schedules every many-streams operator meets end to end (a stall before the
response headers, a stall after them before the first chunk, a stall after the first
chunks, an overload error event mid-stream, a cut stream, a 529 before the headers),
on every provider, sync and async.

The grid is cheap: each provider meets every fault, and sync and async alternate over
it, so every provider and every fault run both ways without the full product.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from reactivex import Observable

import streamkit as sk
from streamkit.testing import Fault
from tests.reliability._matrix import PROVIDER_CASES, ProviderCase
from tests.reliability._run import close_async_client

STALL = 3.0
"""Seconds a stall lasts: never waited out by a passing test."""

FAULTS: dict[str, Callable[[ProviderCase], Fault]] = {
    "529-before-headers": lambda p: Fault(http_error=529),
    "stall-before-headers": lambda p: Fault(http_error=503, stall_before=STALL),
    "stall-before-first-chunk": lambda p: Fault(stall_before=STALL),
    "stall-after-first-chunk": lambda p: Fault(stall_after_events=(p.at, STALL)),
    "529-mid-stream": lambda p: Fault(error_event_after=p.at),
    "cut-mid-stream": lambda p: Fault(close_after_events=p.at),
}
BEFORE_CONTENT = {"529-before-headers", "stall-before-headers", "stall-before-first-chunk"}
"""Faults that strike before any content arrived (the others after ``at`` events)."""

GRID = [
    pytest.param(case, fault, (i + j) % 2 == 1, id=f"{case.name}-{fault}-{mode}")
    for i, case in enumerate(PROVIDER_CASES)
    for j, fault in enumerate(FAULTS)
    for mode in [("sync", "async")[(i + j) % 2]]
]
"""``(provider, fault, async_)`` cells for ``pytest.mark.parametrize``."""


async def run(observable: Observable[Any], async_: bool) -> Any:
    """The observable's last value (async: awaited; sync: ``run()`` in a thread)."""
    if async_:
        return await observable
    return await asyncio.to_thread(observable.run)


async def outcome(observable: Observable[Any], async_: bool) -> tuple[Any, Exception | None]:
    """``(last value, None)`` or ``(None, the error)``."""
    try:
        return await run(observable, async_), None
    except Exception as error:
        return None, error


async def close(async_: bool, *clients: Any) -> None:
    """Close async SDK clients (sync ones are left to their servers' close)."""
    if async_:
        for client in clients:
            await close_async_client(client)


def attempt_deadlines(provider: ProviderCase, fault: str, async_: bool) -> sk.Deadlines | None:
    """The per-attempt budget that turns this cell's stall into a failure (for
    ``fallback``, which moves on when an attempt fails), else ``None``: the headers
    deadline for a stall before the headers, the first-chunk deadline for one after
    them (the headers deadline has passed with the headers), the idle deadline after
    the first chunks."""
    if fault == "stall-before-headers":
        return sk.Deadlines(headers=0.3)
    if fault == "stall-before-first-chunk":
        return sk.Deadlines(headers=0.3, first_chunk=0.5)
    if fault == "stall-after-first-chunk":
        return sk.Deadlines(idle=0.3)
    return None
