"""Google Gemini (google-genai): every transcript, sync and async, with the real SDK
client against the replay server.

google-genai has no accumulator of its own for streams, so the oracle reads the
recorded SSE ``data:`` lines as plain JSON and folds them by hand: texts joined, thought
texts joined, function calls listed, the last finish reason, the last usage report.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from hypothesis import given
from hypothesis import strategies as st

import streamkit as sk
from streamkit import ops
from streamkit._accumulator import Accumulator
from streamkit.providers.google import (
    GoogleAdapter,
    GoogleChunk,
    GoogleDecoder,
    find_http_response,
)
from streamkit.testing import (
    Fault,
    ReplayServer,
    Reply,
    Transcript,
    load_transcript,
    transcript_names,
)
from streamkit.testing.replay import FAKE_API_KEY
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
    "google/gemini-3-function-call-thought-signature",
    "google/gemini-max-tokens",
    "google/gemini-parallel-function-calls",
    "google/gemini-text",
    "google/gemini-thinking-thoughts",
    "synthetic/google-thoughts-text-function-calls",
    "synthetic/google-prompt-blocked-safety",
]
NOT_FOUND = "google/gemini-error-404-model-not-found"
LONG = "synthetic/google-thoughts-text-function-calls"  # 7 events
MODEL = "gemini-2.5-flash"
_NO_CA_STORE = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


@pytest.fixture(autouse=True)
def no_source_thread_left_behind() -> Any:
    yield
    wait_until(lambda: not source_threads(), timeout=5.0)


def recorded_chunks(name: str) -> list[dict[str, Any]]:
    """The JSON objects of the transcript's ``data:`` lines, as the server sends them."""
    return [
        json.loads(line.removeprefix("data:"))
        for event in load_transcript(name).events
        for line in event.splitlines()
        if line.startswith("data:")
    ]


@dataclass
class Expected:
    content: str
    thinking: str
    calls: list[tuple[str | None, str, dict[str, Any]]]
    finish_reasons: list[str]
    usage: dict[str, Any]


def oracle(name: str) -> Expected:
    chunks = recorded_chunks(name)
    content = thinking = ""
    calls: list[tuple[str | None, str, dict[str, Any]]] = []
    finish: str | None = None
    for chunk in chunks:
        for candidate in chunk.get("candidates", []):
            for part in candidate.get("content", {}).get("parts", []):
                if "functionCall" in part:
                    call = part["functionCall"]
                    calls.append((call.get("id"), call["name"], call.get("args", {})))
                elif part.get("thought"):
                    thinking += part.get("text", "")
                else:
                    content += part.get("text", "")
            finish = candidate.get("finishReason", finish)
        finish = finish or chunk.get("promptFeedback", {}).get("blockReason")
    assert finish is not None
    return Expected(content, thinking, calls, [finish], chunks[-1]["usageMetadata"])


def assert_matches_oracle(name: str, response: sk.CallResponse) -> None:
    expected = oracle(name)
    assert response.provider == "google"
    assert response.content == expected.content
    assert response.thinking == expected.thinking
    assert [(c.id, c.name, c.args) for c in response.tool_calls] == expected.calls
    assert [json.loads(c.arguments) for c in response.tool_calls] == [c[2] for c in expected.calls]
    assert response.finish_reasons == expected.finish_reasons
    usage = expected.usage
    thoughts = usage.get("thoughtsTokenCount")
    assert response.usage == sk.Usage(
        input_tokens=usage["promptTokenCount"] + usage.get("toolUsePromptTokenCount", 0),
        output_tokens=usage.get("candidatesTokenCount", 0) + (thoughts or 0),
        total_tokens=usage["totalTokenCount"],
        cached_tokens=usage.get("cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def google_client(server: ReplayServer, *, httpx2_async: bool = False) -> genai.Client:
    """The SDK client for the server; async calls go through aiohttp (its default when
    installed) or, with ``httpx2_async``, through httpx2.

    The replay server speaks plain HTTP, so the client gets a bare TLS context instead
    of loading the CA store three times (0.2 s per client).
    """
    async_args: dict[str, Any] = {"ssl": _NO_CA_STORE}
    if httpx2_async:
        import httpx2

        async_args["transport"] = httpx2.AsyncHTTPTransport()
    options = types.HttpOptions(
        base_url=server.url,
        retry_options=types.HttpRetryOptions(attempts=1),
        client_args={"verify": _NO_CA_STORE},
        async_client_args=async_args,
    )
    client: genai.Client = server.client("google", http_options=options)
    return client


def test_every_google_transcript_is_covered() -> None:
    assert sorted([*STREAMS, NOT_FOUND]) == transcript_names(provider="google")


def test_every_finish_and_block_reason_of_the_sdk_is_mapped() -> None:
    known = {m.name for m in types.FinishReason} | {m.name for m in types.BlockedReason}
    assert known <= set(GoogleChunk.finish_reason_table)


# -- every transcript reduces like the recorded events, sync and async -----------------
@pytest.mark.parametrize("name", STREAMS)
def test_sync_iteration_and_observable_reduce_like_the_recorded_events(name: str) -> None:
    with ReplayServer(name) as server:
        stream = sk.stream("google", MODEL, "hi", client=google_client(server))
        pairs = list(stream)
        response = stream.construct_call_response()
        assert_matches_oracle(name, response)
        assert all(isinstance(chunk, GoogleChunk) for chunk, _ in pairs)
        assert all(isinstance(chunk.chunk, types.GenerateContentResponse) for chunk, _ in pairs)
        assert [tool for _, tool in pairs if tool is not None] == response.tool_calls
        # The same stream as an observable: a second, independent request.
        assert_matches_oracle(name, stream.pipe(ops.to_call_response()).run())
        assert len(server.requests) == 2


@pytest.mark.parametrize("name", STREAMS)
async def test_async_iteration_and_observable_reduce_like_the_recorded_events(name: str) -> None:
    with ReplayServer(name) as server:
        client = google_client(server)
        stream = sk.stream("google", MODEL, "hi", client=client, async_=True)
        async for _chunk, _tool in stream:
            pass
        assert_matches_oracle(name, stream.construct_call_response())
        assert_matches_oracle(name, await stream.pipe(ops.to_call_response()))
        assert len(server.requests) == 2
        await client.aio.aclose()


async def test_the_aio_client_is_an_async_client_and_httpx2_transport_works() -> None:
    with ReplayServer("google/gemini-text") as server:
        client = google_client(server, httpx2_async=True)
        stream = sk.stream("google", MODEL, "hi", client=client.aio)
        assert stream.is_async
        assert_matches_oracle("google/gemini-text", await stream.pipe(ops.to_call_response()))
        await client.aio.aclose()


def test_usage_is_the_latest_report_never_a_sum_over_chunks() -> None:
    # Peer bug: summing promptTokenCount over chunks multiplied the input tokens.
    name = "google/gemini-thinking-thoughts"
    recorded = recorded_chunks(name)
    assert len(recorded) > 1
    with ReplayServer(name) as server:
        stream = sk.stream("google", MODEL, "hi", client=google_client(server))
        chunks = [chunk for chunk, _ in stream]
    assert [c.usage.input_tokens for c in chunks if c.usage] == [
        r["usageMetadata"]["promptTokenCount"] for r in recorded
    ]
    assert stream.usage is not None
    assert stream.usage.input_tokens == recorded[-1]["usageMetadata"]["promptTokenCount"] == 30
    assert stream.usage.output_tokens == 1947  # thoughts, as billed; no candidates count
    assert stream.usage.total_tokens == recorded[-1]["usageMetadata"]["totalTokenCount"]


def test_max_tokens_maps_to_length() -> None:
    with ReplayServer("google/gemini-max-tokens") as server:
        stream = sk.stream("google", MODEL, "hi", client=google_client(server))
        response = stream.pipe(ops.to_call_response()).run()
    assert response.finish_reasons == ["MAX_TOKENS"] and response.finish_reason == "length"


def test_blocked_prompt_ends_the_stream_with_its_block_reason() -> None:
    with ReplayServer("synthetic/google-prompt-blocked-safety") as server:
        stream = sk.stream("google", MODEL, "hi", client=google_client(server))
        response = stream.pipe(ops.to_call_response()).run()
    assert response.finish_reasons == ["SAFETY"]
    assert response.finish_reason == "content_filter"
    assert response.content == "" and response.message_param == {"role": "model", "parts": []}


# -- tool calls -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    ["google/gemini-parallel-function-calls", "synthetic/google-thoughts-text-function-calls"],
)
def test_parallel_function_calls_are_yielded_once_each_in_order(name: str) -> None:
    with ReplayServer(name) as server:
        stream = sk.stream("google", MODEL, "hi", client=google_client(server))
        tools = [(i, tool) for i, (_, tool) in enumerate(stream) if tool is not None]
    expected = oracle(name).calls
    assert len(expected) == 2
    assert [(tool.id, tool.name, tool.args) for _, tool in tools] == expected
    if name.startswith("synthetic"):
        # Calls in separate chunks complete at their own chunk, not at the end.
        assert tools[0][0] < tools[1][0]


def test_message_param_keeps_thought_signatures_and_round_trips() -> None:
    name = "synthetic/google-thoughts-text-function-calls"
    recorded = recorded_chunks(name)
    signature = next(
        part["thoughtSignature"]
        for chunk in recorded
        for part in chunk["candidates"][0]["content"]["parts"]
        if "thoughtSignature" in part
    )
    with ReplayServer(name) as server:
        client = google_client(server)
        response = (
            sk.stream("google", MODEL, "hi", client=client).pipe(ops.to_call_response()).run()
        )
        message = response.message_param
        content = types.Content.model_validate(message)
        assert content.role == "model"
        parts = content.parts or []
        # Two thought chunks joined into one part, two text chunks into another, then the
        # two function calls; the empty STOP text part is dropped.
        assert [bool(p.thought) for p in parts] == [True, False, False, False]
        assert parts[0].text == response.thinking and parts[1].text == response.content
        assert parts[2].thought_signature == base64.b64decode(signature)
        assert [p.function_call.name for p in parts[2:] if p.function_call] == ["get_weather"] * 2
        # The next turn carries the signature back byte for byte.
        turn = [{"role": "user", "content": "hi"}, message, {"role": "user", "content": "thanks"}]
        list(sk.stream("google", MODEL, turn, client=client))
        body = server.requests[-1].json
    assert body["contents"][1]["role"] == "model"
    sent = body["contents"][1]["parts"][2]["thoughtSignature"]  # the SDK sends urlsafe base64
    assert base64.urlsafe_b64decode(sent) == base64.b64decode(signature)
    assert body["contents"][1]["parts"][3]["functionCall"]["args"]["city"] == "東京"


# -- the request ----------------------------------------------------------------------
def test_request_mapping_system_roles_and_config() -> None:
    with ReplayServer("google/gemini-text") as server:
        messages = [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is 4200 + 42?"},
            {"role": "assistant", "content": "4242."},
            {"role": "user", "content": "Sure?"},
        ]
        config = types.GenerateContentConfig(temperature=0.5, top_k=3)
        stream = sk.stream(
            "google",
            MODEL,
            messages,
            client=google_client(server),
            config=config,
            max_tokens=64,
            temperature=0.1,
            stop="END",
        )
        list(stream)
        record = server.requests[0]
    assert f"/models/{MODEL}:streamGenerateContent" in record.path
    body = record.json
    assert body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["contents"][1]["parts"] == [{"text": "4242."}]
    assert body["generationConfig"] == {
        "temperature": 0.1,
        "topK": 3,
        "maxOutputTokens": 64,
        "stopSequences": ["END"],
    }
    assert config.temperature == 0.5 and config.system_instruction is None  # not mutated


def test_a_config_dict_is_the_base_the_keyword_arguments_override() -> None:
    adapter = GoogleAdapter()
    messages = [{"role": "user", "content": "hi"}]
    base = {"temperature": 0.3, "top_p": 0.9}
    request = adapter.build_request(MODEL, messages, {"config": base, "temperature": 0.1})
    assert (request["config"].temperature, request["config"].top_p) == (0.1, 0.9)
    assert request["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert adapter.build_request(MODEL, messages, {})["config"] is None


def test_bad_input_is_rejected_before_any_request() -> None:
    with ReplayServer("google/gemini-text") as server:
        client = google_client(server)
        with pytest.raises(TypeError, match="max_new_tokens"):
            sk.stream("google", MODEL, "hi", client=client, max_new_tokens=5)
        with pytest.raises(ValueError, match="role 'tool'"):
            sk.stream("google", MODEL, [{"role": "tool", "content": "x"}], client=client)
        with pytest.raises(ValueError, match="not both"):
            sk.stream(
                "google",
                MODEL,
                [{"role": "system", "content": "a"}],
                client=client,
                system_instruction="b",
            )
        with pytest.raises(ValueError):
            sk.stream("google", MODEL, "hi", client=client, temperature="hot")
        with pytest.raises(TypeError, match="async client"):
            sk.stream("google", MODEL, "hi", client=client.aio, async_=False)
        with pytest.raises(TypeError, match=r"genai\.Client"):
            sk.stream("google", MODEL, "hi", client=object())
        assert server.requests == []


async def test_call_decorator_with_one_client_for_sync_and_async() -> None:
    with ReplayServer("google/gemini-text") as server:
        client = google_client(server)

        @sk.call("google", MODEL, client=client)
        def sync_prompt() -> str:
            return "hi"

        @sk.call("google", MODEL, client=client)
        async def async_prompt() -> str:
            return "hi"

        assert sync_prompt().content == oracle("google/gemini-text").content
        assert (await async_prompt()).content == oracle("google/gemini-text").content
        await client.aio.aclose()


# -- errors ---------------------------------------------------------------------------
def test_http_error_is_the_sdks_own_exception_sync() -> None:
    with ReplayServer(NOT_FOUND) as server:
        stream = sk.stream("google", "nope", "hi", client=google_client(server))
        with pytest.raises(genai_errors.ClientError) as raised:
            list(stream)
        assert raised.value.code == 404
        errors: list[BaseException] = []
        stream.subscribe(on_error=errors.append)
        wait_until(lambda: bool(errors))
        assert isinstance(errors[0], genai_errors.ClientError) and errors[0].code == 404


async def test_http_error_is_the_sdks_own_exception_async() -> None:
    with ReplayServer(NOT_FOUND) as server:
        client = google_client(server)
        stream = sk.stream("google", "nope", "hi", client=client.aio)
        with pytest.raises(genai_errors.ClientError):
            async for _ in stream:
                pass
        with pytest.raises(genai_errors.ClientError):
            await stream.pipe(ops.to_call_response())
        await client.aio.aclose()


def test_a_body_that_ends_without_a_finish_reason_is_incomplete() -> None:
    recorded = load_transcript("google/gemini-text")
    cut = Transcript.from_events("google", "streamGenerateContent", recorded.events[:1])
    with ReplayServer(cut) as server:
        stream = sk.stream("google", MODEL, "hi", client=google_client(server))
        with pytest.raises(sk.IncompleteStreamError) as raised:
            list(stream)
    assert raised.value.events == 1
    assert stream.content == oracle("google/gemini-text").content[: len(stream.content)] != ""


def test_a_dropped_connection_is_incomplete_sync() -> None:
    with ReplayServer() as server:
        server.push(Reply(LONG, fault=Fault(close_after_events=5)))
        stream = sk.stream("google", MODEL, "hi", client=google_client(server))
        assert_cut_is_incomplete(stream)


@pytest.mark.parametrize("httpx2_async", [False, True], ids=["aiohttp", "httpx2"])
async def test_a_dropped_connection_is_incomplete_async(httpx2_async: bool) -> None:
    with ReplayServer() as server:
        server.push(Reply(LONG, fault=Fault(close_after_events=5)))
        client = google_client(server, httpx2_async=httpx2_async)
        stream = sk.stream("google", MODEL, "hi", client=client.aio)
        with pytest.raises(sk.IncompleteStreamError) as raised:
            await stream.pipe(ops.to_call_response())
        assert raised.value.events == 5
        assert_transient_cut("google", raised.value)
        await client.aio.aclose()


@pytest.mark.parametrize("httpx2_async", [False, True], ids=["aiohttp", "httpx2"])
async def test_a_connection_dropped_before_any_event_is_transient_and_retried_async(
    httpx2_async: bool,
) -> None:
    # aiohttp reports it as ClientPayloadError, which is no ConnectionError: it was
    # classified as not transient, so retry_on_error gave up at once
    with ReplayServer() as server:
        cut = Reply(LONG, fault=Fault(close_after_events=0))
        server.push(cut, cut, LONG)
        client = google_client(server, httpx2_async=httpx2_async)
        stream = sk.stream("google", MODEL, "hi", client=client.aio)
        with pytest.raises(Exception) as raised:
            await stream.pipe(ops.to_call_response())
        assert GoogleAdapter().is_transient(raised.value), repr(raised.value)
        response = await stream.pipe(ops.retry_on_error(2, backoff=0.0), ops.to_call_response())
        await client.aio.aclose()
    assert response.content == oracle(LONG).content and len(server.requests) == 3


# -- cancellation closes the HTTP response at once, seen from the server ---------------
def test_take_closes_the_http_response_sync() -> None:
    with ReplayServer(LONG, pace=0.03) as server:
        assert_take_closes_sync(
            server, sk.stream("google", MODEL, "hi", client=google_client(server))
        )


def test_dispose_from_another_thread_wakes_a_blocked_read() -> None:
    # Needs the HTTP response cached between events: the reader thread is blocked in
    # recv, where the SDK's generators cannot be inspected.
    with ReplayServer() as server:
        server.push(Reply(LONG, fault=Fault(stall_after_events=(3, 30.0))))
        stream = sk.stream("google", MODEL, "hi", client=google_client(server))
        assert_dispose_wakes_a_blocked_read(server, stream)


@pytest.mark.parametrize("httpx2_async", [False, True], ids=["aiohttp", "httpx2"])
async def test_take_and_break_close_the_http_response_async(httpx2_async: bool) -> None:
    with ReplayServer(LONG, pace=0.03) as server:
        client = google_client(server, httpx2_async=httpx2_async)
        await assert_take_closes_async(server, sk.stream("google", MODEL, "hi", client=client.aio))
    with ReplayServer(LONG, pace=0.03) as server:
        client = google_client(server, httpx2_async=httpx2_async)
        await assert_break_closes_async(server, sk.stream("google", MODEL, "hi", client=client.aio))
        await client.aio.aclose()


async def test_async_dispose_during_a_stalled_read_closes_at_once() -> None:
    with ReplayServer() as server:
        server.push(Reply(LONG, fault=Fault(stall_after_events=(3, 30.0))))
        client = google_client(server)
        got: list[sk.Chunk] = []
        subscription = sk.stream("google", MODEL, "hi", client=client.aio).subscribe(got.append)
        while len(got) < 3:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)  # the task now awaits the stalled read
        subscription.dispose()
        record = await asyncio.to_thread(server.wait_for_request_end, 0, 3)
        assert record.disconnected and record.events_sent == 3
        await client.aio.aclose()


def test_find_http_response_reaches_the_sdks_response_between_events() -> None:
    with ReplayServer(LONG, pace=0.05) as server:
        events = google_client(server).models.generate_content_stream(model=MODEL, contents="hi")
        assert isinstance(events, Generator)  # typed as an Iterator
        assert find_http_response(events) is None  # no request yet
        next(events)
        response = find_http_response(events)
        assert response is not None and response.status_code == 200
        response.close()
        events.close()
        assert server.wait_for_request_end(0).disconnected

    def unrelated() -> Any:
        yield 1

    assert find_http_response(unrelated()) is None
    assert find_http_response(object()) is None


# -- the decoder and builder on generated streams (no HTTP) ---------------------------
_part = st.one_of(
    st.builds(lambda t: {"text": t}, st.text(max_size=8)),
    st.builds(lambda t: {"text": t, "thought": True}, st.text(max_size=8)),
    st.builds(
        lambda n, a: {"functionCall": {"name": n, "args": a}},
        st.sampled_from(["f", "g"]),
        st.dictionaries(st.sampled_from("abc"), st.integers(), max_size=2),
    ),
)


@given(st.lists(st.lists(_part, max_size=3), min_size=1, max_size=6))
def test_decoded_chunks_fold_to_the_parts_joined(chunk_parts: list[list[dict[str, Any]]]) -> None:
    decoder = GoogleDecoder()
    accumulator = Accumulator()
    for position, parts in enumerate(chunk_parts):
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if position == len(chunk_parts) - 1:
            candidate["finishReason"] = "STOP"
        usage = {
            "promptTokenCount": 7,
            "candidatesTokenCount": position,
            "totalTokenCount": 7 + position,
        }
        raw: dict[str, object] = {"candidates": [candidate], "usageMetadata": usage}
        event = types.GenerateContentResponse._from_response(response=raw, kwargs={})
        for chunk in decoder.decode(event):
            accumulator.add(chunk)
    accumulator.finish()
    every = [part for parts in chunk_parts for part in parts]
    response = accumulator.response()
    assert decoder.complete
    assert response.content == "".join(
        p["text"] for p in every if "text" in p and "thought" not in p
    )
    assert response.thinking == "".join(p["text"] for p in every if p.get("thought"))
    calls = [p["functionCall"] for p in every if "functionCall" in p]
    assert [(c.name, c.args) for c in response.tool_calls] == [
        (c["name"], c["args"]) for c in calls
    ]
    assert response.usage is not None and response.usage.input_tokens == 7
    # message_param: the parts in order, adjacent texts of one kind joined, empty ones gone.
    expected: list[tuple[str, Any]] = []
    for part in every:
        if "functionCall" in part:
            expected.append(("call", part["functionCall"]["name"]))
        elif part["text"]:
            kind = "thought" if part.get("thought") else "text"
            if expected and expected[-1][0] == kind:
                expected[-1] = (kind, expected[-1][1] + part["text"])
            else:
                expected.append((kind, part["text"]))
    rebuilt = types.Content.model_validate(response.message_param).parts or []
    assert [
        ("call", p.function_call.name)
        if p.function_call
        else ("thought" if p.thought else "text", p.text)
        for p in rebuilt
    ] == expected


def test_adapter_answers_none_for_a_client_that_serves_both() -> None:
    adapter = GoogleAdapter()
    client = genai.Client(api_key=FAKE_API_KEY)
    assert adapter.is_async_client(client) is None
    assert adapter.is_async_client(client.aio) is True
