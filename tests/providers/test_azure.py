"""Azure: ``"azure"`` (azure-ai-inference's ``ChatCompletionsClient``, sync and async) and
Azure OpenAI through ``"openai"`` (the openai SDK's ``AzureOpenAI``), both against the
replay server on the recorded OpenAI chat streams.

The oracle is the openai SDK's ``ChatCompletionStreamState`` over the same chunks
(``tests/providers/test_openai.py``): Azure serves the same wire format.
"""

from __future__ import annotations

import pytest
from azure.ai.inference import ChatCompletionsClient
from azure.ai.inference.aio import ChatCompletionsClient as AsyncChatCompletionsClient
from azure.ai.inference.models import StreamingChatCompletionsUpdate
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError

import streamkit as sk
from streamkit import ops
from streamkit.providers import get_adapter
from streamkit.providers.azure import ENDPOINT_ENV, KEY_ENV, AzureChunk
from streamkit.testing import FAKE_API_KEY, Fault, ReplayServer, Reply, Transcript, load_transcript
from tests.providers.chat_support import (
    assert_cut_is_incomplete,
    assert_take_closes_async,
    assert_take_closes_sync,
    wait_until,
)
from tests.providers.test_openai import CHAT_TRANSCRIPTS, oracle
from tests.providers.test_openai import assert_matches_oracle as assert_matches_openai

TEXT = "openai/chat-text-usage"
ADAPTER = get_adapter("azure")


def assert_matches_oracle(name: str, response: sk.CallResponse) -> None:
    """The openai oracle's checks, and the usage details the azure SDK keeps as dicts."""
    assert_matches_openai(name, response)
    _, usage = oracle(name)
    assert response.usage is not None
    assert response.usage.cached_tokens == usage.prompt_tokens_details.cached_tokens
    assert response.usage.reasoning_tokens == usage.completion_tokens_details.reasoning_tokens


def client_of(server: ReplayServer) -> ChatCompletionsClient:
    return ChatCompletionsClient(endpoint=server.url, credential=AzureKeyCredential(FAKE_API_KEY))


def async_client_of(server: ReplayServer) -> AsyncChatCompletionsClient:
    return AsyncChatCompletionsClient(
        endpoint=server.url, credential=AzureKeyCredential(FAKE_API_KEY)
    )


# -- "azure": Azure AI Inference ---------------------------------------------------------
@pytest.mark.parametrize("name", CHAT_TRANSCRIPTS)
def test_sync_iteration_reduces_like_the_sdk(name: str) -> None:
    with ReplayServer(name) as server, client_of(server) as client:
        stream = sk.stream("azure", "gpt-4o", "hi", client=client)
        pairs = list(stream)
        request = server.requests[0]
    assert request.path.startswith("/chat/completions?api-version=")
    assert request.json == {
        "messages": [{"role": "user", "content": "hi"}],
        "model": "gpt-4o",
        "stream": True,
    }
    assert all(isinstance(chunk, AzureChunk) for chunk, _ in pairs)
    assert all(isinstance(chunk.chunk, StreamingChatCompletionsUpdate) for chunk, _ in pairs)
    response = stream.construct_call_response()
    assert_matches_oracle(name, response)
    assert [tool for _, tool in pairs if tool is not None] == response.tool_calls


@pytest.mark.parametrize("name", CHAT_TRANSCRIPTS)
async def test_async_iteration_and_observable_reduce_like_the_sdk(name: str) -> None:
    with ReplayServer(name) as server:
        async with async_client_of(server) as client:
            stream = sk.stream("azure", "gpt-4o", "hi", client=client)
            async for _ in stream:
                pass
            assert_matches_oracle(name, stream.construct_call_response())
            assert_matches_oracle(name, await stream.pipe(ops.to_call_response()))
        assert len(server.requests) == 2


def test_sync_observable_and_the_next_turn() -> None:
    name = "openai/chat-parallel-tool-calls-usage"
    with ReplayServer() as server, client_of(server) as client:
        server.push(name, TEXT)
        first = sk.stream("azure", "gpt-4o", "hi", client=client).pipe(ops.to_call_response()).run()
        assert_matches_oracle(name, first)
        history = [
            {"role": "user", "content": "hi"},
            first.message_param,
            *({"role": "tool", "tool_call_id": c.id, "content": "x"} for c in first.tool_calls),
        ]
        sk.stream("azure", "gpt-4o", history, client=client).pipe(ops.to_call_response()).run()
        sent = server.requests[1].json["messages"]
    assert sent[1]["tool_calls"] == first.message_param["tool_calls"]
    assert [m["tool_call_id"] for m in sent[2:]] == [c.id for c in first.tool_calls]


def test_http_error_is_the_sdks_exception() -> None:
    with (
        ReplayServer("openai/chat-error-404-model-not-found") as server,
        client_of(server) as client,
        pytest.raises(ResourceNotFoundError) as raised,
    ):
        list(sk.stream("azure", "nope", "hi", client=client))
    assert raised.value.status_code == 404 and not ADAPTER.is_transient(raised.value)


def test_error_chunk_in_a_200_stream_raises_after_the_chunks_before_it() -> None:
    # The OpenRouter recording without its comment lines (the azure SDK refuses those).
    events = [
        e
        for e in load_transcript("openrouter/chat-midstream-error-chunk").events
        if e.startswith("data:")
    ]
    stream_with_error = Transcript.from_events("openrouter", "chat.completions", events)
    with ReplayServer(stream_with_error) as server, client_of(server) as client:
        stream = sk.stream("azure", "m", "hi", client=client)
        chunks: list[sk.Chunk] = []
        with pytest.raises(HttpResponseError, match="Token limit reached") as raised:
            for chunk, _ in stream:
                chunks.append(chunk)
    assert len(chunks) == 3 and stream.finish_reasons == ["length"]
    # delta.reasoning is not an attribute of the SDK's delta: read from its JSON
    assert stream.thinking == "We need to respond to a greeting. The user"
    assert raised.value.model == {"code": 400, "message": "Token limit reached"}


def test_body_ended_before_the_finish_reason_is_incomplete() -> None:
    cut = Transcript.from_events("openai", "chat.completions", load_transcript(TEXT).events[:5])
    with ReplayServer(cut) as server, client_of(server) as client:
        stream = sk.stream("azure", "gpt-4o", "hi", client=client)
        with pytest.raises(sk.IncompleteStreamError, match="azure stream ended after 5 events"):
            list(stream)
    assert stream.content == "4200 + "


def test_usage_asked_for_through_model_extras_is_sent_and_a_stream_without_it_completes() -> None:
    # Finish reason, no usage chunk, then data: [DONE]: complete, usage None, whether or
    # not usage was asked for (servers that ignore include_usage end this way, issue 11).
    events = load_transcript(TEXT).events
    no_usage = Transcript.from_events("openai", "chat.completions", [*events[:-2], events[-1]])
    with ReplayServer() as server, client_of(server) as client:
        server.push(no_usage, no_usage)
        plain = sk.stream("azure", "gpt-4o", "hi", client=client).pipe(ops.to_call_response())
        plain_usage = plain.run().usage  # none reported: streamkit's estimate
        assert plain_usage is not None and plain_usage.source == "estimated"
        extras = {"stream_options": {"include_usage": True}}
        asked = sk.stream("azure", "gpt-4o", "hi", client=client, model_extras=extras)
        list(asked)
        assert asked.usage is not None and asked.usage.source == "estimated"
        assert asked.finish_reasons == ["stop"]
        assert server.requests[1].json["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("fault", [Fault(close_after_events=5), Fault(reset_after_events=5)])
def test_connection_cut_mid_stream_is_incomplete_sync(fault: Fault) -> None:
    with ReplayServer() as server, client_of(server) as client:
        server.push(Reply(TEXT, fault=fault))
        assert_cut_is_incomplete(
            sk.stream("azure", "gpt-4o", "hi", client=client), HttpResponseError
        )


async def test_connection_cut_mid_stream_is_incomplete_async() -> None:
    with ReplayServer() as server:
        server.push(Reply(TEXT, fault=Fault(close_after_events=5)))
        async with async_client_of(server) as client:
            stream = sk.stream("azure", "gpt-4o", "hi", client=client)
            with pytest.raises(sk.IncompleteStreamError) as raised:
                await stream.pipe(ops.to_call_response())
    assert isinstance(raised.value.__cause__, HttpResponseError)


def test_a_connection_dropped_before_any_event_is_retried_sync() -> None:
    # azure-core's error for it carries no status (HttpResponseError over requests'
    # ChunkedEncodingError): classified as transient by what caused it.
    with ReplayServer() as server, client_of(server) as client:
        server.push(Reply(TEXT, fault=Fault(reset_after_events=0)), TEXT)
        stream = sk.stream("azure", "gpt-4o", "hi", client=client)
        response = stream.pipe(ops.retry_on_error(2, backoff=0.0), ops.to_call_response()).run()
        assert len(server.requests) == 2
    assert response.content == "4200 + 42 equals 4242."


async def test_a_connection_dropped_before_any_event_is_retried_async() -> None:
    # IncompleteReadError over aiohttp's ClientPayloadError, no status either.
    with ReplayServer() as server:
        server.push(Reply(TEXT, fault=Fault(close_after_events=0)), TEXT)
        async with async_client_of(server) as client:
            stream = sk.stream("azure", "gpt-4o", "hi", client=client)
            response = await stream.pipe(ops.retry_on_error(2, backoff=0.0), ops.to_call_response())
        assert len(server.requests) == 2
    assert response.content == "4200 + 42 equals 4242."


def test_no_connection_is_transient() -> None:
    with ReplayServer() as server:
        url = server.url
    closed = ChatCompletionsClient(
        endpoint=url, credential=AzureKeyCredential(FAKE_API_KEY), retry_total=0
    )
    with closed, pytest.raises(ServiceRequestError) as raised:
        list(sk.stream("azure", "gpt-4o", "hi", client=closed))
    assert ADAPTER.is_transient(raised.value)


def test_take_closes_the_http_response_sync() -> None:
    with ReplayServer(TEXT, pace=0.02) as server, client_of(server) as client:
        assert_take_closes_sync(server, sk.stream("azure", "gpt-4o", "hi", client=client))


async def test_take_closes_the_http_response_async() -> None:
    with ReplayServer(TEXT, pace=0.02) as server:
        async with async_client_of(server) as client:
            await assert_take_closes_async(
                server, sk.stream("azure", "gpt-4o", "hi", client=client)
            )


def test_dispose_from_another_thread_wakes_a_blocked_read() -> None:
    # The reader thread is blocked in recv during a long stall: disposing shuts the
    # requests socket down, so the server sees the disconnect long before the stall ends.
    with ReplayServer() as server, client_of(server) as client:
        server.push(Reply(TEXT, pace=0.02, fault=Fault(stall_after_events=(3, 10.0))))
        got: list[sk.Chunk] = []
        subscription = sk.stream("azure", "gpt-4o", "hi", client=client).subscribe(got.append)
        wait_until(lambda: len(got) == 3)
        subscription.dispose()
        record = server.wait_for_request_end(0, timeout=3)
        assert server.wait_until_idle()
    assert len(got) == 3
    assert record.disconnected and record.events_sent == 3 < record.events_total


def test_clients_decide_sync_or_async_and_defaults_need_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with ReplayServer(TEXT) as server, client_of(server) as client:
        assert not sk.stream("azure", "m", "hi", client=client).is_async
        assert sk.stream("azure", "m", "hi", client=async_client_of(server)).is_async
        with pytest.raises(TypeError, match="ChatCompletionsClient"):
            sk.stream("azure", "m", "hi", client=server.client("openai"))
        assert server.requests == []
    monkeypatch.delenv(ENDPOINT_ENV, raising=False)
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(ValueError, match=ENDPOINT_ENV):
        ADAPTER.default_client(False)
    monkeypatch.setenv(ENDPOINT_ENV, "http://127.0.0.1:9")
    monkeypatch.setenv(KEY_ENV, FAKE_API_KEY)
    assert isinstance(ADAPTER.default_client(True), AsyncChatCompletionsClient)


# -- Azure OpenAI: the openai SDK's AzureOpenAI client through "openai" -------------------
@pytest.mark.parametrize("name", ["openai/chat-text-usage", "openai/chat-tool-call-gpt-4o-mini"])
def test_azure_openai_client_streams_through_openai_sync(name: str) -> None:
    with ReplayServer(name) as server:
        client = server.client("azure_openai")
        stream = sk.stream("openai", "my-gpt-4o", "hi", client=client)
        response = stream.pipe(ops.to_call_response()).run()
        request = server.requests[0]
    assert request.path == "/openai/deployments/my-gpt-4o/chat/completions?api-version=2024-10-21"
    assert request.headers["api-key"] == "<redacted>"
    assert request.json["stream_options"] == {"include_usage": True}
    assert_matches_oracle(name, response)


async def test_azure_openai_client_streams_through_openai_async() -> None:
    name = "openai/chat-parallel-tool-calls-usage"
    with ReplayServer(name, pace=0.0) as server:
        client = server.client("azure_openai", async_=True)
        stream = sk.stream("openai", "my-gpt-4o", "hi", client=client)
        assert stream.is_async
        assert_matches_oracle(name, await stream.pipe(ops.to_call_response()))
        assert server.requests[0].path.startswith("/openai/deployments/my-gpt-4o/chat/completions")
        await client.close()
