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

import asyncio
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
    stall = Fault(http_error=503, stall_before=HEADER_STALL)
    budget = sk.Deadlines(headers=SHORT_TIMEOUT)
    client, stalled = await _deadline_stream(server, provider, async_, stall, budget)
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
    record = server.wait_for_request_end(1, timeout=2.0)
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


# -- the headers deadline covers the headers only ------------------------------------
AFTER_HEADERS_STALL = 0.8
"""Seconds the server waits after its response headers and before the first event."""


async def _warm_up(server: ReplayServer, provider: ProviderCase, client: Any, async_: bool) -> None:
    """One request without a deadline first: litellm imports much at its first call,
    which a short headers deadline would count (it times the SDK call as a whole)."""
    server.push(provider.transcript)
    stream = sk.stream(provider.name, MODEL, "hello", client=client, async_=async_)
    _, error = await run(stream, async_=async_)
    assert error is None, repr(error)
    server.wait_for_request_end(0, timeout=2.0)


async def _deadline_stream(
    server: ReplayServer,
    provider: ProviderCase,
    async_: bool,
    fault: Fault,
    deadlines: sk.Deadlines,
    **client: Any,
) -> tuple[Any, sk.Stream]:
    """A client of ``provider`` on ``server`` (warmed up: request 0), and a stream with
    ``deadlines`` that meets ``fault`` (request 1)."""
    missing = provider.missing()
    if missing:
        pytest.skip(missing)
    sdk_client = server.client(provider.name, async_=async_, **client)
    await _warm_up(server, provider, sdk_client, async_)
    server.push(Reply(provider.transcript, fault=fault))
    stream = sk.stream(
        provider.name, MODEL, "hello", client=sdk_client, async_=async_, deadlines=deadlines
    )
    return sdk_client, stream


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_headers_deadline_shorter_than_idle_holds_before_the_headers(
    provider: ProviderCase, async_: bool, replay: Callable[..., ReplayServer]
) -> None:
    """``headers`` bounds the wait for the headers by itself: an ``idle`` deadline ten
    times longer does not stretch it (it once did: the SDK read timeout was
    ``max(headers, idle)``)."""
    server = replay()
    stall = Fault(http_error=503, stall_before=HEADER_STALL)
    budget = sk.Deadlines(headers=SHORT_TIMEOUT, idle=HEADER_STALL * 2)
    client, stream = await _deadline_stream(server, provider, async_, stall, budget)
    started = time.monotonic()
    try:
        _, error = await run(stream, async_=async_)
    finally:
        if async_:
            await close_async_client(client)
    assert isinstance(error, sk.StreamTimeoutError), repr(error)
    assert (error.kind, error.seconds, error.scope) == ("headers", SHORT_TIMEOUT, "attempt")
    assert time.monotonic() - started < HEADER_STALL / 2
    assert settle(lambda: server.open_connections == 0 and not source_threads(), 1.5)


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_the_headers_deadline_ends_when_the_headers_are_in(
    provider: ProviderCase, async_: bool, replay: Callable[..., ReplayServer]
) -> None:
    """The headers come at once, the first event only after a stall longer than the
    headers deadline: the headers deadline has passed with the headers, so the stream
    waits for its first chunk and completes (it once failed as a "headers" timeout:
    the headers deadline bounded the wait for the first token too)."""
    server = replay()
    stall = Fault(stall_before=AFTER_HEADERS_STALL)
    budget = sk.Deadlines(headers=SHORT_TIMEOUT, idle=HEADER_STALL * 2)
    client, stream = await _deadline_stream(server, provider, async_, stall, budget)
    try:
        chunks, error = await run(stream, async_=async_)
    finally:
        if async_:
            await close_async_client(client)
    assert error is None, repr(error)
    assert "".join(chunk.content for chunk in chunks)
    assert server.wait_for_request_end(1, timeout=2.0).completed


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_stall_after_the_headers_is_the_first_chunk_deadlines(
    provider: ProviderCase, async_: bool, replay: Callable[..., ReplayServer]
) -> None:
    """The same stall after the headers, with a first-chunk deadline: that deadline
    passes and names itself, not the headers deadline."""
    server = replay()
    stall = Fault(stall_before=HEADER_STALL)
    budget = sk.Deadlines(headers=0.2, first_chunk=0.6)
    client, stream = await _deadline_stream(server, provider, async_, stall, budget)
    started = time.monotonic()
    try:
        _, error = await run(stream, async_=async_)
    finally:
        if async_:
            await close_async_client(client)
    elapsed = time.monotonic() - started
    assert isinstance(error, sk.StreamTimeoutError), repr(error)
    assert (error.kind, error.seconds) == ("first chunk", 0.6)
    assert 0.6 <= elapsed < HEADER_STALL / 2
    record = server.wait_for_request_end(1, timeout=2.0)
    assert record.disconnected and record.events_sent == 0
    assert settle(lambda: server.open_connections == 0 and not source_threads(), 1.5)


def _retrying(provider: str, url: str) -> dict[str, Any]:
    """Client options under which each SDK retries a broken request (as its defaults
    do; the replay server's clients retry nothing), quickly."""
    if provider == "mistral":
        from mistralai.client.utils.retries import BackoffStrategy, RetryConfig

        return {"retry_config": RetryConfig("backoff", BackoffStrategy(50, 100, 1.5, 5000), True)}
    if provider == "google":
        from google.genai import types

        retry = types.HttpRetryOptions(attempts=3, initial_delay=0.05, max_delay=0.1)
        return {"http_options": types.HttpOptions(base_url=url, retry_options=retry)}
    if provider == "azure":
        return {"retry_total": 2, "retry_backoff_factor": 0.05}
    return {"max_retries": 2}


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_headers_timeout_is_one_request_whatever_the_sdks_retries(
    provider: ProviderCase, async_: bool, replay: Callable[..., ReplayServer]
) -> None:
    """A client that retries (as the SDKs do by default): the headers deadline bounds
    one request and the SDK does not send it again behind streamkit's back (once it
    did: the request was retried twice, each with the whole deadline, 3x the wait)."""
    server = replay()
    stall = Fault(http_error=503, stall_before=1.5)
    client, stream = await _deadline_stream(
        server,
        provider,
        async_,
        stall,
        sk.Deadlines(headers=SHORT_TIMEOUT),
        **_retrying(provider.name, server.url),
    )
    server.push(*[Reply(provider.transcript, fault=stall)] * 2)  # for any retry
    try:
        _, error = await run(stream, async_=async_)
        await asyncio.sleep(1.0)  # longer than any retry's backoff above
    finally:
        if async_:
            await close_async_client(client)
    assert isinstance(error, sk.StreamTimeoutError) and error.kind == "headers", repr(error)
    attempts = len(server.requests) - 1  # after the warm-up's
    assert attempts == 1, f"{attempts} requests for one attempt"
    assert settle(lambda: server.open_connections == 0 and not source_threads(), 1.5)
