"""OpenAI's Responses API (``api="responses"``): real ``openai.OpenAI`` / ``AsyncOpenAI``
clients against the replay server.

The oracle is the SDK's own Responses accumulator: ``client.responses.stream(...)``'s
``get_final_response()`` over the same served transcript. For streams that end in
``response.incomplete`` / ``response.failed`` (for which that helper has no final
response) it is the terminal event's ``response`` as the SDK parsed it.
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai._models import construct_type
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseFailedEvent,
    ResponseIncompleteEvent,
    ResponseInputParam,
    ResponseStreamEvent,
)
from pydantic import TypeAdapter

import streamkit as sk
from streamkit import ops
from streamkit.providers import get_adapter
from streamkit.providers.openai.chat import OpenAIChatAdapter
from streamkit.providers.openai.responses import (
    OpenAIResponsesAdapter,
    OpenAIResponsesChunk,
    ResponsesDecoder,
)
from streamkit.testing import Fault, ReplayServer, Reply, Transcript, load_transcript
from streamkit.testing import transcript_names as names_of
from tests.providers.chat_support import (
    assert_dispose_wakes_a_blocked_read,
    assert_take_closes_async,
    assert_take_closes_sync,
    wait_until,
)

RECORDED = [
    "openai/responses-text",
    "openai/responses-parallel-function-calls",
    "openai/responses-reasoning-summary-gpt-5",
]
REFUSAL = "synthetic/openai-responses-refusal"
COMPLETED = [*RECORDED, REFUSAL]
INCOMPLETE = "synthetic/openai-responses-incomplete-max-output-tokens"
FAILED = "synthetic/openai-responses-failed"
ERROR_EVENT = "synthetic/openai-responses-error-event"
TEXT = "openai/responses-text"
TOOLS = "openai/responses-parallel-function-calls"
ADAPTER = get_adapter("openai")


def test_every_recorded_responses_transcript_is_covered() -> None:
    recorded = [n for n in names_of(provider="openai", synthetic=False) if "/responses-" in n]
    assert sorted(recorded) == sorted(RECORDED)


# -- the oracle --------------------------------------------------------------------------
@functools.cache
def sdk_final_response(name: str) -> Response:
    """The SDK's accumulation: ``responses.stream(...).get_final_response()``."""
    with ReplayServer(name) as server:
        client: openai.OpenAI = server.client("openai")
        with client.responses.stream(model="gpt-4o", input="hi") as stream:
            return stream.get_final_response()


def sdk_terminal_response(name: str) -> Response:
    """The ``response`` of the last event, as the SDK parsed it (incomplete / failed)."""
    with ReplayServer(name) as server:
        client: openai.OpenAI = server.client("openai")
        events = list(client.responses.create(model="gpt-4o", input="hi", stream=True))
    last = events[-1]
    assert isinstance(last, (ResponseCompletedEvent, ResponseIncompleteEvent, ResponseFailedEvent))
    return last.response


def thinking_of(response: Response) -> str:
    """Every reasoning part (summary parts, then raw reasoning text) in output order,
    separated by a blank line."""
    parts: list[str] = []
    for item in response.output:
        if item.type == "reasoning":
            parts += [part.text for part in item.summary]
            parts += [part.text for part in item.content or ()]
    return "\n\n".join(parts)


def refusal_of(response: Response) -> str:
    return "".join(
        part.refusal
        for item in response.output
        if item.type == "message"
        for part in item.content
        if part.type == "refusal"
    )


def assert_matches(expected: Response, response: sk.CallResponse, finish_reason: str) -> None:
    assert response.content == expected.output_text
    assert response.thinking == thinking_of(expected)
    assert response.refusal == refusal_of(expected)
    assert response.finish_reasons == [finish_reason]
    assert (response.id, response.model) == (expected.id, expected.model)
    calls = [item for item in expected.output if item.type == "function_call"]
    assert [(c.id, c.name, c.arguments, c.args) for c in response.tool_calls] == [
        (c.call_id, c.name, c.arguments, json.loads(c.arguments)) for c in calls
    ]
    usage = expected.usage
    if usage is None:  # none reported: streamkit's estimate
        assert response.usage is not None and response.usage.source == "estimated"
        return
    assert response.usage == sk.Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
        cached_tokens=usage.input_tokens_details.cached_tokens,
        reasoning_tokens=usage.output_tokens_details.reasoning_tokens,
    )


def assert_matches_sdk(name: str, response: sk.CallResponse) -> None:
    final = sdk_final_response(name)
    assert final.status == "completed"
    assert_matches(final, response, "completed")


def test_the_oracle_is_not_vacuous() -> None:
    # Each recorded stream exercises what it is here for, as the SDK reads it.
    text, tools, reasoning = (sdk_final_response(name) for name in RECORDED)
    assert text.output_text == "4200 + 42 equals 4242."
    assert [i.type for i in tools.output] == ["function_call", "function_call"]
    assert thinking_of(reasoning).count("\n\n**") == 2  # three summary parts
    assert reasoning.usage is not None and reasoning.usage.output_tokens_details.reasoning_tokens
    assert refusal_of(sdk_final_response(REFUSAL)) == "I'm sorry, but I can't help with that."


def stream_of(server: ReplayServer, *, async_: bool = False, **params: Any) -> sk.Stream:
    client = server.client("openai", async_=async_)
    return sk.stream("openai", "gpt-4o", "hi", client=client, api="responses", **params)


# -- every completed transcript, sync and async ------------------------------------------
@pytest.mark.parametrize("name", COMPLETED)
def test_sync_iteration_reduces_like_the_sdk(name: str) -> None:
    with ReplayServer(name) as server:
        stream = stream_of(server)
        pairs = list(stream)
        request = server.requests[0]
    assert request.path == "/v1/responses"
    assert request.json == {
        "model": "gpt-4o",
        "input": [{"role": "user", "content": "hi"}],
        "stream": True,
    }
    # one chunk per event, each with the SDK's typed event
    assert len(pairs) == len(load_transcript(name).events)
    assert all(isinstance(chunk, OpenAIResponsesChunk) for chunk, _ in pairs)
    assert [chunk.chunk.type for chunk, _ in pairs] == [
        json.loads(e.split("data: ", 1)[1])["type"] for e in load_transcript(name).events
    ]
    response = stream.construct_call_response()
    assert_matches_sdk(name, response)
    # each function call is yielded once, with the output_item.done that completes it
    completed_by = [chunk.chunk.type for chunk, tool in pairs if tool is not None]
    assert completed_by == ["response.output_item.done"] * len(response.tool_calls)
    assert [tool for _, tool in pairs if tool is not None] == response.tool_calls


@pytest.mark.parametrize("name", COMPLETED)
def test_sync_observable_reduces_like_the_sdk(name: str) -> None:
    with ReplayServer(name) as server:
        response = stream_of(server).pipe(ops.to_call_response()).run()
    assert_matches_sdk(name, response)


@pytest.mark.parametrize("name", COMPLETED)
async def test_async_iteration_and_observable_reduce_like_the_sdk(name: str) -> None:
    expected = await asyncio.to_thread(sdk_final_response, name)
    with ReplayServer(name) as server:
        client = server.client("openai", async_=True)
        stream = sk.stream("openai", "gpt-4o", "hi", client=client, api="responses")
        async for _ in stream:
            pass
        assert_matches(expected, stream.construct_call_response(), "completed")
        assert_matches(expected, await stream.pipe(ops.to_call_response()), "completed")
        assert len(server.requests) == 2
        await client.close()


def test_refusal_is_the_common_refusal_reason() -> None:
    with ReplayServer(REFUSAL) as server:
        response = stream_of(server).pipe(ops.to_call_response()).run()
    assert response.refusal and response.content == ""
    assert response.finish_reason == "refusal"


def test_function_calls_complete_with_the_tool_calls_reason() -> None:
    # The Responses API reports "completed" for a function-call response too; the
    # common reason says what the next step is.
    with ReplayServer(TOOLS) as server:
        response = stream_of(server).pipe(ops.to_call_response()).run()
    assert response.finish_reasons == ["completed"] and response.finish_reason == "tool_calls"
    assert [call.args for call in response.tool_calls] == [
        {"password": "mellon"},
        {"password": "radiance"},
    ]


# -- incomplete and failed responses ------------------------------------------------------
def test_incomplete_response_reports_why_and_its_usage() -> None:
    expected = sdk_terminal_response(INCOMPLETE)
    assert expected.status == "incomplete"
    with ReplayServer(INCOMPLETE) as server:
        response = stream_of(server).pipe(ops.to_call_response()).run()
    assert_matches(expected, response, "max_output_tokens")
    assert response.finish_reason == "length"
    assert response.thinking == "The user wants a long story; start it."
    assert response.usage is not None and response.usage.reasoning_tokens == 11


async def test_failed_response_ends_with_the_error_finish_reason() -> None:
    expected = await asyncio.to_thread(sdk_terminal_response, FAILED)
    assert expected.status == "failed" and expected.error is not None
    with ReplayServer(FAILED) as server:
        client = server.client("openai", async_=True)
        stream = sk.stream("openai", "gpt-4o", "hi", client=client, api="responses")
        chunks = [chunk async for chunk, _ in stream]
        await client.close()
    response = stream.construct_call_response()
    assert_matches(expected, response, "failed")
    assert response.content == "The answer" and response.finish_reason == "error"
    # the error object stays in the raw terminal event
    assert chunks[-1].chunk.response.error.code == "server_error"


# -- errors ------------------------------------------------------------------------------
def test_error_event_raises_the_sdks_api_error_after_what_came_before() -> None:
    with ReplayServer(ERROR_EVENT) as server:
        stream = stream_of(server)
        received: list[str] = []
        with pytest.raises(openai.APIError) as raised:
            for chunk, _ in stream:
                received.append(chunk.content)
        errors: list[BaseException] = []
        got: list[sk.Chunk] = []
        stream.subscribe(got.append, on_error=errors.append)
        wait_until(lambda: bool(errors))
    assert "".join(received) == stream.content == "Hello there"
    assert len(received) == 5 == len(got)
    assert raised.value.code == "server_error"
    assert raised.value.message == "The server had an error while processing your request."
    assert ADAPTER.is_transient(raised.value)
    assert isinstance(errors[0], openai.APIError)


async def test_error_event_raises_the_sdks_api_error_async() -> None:
    with ReplayServer(ERROR_EVENT) as server:
        client = server.client("openai", async_=True)
        stream = sk.stream("openai", "gpt-4o", "hi", client=client, api="responses")
        with pytest.raises(openai.APIError, match="server had an error"):
            await stream.pipe(ops.to_call_response())
        await client.close()


def test_error_object_event_is_raised_by_the_sdk_itself() -> None:
    # The other shape seen in the wild: {"type": "error", "error": {...}}.
    events = load_transcript(TEXT).events[:6]
    error = {
        "type": "error",
        "error": {"type": "server_error", "code": "server_error", "message": "overloaded"},
    }
    broken = Transcript.from_events("openai", "responses", [*events, f"data: {json.dumps(error)}"])
    with ReplayServer(broken) as server:
        stream = stream_of(server)
        with pytest.raises(openai.APIError, match="overloaded") as raised:
            list(stream)
    assert stream.content == "4200"
    assert ADAPTER.is_transient(raised.value)


def test_stream_ended_before_its_terminal_event_is_incomplete() -> None:
    cut = Transcript.from_events("openai", "responses", load_transcript(TEXT).events[:8])
    with ReplayServer(cut) as server:
        stream = stream_of(server)
        with pytest.raises(sk.IncompleteStreamError, match=r"response\.completed") as raised:
            list(stream)
    assert raised.value.events == 8 and stream.content == "4200 + "


async def test_stream_ended_before_its_terminal_event_is_incomplete_async() -> None:
    cut = Transcript.from_events("openai", "responses", load_transcript(TOOLS).events[:12])
    with ReplayServer(cut) as server:
        client = server.client("openai", async_=True)
        stream = sk.stream("openai", "gpt-4o", "hi", client=client, api="responses")
        tools = []
        with pytest.raises(sk.IncompleteStreamError):
            async for _, tool in stream:
                tools.append(tool)
        await client.close()
    # the first call was complete (its output_item.done arrived), the second never began
    assert [t.args for t in tools if t is not None] == [{"password": "mellon"}]


def test_http_error_is_the_sdks_exception() -> None:
    # A 404 answered on the Responses path (the recorded body is the API's error JSON).
    recorded = load_transcript("openai/chat-error-404-model-not-found")
    not_found = Transcript.from_events(
        "openai", "responses", [recorded.body], status=404, terminate=False
    )
    with ReplayServer(not_found) as server, pytest.raises(openai.NotFoundError) as raised:
        list(stream_of(server))
    assert not ADAPTER.is_transient(raised.value)


# -- requests and the next turn ----------------------------------------------------------
def test_messages_become_input_items_and_bad_arguments_fail_before_a_request() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "Answer in French."},
    ]
    with ReplayServer(TEXT) as server:
        client = server.client("openai")
        list(
            sk.stream(
                "openai", "gpt-4o", messages, client=client, api="responses", max_output_tokens=50
            )
        )
        body = server.requests[0].json
        with pytest.raises(ValueError, match="input="):
            sk.stream("openai", "gpt-4o", "hi", client=client, api="responses", input="x")
        with pytest.raises(ValueError, match="'chat' or 'responses'"):
            sk.stream("openai", "gpt-4o", "hi", client=client, api="assistants")
        assert len(server.requests) == 1
    # system messages stay items in place (not moved to `instructions`)
    assert body["input"] == messages and "instructions" not in body
    assert body["max_output_tokens"] == 50


def test_message_param_carries_the_output_items_into_the_next_input() -> None:
    with ReplayServer() as server:
        server.push(TOOLS, TEXT)
        client = server.client("openai")
        first = stream_of(server).pipe(ops.to_call_response()).run()
        assert first.message_param["role"] == "assistant"
        items = first.message_param["output"]
        assert [(i["type"], i["call_id"]) for i in items] == [
            ("function_call", call.id) for call in first.tool_calls
        ]
        history = [
            {"role": "user", "content": "hi"},
            first.message_param,
            *(
                {"role": "tool", "tool_call_id": c.id, "content": "secret"}
                for c in first.tool_calls
            ),
        ]
        sk.stream("openai", "gpt-4o", history, client=client, api="responses").pipe(
            ops.to_call_response()
        ).run()
        sent = server.requests[1].json["input"]
    assert sent[1:3] == items
    assert sent[3:] == [
        {"type": "function_call_output", "call_id": c.id, "output": "secret"}
        for c in first.tool_calls
    ]
    TypeAdapter(ResponseInputParam).validate_python(sent)


def test_a_chat_format_history_is_converted() -> None:
    # The message_param of a chat-completions call works as Responses input too.
    with ReplayServer() as server:
        server.push("openai/chat-parallel-tool-calls-usage", TEXT)
        client = server.client("openai")
        chat = sk.stream("openai", "gpt-4o", "hi", client=client).pipe(ops.to_call_response()).run()
        call = chat.tool_calls[0]
        history = [
            {"role": "user", "content": "hi"},
            chat.message_param,
            {"role": "tool", "tool_call_id": call.id, "content": "secret"},
        ]
        list(sk.stream("openai", "gpt-4o", history, client=client, api="responses"))
        sent = server.requests[1].json["input"]
    assert sent[1:3] == [
        {"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments}
        for c in chat.tool_calls
    ]
    assert sent[-1] == {"type": "function_call_output", "call_id": call.id, "output": "secret"}
    TypeAdapter(ResponseInputParam).validate_python(sent)


def test_message_param_of_a_text_and_reasoning_response() -> None:
    name = "openai/responses-reasoning-summary-gpt-5"
    final = sdk_final_response(name)
    with ReplayServer(name) as server:
        response = stream_of(server).pipe(ops.to_call_response()).run()
    items = response.message_param["output"]
    assert [i["type"] for i in items] == ["reasoning", "message"]
    assert [i["id"] for i in items] == [item.id for item in final.output]
    TypeAdapter(ResponseInputParam).validate_python(items)


def test_the_api_parameter_selects_the_adapter() -> None:
    """Was test_the_request_type_selects_the_endpoint: the request's type chose the
    endpoint; now ``api=`` chooses the adapter once, when the stream is built."""
    prompt = [{"role": "user", "content": "hi"}]
    responses = ADAPTER.adapter_for({"api": "responses"})
    assert isinstance(responses, OpenAIResponsesAdapter)
    request = responses.build_request("gpt-4o", prompt, {"api": "responses"})
    assert "api" not in request and "input" in request and request["stream"] is True
    assert isinstance(responses.new_decoder(request), ResponsesDecoder)
    chat = ADAPTER.adapter_for({})
    assert isinstance(chat, OpenAIChatAdapter) and ADAPTER.adapter_for({"api": "chat"}) is chat
    assert "stream_options" in chat.build_request("gpt-4o", prompt, {})


# -- cancellation, seen from the server --------------------------------------------------
def test_take_closes_the_http_response_sync() -> None:
    with ReplayServer(TEXT, pace=0.02) as server:
        assert_take_closes_sync(server, stream_of(server))


async def test_take_closes_the_http_response_async() -> None:
    with ReplayServer(TEXT, pace=0.02) as server:
        client = server.client("openai", async_=True)
        stream = sk.stream("openai", "gpt-4o", "hi", client=client, api="responses")
        await assert_take_closes_async(server, stream)
        await client.close()


def test_dispose_from_another_thread_wakes_a_blocked_read() -> None:
    with ReplayServer() as server:
        server.push(Reply(TEXT, fault=Fault(stall_after_events=(3, 30.0))))
        assert_dispose_wakes_a_blocked_read(server, stream_of(server))


# -- the decoder on its own --------------------------------------------------------------
def event(data: dict[str, Any]) -> Any:
    """A typed SDK event, as the SDK builds it from a data line."""
    return construct_type(type_=ResponseStreamEvent, value={"sequence_number": 0, **data})


@given(parts=st.lists(st.lists(st.text(min_size=1), min_size=1, max_size=4), max_size=4))
def test_reasoning_parts_join_with_a_blank_line(parts: list[list[str]]) -> None:
    # Any split of any number of summary parts (over two reasoning items) decodes to
    # the parts joined by a blank line, as the oracle's thinking_of() reads them.
    decoder = ResponsesDecoder()
    thinking: list[str] = []
    for index, deltas in enumerate(parts):
        item_id, summary_index = f"rs_{index // 2}", index % 2
        for delta in deltas:
            data = {
                "type": "response.reasoning_summary_text.delta",
                "item_id": item_id,
                "output_index": index // 2,
                "summary_index": summary_index,
                "delta": delta,
            }
            [chunk] = decoder.decode(event(data))
            thinking.append(chunk.thinking)
    assert "".join(thinking) == "\n\n".join("".join(deltas) for deltas in parts)


def test_a_function_call_sent_whole_keeps_its_arguments() -> None:
    # A server that sends the item with its arguments and no argument deltas.
    item = {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "f",
        "arguments": '{"a": 1}',
        "status": "completed",
    }
    decoder = ResponsesDecoder()
    accumulator = sk.Accumulator()
    for data in (
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
    ):
        for chunk in decoder.decode(event(data)):
            accumulator.add(chunk)
    assert [(c.id, c.name, c.args) for c in accumulator.tool_calls] == [("call_1", "f", {"a": 1})]
