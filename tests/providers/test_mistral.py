"""Mistral: a real ``mistralai.client.Mistral`` client (sync and async) against the replay
server, checked against the SDK's own ``accumulate_chunks_to_response_dict``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mistralai.client import Mistral
from mistralai.client.errors import HTTPValidationError, SDKError
from mistralai.client.models import AssistantMessage, CompletionChunk, CompletionEvent
from mistralai.extra.observability.streaming import accumulate_chunks_to_response_dict

import streamkit as sk
from streamkit import ops
from streamkit.providers import get_adapter
from streamkit.providers.mistral import MistralChunk, MistralChunkDecoder
from streamkit.testing import (
    Fault,
    ReplayServer,
    Reply,
    Transcript,
    load_transcript,
    transcript_names,
)
from streamkit.testing import strategies as sks

from .chat_support import (
    assert_break_closes_async,
    assert_cut_is_incomplete,
    assert_dispose_wakes_a_blocked_read,
    assert_take_closes_async,
    assert_take_closes_sync,
    assert_truncated_body_is_incomplete,
    completing_events,
    data_events,
    tool_positions,
)

TRANSCRIPTS = [
    "mistral/chat-text-usage",
    "mistral/chat-tool-call-usage",
    "synthetic/mistral-chat-parallel-tool-calls",
    "synthetic/mistral-chat-thinking",
    "synthetic/mistral-chat-tool-call-argument-deltas",
]
TEXT = "mistral/chat-text-usage"
SPLIT_TOOLS = "synthetic/mistral-chat-tool-call-argument-deltas"
MODEL = "mistral-large-latest"
ADAPTER = get_adapter("mistral")


def test_every_mistral_transcript_is_covered() -> None:
    assert transcript_names(provider="mistral") == TRANSCRIPTS
    assert all(load_transcript(name).synthetic for name in TRANSCRIPTS[2:])


# -- the oracle --------------------------------------------------------------------------
def thinking_of(name: str) -> str:
    """The text of every ``thinking`` part, read from the transcript's JSON."""
    return "".join(
        inner["text"]
        for data in data_events(name)
        for part in data["choices"][0]["delta"].get("content") or ()
        if isinstance(part, dict) and part["type"] == "thinking"
        for inner in part["thinking"]
    )


def assert_matches_oracle(name: str, response: sk.CallResponse) -> None:
    chunks = [CompletionChunk.model_validate(data) for data in data_events(name)]
    expected = accumulate_chunks_to_response_dict(chunks)
    choice = expected["choices"][0]
    message = choice["message"]
    assert response.content == message["content"]
    assert response.thinking == thinking_of(name)
    assert response.finish_reasons == [choice["finish_reason"]]
    assert (response.model, response.id) == (expected["model"], expected["id"])
    expected_calls = [
        (
            call["id"],
            call["function"]["name"],
            call["function"]["arguments"],
            json.loads(call["function"]["arguments"]),
        )
        for call in message.get("tool_calls", [])
    ]
    assert [(c.id, c.name, c.arguments, c.args) for c in response.tool_calls] == expected_calls
    usage = expected["usage"]
    assert response.usage is not None
    assert response.usage.input_tokens == usage["prompt_tokens"]
    assert response.usage.output_tokens == usage["completion_tokens"]
    assert response.usage.total_tokens == usage["total_tokens"]
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    assert response.usage.cached_tokens == cached


# -- every transcript, sync and async ----------------------------------------------------
@pytest.mark.parametrize("name", TRANSCRIPTS)
def test_sync_iteration_reduces_like_the_sdk(name: str) -> None:
    with ReplayServer(name) as server:
        stream = sk.stream("mistral", MODEL, "hi", client=server.client("mistral"))
        assert not stream.is_async  # one client class: sync unless asked otherwise
        pairs = list(stream)
    assert all(isinstance(chunk, MistralChunk) for chunk, _ in pairs)
    assert all(isinstance(chunk.chunk, CompletionChunk) for chunk, _ in pairs)
    response = stream.construct_call_response()
    assert_matches_oracle(name, response)
    assert [tool for _, tool in pairs if tool is not None] == response.tool_calls
    assert tool_positions(pairs) == completing_events(name)


@pytest.mark.parametrize("name", TRANSCRIPTS)
def test_sync_observable_reduces_like_the_sdk(name: str) -> None:
    with ReplayServer(name) as server:
        stream = sk.stream("mistral", MODEL, "hi", client=server.client("mistral"))
        assert_matches_oracle(name, stream.pipe(ops.to_call_response()).run())
        assert server.requests[0].path == "/v1/chat/completions"
        assert server.requests[0].headers["accept"] == "text/event-stream"


@pytest.mark.parametrize("name", TRANSCRIPTS)
async def test_async_iteration_and_observable_reduce_like_the_sdk(name: str) -> None:
    with ReplayServer(name) as server:
        async with server.client("mistral") as client:
            stream = sk.stream("mistral", MODEL, "hi", client=client, async_=True)
            pairs = [pair async for pair in stream]
            assert_matches_oracle(name, stream.construct_call_response())
            assert tool_positions(pairs) == completing_events(name)
            assert_matches_oracle(name, await stream.pipe(ops.to_call_response()))
            assert len(server.requests) == 2


def test_oracles_are_not_vacuous() -> None:
    assert thinking_of("synthetic/mistral-chat-thinking").startswith("The user asks")
    # split arguments: the first call completes where the second starts
    events = data_events(SPLIT_TOOLS)
    assert completing_events(SPLIT_TOOLS) == [5, len(events) - 1]
    # two whole calls in one chunk with the finish reason: both complete there
    assert completing_events("synthetic/mistral-chat-parallel-tool-calls") == [1, 1]


def test_sdk_placeholders_are_not_taken_for_values() -> None:
    # Continuation fragments have no id: the SDK fills in the string "null", which must
    # not replace the real id (the oracle test above also checks this end to end).
    chunks = [CompletionChunk.model_validate(data) for data in data_events(SPLIT_TOOLS)]
    ids = [call.id for chunk in chunks for call in chunk.choices[0].delta.tool_calls or ()]
    assert ids.count("null") == 3
    decoder = MistralChunkDecoder("mistral")
    accumulator = sk.Accumulator()
    for chunk in chunks:
        for decoded in decoder.decode(CompletionEvent(data=chunk)):
            accumulator.add(decoded)
    assert [call.id for call in accumulator.tool_calls] == ["pX3mQ7kLa", "tK9vB2nRe"]


# -- tool-call fragments as the SDK parses them (property) -------------------------------
@st.composite
def tool_call_streams(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
    """Chunks carrying tool calls split into fragments as the API may send them (the
    first fragment with id and name; index present or absent; arguments sometimes a JSON
    object), and the calls they hold."""
    explicit_index = draw(st.booleans())
    calls: list[tuple[str, str, str]] = []
    chunks: list[dict[str, Any]] = []
    for index in range(draw(st.integers(1, 3))):
        call_id, name = f"call{index}x{draw(st.integers(0, 99))}", f"tool_{index}"
        args = draw(sks.tool_arguments())
        as_object = draw(st.booleans())
        arguments = json.dumps(args)
        pieces = [args] if as_object else draw(sks.split_text(arguments))
        for position, piece in enumerate(pieces):
            call: dict[str, Any] = {
                "function": {"name": name if position == 0 else "", "arguments": piece}
            }
            if position == 0:
                call["id"] = call_id
            if explicit_index:
                call["index"] = index
            chunks.append(
                {
                    "id": "c",
                    "model": "m",
                    "choices": [
                        {"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}
                    ],
                }
            )
        calls.append((call_id, name, arguments))
    chunks.append(
        {
            "id": "c",
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "tool_calls"}],
        }
    )
    return chunks, calls


@given(tool_call_streams())
def test_tool_call_fragments_reduce_to_the_calls(
    stream: tuple[list[dict[str, Any]], list[tuple[str, str, str]]],
) -> None:
    chunks, calls = stream
    decoder = MistralChunkDecoder("mistral")
    accumulator = sk.Accumulator()
    completed = []
    for data in chunks:
        for chunk in decoder.decode(CompletionEvent.model_validate({"data": data})):
            completed += accumulator.add(chunk)
    completed += accumulator.finish()
    assert decoder.complete
    assert [(c.id, c.name, c.arguments) for c in completed] == calls
    assert [c.args for c in completed] == [json.loads(arguments) for _, _, arguments in calls]


# -- errors ------------------------------------------------------------------------------
def _error(status: int, body: dict[str, Any]) -> Transcript:
    return Transcript.from_events(
        "mistral", "chat.completions", [json.dumps(body)], status=status, terminate=False
    )


@pytest.mark.parametrize(
    ("status", "body", "exception", "transient"),
    [
        (
            400,
            {
                "object": "error",
                "message": "Invalid model: nope",
                "type": "invalid_model",
                "param": None,
                "code": "1500",
            },
            SDKError,
            False,
        ),
        (
            422,
            {"detail": [{"loc": ["body", "model"], "msg": "Field required", "type": "missing"}]},
            HTTPValidationError,
            False,
        ),
        (
            503,
            {
                "object": "error",
                "message": "Service unavailable",
                "type": "unavailable",
                "param": None,
                "code": "3505",
            },
            SDKError,
            True,
        ),
    ],
)
async def test_http_errors_are_the_sdks_exceptions(
    status: int, body: dict[str, Any], exception: type[Exception], transient: bool
) -> None:
    with ReplayServer(_error(status, body)) as server:
        client = server.client("mistral")
        with pytest.raises(exception) as raised:
            list(sk.stream("mistral", "nope", "hi", client=client))
        assert raised.value.status_code == status  # type: ignore[attr-defined]
        assert ADAPTER.is_transient(raised.value) is transient
        async with client:
            stream = sk.stream("mistral", "nope", "hi", client=client, async_=True)
            with pytest.raises(exception):
                await stream.pipe(ops.to_call_response())


@pytest.mark.parametrize("fault", [Fault(close_after_events=5), Fault(reset_after_events=5)])
def test_connection_cut_mid_stream_is_incomplete_sync(fault: Fault) -> None:
    # The SDK's error for the cut (mistralai lets its HTTP library's through) is not
    # asserted: only streamkit's contract is.
    with ReplayServer() as server:
        server.push(Reply(TEXT, fault=fault))
        stream = sk.stream("mistral", MODEL, "hi", client=server.client("mistral"))
        assert_cut_is_incomplete(stream)


async def test_connection_cut_mid_stream_is_incomplete_async() -> None:
    with ReplayServer() as server:
        server.push(Reply(TEXT, fault=Fault(close_after_events=5)))
        async with server.client("mistral") as client:
            stream = sk.stream("mistral", MODEL, "hi", client=client, async_=True)
            with pytest.raises(sk.IncompleteStreamError):
                await stream.pipe(ops.to_call_response())


def test_body_ended_before_the_finish_reason_is_incomplete() -> None:
    assert_truncated_body_is_incomplete("mistral", TEXT, 6)


# -- next turn ---------------------------------------------------------------------------
def test_message_param_is_a_valid_next_turn() -> None:
    with ReplayServer(SPLIT_TOOLS) as server:
        client = server.client("mistral")
        first = sk.stream("mistral", MODEL, "hi", client=client).pipe(ops.to_call_response()).run()
        AssistantMessage.model_validate(first.message_param)
        history = [
            {"role": "user", "content": "hi"},
            first.message_param,
            *(
                {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": "sunny"}
                for call in first.tool_calls
            ),
        ]
        list(sk.stream("mistral", MODEL, history, client=client))
        sent = server.requests[1].json["messages"][1]
    assert sent["role"] == "assistant" and sent["content"] == "Checking both cities."
    assert [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in sent["tool_calls"]
    ] == [(c.id, c.name, c.args) for c in first.tool_calls]


# -- cancellation, seen from the server --------------------------------------------------
def test_take_closes_the_http_response_sync() -> None:
    with ReplayServer(TEXT, pace=0.02) as server:
        stream = sk.stream("mistral", MODEL, "hi", client=server.client("mistral"))
        assert_take_closes_sync(server, stream)


async def test_take_closes_the_http_response_async() -> None:
    with ReplayServer(TEXT, pace=0.02) as server:
        async with server.client("mistral") as client:
            stream = sk.stream("mistral", MODEL, "hi", client=client, async_=True)
            await assert_take_closes_async(server, stream)


async def test_async_break_and_aclose_close_the_http_response() -> None:
    with ReplayServer(TEXT, pace=0.02) as server:
        async with server.client("mistral") as client:
            stream = sk.stream("mistral", MODEL, "hi", client=client, async_=True)
            await assert_break_closes_async(server, stream)


def test_dispose_from_another_thread_wakes_a_blocked_read() -> None:
    # The socket under mistralai's httpx2 response is reachable: disposal shuts it down.
    with ReplayServer() as server:
        server.push(Reply(TEXT, fault=Fault(stall_after_events=(3, 30.0))))
        stream = sk.stream("mistral", MODEL, "hi", client=server.client("mistral"))
        assert_dispose_wakes_a_blocked_read(server, stream)


# -- one client class for sync and async -------------------------------------------------
async def test_one_client_serves_sync_and_async_streams_and_calls() -> None:
    with ReplayServer(TEXT) as server:
        async with server.client("mistral") as client:
            assert not sk.stream("mistral", MODEL, "hi", client=client).is_async
            assert sk.stream("mistral", MODEL, "hi", client=client, async_=True).is_async

            @sk.call("mistral", MODEL, stream=True, client=client)
            async def ask_async(topic: str) -> str:
                return f"a joke about {topic}"

            @sk.call("mistral", MODEL, client=client)
            def ask_sync(topic: str) -> str:
                return f"a joke about {topic}"

            stream = await ask_async("otel")
            assert stream.is_async
            async for _ in stream:
                pass
            response = await asyncio.to_thread(ask_sync, "otel")
            assert response.content == stream.content != ""
            assert server.requests[0].json["messages"] == [
                {"role": "user", "content": "a joke about otel"}
            ]
        with pytest.raises(TypeError, match=r"mistralai\.client\.Mistral"):
            sk.stream("mistral", MODEL, "hi", client=server.client("groq"))


def test_default_client_is_mistral() -> None:
    assert isinstance(ADAPTER.default_client(True), Mistral)
    assert ADAPTER.is_async_client(Mistral(api_key="x")) is None
