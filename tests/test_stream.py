"""The Stream and the Mirascope-compatible call API, end to end with the openai SDK against
the replay server: cold subscriptions, iteration, totals, @call, cancellation to the
socket (seen from the server's side), and bad input rejected before any request."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import openai
import pytest
import reactivex
from reactivex import operators as rx

import streamkit as sk
from streamkit import ops
from streamkit._source import THREAD_NAME_PREFIX
from streamkit.testing import Fault, ReplayServer, Reply

LONG = "openai/chat-text-after-tool-results"  # many small events


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def source_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_NAME_PREFIX)]


@pytest.fixture(autouse=True)
def no_source_thread_left_behind() -> Iterator[None]:
    yield
    wait_until(lambda: not source_threads(), timeout=5.0)


# -- cold, one request per subscription; subscribing never blocks --------------------
def test_nothing_is_sent_until_subscribed_and_each_subscription_is_one_request() -> None:
    with ReplayServer("openai/chat-text-usage") as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        assert server.requests == []
        first = stream.pipe(ops.to_call_response()).run()
        second = stream.pipe(ops.to_call_response()).run()
        assert len(server.requests) == 2
        assert first.content == second.content == "4200 + 42 equals 4242."


def test_subscribe_returns_before_the_response_arrives() -> None:
    with ReplayServer() as server:
        server.push(Reply("openai/chat-text-usage", fault=Fault(stall_before=0.5)))
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        received: list[sk.Chunk] = []
        done = threading.Event()
        subscription = stream.subscribe(received.append, on_completed=done.set)
        assert received == []  # subscribe returned while the server was still stalling
        assert done.wait(5)
        subscription.dispose()
        assert "".join(c.content for c in received) == "4200 + 42 equals 4242."


def test_chunks_are_delivered_on_a_background_thread_named_for_streamkit() -> None:
    with ReplayServer("openai/chat-text-usage") as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        names: list[str] = []
        done = threading.Event()
        stream.subscribe(
            lambda _: names.append(threading.current_thread().name), on_completed=done.set
        )
        assert done.wait(5)
    assert names and all(name.startswith(THREAD_NAME_PREFIX) for name in names)
    assert threading.current_thread().name not in names


# -- the Mirascope-compatible iteration API -------------------------------------------
def test_iteration_totals_and_construct_call_response() -> None:
    with ReplayServer("openai/chat-text-usage") as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        pieces = [chunk.content for chunk, tool in stream if tool is None]
        assert stream.content == "".join(pieces) == "4200 + 42 equals 4242."
        assert stream.finish_reasons == ["stop"]
        assert stream.model == "gpt-4o-2024-08-06"
        assert stream.id == "chatcmpl-CoDWl5rS0pF10P0W0TDVgY3NA26dk"
        assert stream.usage == sk.Usage(
            input_tokens=16, output_tokens=10, total_tokens=26, cached_tokens=0, reasoning_tokens=0
        )
        assert (stream.input_tokens, stream.output_tokens) == (16, 10)
        assert stream.tool_calls == []
        response = stream.construct_call_response()
        assert isinstance(response, sk.CallResponse)
        assert response.content == stream.content and response.finish_reason == "stop"


def test_second_iteration_replays_without_a_new_request_or_wiping_totals() -> None:
    with ReplayServer("openai/chat-text-usage") as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        first = [chunk.content for chunk, _ in stream]
        second = [chunk.content for chunk, _ in stream]
        assert first == second
        assert stream.content == "4200 + 42 equals 4242."
        assert len(server.requests) == 1


def test_tool_calls_are_yielded_once_each() -> None:
    with ReplayServer("openai/chat-tool-call-gpt-4o-mini") as server:
        stream = sk.stream("openai", "gpt-4o-mini", "hi", client=server.client("openai"))
        tools = [tool for _, tool in stream if tool is not None]
    assert len(tools) == 1 and tools[0] == stream.tool_calls[0]
    assert tools[0].args == __import__("json").loads(tools[0].arguments)


async def test_async_iteration_with_an_async_client() -> None:
    with ReplayServer("openai/chat-text-usage") as server:
        client = server.client("openai", async_=True)
        async with sk.stream("openai", "gpt-4o", "hi", client=client) as stream:
            pieces = [chunk.content async for chunk, _ in stream]
        assert "".join(pieces) == stream.content == "4200 + 42 equals 4242."
        await client.close()


# -- @call ----------------------------------------------------------------------------
def test_call_decorator_stream_true_and_false() -> None:
    with ReplayServer("openai/chat-text-usage") as server:
        client = server.client("openai")

        @sk.call("openai", "gpt-4o-mini", stream=True, client=client, max_tokens=50)
        def recommend_book(genre: str) -> str:
            return f"Recommend a {genre} book"

        stream = recommend_book("fantasy")
        assert isinstance(stream, sk.Stream)
        for _chunk, _ in stream:
            pass
        assert stream.content == "4200 + 42 equals 4242."

        @sk.call("openai", "gpt-4o-mini", client=client)
        def answer(question: str) -> list[dict[str, str]]:
            return [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": question},
            ]

        response = answer("What is 4200 + 42?")
        assert isinstance(response, sk.CallResponse)
        assert response.content == "4200 + 42 equals 4242."
        first, second = (r.json for r in server.requests)
        assert first is not None and second is not None
        assert first["messages"] == [{"role": "user", "content": "Recommend a fantasy book"}]
        assert first["max_tokens"] == 50
        assert second["messages"][0] == {"role": "system", "content": "Be brief."}


async def test_call_decorator_on_async_functions() -> None:
    with ReplayServer("openai/chat-text-usage") as server:
        client = server.client("openai", async_=True)

        @sk.call("openai", "gpt-4o-mini", stream=True, client=client)
        async def recommend_book(genre: str) -> str:
            return f"Recommend a {genre} book"

        stream = await recommend_book("fantasy")
        async for _ in stream:
            pass
        assert stream.content == "4200 + 42 equals 4242."

        @sk.call("openai", "gpt-4o-mini", client=client)
        async def answer() -> str:
            return "What is 4200 + 42?"

        response = await answer()
        assert response.content == "4200 + 42 equals 4242."
        await client.close()


def test_call_decorator_rejects_a_client_of_the_wrong_kind() -> None:
    with ReplayServer("openai/chat-text-usage") as server:
        with pytest.raises(TypeError, match="async"):

            @sk.call("openai", "gpt-4o", stream=True, client=server.client("openai"))
            async def prompt() -> str:
                return "hi"

        assert server.requests == []


# -- bad input fails before any request -------------------------------------------------
def test_bad_input_is_rejected_before_any_request() -> None:
    with ReplayServer("openai/chat-text-usage") as server:
        client = server.client("openai")
        with pytest.raises(sk.UnknownProviderError, match="anthropic"):
            sk.stream("openia", "gpt-4o", "hi", client=client)
        with pytest.raises(TypeError, match="model"):
            sk.stream("openai", 42, "hi", client=client)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="role"):
            sk.stream("openai", "gpt-4o", [{"role": "wizard", "content": "hi"}], client=client)
        with pytest.raises(TypeError, match="messages"):
            sk.stream("openai", "gpt-4o", 3, client=client)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="openai"):
            sk.stream("openai", "gpt-4o", "hi", client=object())
        async_stream = sk.stream(
            "openai", "gpt-4o", "hi", client=server.client("openai", async_=True)
        )
        with pytest.raises(sk.StreamError, match="async for"):
            list(async_stream)
        assert server.requests == []


async def test_sync_stream_rejects_async_iteration() -> None:
    with ReplayServer("openai/chat-text-usage") as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        with pytest.raises(sk.StreamError, match="`for`"):
            async for _ in stream:
                pass
        assert server.requests == []


def test_async_stream_subscribed_outside_a_loop_fails_clearly() -> None:
    with ReplayServer("openai/chat-text-usage") as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai", async_=True))
        errors: list[BaseException] = []
        stream.subscribe(on_error=errors.append)
        assert errors and isinstance(errors[0], sk.StreamError)
        assert "event loop" in str(errors[0])
        assert server.requests == []


# -- cancellation down to the socket ------------------------------------------------------
FAST = pytest.mark.parametrize("fast", [False, True], ids=["sdk", "fast"])


@FAST
def test_take_closes_the_http_response_sync(fast: bool) -> None:
    with ReplayServer(LONG, pace=0.03) as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"), fast=fast)
        done = threading.Event()
        got: list[sk.Chunk] = []
        stream.pipe(rx.take(3)).subscribe(got.append, on_completed=done.set)
        assert done.wait(5)
        record = server.wait_for_request_end(0)
        assert len(got) == 3
        assert record.disconnected
        assert record.events_sent <= 5 < record.events_total


@FAST
def test_dispose_from_another_thread_wakes_a_blocked_read(fast: bool) -> None:
    # The reader thread is blocked in recv during a long stall: disposal must still
    # close the connection at once (the socket is shut down, not just flagged).
    with ReplayServer() as server:
        server.push(Reply(LONG, fault=Fault(stall_after_events=(3, 30.0))))
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"), fast=fast)
        got: list[sk.Chunk] = []
        subscription = stream.subscribe(got.append)
        wait_until(lambda: len(got) == 3)
        time.sleep(0.1)  # let the reader block in the stalled read
        subscription.dispose()
        record = server.wait_for_request_end(0, timeout=5)
        assert record.disconnected and record.events_sent == 3
        wait_until(lambda: not source_threads())


@FAST
def test_break_and_close_closes_the_http_response(fast: bool) -> None:
    with ReplayServer(LONG, pace=0.03) as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"), fast=fast)
        with stream:
            for count, _ in enumerate(stream, 1):
                if count == 3:
                    break
        record = server.wait_for_request_end(0)
        assert record.disconnected and record.events_sent <= 5 < record.events_total
        assert len(stream.content) > 0


@FAST
async def test_dispose_closes_the_http_response_async(fast: bool) -> None:
    with ReplayServer(LONG, pace=0.03) as server:
        client = server.client("openai", async_=True)
        stream = sk.stream("openai", "gpt-4o", "hi", client=client, fast=fast)
        got: list[sk.Chunk] = []
        completed = asyncio.Event()
        stream.pipe(rx.take(3)).subscribe(got.append, on_completed=completed.set)
        await asyncio.wait_for(completed.wait(), 5)
        record = await asyncio.to_thread(server.wait_for_request_end, 0)
        assert len(got) == 3 and record.disconnected
        assert record.events_sent <= 5 < record.events_total
        await client.close()


@FAST
async def test_async_break_closes_the_http_response(fast: bool) -> None:
    with ReplayServer(LONG, pace=0.03) as server:
        client = server.client("openai", async_=True)
        stream = sk.stream("openai", "gpt-4o", "hi", client=client, fast=fast)
        async with stream:
            count = 0
            async for _ in stream:
                count += 1
                if count == 3:
                    break
        record = await asyncio.to_thread(server.wait_for_request_end, 0)
        assert record.disconnected and record.events_sent <= 5 < record.events_total
        await client.close()


def test_observable_run_is_a_blocking_consumer() -> None:
    with ReplayServer("openai/chat-text-usage") as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        text = stream.pipe(rx.map(lambda c: c.content), rx.reduce(lambda a, b: a + b, "")).run()
    assert text == "4200 + 42 equals 4242."


def test_stream_is_an_observable() -> None:
    with ReplayServer("openai/chat-text-usage") as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        assert isinstance(stream, reactivex.Observable)
        assert "openai" in repr(stream) and "sk-" not in repr(stream)


def test_the_api_error_is_what_openai_users_catch() -> None:
    with ReplayServer("openai/chat-error-404-model-not-found") as server:
        stream = sk.stream("openai", "gpt-nope", "hi", client=server.client("openai"))
        try:
            for _ in stream:
                pass
        except openai.APIError as error:
            assert error.status_code == 404  # type: ignore[attr-defined]
        else:
            raise AssertionError("expected openai.APIError")
