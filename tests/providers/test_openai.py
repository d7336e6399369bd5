"""OpenAI chat completions: every recorded transcript, sync and async, against the SDK's
own accumulator (``ChatCompletionStreamState``)."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

import streamkit as sk
from streamkit import ops
from streamkit.providers.openai import OpenAIChunk
from streamkit.testing import Fault, ReplayServer, Reply, Transcript, load_transcript

CHAT_TRANSCRIPTS = [
    "openai/chat-text-usage",
    "openai/chat-parallel-tool-calls-usage",
    "openai/chat-refusal-structured-output",
    "openai/chat-text-after-tool-results",
    "openai/chat-tool-call-gpt-4o-mini",
]


def oracle(name: str) -> tuple[Any, Any]:
    """The SDK's own accumulation of the transcript's chunks: (final completion, usage)."""
    state = ChatCompletionStreamState()
    usage = None
    for event in load_transcript(name).events:
        data = event.strip().removeprefix("data:").strip()
        if not data or data == "[DONE]":
            continue
        chunk = ChatCompletionChunk.model_validate(json.loads(data))
        state.handle_chunk(chunk)
        usage = chunk.usage or usage
    return state.get_final_completion(), usage


def assert_matches_oracle(name: str, response: sk.CallResponse) -> None:
    completion, usage = oracle(name)
    choice = completion.choices[0]
    message = choice.message
    assert response.content == (message.content or "")
    assert response.refusal == (message.refusal or "")
    assert response.finish_reasons == [choice.finish_reason]
    assert response.model == completion.model
    assert response.id == completion.id
    expected_calls = [
        (call.id, call.function.name, call.function.arguments, json.loads(call.function.arguments))
        for call in message.tool_calls or []
    ]
    assert [(c.id, c.name, c.arguments, c.args) for c in response.tool_calls] == expected_calls
    assert usage is not None
    assert response.usage is not None
    assert response.usage.input_tokens == usage.prompt_tokens
    assert response.usage.output_tokens == usage.completion_tokens
    assert response.usage.total_tokens == usage.total_tokens


@pytest.mark.parametrize("name", CHAT_TRANSCRIPTS)
def test_sync_observable_reduces_like_the_sdk(name: str) -> None:
    with ReplayServer(name) as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        response = stream.pipe(ops.to_call_response()).run()
    assert_matches_oracle(name, response)


@pytest.mark.parametrize("name", CHAT_TRANSCRIPTS)
def test_sync_iteration_reduces_like_the_sdk(name: str) -> None:
    with ReplayServer(name) as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        pairs = list(stream)
    assert all(isinstance(chunk, OpenAIChunk) for chunk, _ in pairs)
    assert all(isinstance(chunk.chunk, ChatCompletionChunk) for chunk, _ in pairs)
    response = stream.construct_call_response()
    assert_matches_oracle(name, response)
    # Each tool call is yielded exactly once, in order, and equals the reduced one.
    assert [tool for _, tool in pairs if tool is not None] == response.tool_calls


@pytest.mark.parametrize("name", CHAT_TRANSCRIPTS)
async def test_async_iteration_and_observable_reduce_like_the_sdk(name: str) -> None:
    with ReplayServer(name) as server:
        client = server.client("openai", async_=True)
        stream = sk.stream("openai", "gpt-4o", "hi", client=client)
        async for _chunk, _tool in stream:
            pass
        assert_matches_oracle(name, stream.construct_call_response())
        # The same stream as an observable: a second, independent request.
        response = await stream.pipe(ops.to_call_response())
        assert_matches_oracle(name, response)
        assert len(server.requests) == 2
        await client.close()


def test_parallel_tool_calls_complete_once_each_at_the_right_chunk() -> None:
    name = "openai/chat-parallel-tool-calls-usage"
    with ReplayServer(name) as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        completions = [(i, tool) for i, (_, tool) in enumerate(stream) if tool is not None]
    assert len(completions) >= 2
    names = [tool.name for _, tool in completions]
    assert len(set(tool.id for _, tool in completions)) == len(completions)
    # The first call completes when the second starts, i.e. before the last chunk.
    assert completions[0][0] < completions[-1][0]
    assert all(tool.args for _, tool in completions), names


def test_finish_reason_survives_the_usage_chunk() -> None:
    # Peer bug: the usage-only last chunk (choices=[]) erased the finish reason.
    with ReplayServer("openai/chat-text-usage") as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        chunks = [chunk for chunk, _ in stream]
    assert chunks[-1].finish_reasons is None and chunks[-1].usage is not None
    assert stream.finish_reasons == ["stop"]
    assert stream.construct_call_response().finish_reason == "stop"


def test_refusal_maps_to_the_common_refusal_reason() -> None:
    with ReplayServer("openai/chat-refusal-structured-output") as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        response = stream.pipe(ops.to_call_response()).run()
    assert response.refusal and response.content == ""
    assert response.finish_reasons == ["stop"]
    assert response.finish_reason == "refusal"
    assert response.message_param["refusal"] == response.refusal


def test_message_param_is_a_valid_next_turn_message() -> None:
    with ReplayServer("openai/chat-parallel-tool-calls-usage") as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        response = stream.pipe(ops.to_call_response()).run()
    from openai.types.chat import ChatCompletionAssistantMessageParam
    from pydantic import TypeAdapter

    TypeAdapter(ChatCompletionAssistantMessageParam).validate_python(response.message_param)
    assert [c["id"] for c in response.message_param["tool_calls"]] == [
        c.id for c in response.tool_calls
    ]


def test_usage_is_requested_by_default_and_overridable() -> None:
    with ReplayServer("openai/chat-text-usage") as server:
        client = server.client("openai")
        list(sk.stream("openai", "gpt-4o", "hi", client=client, max_tokens=5))
        body = server.requests[0].json
        assert body is not None
        assert body["stream_options"] == {"include_usage": True}
        assert body["max_tokens"] == 5 and body["stream"] is True
        assert body["messages"] == [{"role": "user", "content": "hi"}]


def test_http_error_before_the_stream_is_the_sdks_own_exception() -> None:
    with ReplayServer("openai/chat-error-404-model-not-found") as server:
        stream = sk.stream("openai", "nope", "hi", client=server.client("openai"))
        with pytest.raises(openai.NotFoundError):
            list(stream)
        errors: list[BaseException] = []
        stream.subscribe(on_error=errors.append)
        server.wait_for_request_end(1)
        _wait_until(lambda: bool(errors))
        assert isinstance(errors[0], openai.NotFoundError)


def test_stream_ended_before_its_terminal_events_is_incomplete() -> None:
    # The HTTP body ends properly but without finish_reason, usage and [DONE]: the
    # openai SDK ends its iteration quietly; streamkit must not call that complete.
    recorded = load_transcript("openai/chat-text-usage")
    cut = Transcript.from_events("openai", "chat.completions", recorded.events[:5])
    with ReplayServer(cut) as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        received: list[str] = []
        with pytest.raises(sk.IncompleteStreamError):
            for chunk, _ in stream:
                received.append(chunk.content)
        errors: list[BaseException] = []
        stream.subscribe(on_error=errors.append)
        _wait_until(lambda: bool(errors))
    assert len(received) == 5
    assert stream.content == "".join(received)
    assert isinstance(errors[0], sk.IncompleteStreamError)


def test_connection_dropped_mid_stream_is_incomplete_with_the_sdk_error_as_cause() -> None:
    with ReplayServer() as server:
        server.push(Reply("openai/chat-text-usage", fault=Fault(close_after_events=5)))
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        received: list[str] = []
        with pytest.raises(sk.IncompleteStreamError) as caught:
            for chunk, _ in stream:
                received.append(chunk.content)
    assert len(received) == 5
    assert isinstance(caught.value.__cause__, openai.APIConnectionError)


def _wait_until(condition: Any, timeout: float = 5.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)
