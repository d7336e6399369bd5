"""The obvious things a user tries end or fail clearly, never hang (issue 11):
``.run()`` over an async stream, ``list()`` over a pipeline or over a reactivex
operator applied to a stream directly; and the async ways (``aresponse()``,
``sk.arun``, ``sk.aiter``) and ``stream.iter`` work, closing the response on ``break``.
``sk.race`` / ``sk.first_match`` / ``sk.best_of`` are consumed the same ways."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

import pytest
from reactivex import operators as rx

import streamkit as sk
from streamkit import ops
from streamkit.testing import ReplayServer

TEXT = "openai/chat-text-usage"
T = TypeVar("T")


def whole_text(server: ReplayServer) -> str:
    stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
    response: sk.CallResponse = stream.pipe(ops.to_call_response()).run()
    return response.content


async def test_run_of_an_async_stream_in_a_running_loop_raises_naming_the_async_way() -> None:
    with ReplayServer() as server:
        async with server.client("openai", async_=True) as client:
            stream = sk.stream("openai", "gpt-4o", "hi", client=client)
            for blocking in (
                stream,
                stream.pipe(ops.to_call_response()),
                stream.pipe(ops.text(), rx.take(1)),
            ):
                with pytest.raises(sk.StreamError, match=r"aresponse\(\)"):
                    blocking.run()
        assert server.requests == []  # refused before any request


def test_run_of_an_async_stream_outside_a_loop_raises() -> None:
    with ReplayServer() as server:
        client = server.client("openai", async_=True)
        stream = sk.stream("openai", "gpt-4o", "hi", client=client)
        with pytest.raises(sk.StreamError, match="async client"):
            stream.pipe(ops.to_call_response()).run()
        assert server.requests == []


async def test_the_async_ways_are_one_call_each() -> None:
    with ReplayServer() as server:
        server.push(TEXT, TEXT, TEXT)
        async with server.client("openai", async_=True) as client:
            stream = sk.stream("openai", "gpt-4o", "hi", client=client)
            response = await stream.pipe(ops.to_call_response()).aresponse()
            same = await sk.arun(stream.pipe(ops.to_call_response()))
            pieces = [text async for text in sk.aiter(stream.pipe(ops.text()))]
        assert len(server.requests) == 3
    assert response.content == same.content == "".join(pieces) != ""


async def test_await_of_a_pipeline_still_works() -> None:
    # reactivex's own ``await observable`` pipes into to_future(), whose result is a
    # Future, not an observable: the Pipeline must pass it through.
    with ReplayServer() as server:
        server.push(TEXT)
        async with server.client("openai", async_=True) as client:
            stream = sk.stream("openai", "gpt-4o", "hi", client=client)
            response = await stream.pipe(ops.to_call_response())
    assert isinstance(response, sk.CallResponse) and response.content != ""


def test_list_of_a_pipeline_raises_pointing_to_iter() -> None:
    with ReplayServer() as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        with pytest.raises(TypeError, match=r"stream\.iter\("):
            list(stream.pipe(ops.text()))
        with pytest.raises(TypeError, match=r"stream\.iter\("):
            for _ in stream.pipe(ops.text(), rx.take(2)):
                pass
        assert server.requests == []


def test_stream_iter_yields_the_pipeline_values() -> None:
    with ReplayServer() as server:
        server.push(TEXT, TEXT)
        expected = whole_text(server)
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        assert "".join(stream.iter(ops.text())) == expected


def test_break_out_of_stream_iter_closes_the_response() -> None:
    with ReplayServer(TEXT, pace=0.05) as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        for _text in stream.iter(ops.text()):
            break
        record = server.wait_for_request_end(0)
    assert record.disconnected and not record.completed


async def test_break_out_of_aiter_closes_the_response() -> None:
    with ReplayServer(TEXT, pace=0.05) as server:
        async with server.client("openai", async_=True) as client:
            stream = sk.stream("openai", "gpt-4o", "hi", client=client)
            async for _text in stream.aiter(ops.text()):
                break
            # the dropped generator is closed by the loop (its asyncgen finalizer), so
            # wait without blocking the loop
            for _ in range(500):
                if server.requests and server.requests[0].finished:
                    break
                await asyncio.sleep(0.01)
            record = server.requests[0]
    assert record.disconnected and not record.completed


async def test_aiter_of_a_sync_stream_works_in_a_loop() -> None:
    with ReplayServer() as server:
        server.push(TEXT, TEXT)
        expected = whole_text(server)
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        assert "".join([t async for t in stream.aiter(ops.text())]) == expected


def test_iter_of_an_async_stream_names_aiter() -> None:
    with ReplayServer() as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai", async_=True))
        with pytest.raises(sk.StreamError, match=r"stream\.aiter"):
            stream.iter(ops.text())


# -- a hang guard ------------------------------------------------------------------------
def finishes(call: Callable[[], T], seconds: float = 20.0) -> T:
    """Run ``call`` on a daemon thread and assert it ended within ``seconds``: a guard
    against a hang (which would otherwise stall the suite), not a speed assertion.
    Returns its result, or raises its error."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # handed to the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=target, name="hang-guard", daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"did not end within {seconds} s: it hangs"
    if "error" in outcome:
        raise outcome["error"]
    return cast(T, outcome["value"])


# -- sk.race / sk.first_match / sk.best_of are consumed like a stream's pipeline -------
def race_of(*streams: sk.Stream) -> sk.Pipeline[sk.Chunk]:
    return sk.race(*streams)


def first_match_of(*streams: sk.Stream) -> sk.Pipeline[sk.Chunk]:
    return sk.first_match(*streams, until=lambda text: "4242" in text)


def best_of_of(*streams: sk.Stream) -> sk.Pipeline[sk.Chunk]:
    return sk.best_of(*streams, score=len)


MANY = [race_of, first_match_of, best_of_of]


@pytest.mark.parametrize("combine", MANY, ids=["race", "first_match", "best_of"])
def test_many_streams_iterate_run_and_reduce_like_a_stream_sync(
    combine: Callable[..., sk.Pipeline[sk.Chunk]],
) -> None:
    with ReplayServer(TEXT) as server:
        expected = whole_text(server)
        client = server.client("openai")
        combined = combine(*(sk.stream("openai", "gpt-4o", "hi", client=client) for _ in "ab"))
        assert isinstance(combined, sk.Pipeline) and not combined.is_async

        chunks = finishes(lambda: list(combined.iter()))
        assert "".join(chunk.content for chunk in chunks) == expected
        texts = finishes(lambda: list(combined.iter(ops.text())))
        assert "".join(texts) == expected
        assert "".join(finishes(lambda: list(sk.iterate(combined.pipe(ops.text()))))) == expected

        last = finishes(combined.run)
        assert isinstance(last, sk.Chunk)
        response = finishes(lambda: combined.pipe(ops.to_call_response()).run())
        assert isinstance(response, sk.CallResponse) and response.content == expected

        # `list()`/`for` over the result itself: a clear error at once, no request
        before = len(server.requests)
        with pytest.raises(sk.NotIterableError, match=r"\.iter\(\)"):
            finishes(lambda: list(combined))
        assert len(server.requests) == before


@pytest.mark.parametrize("combine", MANY, ids=["race", "first_match", "best_of"])
def test_many_streams_iterate_and_reduce_like_a_stream_async(
    combine: Callable[..., sk.Pipeline[sk.Chunk]],
) -> None:
    async def scenario(server: ReplayServer) -> tuple[str, str, str]:
        async with server.client("openai", async_=True) as client:
            combined = combine(*(sk.stream("openai", "gpt-4o", "hi", client=client) for _ in "ab"))
            assert isinstance(combined, sk.Pipeline) and combined.is_async
            chunks = [chunk async for chunk in combined.aiter()]
            texts = [text async for text in sk.aiter(combined.pipe(ops.text()))]
            response = await combined.pipe(ops.to_call_response()).aresponse()
            # the blocking ways refuse at once inside the running loop
            with pytest.raises(sk.StreamError, match=r"aresponse\(\)"):
                combined.run()
            with pytest.raises(sk.StreamError, match=r"aresponse\(\)"):
                combined.pipe(ops.to_call_response()).run()
            with pytest.raises(sk.NotIterableError, match=r"\.aiter\(\)"):
                async for _ in combined:
                    pass
            with pytest.raises(sk.StreamError):
                combined.iter()
        return "".join(c.content for c in chunks), "".join(texts), response.content

    with ReplayServer(TEXT) as server:
        expected = whole_text(server)
        # the whole loop on a guarded thread: a blocking call inside it would block it
        results = finishes(lambda: asyncio.run(scenario(server)))
    assert results == (expected, expected, expected)


def test_many_streams_mixing_sync_and_async_streams_is_async() -> None:
    with ReplayServer(TEXT) as server:
        sync = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        async_ = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai", async_=True))
        for combine in MANY:
            combined = combine(sync, async_)
            assert combined.is_async
            with pytest.raises(sk.StreamError, match="async client"):
                combined.run()
        assert server.requests == []


# -- a pipeline over a stream, iterated by mistake ---------------------------------------
def test_list_of_a_sliced_stream_fails_at_once_naming_iter() -> None:
    # reactivex's slicing goes through Stream.pipe, so it is a Pipeline that refuses
    # ``list()``. (A reactivex operator applied directly, ``rx.take(2)(stream)``, returns
    # reactivex's own Observable, which streamkit leaves alone: the docs name
    # ``stream.pipe(...)`` as the way; see docs/concepts/streams.md.)
    with ReplayServer(TEXT) as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        sliced: Any = stream[0:2]
        with pytest.raises(sk.NotIterableError, match=r"\.iter\(") as raised:
            finishes(functools.partial(list, sliced), seconds=10)
        assert isinstance(raised.value, TypeError)
        assert server.requests == []
        # the way the message names works
        chunks = finishes(lambda: list(stream.iter(rx.take(2))))
    assert len(chunks) == 2 and all(isinstance(c, sk.Chunk) for c in chunks)


# -- Stream.aresponse() is the CallResponse ----------------------------------------------
async def test_stream_aresponse_is_the_call_response_async_client() -> None:
    with ReplayServer(TEXT) as server:
        async with server.client("openai", async_=True) as client:
            stream = sk.stream("openai", "gpt-4o", "hi", client=client)
            response = await stream.aresponse()
            again = await stream.aresponse()  # replayed: no new request
        assert len(server.requests) == 1
        expected = whole_text(server)
    assert isinstance(response, sk.CallResponse)
    assert response == stream.construct_call_response() == again
    assert response.content == stream.content == expected
    assert response.usage is not None and response.usage == stream.usage
    assert response.finish_reason == "stop"


async def test_stream_aresponse_of_a_sync_client_does_not_block_the_loop() -> None:
    with ReplayServer(TEXT, pace=0.01) as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        ticker = asyncio.ensure_future(tick())
        response = await stream.aresponse()
        ticker.cancel()
        expected = whole_text(server)
    assert isinstance(response, sk.CallResponse) and response.content == expected
    assert response == stream.construct_call_response()
    assert ticks > 1  # the loop ran while the sync stream was read


async def test_cancelling_stream_aresponse_closes_the_response() -> None:
    for async_ in (False, True):
        with ReplayServer(TEXT, pace=0.2) as server:
            client = server.client("openai", async_=async_)
            stream = sk.stream("openai", "gpt-4o", "hi", client=client)
            task = asyncio.ensure_future(stream.aresponse())
            for _ in range(500):
                if server.requests and server.requests[0].events_sent >= 1:
                    break
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            for _ in range(500):
                if server.requests[0].finished:
                    break
                await asyncio.sleep(0.01)
            record = server.requests[0]
            assert record.disconnected and not record.completed, async_
            if async_:
                await client.close()


def test_the_async_run_error_names_a_call_that_returns_the_response() -> None:
    async def scenario() -> sk.CallResponse:
        with ReplayServer(TEXT) as server:
            async with server.client("openai", async_=True) as client:
                stream = sk.stream("openai", "gpt-4o", "hi", client=client)
                with pytest.raises(sk.StreamError, match=r"await stream\.aresponse\(\)"):
                    stream.run()
                return await stream.aresponse()  # what the message recommends

    response = finishes(lambda: asyncio.run(scenario()))
    assert isinstance(response, sk.CallResponse) and response.content != ""
