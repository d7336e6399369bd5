"""A server that accepts the request and then sends nothing, not even the response
headers (the fault matrix stalls after the headers; this is the stall before them).

``first_chunk_timeout`` fires either way and every subscriber gets
``StreamTimeoutError``. With an async client the request task is cancelled and the
connection closes at once. With a sync client the SDK is still inside its ``create()``
call, blocked reading the headers, and no public handle reaches that socket; so the
headers deadline of ``sk.Deadlines`` is given to the SDK as its per-request timeout,
which ends the blocked read itself: for every provider, sync and async, the stream
fails with ``StreamTimeoutError(kind="headers")`` and the connection and the reader
thread are released.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import streamkit as sk
from streamkit import ops
from streamkit._source import THREAD_NAME_PREFIX
from streamkit.testing import Fault, ReplayServer, Reply
from tests.reliability._matrix import MODEL, PROVIDER_CASES, SHORT_TIMEOUT, ProviderCase, settle
from tests.reliability._run import close_async_client, run, run_sync

HEADER_STALL = 3.0
"""Seconds the server waits before its (503) answer: never waited out by a passing test."""

PROVIDERS = [pytest.param(case, id=case.name) for case in PROVIDER_CASES]


def stalled_stream(
    server: ReplayServer, provider: ProviderCase, async_: bool, **client: Any
) -> Any:
    missing = provider.missing()
    if missing:
        pytest.skip(missing)
    server.push(Reply(provider.transcript, fault=Fault(http_error=503, stall_before=HEADER_STALL)))
    sdk_client = server.client(provider.name, async_=async_, **client)
    stream = sk.stream(provider.name, MODEL, "hello", client=sdk_client, async_=async_)
    return sdk_client, stream.pipe(ops.first_chunk_timeout(SHORT_TIMEOUT))


def source_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(THREAD_NAME_PREFIX)]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_async_client_closes_the_connection_at_the_timeout(
    provider: ProviderCase, replay: Callable[..., ReplayServer]
) -> None:
    server = replay()
    client, stalled = stalled_stream(server, provider, async_=True)
    started = time.monotonic()
    try:
        _, error = await run(stalled, async_=True)
    finally:
        await close_async_client(client)
    assert isinstance(error, sk.StreamTimeoutError) and error.kind == "first chunk"
    assert time.monotonic() - started < HEADER_STALL / 2
    if server.requests:  # else cancelled before it was sent (a slow first request)
        record = server.wait_for_request_end(0, timeout=2.0)
        assert record.disconnected, "the server's stall did not see the client leave"


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_headers_deadline_closes_the_connection(
    provider: ProviderCase, async_: bool, replay: Callable[..., ReplayServer]
) -> None:
    missing = provider.missing()
    if missing:
        pytest.skip(missing)
    server = replay()
    server.push(Reply(provider.transcript, fault=Fault(http_error=503, stall_before=HEADER_STALL)))
    client = server.client(provider.name, async_=async_)
    stalled = sk.stream(
        provider.name,
        MODEL,
        "hello",
        client=client,
        async_=async_,
        deadlines=sk.Deadlines(headers=SHORT_TIMEOUT),
    )
    started = time.monotonic()
    try:
        _, error = await run(stalled, async_=async_)
    finally:
        if async_:
            await close_async_client(client)
    assert isinstance(error, sk.StreamTimeoutError), repr(error)
    assert error.kind == "headers" and error.seconds == SHORT_TIMEOUT
    released = settle(lambda: server.open_connections == 0 and not source_threads(), 1.5)
    assert released, "connection or reader thread still held after the headers deadline"
    assert time.monotonic() - started < HEADER_STALL / 2
    record = server.wait_for_request_end(0, timeout=2.0)
    assert record.disconnected, "the server's stall did not see the client leave"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_sync_client_read_timeout_bounds_the_wait(
    provider: str, replay: Callable[..., ReplayServer]
) -> None:
    """The mitigation: give the sync SDK client a read timeout; it ends the blocked
    read, and with it the connection and the thread, soon after streamkit's own."""
    server = replay()
    case = next(case for case in PROVIDER_CASES if case.name == provider)
    _, stalled = stalled_stream(server, case, async_=False, timeout=0.6)
    started = time.monotonic()
    _, error = run_sync(stalled)
    assert isinstance(error, sk.StreamTimeoutError)
    assert settle(lambda: server.open_connections == 0 and not source_threads(), 1.5)
    assert time.monotonic() - started < HEADER_STALL / 2
