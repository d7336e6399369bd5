"""Groq: real ``groq.Groq`` / ``groq.AsyncGroq`` clients against the replay server.

Groq has no accumulator of its own: the oracle is openai's ``ChatCompletionStreamState``
fed the same chunks (it also concatenates Groq's extra ``delta.reasoning``), and usage
is read straight from ``x_groq.usage`` in the transcript.
"""

from __future__ import annotations

import json
from typing import Any

import groq
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk
from pydantic import TypeAdapter

import streamkit as sk
from streamkit import ops
from streamkit.providers import get_adapter
from streamkit.providers.groq import GroqChunk
from streamkit.testing import (
    Fault,
    ReplayServer,
    Reply,
    Transcript,
    load_transcript,
    transcript_names,
)

from .chat_support import (
    assert_break_closes_async,
    assert_break_closes_sync,
    assert_cut_is_incomplete,
    assert_dispose_wakes_a_blocked_read,
    assert_take_closes_async,
    assert_take_closes_sync,
    assert_truncated_body_is_incomplete,
    completing_events,
    data_events,
    tool_positions,
    wait_until,
)

COMPLETE = ["groq/chat-text-x-groq-usage", "groq/chat-tool-call-reasoning-usage"]
MIDSTREAM_ERROR = "groq/chat-midstream-error-tool-use-failed"
TEXT = "groq/chat-text-x-groq-usage"
TOOL = "groq/chat-tool-call-reasoning-usage"
MODEL = "openai/gpt-oss-120b"
ADAPTER = get_adapter("groq")


def test_every_groq_transcript_is_covered() -> None:
    assert sorted([*COMPLETE, MIDSTREAM_ERROR]) == transcript_names(provider="groq")


# -- the oracle --------------------------------------------------------------------------
def oracle(name: str) -> tuple[Any, str, dict[str, Any] | None]:
    """(openai's accumulation of the chunks, its reasoning, the last ``x_groq.usage``)."""
    state = ChatCompletionStreamState()
    usage = None
    for data in data_events(name):
        state.handle_chunk(ChatCompletionChunk.model_validate(data))
        usage = (data.get("x_groq") or {}).get("usage") or usage
    completion = state.current_completion_snapshot
    reasoning = (completion.choices[0].message.model_extra or {}).get("reasoning", "")
    return completion, reasoning, usage


def assert_matches_oracle(name: str, response: sk.CallResponse) -> None:
    completion, reasoning, usage = oracle(name)
    choice = completion.choices[0]
    assert response.content == (choice.message.content or "")
    assert response.thinking == reasoning
    assert response.finish_reasons == [choice.finish_reason]
    assert response.model == completion.model and response.id == completion.id
    expected_calls = [
        (call.id, call.function.name, call.function.arguments, json.loads(call.function.arguments))
        for call in choice.message.tool_calls or []
    ]
    assert [(c.id, c.name, c.arguments, c.args) for c in response.tool_calls] == expected_calls
    assert usage is not None and response.usage is not None
    assert response.usage.input_tokens == usage["prompt_tokens"]
    assert response.usage.output_tokens == usage["completion_tokens"]
    assert response.usage.total_tokens == usage["total_tokens"]
    details = usage.get("completion_tokens_details") or {}
    assert response.usage.reasoning_tokens == details.get("reasoning_tokens")


# -- every transcript, sync and async ----------------------------------------------------
@pytest.mark.parametrize("name", COMPLETE)
def test_sync_iteration_reduces_like_the_sdk(name: str) -> None:
    with ReplayServer(name) as server:
        stream = sk.stream("groq", MODEL, "hi", client=server.client("groq"))
        pairs = list(stream)
    assert all(isinstance(chunk, GroqChunk) for chunk, _ in pairs)
    assert all(isinstance(chunk.chunk, groq.types.chat.ChatCompletionChunk) for chunk, _ in pairs)
    response = stream.construct_call_response()
    assert_matches_oracle(name, response)
    assert [tool for _, tool in pairs if tool is not None] == response.tool_calls
    assert tool_positions(pairs) == completing_events(name)


@pytest.mark.parametrize("name", COMPLETE)
def test_sync_observable_reduces_like_the_sdk(name: str) -> None:
    with ReplayServer(name) as server:
        stream = sk.stream("groq", MODEL, "hi", client=server.client("groq"))
        assert_matches_oracle(name, stream.pipe(ops.to_call_response()).run())
        assert server.requests[0].path == "/openai/v1/chat/completions"
        assert server.requests[0].json["stream"] is True


@pytest.mark.parametrize("name", COMPLETE)
async def test_async_iteration_and_observable_reduce_like_the_sdk(name: str) -> None:
    with ReplayServer(name) as server:
        client = server.client("groq", async_=True)
        stream = sk.stream("groq", MODEL, "hi", client=client)
        pairs = [pair async for pair in stream]
        assert_matches_oracle(name, stream.construct_call_response())
        assert tool_positions(pairs) == completing_events(name)
        assert_matches_oracle(name, await stream.pipe(ops.to_call_response()))
        assert len(server.requests) == 2
        await client.close()


def test_completing_events_oracle_is_not_vacuous() -> None:
    # The tool call's fragment and its finish reason come in two chunks: the tool must
    # be yielded with the second (positions count data events from 0).
    assert completing_events(TOOL) == [len(data_events(TOOL)) - 1]
    assert completing_events(TEXT) == []


# -- usage: x_groq.usage or usage, read once ---------------------------------------------
def _with_usage_moved(name: str, keep: str) -> Transcript:
    """The recorded stream with usage only in ``x_groq.usage`` or only in ``usage``."""
    events = []
    for event in load_transcript(name).events:
        if event.startswith("data: {"):
            data = json.loads(event.removeprefix("data:"))
            usage = (data.get("x_groq") or {}).pop("usage", None) or data.pop("usage", None)
            data.pop("usage", None)
            if usage is not None:
                if keep == "usage":
                    data["usage"] = usage
                else:
                    data.setdefault("x_groq", {})["usage"] = usage
            event = f"data: {json.dumps(data)}\n\n"
        events.append(event)
    return Transcript.from_events("groq", "chat.completions", events, name=f"groq/{keep}-only")


@pytest.mark.parametrize("keep", ["usage", "x_groq"])
def test_usage_is_read_from_either_place_and_never_added(keep: str) -> None:
    # The recording carries the same usage in both places: the derived streams carry it
    # in one. All three must give the same totals (a sum would double them).
    with ReplayServer() as server:
        server.push(TOOL, _with_usage_moved(TOOL, keep))
        client = server.client("groq")
        both = sk.stream("groq", MODEL, "hi", client=client).pipe(ops.to_call_response()).run()
        one = sk.stream("groq", MODEL, "hi", client=client).pipe(ops.to_call_response()).run()
    assert both.usage is not None and both.usage == one.usage
    assert (both.usage.input_tokens, both.usage.output_tokens) == (304, 49)


# -- errors ------------------------------------------------------------------------------
def _partial_reasoning() -> str:
    return "".join(
        data["choices"][0]["delta"].get("reasoning", "") for data in data_events(MIDSTREAM_ERROR)
    )


def test_midstream_error_event_is_the_sdks_api_error_sync() -> None:
    # groq 1.7 reads `event: error` itself and raises APIError with the error object as
    # body (older groq versions broke on the `event:` line instead).
    with ReplayServer(MIDSTREAM_ERROR) as server:
        stream = sk.stream("groq", MODEL, "hi", client=server.client("groq"))
        with pytest.raises(groq.APIError) as raised:
            list(stream)
        errors: list[BaseException] = []
        stream.subscribe(on_error=errors.append)
        wait_until(lambda: bool(errors))
    assert raised.value.body["code"] == "tool_use_failed"  # type: ignore[index]
    assert "validation failed" in raised.value.message
    assert not ADAPTER.is_transient(raised.value)
    assert type(errors[0]) is type(raised.value)
    # what arrived before the error is kept
    assert stream.thinking == _partial_reasoning() != ""
    assert stream.finish_reasons is None


async def test_midstream_error_event_is_the_sdks_api_error_async() -> None:
    with ReplayServer(MIDSTREAM_ERROR) as server:
        client = server.client("groq", async_=True)
        stream = sk.stream("groq", MODEL, "hi", client=client)
        with pytest.raises(groq.APIError, match="validation failed"):
            async for _ in stream:
                pass
        assert stream.thinking == _partial_reasoning()
        await client.close()


def _error(status: int, code: str) -> Transcript:
    body = json.dumps({"error": {"message": code, "type": "invalid_request_error", "code": code}})
    return Transcript.from_events(
        "groq", "chat.completions", [body], status=status, terminate=False, name=f"groq/{status}"
    )


@pytest.mark.parametrize(
    ("status", "exception", "transient"),
    [(404, groq.NotFoundError, False), (503, groq.InternalServerError, True)],
)
async def test_http_errors_are_the_sdks_exceptions(
    status: int, exception: type[Exception], transient: bool
) -> None:
    reply = _error(status, "model_not_found" if status == 404 else "service_unavailable")
    with ReplayServer(reply) as server:
        stream = sk.stream("groq", MODEL, "hi", client=server.client("groq"))
        with pytest.raises(exception) as raised:
            list(stream)
        assert ADAPTER.is_transient(raised.value) is transient
        client = server.client("groq", async_=True)
        with pytest.raises(exception):
            await sk.stream("groq", MODEL, "hi", client=client).pipe(ops.to_call_response())
        await client.close()


@pytest.mark.parametrize("fault", [Fault(close_after_events=5), Fault(reset_after_events=5)])
def test_connection_cut_mid_stream_is_incomplete_sync(fault: Fault) -> None:
    # The SDK's error for the cut (groq lets its HTTP library's through) is not
    # asserted: only streamkit's contract is.
    with ReplayServer() as server:
        server.push(Reply(TEXT, fault=fault))
        stream = sk.stream("groq", MODEL, "hi", client=server.client("groq"))
        assert_cut_is_incomplete(stream)


async def test_connection_cut_mid_stream_is_incomplete_async() -> None:
    with ReplayServer() as server:
        server.push(Reply(TEXT, fault=Fault(close_after_events=5)))
        client = server.client("groq", async_=True)
        stream = sk.stream("groq", MODEL, "hi", client=client)
        with pytest.raises(sk.IncompleteStreamError):
            await stream.pipe(ops.to_call_response())
        await client.close()


def test_body_ended_before_the_finish_reason_is_incomplete() -> None:
    assert_truncated_body_is_incomplete("groq", TEXT, 7)


# -- next turn ---------------------------------------------------------------------------
def test_message_param_is_a_valid_next_turn() -> None:
    from groq.types.chat import ChatCompletionAssistantMessageParam

    with ReplayServer(TOOL) as server:
        client = server.client("groq")
        first = sk.stream("groq", MODEL, "hi", client=client).pipe(ops.to_call_response()).run()
        TypeAdapter(ChatCompletionAssistantMessageParam).validate_python(first.message_param)
        call = first.tool_calls[0]
        history = [
            {"role": "user", "content": "hi"},
            first.message_param,
            {"role": "tool", "tool_call_id": call.id, "content": "found"},
        ]
        list(sk.stream("groq", MODEL, history, client=client))
        sent = server.requests[1].json["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
        ],
    }


# -- cancellation, seen from the server (the SDK path and the fast path) ----------------
FAST = pytest.mark.parametrize("fast", [False, True], ids=["sdk", "fast"])


@FAST
def test_take_closes_the_http_response_sync(fast: bool) -> None:
    with ReplayServer(TEXT, pace=0.02) as server:
        assert_take_closes_sync(
            server, sk.stream("groq", MODEL, "hi", client=server.client("groq"), fast=fast)
        )


@FAST
async def test_take_closes_the_http_response_async(fast: bool) -> None:
    with ReplayServer(TEXT, pace=0.02) as server:
        client = server.client("groq", async_=True)
        stream = sk.stream("groq", MODEL, "hi", client=client, fast=fast)
        await assert_take_closes_async(server, stream)
        await client.close()


@FAST
async def test_async_break_and_aclose_close_the_http_response(fast: bool) -> None:
    # httpx's anyio close awaits: the loop's finalizer of the broken `async for` and
    # aclose() must not both close the same pull (that raised RuntimeError in a task).
    with ReplayServer(TEXT, pace=0.02) as server:
        client = server.client("groq", async_=True)
        stream = sk.stream("groq", MODEL, "hi", client=client, fast=fast)
        await assert_break_closes_async(server, stream)
        await client.close()


@FAST
def test_sync_break_closes_the_http_response(fast: bool) -> None:
    with ReplayServer(TEXT, pace=0.02) as server:
        stream = sk.stream("groq", MODEL, "hi", client=server.client("groq"), fast=fast)
        assert_break_closes_sync(server, stream)


@FAST
def test_dispose_from_another_thread_wakes_a_blocked_read(fast: bool) -> None:
    with ReplayServer() as server:
        server.push(Reply(TEXT, fault=Fault(stall_after_events=(3, 30.0))))
        stream = sk.stream("groq", MODEL, "hi", client=server.client("groq"), fast=fast)
        assert_dispose_wakes_a_blocked_read(server, stream)


# -- clients -----------------------------------------------------------------------------
def test_client_kind_decides_and_foreign_clients_are_refused() -> None:
    with ReplayServer(TEXT) as server:
        sync_client, async_client = server.client("groq"), server.client("groq", async_=True)
        assert sk.stream("groq", MODEL, "hi", client=async_client).is_async
        assert not sk.stream("groq", MODEL, "hi", client=sync_client).is_async
        with pytest.raises(TypeError, match="sync client"):
            sk.stream("groq", MODEL, "hi", client=sync_client, async_=True)
        with pytest.raises(TypeError, match=r"groq\.Groq"):
            sk.stream("groq", MODEL, "hi", client=server.client("openai"))
        with pytest.raises(TypeError, match="async client"):
            sk.call("groq", MODEL, client=sync_client)(_async_prompt)
        assert server.requests == []


async def _async_prompt() -> str:
    return "hi"
