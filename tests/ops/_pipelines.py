"""Shared helpers for the operator tests: virtual-time sources, end-to-end runs against
the replay server (sync and async), and checks that nothing was left running."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar

import pytest
from reactivex import Observable
from reactivex.notification import OnNext
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.coldobservable import ColdObservable
from reactivex.testing.recorded import Recorded

import streamkit as sk
from streamkit._source import THREAD_NAME_PREFIX
from streamkit.testing import RecordedRequest, ReplayServer, load_transcript

T = TypeVar("T")

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
on_error = ReactiveTest.on_error
subscribe = ReactiveTest.subscribe

SPACING = 10
"""Virtual seconds between two items of :func:`cold_items`; the first comes at 10."""

# Providers with an adapter today: (provider, a text transcript, a phrase that appears
# in it split across two events, well before its end) for end-to-end runs.
E2E_CASES = [
    ("openai", "openai/chat-text-after-tool-results", "Moria"),
    ("anthropic", "anthropic/messages-tool-result-followup", "Password"),
]

E2E_RUNS = [
    pytest.param(provider, transcript, phrase, async_, id=f"{provider}-{kind}")
    for provider, transcript, phrase in E2E_CASES
    for async_, kind in ((False, "sync"), (True, "async"))
]
"""``(provider, transcript, phrase, async_)``: every end-to-end case with a sync and an
async SDK client."""


def chunks_of(pieces: Sequence[str], provider: str = "openai") -> list[sk.Chunk]:
    """One text chunk per piece."""
    return [sk.Chunk(provider=provider, content=piece) for piece in pieces]


def cold_items(scheduler: TestScheduler, items: Sequence[T]) -> ColdObservable[T]:
    """A cold observable emitting ``items`` every ``SPACING`` ticks, then completing."""
    messages = [on_next(SPACING * (i + 1), item) for i, item in enumerate(items)]
    messages.append(on_completed(SPACING * (len(items) + 1)))
    return scheduler.create_cold_observable(messages)


def tick_of(index: int) -> int:
    """When item ``index`` of :func:`cold_items` arrives, subscribed at 200 (the default
    of ``TestScheduler.start``); ``tick_of(len(items))`` is when it completes."""
    return 200 + SPACING * (index + 1)


def values(messages: Sequence[Recorded[T]]) -> list[T]:
    """The values of the on_next notifications among recorded ``messages``."""
    return [m.value.value for m in messages if isinstance(m.value, OnNext)]


def content_per_event(transcript_name: str) -> list[str]:
    """The text each recorded SSE event carries, read straight from the JSON (an oracle
    independent of streamkit's decoders)."""
    texts = []
    for event in load_transcript(transcript_name).events:
        text = ""
        for line in event.splitlines():
            if not line.startswith("data: {"):
                continue
            data = json.loads(line[len("data: ") :])
            for choice in data.get("choices", []):  # OpenAI-shaped chat chunks
                text += choice.get("delta", {}).get("content") or ""
            if data.get("type") == "content_block_delta":  # Anthropic messages
                text += data["delta"].get("text", "")
        texts.append(text)
    return texts


def first_event_matching(transcript_name: str, needle: str) -> int:
    """Index of the event after which the transcript's text first contains ``needle``."""
    text = ""
    for index, piece in enumerate(content_per_event(transcript_name)):
        text += piece
        if needle in text:
            return index
    raise AssertionError(f"{needle!r} never appears in {transcript_name}")


def text_until(transcript_name: str, needle: str) -> str:
    """The transcript's text up to the end of the event that completes ``needle``: what
    ``take_until_match(needle)`` must let through."""
    pieces = content_per_event(transcript_name)
    return "".join(pieces[: first_event_matching(transcript_name, needle) + 1])


@contextlib.asynccontextmanager
async def replay_stream(
    server: ReplayServer,
    provider: str,
    *,
    async_: bool,
    model: str = "replayed-model",
    **options: Any,
) -> AsyncIterator[sk.Stream]:
    """A stream of ``provider`` (asking for ``model``, with ``sk.stream``'s other
    ``options``) whose SDK client (sync or async) talks to ``server``; an async client
    is closed on exit (the server closes sync ones)."""
    client = server.client(provider, async_=async_)
    try:
        yield sk.stream(provider, model, "hello", client=client, **options)
    finally:
        if async_:
            await client.close()


async def run_either(observable: Observable[T], *, async_: bool) -> list[T]:
    """:func:`run_async` on this loop, or :func:`run_sync` on a worker thread with no
    event loop, as a sync application would run it."""
    if async_:
        return await run_async(observable)
    return await asyncio.to_thread(run_sync, observable)


async def request_end(server: ReplayServer) -> RecordedRequest:
    """The last request, once the server has finished it (waited for off the loop)."""
    return await asyncio.to_thread(server.wait_for_request_end, -1, 5.0)


def collect_sync(
    observable: Observable[T], timeout: float = 10.0
) -> tuple[list[T], Exception | None]:
    """Every item of ``observable`` and the error it ended with (``None``: it completed),
    blocking (without a subscribe scheduler, so a sync source runs on its own
    ``streamkit-source-N`` thread); fails if it has not ended within ``timeout``."""
    finished = threading.Event()
    items: list[T] = []
    errors: list[Exception] = []

    def fail(error: Exception) -> None:
        errors.append(error)
        finished.set()

    disposable = observable.subscribe(items.append, fail, finished.set)
    try:
        assert finished.wait(timeout), f"no end within {timeout} s: it hangs"
    finally:
        disposable.dispose()
    return items, errors[0] if errors else None


def run_sync(observable: Observable[T], timeout: float = 10.0) -> list[T]:
    """Every item of ``observable`` (see :func:`collect_sync`); raises its error."""
    items, error = collect_sync(observable, timeout)
    if error is not None:
        raise error
    return items


async def run_async(observable: Observable[T], timeout: float = 10.0) -> list[T]:
    """Every item of ``observable`` subscribed on the running loop; raises its error.

    Checks that the terminal notification arrives on the loop's thread."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[list[T]] = loop.create_future()
    items: list[T] = []
    loop_thread = threading.current_thread()

    def settle(error: Exception | None) -> None:
        assert threading.current_thread() is loop_thread, "notified off the event loop"
        if done.done():
            return
        if error is None:
            done.set_result(items)
        else:
            done.set_exception(error)

    disposable = observable.subscribe(items.append, settle, lambda: settle(None))
    try:
        return await asyncio.wait_for(done, timeout)
    finally:
        disposable.dispose()


def wait_for_no_leftover_threads(timeout: float = 2.0) -> None:
    """Fail unless every timer thread and streamkit source thread has ended."""
    deadline = time.monotonic() + timeout
    while True:
        left = [
            thread.name
            for thread in threading.enumerate()
            if isinstance(thread, threading.Timer) or thread.name.startswith(THREAD_NAME_PREFIX)
        ]
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"threads left running: {left}")
        time.sleep(0.01)
