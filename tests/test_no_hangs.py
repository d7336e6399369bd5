"""The obvious things a user tries end or fail clearly, never hang (issue 11):
``.run()`` over an async stream, ``list()`` over a pipeline; and the async ways
(``aresponse()``, ``sk.arun``, ``sk.aiter``) and ``stream.iter`` work, closing the
response on ``break``."""

from __future__ import annotations

import asyncio

import pytest
from reactivex import operators as rx

import streamkit as sk
from streamkit import ops
from streamkit.testing import ReplayServer

TEXT = "openai/chat-text-usage"


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
