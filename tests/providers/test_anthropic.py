"""The Anthropic adapter, driven through the official SDK clients against the replay server.

The oracle is the SDK's own accumulator: ``MessageStream.get_final_message()``, fed the
same transcript (over HTTP through ``client.messages.stream()``, or, for generated
streams, over the same SDK event objects). Every reduction route (observable and
iteration, sync and async) must give the same text, thinking, tool calls, usage, finish
reason and assistant message param.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx2
import pytest
import reactivex
from anthropic.lib.streaming import MessageStream
from anthropic.types import MessageParam, RawMessageStreamEvent
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter
from reactivex import operators as rx_ops

import streamkit as sk
from streamkit import ops
from streamkit._accumulator import Accumulator
from streamkit._models import CallResponse, Chunk
from streamkit._source import THREAD_NAME_PREFIX
from streamkit.providers import get_adapter
from streamkit.providers.anthropic import (
    DEFAULT_MAX_TOKENS,
    AnthropicAdapter,
    AnthropicChunk,
    AnthropicDecoder,
)
from streamkit.testing import Fault, ReplayServer, Reply, Transcript, load_transcript

MODEL = "claude-sonnet-4-0"
PROMPT = "What is 4200 + 42?"
TRANSCRIPTS = [
    "anthropic/messages-text",
    "anthropic/messages-parallel-tool-use",
    "anthropic/messages-thinking",
    "anthropic/messages-server-tool-code-execution",
    "anthropic/messages-tool-result-followup",
    "synthetic/anthropic-redacted-thinking-citations-tool-use",
]
NOT_FOUND = "anthropic/messages-error-404-model-not-found"
OVERLOADED = "synthetic/anthropic-midstream-overloaded-error"
# The text the overloaded stream delivers before its error event.
OVERLOADED_TEXT = "Once upon a time, a dragon slept"

EVENT = TypeAdapter(RawMessageStreamEvent)
MESSAGE_PARAM = TypeAdapter(MessageParam)
ADAPTER = AnthropicAdapter()


# -- the oracle ----------------------------------------------------------------------
@functools.cache
def sdk_final_message(name: str) -> anthropic.types.Message:
    """The SDK's own accumulation of a transcript: ``messages.stream()`` over HTTP."""
    with ReplayServer(name) as server:
        client: anthropic.Anthropic = server.client("anthropic")
        request: dict[str, Any] = {
            "model": MODEL,
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "x"}],
        }
        with client.messages.stream(**request) as message_stream:
            return message_stream.get_final_message()


class _EventList:
    """Stands in for the SDK's raw ``Stream`` under ``MessageStream`` (no HTTP)."""

    def __init__(self, events: list[Any]) -> None:
        self._events = events

    def __iter__(self) -> Iterator[Any]:
        return iter(self._events)

    def close(self) -> None:
        """Nothing to release."""


def sdk_final_message_of_events(events: list[Any]) -> anthropic.types.Message:
    """The SDK's own accumulation of already-built raw events."""
    stream = MessageStream(_EventList(events), output_format=anthropic.NOT_GIVEN)  # type: ignore[arg-type]
    return stream.get_final_message()


def sdk_message_param(message: anthropic.types.Message) -> dict[str, Any]:
    """The SDK's ``to_param()`` as plain dicts (empty text blocks left out: the API
    rejects them in a request)."""
    content = message.to_param()["content"]
    assert not isinstance(content, str)
    blocks = []
    for block in content:
        # to_param() keeps the message's own content blocks, SDK models rather than dicts
        assert isinstance(block, anthropic.BaseModel), block
        if not (isinstance(block, anthropic.types.TextBlock) and not block.text):
            blocks.append(block.to_dict(mode="json", exclude_none=True))
    return {"role": "assistant", "content": blocks}


def assert_matches_sdk(response: CallResponse, message: anthropic.types.Message) -> None:
    """The reduced response says what the SDK's final message says."""
    assert response.provider == "anthropic"
    assert response.id == message.id
    assert response.model == message.model
    assert response.content == "".join(b.text for b in message.content if b.type == "text")
    assert response.thinking == "".join(b.thinking for b in message.content if b.type == "thinking")
    sdk_tools = [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"]
    assert [(t.id, t.name, t.args) for t in response.tool_calls] == sdk_tools
    for tool, (_, _, sdk_input) in zip(response.tool_calls, sdk_tools, strict=True):
        assert json.loads(tool.arguments or "{}") == sdk_input
    assert response.usage is not None
    assert response.usage.input_tokens == message.usage.input_tokens
    assert response.usage.output_tokens == message.usage.output_tokens
    assert response.usage.cached_tokens == message.usage.cache_read_input_tokens
    assert response.finish_reasons == [message.stop_reason]
    assert response.message_param == sdk_message_param(message)
    assert_valid_message_param(response.message_param)


def assert_valid_message_param(param: dict[str, Any]) -> None:
    """``param`` validates as ``anthropic.types.MessageParam``, every block included."""
    validated = MESSAGE_PARAM.validate_python(param)
    # ``content`` is an Iterable in the SDK's types: pydantic validates it lazily.
    blocks = list(validated["content"])
    assert len(blocks) == len(param["content"])


# -- reduction routes ----------------------------------------------------------------
def reduce_by_observable(stream: sk.Stream) -> CallResponse:
    response: CallResponse = stream.pipe(ops.to_call_response()).run()
    return response


def reduce_by_iteration(stream: sk.Stream) -> CallResponse:
    for _ in stream:
        pass
    return stream.construct_call_response()


async def areduce_by_iteration(stream: sk.Stream) -> CallResponse:
    async for _ in stream:
        pass
    return stream.construct_call_response()


async def areduce_by_observable(stream: sk.Stream) -> CallResponse:
    """Subscribe inside the running loop; the response arrives through the callbacks."""
    outcome = await aoutcome_of(stream.pipe(ops.to_call_response()))
    if outcome.error is not None:
        raise outcome.error
    assert outcome.completed and len(outcome.items) == 1
    response: CallResponse = outcome.items[0]
    return response


class Outcome:
    """What an observer saw: the items, then an error or the completion; ``signal`` is
    called at the end."""

    def __init__(self, signal: Callable[[], object]) -> None:
        self.items: list[Any] = []
        self.error: BaseException | None = None
        self.completed = False
        self._signal = signal

    def subscribe_to(self, observable: reactivex.Observable[Any]) -> None:
        observable.subscribe(self.items.append, self._on_error, self._on_completed)

    def _on_error(self, error: Exception) -> None:
        self.error = error
        self._signal()

    def _on_completed(self) -> None:
        self.completed = True
        self._signal()


def outcome_of(observable: reactivex.Observable[Any], timeout: float = 5.0) -> Outcome:
    done = threading.Event()
    outcome = Outcome(done.set)
    outcome.subscribe_to(observable)
    assert done.wait(timeout), "the observable neither completed nor failed"
    return outcome


async def aoutcome_of(observable: reactivex.Observable[Any], timeout: float = 5.0) -> Outcome:
    done = asyncio.Event()
    outcome = Outcome(done.set)
    outcome.subscribe_to(observable)
    await asyncio.wait_for(done.wait(), timeout)
    return outcome


def new_stream(client: Any, **params: Any) -> sk.Stream:
    return sk.stream("anthropic", MODEL, PROMPT, client=client, **params)


# -- every transcript, every route, against the SDK's accumulator ----------------------
@pytest.mark.parametrize("reduce", [reduce_by_observable, reduce_by_iteration])
@pytest.mark.parametrize("name", TRANSCRIPTS)
def test_sync_response_matches_sdk_accumulator(name: str, reduce: Any) -> None:
    with ReplayServer(name) as server:
        response = reduce(new_stream(server.client("anthropic")))
        assert server.wait_for_request_end(0).completed
    assert_matches_sdk(response, sdk_final_message(name))


@pytest.mark.parametrize("reduce", [areduce_by_observable, areduce_by_iteration])
@pytest.mark.parametrize("name", TRANSCRIPTS)
async def test_async_response_matches_sdk_accumulator(name: str, reduce: Any) -> None:
    with ReplayServer(name) as server:
        async with server.client("anthropic", async_=True) as client:
            response = await reduce(new_stream(client))
        assert (await asyncio.to_thread(server.wait_for_request_end, 0)).completed
    assert_matches_sdk(response, sdk_final_message(name))


def test_usage_is_the_cumulative_report_not_a_sum() -> None:
    # message_start reports output_tokens=1, message_delta the cumulative 15: the
    # response says 15 (Mirascope said 16), and the finish reason is message_delta's.
    with ReplayServer("anthropic/messages-text") as server:
        chunks = list(new_stream(server.client("anthropic")))
    usages = [chunk.usage for chunk, _ in chunks if chunk.usage is not None]
    assert [(u.input_tokens, u.output_tokens) for u in usages] == [(17, 1), (17, 15)]
    assert [chunk.finish_reasons for chunk, _ in chunks if chunk.finish_reasons] == [["end_turn"]]
    assert all(isinstance(chunk, AnthropicChunk) for chunk, _ in chunks)


def test_input_tokens_follow_message_delta_when_it_reports_them() -> None:
    # The code-execution stream reports 2293 input tokens at message_start and the
    # cumulative 4714 (after the server tool ran) at message_delta.
    with ReplayServer("anthropic/messages-server-tool-code-execution") as server:
        response = reduce_by_iteration(new_stream(server.client("anthropic")))
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (4714, 304)


def test_server_tool_use_is_not_a_tool_call_but_stays_in_the_message() -> None:
    with ReplayServer("anthropic/messages-server-tool-code-execution") as server:
        stream = new_stream(server.client("anthropic"))
        tools = [tool for _, tool in stream if tool is not None]
    response = stream.construct_call_response()
    assert tools == [] and response.tool_calls == []
    assert [block["type"] for block in response.message_param["content"]] == [
        "thinking",
        "text",
        "server_tool_use",
        "bash_code_execution_tool_result",
        "text",
    ]
    server_tool = response.message_param["content"][2]
    assert server_tool["input"] == {"command": 'echo "65465-6544 * 65464-6+1.02255" | bc -l'}


# -- tool calls through iteration ----------------------------------------------------
def assert_tools_at_their_stop_events(pairs: list[tuple[Chunk, sk.ToolCall]]) -> None:
    sdk = sdk_final_message("anthropic/messages-parallel-tool-use")
    expected = [(b.id, b.name, b.input) for b in sdk.content if b.type == "tool_use"]
    assert [(t.id, t.name, t.args) for _, t in pairs] == expected
    assert len(expected) == 2
    for chunk, _ in pairs:
        # Each tool comes with the content_block_stop that completes it.
        assert chunk.chunk.type == "content_block_stop"
        assert [(d.index, d.complete) for d in chunk.tool_calls] == [(chunk.chunk.index, True)]


def test_parallel_tools_yield_once_in_order_at_the_completing_chunk() -> None:
    with ReplayServer("anthropic/messages-parallel-tool-use") as server:
        stream = new_stream(server.client("anthropic"))
        pairs = [(chunk, tool) for chunk, tool in stream if tool is not None]
        assert_tools_at_their_stop_events(pairs)
        # A second iteration replays without a new request and yields the same tools.
        again = [(chunk, tool) for chunk, tool in stream if tool is not None]
        assert [tool for _, tool in again] == [tool for _, tool in pairs]
        assert len(server.requests) == 1


async def test_parallel_tools_yield_once_in_order_at_the_completing_chunk_async() -> None:
    with ReplayServer("anthropic/messages-parallel-tool-use") as server:
        async with server.client("anthropic", async_=True) as client:
            pairs = [(chunk, tool) async for chunk, tool in new_stream(client) if tool is not None]
    assert_tools_at_their_stop_events(pairs)


# -- the assistant message param -----------------------------------------------------
def test_message_param_is_the_assistant_turn_the_next_request_needs() -> None:
    recorded = load_transcript("anthropic/messages-tool-result-followup").request
    assert recorded is not None
    recorded_messages = recorded["json"]["messages"]
    tools = recorded["json"]["tools"]
    tool_results = {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": block["tool_use_id"],
                "content": block["content"],
            }
            for block in recorded_messages[2]["content"]
        ],
    }
    with ReplayServer() as server:
        server.push(
            "anthropic/messages-parallel-tool-use", "anthropic/messages-tool-result-followup"
        )
        client = server.client("anthropic")
        first = new_stream(client, tools=tools).pipe(ops.to_call_response()).run()
        # What Mirascope sent as the assistant turn of the real follow-up request.
        assert first.message_param == recorded_messages[1]
        history = [recorded_messages[0], first.message_param, tool_results]
        second = sk.stream("anthropic", MODEL, history, client=client, tools=tools)
        answer = second.pipe(ops.to_call_response()).run()
        sent = server.wait_for_request_end(1).json
    assert sent["messages"] == history
    assert answer.content == "".join(
        b.text
        for b in sdk_final_message("anthropic/messages-tool-result-followup").content
        if b.type == "text"
    )


def test_message_param_keeps_signatures_redacted_thinking_and_citations() -> None:
    with ReplayServer("synthetic/anthropic-redacted-thinking-citations-tool-use") as server:
        response = reduce_by_iteration(new_stream(server.client("anthropic")))
    thinking, redacted, text, convert, clock = response.message_param["content"]
    assert thinking["signature"] == "c3RyZWFta2l0LXN5bnRoZXRpYy1zaWduYXR1cmU="
    assert thinking["thinking"] == response.thinking
    assert redacted == {
        "type": "redacted_thinking",
        "data": "c3RyZWFta2l0LXN5bnRoZXRpYy1yZWRhY3RlZA==",
    }
    assert text["citations"][0]["cited_text"] == "The tower is 330 metres tall."
    assert convert["input"] == {"value": 330, "from": "m", "to": "ft"}
    assert clock["input"] == {}
    assert response.usage is not None
    # message_delta omitted input_tokens: message_start's count (and cache reads) stand.
    assert (response.usage.input_tokens, response.usage.cached_tokens) == (25, 1200)


# -- errors --------------------------------------------------------------------------
def test_not_found_before_the_stream_raises_the_sdk_error_sync() -> None:
    with ReplayServer() as server:
        server.push(NOT_FOUND, NOT_FOUND)
        client = server.client("anthropic")
        with pytest.raises(anthropic.NotFoundError) as raised:
            reduce_by_iteration(new_stream(client))
        outcome = outcome_of(new_stream(client).pipe(ops.to_call_response()))
    assert isinstance(outcome.error, anthropic.NotFoundError)
    assert outcome.items == [] and not outcome.completed
    assert raised.value.status_code == 404
    assert not ADAPTER.is_transient(raised.value)
    assert not ADAPTER.is_transient(outcome.error)


async def test_not_found_before_the_stream_raises_the_sdk_error_async() -> None:
    with ReplayServer() as server:
        server.push(NOT_FOUND, NOT_FOUND)
        async with server.client("anthropic", async_=True) as client:
            with pytest.raises(anthropic.NotFoundError):
                await areduce_by_iteration(new_stream(client))
            outcome = await aoutcome_of(new_stream(client).pipe(ops.to_call_response()))
    assert isinstance(outcome.error, anthropic.NotFoundError)
    assert not outcome.completed


def assert_overloaded(error: BaseException | None) -> None:
    assert isinstance(error, anthropic.APIStatusError)
    assert error.status_code == 200  # the status of the stream that carried it
    assert error.type == "overloaded_error"
    assert error.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert ADAPTER.is_transient(error)


def test_midstream_overloaded_error_is_raised_unchanged_and_transient_sync() -> None:
    with ReplayServer() as server:
        server.push(OVERLOADED, OVERLOADED)
        client = server.client("anthropic")
        stream = new_stream(client)
        received: list[str] = []
        with pytest.raises(anthropic.APIStatusError) as raised:
            for chunk, _ in stream:
                received.append(chunk.content)
        outcome = outcome_of(new_stream(client))
    assert_overloaded(raised.value)
    assert "".join(received) == stream.content == OVERLOADED_TEXT
    assert_overloaded(outcome.error)
    assert "".join(chunk.content for chunk in outcome.items) == OVERLOADED_TEXT


async def test_midstream_overloaded_error_is_raised_unchanged_and_transient_async() -> None:
    with ReplayServer() as server:
        server.push(OVERLOADED, OVERLOADED)
        async with server.client("anthropic", async_=True) as client:
            stream = new_stream(client)
            with pytest.raises(anthropic.APIStatusError) as raised:
                await areduce_by_iteration(stream)
            outcome = await aoutcome_of(new_stream(client).pipe(ops.to_call_response()))
    assert_overloaded(raised.value)
    assert stream.content == OVERLOADED_TEXT
    assert_overloaded(outcome.error)


def with_error_event(error_type: str) -> Transcript:
    """The overloaded stream with another error type in its ``event: error``."""
    events = load_transcript(OVERLOADED).events
    last = events[-1].replace("overloaded_error", error_type)
    return Transcript.from_events("anthropic", "messages", [*events[:-1], last], terminate=False)


@pytest.mark.parametrize(
    ("error_type", "transient"),
    [("overloaded_error", True), ("api_error", True), ("invalid_request_error", False)],
)
def test_midstream_errors_are_classified_by_their_type(error_type: str, transient: bool) -> None:
    reply = Reply(with_error_event(error_type))
    with ReplayServer(reply) as server, pytest.raises(anthropic.APIStatusError) as raised:
        reduce_by_iteration(new_stream(server.client("anthropic")))
    assert raised.value.status_code == 200 and raised.value.type == error_type
    assert ADAPTER.is_transient(raised.value) is transient


def without_message_stop() -> Transcript:
    """The text stream with its body ended cleanly before ``message_stop``."""
    events = load_transcript("anthropic/messages-text").events
    assert '"message_stop"' in events[-1]
    return Transcript.from_events("anthropic", "messages", events[:-1], terminate=False)


def test_a_stream_ended_before_message_stop_is_incomplete_sync() -> None:
    with ReplayServer() as server:
        server.push(Reply(without_message_stop()), Reply(without_message_stop()))
        client = server.client("anthropic")
        stream = new_stream(client)
        with pytest.raises(sk.IncompleteStreamError) as raised:
            reduce_by_iteration(stream)
        outcome = outcome_of(new_stream(client).pipe(ops.to_call_response()))
    assert raised.value.provider == "anthropic" and raised.value.expected == "message_stop"
    assert raised.value.events == 6  # everything but ping (dropped by the SDK) and message_stop
    assert stream.content == "4200 + 42 = 4242"
    assert isinstance(outcome.error, sk.IncompleteStreamError)
    assert outcome.items == [] and ADAPTER.is_transient(outcome.error)


async def test_a_stream_ended_before_message_stop_is_incomplete_async() -> None:
    with ReplayServer() as server:
        server.push(Reply(without_message_stop()), Reply(without_message_stop()))
        async with server.client("anthropic", async_=True) as client:
            with pytest.raises(sk.IncompleteStreamError):
                await areduce_by_iteration(new_stream(client))
            outcome = await aoutcome_of(new_stream(client).pipe(ops.to_call_response()))
    assert isinstance(outcome.error, sk.IncompleteStreamError)


def test_a_connection_closed_mid_body_is_incomplete_sync() -> None:
    # Fault(close_after_events) drops the connection inside the chunked body: the SDK
    # raises its transport error (older releases let httpx's RemoteProtocolError
    # through, anthropic 2.17 wraps it in APIConnectionError), which the adapter reports
    # as the cut stream it is, the SDK's error kept as the cause. Only the public
    # contract is asserted: the cause is a transport error, and transient.
    with ReplayServer() as server:
        cut = Reply("anthropic/messages-thinking", fault=Fault(close_after_events=5))
        server.push(cut, cut)
        client = server.client("anthropic")
        stream = new_stream(client)
        with pytest.raises(sk.IncompleteStreamError) as raised:
            reduce_by_iteration(stream)
        outcome = outcome_of(new_stream(client).pipe(ops.to_call_response()))
    assert_transport_error(raised.value.__cause__)
    assert raised.value.events == 4  # the ping among the five events sent is dropped
    assert stream.thinking == "This is a straightforward question about"
    assert isinstance(outcome.error, sk.IncompleteStreamError) and not outcome.completed
    assert ADAPTER.is_transient(raised.value)


async def test_a_connection_closed_mid_body_is_incomplete_async() -> None:
    with ReplayServer() as server:
        server.push(Reply("anthropic/messages-thinking", fault=Fault(close_after_events=5)))
        async with server.client("anthropic", async_=True) as client:
            with pytest.raises(sk.IncompleteStreamError) as raised:
                await areduce_by_iteration(new_stream(client))
    assert_transport_error(raised.value.__cause__)


def test_a_connection_closed_before_any_event_keeps_the_transport_error() -> None:
    reply = Reply("anthropic/messages-text", fault=Fault(close_after_events=0))
    with ReplayServer(reply) as server, pytest.raises(TRANSPORT_ERRORS) as raised:
        reduce_by_iteration(new_stream(server.client("anthropic")))
    assert not isinstance(raised.value, sk.IncompleteStreamError)
    assert_transport_error(raised.value)


TRANSPORT_ERRORS = (anthropic.APIConnectionError, httpx2.TransportError)
"""What the SDK raises for a dropped connection: its own public ``APIConnectionError``
(anthropic >= 2.17) or the HTTP library's public ``TransportError`` (older releases)."""


def assert_transport_error(error: BaseException | None) -> None:
    """The SDK's error for a cut connection, by public types only, and transient."""
    assert isinstance(error, TRANSPORT_ERRORS), repr(error)
    assert ADAPTER.is_transient(error)


def test_a_continuation_prefills_the_delivered_text() -> None:
    with ReplayServer("anthropic/messages-text") as server:
        stream = new_stream(server.client("anthropic"))
        continued = stream.continuation("4200 + 42 = ")
        response = reduce_by_observable(continued)
        sent = server.wait_for_request_end(0).json
    # The API rejects a final assistant message ending in whitespace.
    assert sent["messages"] == [
        {"role": "user", "content": PROMPT},
        {"role": "assistant", "content": "4200 + 42 ="},
    ]
    assert response.content == "4200 + 42 = 4242"
    assert ADAPTER.continuation_messages([{"role": "user", "content": "hi"}], "  ") == [
        {"role": "user", "content": "hi"}
    ]
    prefilled = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "{"}]
    assert ADAPTER.continuation_messages(prefilled, '"a": 1') == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": '{"a": 1'},
    ]


# -- cancellation --------------------------------------------------------------------
PACE = 0.05
# message_start, content_block_start, ping (sent by the server, dropped by the SDK),
# then the first thinking delta: the third chunk arrives with the fourth event.
EVENTS_FOR_THREE_CHUNKS = 4


def assert_disconnected_early(request: Any) -> None:
    assert request.disconnected
    assert request.events_sent < request.events_total
    assert EVENTS_FOR_THREE_CHUNKS <= request.events_sent <= EVENTS_FOR_THREE_CHUNKS + 2


def source_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_NAME_PREFIX)]


FAST = pytest.mark.parametrize("fast", [False, True], ids=["sdk", "fast"])


@FAST
def test_disposing_after_three_chunks_closes_the_connection_sync(fast: bool) -> None:
    with ReplayServer("anthropic/messages-thinking", pace=PACE) as server:
        before = set(source_threads())
        stream = new_stream(server.client("anthropic"), fast=fast)
        outcome = outcome_of(stream.pipe(rx_ops.take(3)))
        request = server.wait_for_request_end(0, timeout=5)
        assert_disconnected_early(request)
    assert len(outcome.items) == 3 and outcome.completed
    deadline = time.monotonic() + 2
    while set(source_threads()) - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not set(source_threads()) - before, "the source thread outlived its stream"


@FAST
async def test_disposing_after_three_chunks_closes_the_connection_async(fast: bool) -> None:
    with ReplayServer("anthropic/messages-thinking", pace=PACE) as server:
        async with server.client("anthropic", async_=True) as client:
            outcome = await aoutcome_of(new_stream(client, fast=fast).pipe(rx_ops.take(3)))
            # Wait off the loop: the cancelled task closes the response on the loop.
            request = await asyncio.to_thread(server.wait_for_request_end, 0, 5)
        assert_disconnected_early(request)
    assert len(outcome.items) == 3 and outcome.completed


@FAST
def test_break_closes_the_connection_sync(fast: bool) -> None:
    with ReplayServer("anthropic/messages-thinking", pace=PACE) as server:
        stream = new_stream(server.client("anthropic"), fast=fast)
        with stream:
            for count, _ in enumerate(stream, 1):
                if count == 3:
                    break
        assert_disconnected_early(server.wait_for_request_end(0, timeout=5))
    assert stream.thinking


@FAST
async def test_break_closes_the_connection_async(fast: bool) -> None:
    with ReplayServer("anthropic/messages-thinking", pace=PACE) as server:
        async with server.client("anthropic", async_=True) as client:
            await assert_break_closes_async_early(new_stream(client, fast=fast))
            request = await asyncio.to_thread(server.wait_for_request_end, 0, 5)
        assert_disconnected_early(request)


async def assert_break_closes_async_early(stream: sk.Stream) -> None:
    """``break`` inside ``async with stream`` with no error left in a background task."""
    loop_errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: loop_errors.append(context))
    async with stream:
        count = 0
        async for _ in stream:
            count += 1
            if count == 3:
                break
    await asyncio.sleep(0.05)
    assert loop_errors == [] and stream.thinking


@FAST
def test_dispose_from_another_thread_wakes_a_blocked_read(fast: bool) -> None:
    with ReplayServer() as server:
        stall = Fault(stall_after_events=(4, 30.0))
        server.push(Reply("anthropic/messages-thinking", fault=stall))
        got: list[sk.Chunk] = []
        subscription = new_stream(server.client("anthropic"), fast=fast).subscribe(got.append)
        deadline = time.monotonic() + 5
        while len(got) < 3 and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.05)  # the reader is now blocked in the stalled read
        subscription.dispose()
        request = server.wait_for_request_end(0, timeout=3)
    assert len(got) == 3 and request.disconnected and request.events_sent == 4


# -- the request -----------------------------------------------------------------------
def test_system_messages_become_the_system_parameter_on_the_wire() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": PROMPT},
        {"role": "system", "content": "Answer in digits."},
    ]
    with ReplayServer("anthropic/messages-text") as server:
        stream = sk.stream("anthropic", MODEL, messages, client=server.client("anthropic"))
        reduce_by_observable(stream)
        sent = server.wait_for_request_end(0).json
    assert sent == {
        "model": MODEL,
        "system": "Be brief.\n\nAnswer in digits.",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": DEFAULT_MAX_TOKENS,
        "stream": True,
    }


def test_build_request_defaults_and_passes_params_through() -> None:
    request = ADAPTER.build_request(
        MODEL, [{"role": "user", "content": "hi"}], {"temperature": 0.2, "max_tokens": 50}
    )
    assert request == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.2,
        "max_tokens": 50,
        "stream": True,
    }
    thinking = {"type": "enabled", "budget_tokens": 2000}
    with_thinking = ADAPTER.build_request(
        MODEL, [{"role": "user", "content": "hi"}], {"thinking": thinking}
    )
    assert with_thinking["max_tokens"] == 2000 + DEFAULT_MAX_TOKENS


def test_build_request_joins_block_system_prompts() -> None:
    cached = [{"type": "text", "text": "Long context.", "cache_control": {"type": "ephemeral"}}]
    request = ADAPTER.build_request(
        MODEL,
        [
            {"role": "system", "content": cached},
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ],
        {},
    )
    assert request["system"] == [*cached, {"type": "text", "text": "Be brief."}]


@pytest.mark.parametrize(
    ("messages", "params", "error", "match"),
    [
        ([{"role": "tool", "content": "42"}], {}, ValueError, "role 'tool'"),
        ([{"role": "system", "content": "Be brief."}], {}, ValueError, "at least one user"),
        (
            [{"role": "system", "content": "a"}, {"role": "user", "content": "b"}],
            {"system": "c"},
            ValueError,
            "not both",
        ),
        ([{"role": "user", "content": "b"}], {"max_tokens": "100"}, TypeError, "max_tokens"),
        ([{"role": "user", "content": "b"}], {"max_tokens": 0}, ValueError, "positive"),
        (
            [{"role": "system", "content": 3}, {"role": "user", "content": "b"}],
            {},
            TypeError,
            "system",
        ),
    ],
)
def test_bad_prompts_fail_before_any_request(
    messages: list[dict[str, Any]], params: dict[str, Any], error: type[Exception], match: str
) -> None:
    with ReplayServer("anthropic/messages-text") as server:
        client = server.client("anthropic")
        with pytest.raises(error, match=match):
            sk.stream("anthropic", MODEL, messages, client=client, **params)
        assert server.requests == []


def test_clients_are_told_apart() -> None:
    assert get_adapter("anthropic").name == "anthropic"
    with ReplayServer() as server:
        assert not ADAPTER.is_async_client(server.client("anthropic"))
        assert ADAPTER.is_async_client(server.client("anthropic", async_=True))
        with pytest.raises(TypeError, match=r"anthropic\.Anthropic"):
            ADAPTER.is_async_client(object())
    vertex = anthropic.AnthropicVertex(region="us-east5", project_id="p", access_token="fake")
    assert not ADAPTER.is_async_client(vertex)
    async_vertex = anthropic.AsyncAnthropicVertex(
        region="us-east5", project_id="p", access_token="fake"
    )
    assert ADAPTER.is_async_client(async_vertex)


# -- generated streams against the SDK's accumulator -----------------------------------
_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)


def _fragments(text: str, cuts: list[int]) -> list[str]:
    points = sorted({min(cut, len(text)) for cut in cuts})
    edges = [0, *points, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(edges)]


@st.composite
def _blocks(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Content blocks, each with how it is streamed (start block + delta payloads)."""
    blocks: list[dict[str, Any]] = []
    for kind in draw(
        st.lists(st.sampled_from(["text", "thinking", "redacted", "tool"]), max_size=5)
    ):
        cuts = draw(st.lists(st.integers(0, 60), max_size=4))
        if kind == "text":
            deltas = [{"type": "text_delta", "text": p} for p in _fragments(draw(_text), cuts)]
            blocks.append({"start": {"type": "text", "text": ""}, "deltas": deltas})
        elif kind == "thinking":
            deltas = [
                {"type": "thinking_delta", "thinking": p} for p in _fragments(draw(_text), cuts)
            ]
            deltas.append(
                {"type": "signature_delta", "signature": draw(st.text("abcXYZ=", min_size=1))}
            )
            blocks.append(
                {"start": {"type": "thinking", "thinking": "", "signature": ""}, "deltas": deltas}
            )
        elif kind == "redacted":
            data = draw(st.text("abcXYZ=", min_size=1))
            blocks.append({"start": {"type": "redacted_thinking", "data": data}, "deltas": []})
        else:
            args = draw(
                st.dictionaries(
                    st.text(max_size=5), st.integers(-(2**53), 2**53) | _text, max_size=3
                )
            )
            # How the input arrives: whole in the start block (no deltas), streamed after
            # an empty start input (what the API does), or streamed after a start input
            # that the streamed JSON replaces (as the SDK's accumulator does).
            mode = draw(st.sampled_from(["whole", "streamed", "replaced"]))
            start_input = {"whole": args, "streamed": {}, "replaced": {"stale": 1}}[mode]
            start = {
                "type": "tool_use",
                "id": f"toolu_{len(blocks)}",
                "name": "tool",
                "input": start_input,
            }
            raw = "" if mode == "whole" else json.dumps(args)
            deltas = [
                {"type": "input_json_delta", "partial_json": p} for p in _fragments(raw, cuts)
            ]
            blocks.append({"start": start, "deltas": deltas})
    return blocks


def _events(blocks: list[dict[str, Any]], stop_reason: str, output_tokens: int) -> list[Any]:
    raw: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_generated",
                "type": "message",
                "role": "assistant",
                "model": MODEL,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 11, "cache_read_input_tokens": 3, "output_tokens": 1},
            },
        }
    ]
    for index, block in enumerate(blocks):
        raw.append({"type": "content_block_start", "index": index, "content_block": block["start"]})
        raw.extend(
            {"type": "content_block_delta", "index": index, "delta": delta}
            for delta in block["deltas"]
        )
        raw.append({"type": "content_block_stop", "index": index})
    raw.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        }
    )
    raw.append({"type": "message_stop"})
    return [EVENT.validate_python(event) for event in raw]


@given(
    blocks=_blocks(),
    stop_reason=st.sampled_from(["end_turn", "tool_use", "max_tokens", "refusal"]),
    output_tokens=st.integers(1, 10_000),
)
def test_generated_streams_reduce_as_the_sdk_accumulates_them(
    blocks: list[dict[str, Any]], stop_reason: str, output_tokens: int
) -> None:
    events = _events(blocks, stop_reason, output_tokens)
    decoder = AnthropicDecoder()
    accumulator = Accumulator()
    for event in events:
        for chunk in decoder.decode(event):
            accumulator.add(chunk)
    accumulator.finish()
    assert decoder.complete and decoder.events == len(events)
    assert_matches_sdk(accumulator.response(), sdk_final_message_of_events(events))
