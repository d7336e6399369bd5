"""Cohere v2 chat streaming: every transcript, sync and async, with the real SDK clients
(``ClientV2`` / ``AsyncClientV2``) against the replay server.

The cohere SDK has no stream accumulator, so the oracle reads the recorded SSE ``data:``
lines as plain JSON and folds them by hand, by event type.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass, field
from typing import Any

import cohere
import pytest
from cohere.core.unchecked_base_model import construct_type
from cohere.types.chat_finish_reason import ChatFinishReason
from cohere.v2.types.v2chat_stream_response import V2ChatStreamResponse
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

import streamkit as sk
from streamkit import ops
from streamkit._accumulator import Accumulator
from streamkit.providers.cohere import CohereChunk, CohereDecoder
from streamkit.testing import (
    Fault,
    ReplayServer,
    Reply,
    Transcript,
    load_transcript,
    transcript_names,
)
from tests.test_stream import source_threads

from .chat_support import (
    assert_break_closes_async,
    assert_cut_is_incomplete,
    assert_dispose_wakes_a_blocked_read,
    assert_take_closes_async,
    assert_take_closes_sync,
    assert_transient_cut,
    wait_until,
)

STREAMS = [
    "cohere/chat-v2-text-usage",
    "synthetic/cohere-chat-v2-parallel-tool-calls",
    "synthetic/cohere-chat-v2-thinking-citations",
]
LONG = "cohere/chat-v2-text-usage"  # 105 events
TOOLS = "synthetic/cohere-chat-v2-parallel-tool-calls"
MODEL = "command-a-03-2025"


@pytest.fixture(autouse=True)
def no_source_thread_left_behind() -> Any:
    yield
    wait_until(lambda: not source_threads(), timeout=5.0)


def recorded_events(name: str) -> list[dict[str, Any]]:
    """The JSON events of the transcript's ``data:`` lines (``[DONE]`` left out)."""
    return [
        json.loads(line.removeprefix("data:"))
        for event in load_transcript(name).events
        for line in event.splitlines()
        if line.startswith("data:") and line.strip() != "data: [DONE]"
    ]


@dataclass
class Expected:
    content: str = ""
    thinking: str = ""
    tool_plan: str = ""
    calls: dict[int, dict[str, str]] = field(default_factory=dict)
    finish_reasons: list[str] = field(default_factory=list)
    tokens: dict[str, int] = field(default_factory=dict)
    cached_tokens: int | None = None
    id: str | None = None


def oracle(name: str) -> Expected:
    expected = Expected()
    for event in recorded_events(name):
        kind, delta = event["type"], event.get("delta", {})
        message = delta.get("message", {})
        if kind == "message-start":
            expected.id = event["id"]
        elif kind == "content-delta":
            expected.content += message["content"].get("text", "")
            expected.thinking += message["content"].get("thinking", "")
        elif kind == "tool-plan-delta":
            expected.tool_plan += message["tool_plan"]
        elif kind == "tool-call-start":
            call = message["tool_calls"]
            expected.calls[event["index"]] = {
                "id": call["id"],
                "name": call["function"]["name"],
                "arguments": call["function"]["arguments"],
            }
        elif kind == "tool-call-delta":
            expected.calls[event["index"]]["arguments"] += message["tool_calls"]["function"][
                "arguments"
            ]
        elif kind == "message-end":
            expected.finish_reasons = [delta["finish_reason"]]
            expected.tokens = delta["usage"]["tokens"]
            expected.cached_tokens = delta["usage"].get("cached_tokens")
    return expected


def assert_matches_oracle(name: str, response: sk.CallResponse) -> None:
    expected = oracle(name)
    assert response.provider == "cohere"
    assert response.id == expected.id
    assert response.content == expected.content
    # Reasoning blocks and the tool plan are both thinking (see the module docs).
    assert response.thinking == expected.thinking + expected.tool_plan
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
        (call["id"], call["name"], call["arguments"]) for _, call in sorted(expected.calls.items())
    ]
    assert [c.args for c in response.tool_calls] == [
        json.loads(call["arguments"]) for _, call in sorted(expected.calls.items())
    ]
    assert response.finish_reasons == expected.finish_reasons
    inputs, outputs = expected.tokens["input_tokens"], expected.tokens["output_tokens"]
    assert response.usage == sk.Usage(
        input_tokens=inputs,
        output_tokens=outputs,
        total_tokens=inputs + outputs,
        cached_tokens=expected.cached_tokens,
    )


def test_every_cohere_transcript_is_covered() -> None:
    assert sorted(STREAMS) == transcript_names(provider="cohere")


def test_every_finish_reason_of_the_sdk_is_mapped() -> None:
    literal = typing.get_args(ChatFinishReason)[0]  # Union[Literal[...], Any]
    assert set(typing.get_args(literal)) <= set(CohereChunk.finish_reason_table)


# -- every transcript reduces like the recorded events, sync and async -----------------
@pytest.mark.parametrize("name", STREAMS)
def test_sync_iteration_and_observable_reduce_like_the_recorded_events(name: str) -> None:
    with ReplayServer(name) as server:
        stream = sk.stream("cohere", MODEL, "hi", client=server.client("cohere"))
        pairs = list(stream)
        response = stream.construct_call_response()
        assert_matches_oracle(name, response)
        assert response.model == MODEL  # Cohere names no model: the requested one
        assert len(pairs) == len(recorded_events(name))  # one chunk per event
        assert all(isinstance(chunk, CohereChunk) for chunk, _ in pairs)
        assert [tool for _, tool in pairs if tool is not None] == response.tool_calls
        assert_matches_oracle(name, stream.pipe(ops.to_call_response()).run())
        assert len(server.requests) == 2


@pytest.mark.parametrize("name", STREAMS)
async def test_async_iteration_and_observable_reduce_like_the_recorded_events(name: str) -> None:
    with ReplayServer(name) as server:
        async with server.client("cohere", async_=True) as client:
            stream = sk.stream("cohere", MODEL, "hi", client=client)
            assert stream.is_async
            async for _chunk, _tool in stream:
                pass
            assert_matches_oracle(name, stream.construct_call_response())
            assert_matches_oracle(name, await stream.pipe(ops.to_call_response()))
        assert len(server.requests) == 2


def test_tool_calls_complete_at_their_tool_call_end_once_each_in_order() -> None:
    with ReplayServer(TOOLS) as server:
        stream = sk.stream("cohere", MODEL, "hi", client=server.client("cohere"))
        completed = [(chunk, tool) for chunk, tool in stream if tool is not None]
    assert [tool.args for _, tool in completed] == [
        {"location": "Madrid"},
        {"location": "Brasília", "unit": "C"},
    ]
    assert [chunk.chunk.type for chunk, _ in completed] == ["tool-call-end", "tool-call-end"]
    assert stream.finish_reasons == ["TOOL_CALL"]
    assert stream.construct_call_response().finish_reason == "tool_calls"


def test_message_param_is_a_cohere_assistant_message_and_round_trips() -> None:
    with ReplayServer(TOOLS) as server:
        client = server.client("cohere")
        response = (
            sk.stream("cohere", MODEL, "hi", client=client).pipe(ops.to_call_response()).run()
        )
        message = response.message_param
        assert message["role"] == "assistant" and "content" not in message
        assert message["tool_plan"] == oracle(TOOLS).tool_plan
        assistant = cohere.AssistantChatMessageV2.model_validate(message)
        assert [call.id for call in assistant.tool_calls or []] == [
            call.id for call in response.tool_calls
        ]
        turn = [
            {"role": "user", "content": "hi"},
            message,
            *(
                {"role": "tool", "tool_call_id": call.id, "content": "sunny"}
                for call in response.tool_calls
            ),
        ]
        list(sk.stream("cohere", MODEL, turn, client=client))
        body = server.requests[-1].json
    assert body["messages"][1]["tool_calls"] == message["tool_calls"]
    assert body["messages"][1]["tool_plan"] == message["tool_plan"]


def test_thinking_blocks_go_back_as_thinking_content() -> None:
    name = "synthetic/cohere-chat-v2-thinking-citations"
    with ReplayServer(name) as server:
        stream = sk.stream("cohere", MODEL, "hi", client=server.client("cohere"))
        response = stream.pipe(ops.to_call_response()).run()
    expected = oracle(name)
    assert response.message_param == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": expected.thinking},
            {"type": "text", "text": expected.content},
        ],
    }
    cohere.AssistantChatMessageV2.model_validate(response.message_param)


# -- the request ----------------------------------------------------------------------
def test_request_passes_messages_and_maps_common_parameter_names() -> None:
    with ReplayServer(LONG) as server:
        messages = [
            {"role": "system", "content": "Talk like a pirate."},
            {"role": "user", "content": "A joke?"},
        ]
        stream = sk.stream(
            "cohere",
            MODEL,
            messages,
            client=server.client("cohere"),
            max_tokens=50,
            stop="END",
            top_p=0.5,
            top_k=3,
            temperature=0.2,
        )
        list(stream)
        body = server.requests[0].json
    assert server.requests[0].path == "/v2/chat"
    assert body["messages"] == messages and body["model"] == MODEL and body["stream"] is True
    assert (body["max_tokens"], body["stop_sequences"], body["p"], body["k"]) == (
        50,
        ["END"],
        0.5,
        3,
    )


def test_bad_input_is_rejected_before_any_request() -> None:
    with ReplayServer(LONG) as server:
        client = server.client("cohere")
        with pytest.raises(TypeError, match="max_new_tokens"):
            sk.stream("cohere", MODEL, "hi", client=client, max_new_tokens=5)
        with pytest.raises(ValueError, match="role 'model'"):
            sk.stream("cohere", MODEL, [{"role": "model", "content": "x"}], client=client)
        with pytest.raises(TypeError, match="ClientV2"):
            sk.stream("cohere", MODEL, "hi", client=cohere.Client(api_key="x", base_url="http://x"))
        with pytest.raises(TypeError, match="async"):
            sk.stream("cohere", MODEL, "hi", client=client, async_=True)
        assert server.requests == []


# -- errors ---------------------------------------------------------------------------
def test_http_error_is_the_sdks_own_exception() -> None:
    not_found = Transcript.from_events(
        "cohere",
        "v2/chat",
        ['{"message":"model \'nope\' not found"}'],
        status=404,
        terminate=False,
    )
    with ReplayServer(not_found) as server:
        stream = sk.stream("cohere", "nope", "hi", client=server.client("cohere"))
        with pytest.raises(cohere.NotFoundError):
            list(stream)
        errors: list[BaseException] = []
        stream.subscribe(on_error=errors.append)
        wait_until(lambda: bool(errors))
        assert isinstance(errors[0], cohere.NotFoundError)


def test_a_body_that_ends_without_message_end_is_incomplete() -> None:
    recorded = load_transcript(TOOLS)
    cut = Transcript.from_events("cohere", "v2/chat", recorded.events[:8])
    with ReplayServer(cut) as server:
        stream = sk.stream("cohere", MODEL, "hi", client=server.client("cohere"))
        pairs: list[Any] = []
        with pytest.raises(sk.IncompleteStreamError):
            for pair in stream:
                pairs.append(pair)
    assert len(pairs) == 8 and not stream.finish_reasons


def test_a_dropped_connection_is_incomplete_sync() -> None:
    with ReplayServer() as server:
        server.push(Reply(LONG, fault=Fault(close_after_events=5)))
        stream = sk.stream("cohere", MODEL, "hi", client=server.client("cohere"))
        assert_cut_is_incomplete(stream)


async def test_a_dropped_connection_is_incomplete_async() -> None:
    with ReplayServer() as server:
        server.push(Reply(LONG, fault=Fault(close_after_events=5)))
        async with server.client("cohere", async_=True) as client:
            stream = sk.stream("cohere", MODEL, "hi", client=client)
            with pytest.raises(sk.IncompleteStreamError) as raised:
                await stream.pipe(ops.to_call_response())
        assert raised.value.events == 5
        assert_transient_cut("cohere", raised.value)


# -- cancellation closes the HTTP response at once, seen from the server ---------------
def test_take_closes_the_http_response_sync() -> None:
    with ReplayServer(LONG, pace=0.02) as server:
        assert_take_closes_sync(
            server, sk.stream("cohere", MODEL, "hi", client=server.client("cohere"))
        )


async def test_take_and_break_close_the_http_response_async() -> None:
    with ReplayServer(LONG, pace=0.02) as server:
        async with server.client("cohere", async_=True) as client:
            await assert_take_closes_async(server, sk.stream("cohere", MODEL, "hi", client=client))
    with ReplayServer(LONG, pace=0.02) as server:
        async with server.client("cohere", async_=True) as client:
            await assert_break_closes_async(server, sk.stream("cohere", MODEL, "hi", client=client))


def test_dispose_from_another_thread_wakes_a_blocked_read() -> None:
    with ReplayServer() as server:
        server.push(Reply(LONG, fault=Fault(stall_after_events=(3, 30.0))))
        stream = sk.stream("cohere", MODEL, "hi", client=server.client("cohere"))
        assert_dispose_wakes_a_blocked_read(server, stream)


# -- the decoder on generated streams (no HTTP) ----------------------------------------
def _event(data: dict[str, Any]) -> Any:
    # V2ChatStreamResponse is a Union alias, which construct_type takes though typed `type`
    return construct_type(type_=V2ChatStreamResponse, object_=data)  # type: ignore[arg-type]


_fragment = st.text(alphabet='ab{}:," 1', max_size=4)


@given(
    st.lists(st.text(max_size=6), max_size=4),
    st.lists(st.lists(_fragment, max_size=4), max_size=3),
    st.lists(st.text(max_size=6), max_size=4),
)
def test_decoded_events_fold_to_the_pieces_joined(
    plan: list[str], calls: list[list[str]], text: list[str]
) -> None:
    events: list[dict[str, Any]] = [{"type": "message-start", "id": "m"}]
    events += [{"type": "tool-plan-delta", "delta": {"message": {"tool_plan": p}}} for p in plan]
    for index, fragments in enumerate(calls):
        start = {"id": f"c{index}", "type": "function", "function": {"name": "f", "arguments": ""}}
        events.append(
            {"type": "tool-call-start", "index": index, "delta": {"message": {"tool_calls": start}}}
        )
        events += [
            {
                "type": "tool-call-delta",
                "index": index,
                "delta": {"message": {"tool_calls": {"function": {"arguments": fragment}}}},
            }
            for fragment in fragments
        ]
        events.append({"type": "tool-call-end", "index": index})
    events += [
        {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": t}}}}
        for t in text
    ]
    usage = {"tokens": {"input_tokens": 3, "output_tokens": 4}}
    events.append({"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": usage}})
    decoder = CohereDecoder(model="m")
    accumulator = Accumulator()
    completed = []
    for data in events:
        assert not decoder.complete
        for chunk in decoder.decode(_event(data)):
            completed += accumulator.add(chunk)
    assert decoder.complete and decoder.events == len(events)
    response = accumulator.response()
    assert response.content == "".join(text) and response.thinking == "".join(plan)
    assert [(c.id, c.arguments) for c in completed] == [
        (f"c{i}", "".join(fragments)) for i, fragments in enumerate(calls)
    ]
    assert response.usage == sk.Usage(input_tokens=3, output_tokens=4, total_tokens=7)
    message = response.message_param
    assert message.get("tool_plan", "") == "".join(plan)
    TypeAdapter(cohere.AssistantChatMessageV2).validate_python(message)
