"""The fast path (``fast=True``) against the SDK path (``fast=False``): a differential test.

On every chat-completions transcript (recorded and synthetic, every provider whose wire
format the openai SDK reads), with cut and reset connections and with in-memory streams
that stress the SSE rules, the fast path must yield the SDK path's chunks field by field
(``chunk.chunk`` is built lazily: reading it gives an SDK object equal to the SDK
path's), the same response and the same error. Cancellation must close the HTTP
response as the SDK path does.
"""

from __future__ import annotations

import copy
import itertools
import json
import pickle
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai._streaming import SSEDecoder
from openai.types.chat import ChatCompletionChunk
from reactivex import operators as rx_ops

import streamkit as sk
from streamkit import ops
from streamkit.providers.openai import OpenAIChunk
from streamkit.providers.openai.fast import LazyOpenAIChunk
from streamkit.providers.openai.sse import SSESplitter
from streamkit.testing import Fault, ReplayServer, Reply, Transcript, load_transcript
from streamkit.testing.transcripts import transcript_names
from tests.ops._pipelines import request_end, run_async, run_sync

CHAT_TRANSCRIPTS = sorted(
    name for name in transcript_names() if load_transcript(name).api == "chat.completions"
)
FIELDS = [name for name in sk.Chunk.model_fields if name != "chunk"]


@dataclass
class Outcome:
    """What reading one stream gave: its chunks, then its error (if any)."""

    chunks: list[sk.Chunk] = field(default_factory=list)
    error: BaseException | None = None


def read_sync(client: Any, fast: bool, **params: Any) -> Outcome:
    outcome = Outcome()
    try:
        for chunk, _tool in sk.stream("openai", "gpt-4o", "hi", client=client, fast=fast, **params):
            outcome.chunks.append(chunk)
    except Exception as error:
        outcome.error = error
    return outcome


async def read_async(client: Any, fast: bool) -> Outcome:
    outcome = Outcome()
    try:
        async for chunk, _tool in sk.stream("openai", "gpt-4o", "hi", client=client, fast=fast):
            outcome.chunks.append(chunk)
    except Exception as error:
        outcome.error = error
    return outcome


def error_signature(error: BaseException | None) -> Any:
    """An error's type, message and (for the SDK's) body and cause type."""
    if error is None:
        return None
    cause = type(error.__cause__).__name__ if error.__cause__ is not None else None
    return (type(error), str(error), getattr(error, "body", None), cause)


def assert_same(sdk: Outcome, fast: Outcome) -> None:
    assert error_signature(fast.error) == error_signature(sdk.error)
    assert len(fast.chunks) == len(sdk.chunks)
    for sdk_chunk, fast_chunk in zip(sdk.chunks, fast.chunks, strict=True):
        assert isinstance(fast_chunk, OpenAIChunk)
        for name in FIELDS:
            assert getattr(fast_chunk, name) == getattr(sdk_chunk, name), name
        assert type(fast_chunk.chunk) is type(sdk_chunk.chunk) is ChatCompletionChunk
        assert fast_chunk.chunk == sdk_chunk.chunk
        assert fast_chunk.model_dump() == sdk_chunk.model_dump()


def both_paths_sync(reply: Reply, **params: Any) -> tuple[Outcome, Outcome]:
    with ReplayServer() as server:
        server.push(reply, reply)
        client = server.client("openai")
        return read_sync(client, False, **params), read_sync(client, True, **params)


async def both_paths_async(reply: Reply) -> tuple[Outcome, Outcome]:
    with ReplayServer() as server:
        server.push(reply, reply)
        async with server.client("openai", async_=True) as client:
            return await read_async(client, False), await read_async(client, True)


# -- every transcript ------------------------------------------------------------------
@pytest.mark.parametrize("name", CHAT_TRANSCRIPTS)
def test_sync_fast_path_equals_the_sdk_path(name: str) -> None:
    sdk, fast = both_paths_sync(Reply(name))
    assert sdk.chunks or sdk.error is not None
    assert_same(sdk, fast)


@pytest.mark.parametrize("name", CHAT_TRANSCRIPTS)
async def test_async_fast_path_equals_the_sdk_path(name: str) -> None:
    sdk, fast = await both_paths_async(Reply(name))
    assert_same(sdk, fast)


OPENAI_CHAT = [n for n in CHAT_TRANSCRIPTS if n.startswith(("openai/", "synthetic/openai"))]


@pytest.mark.parametrize("name", OPENAI_CHAT)
def test_fast_path_reduces_to_the_same_response(name: str) -> None:
    with ReplayServer(name) as server:
        client = server.client("openai")

        def new(fast: bool) -> sk.Stream:
            return sk.stream("openai", "gpt-4o", "hi", client=client, fast=fast)

        if load_transcript(name).status != 200:
            with pytest.raises(openai.NotFoundError):
                run_sync(new(True).pipe(ops.to_call_response()))
            return
        [expected] = run_sync(new(False).pipe(ops.to_call_response()))
        [response] = run_sync(new(True).pipe(ops.to_call_response()))
    assert response == expected


@pytest.mark.parametrize(
    "fault",
    [Fault(close_after_events=5), Fault(reset_after_events=5), Fault(close_after_events=0)],
    ids=["cut", "reset", "cut-before-any"],
)
def test_a_broken_connection_fails_the_same_way(fault: Fault) -> None:
    sdk, fast = both_paths_sync(Reply("openai/chat-text-usage", fault=fault))
    assert sdk.error is not None
    assert_same(sdk, fast)


async def test_a_broken_connection_fails_the_same_way_async() -> None:
    reply = Reply("openai/chat-parallel-tool-calls-usage", fault=Fault(reset_after_events=7))
    sdk, fast = await both_paths_async(reply)
    assert isinstance(sdk.error, sk.IncompleteStreamError)
    assert_same(sdk, fast)


# -- OpenAI-compatible servers: the openai client with their base URL --------------------
# OpenRouter, a LiteLLM proxy, vLLM, Ollama and llama.cpp speak OpenAI's chat wire format
# and are reached with the openai client and a base_url, so the OpenAI fast path is theirs.
COMPATIBLE = [
    ("openrouter/chat-midstream-error-chunk", "/api/v1"),  # recorded from openrouter.ai
    ("openrouter/chat-midstream-error-chunk", ""),  # a LiteLLM proxy's route, /chat/completions
    ("synthetic/vllm-chat-no-usage", "/v1"),
    ("synthetic/ollama-chat-usage-null", "/v1"),
    ("synthetic/llamacpp-chat-usage-in-last-chunk-timings", "/v1"),
]


@pytest.mark.parametrize("case", COMPATIBLE, ids=lambda case: f"{case[0]}@{case[1] or '/'}")
def test_openai_compatible_servers_take_the_openai_fast_path(case: tuple[str, str]) -> None:
    name, base_path = case
    with ReplayServer() as server:
        server.push(name, name)
        client = openai.OpenAI(
            base_url=server.url + base_path, api_key="sk-compatible-test", max_retries=0
        )
        with client:
            sdk, fast = read_sync(client, False), read_sync(client, True)
        paths = [request.path for request in server.requests]
    assert paths == [f"{base_path}/chat/completions"] * 2
    assert_same(sdk, fast)
    assert sdk.chunks and any(isinstance(chunk, LazyOpenAIChunk) for chunk in fast.chunks)
    if name.startswith("openrouter/"):  # the top-level "error" object in a chunk of an HTTP 200
        assert isinstance(fast.error, openai.APIError) and "Token limit" in str(fast.error)


# -- the SSE rules, on streams written here ----------------------------------------------
def chunk_event(content: str, *, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fast",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}],
        **extra,
    }


USAGE = {
    "id": "chatcmpl-fast",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "gpt-4o",
    "choices": [],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}


def data(payload: Any) -> str:
    return "data: " + json.dumps(payload)


WIRE_CASES: dict[str, list[str]] = {
    "crlf-and-cr-line-ends": [
        data(chunk_event("a")) + "\r\n\r\n",
        data(chunk_event("b")) + "\r\r",
        data(chunk_event("", finish="stop")) + "\n\r\n",
        data(USAGE) + "\r\n\r\n",
        "data: [DONE]\r\n\r\n",
    ],
    "events-split-mid-line-and-crlf-split": [
        data(chunk_event("hello"))[:17],
        data(chunk_event("hello"))[17:] + "\r",
        "\n\r\n" + data(chunk_event(" world", finish="stop"))[:40],
        data(chunk_event(" world", finish="stop"))[40:]
        + "\n\n"
        + data(USAGE)
        + "\n\ndata: [DONE]\n\n",
    ],
    "comments-event-names-ids-and-multiline-data": [
        ": keep-alive\n\n",
        "event: completion\nid: 7\n" + data(chunk_event("x")) + "\n\n",
        'data: {"id": "chatcmpl-fast", "object": "chat.completion.chunk",\ndata: "created": 1,'
        ' "model": "m", "choices": []}\n\n',
        "retry: 1000\n" + data(chunk_event("", finish="stop")) + "\n\n",
        data(USAGE) + "\n\n",
        "data: [DONE]\n\n",
    ],
    "an-id-makes-every-blank-line-an-event": [
        "id: 1\n" + data(chunk_event("x")) + "\n\n\n",
        "data: [DONE]\n\n",
    ],
    "values-orjson-refuses": [
        data(chunk_event("nan", logprob=float("nan"))) + "\n\n",
        data(chunk_event("big", seed=2**70)) + "\n\n",
        'data: {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "\\ud800",'
        ' "choices": []}\n\n',
        data(chunk_event("", finish="length")) + "\n\n" + data(USAGE) + "\n\ndata: [DONE]\n\n",
    ],
    "broken-json": [data(chunk_event("a")) + "\n\n", 'data: {"id": \n\n'],
    "error-event-mid-stream": [
        data(chunk_event("a")) + "\n\n",
        data({"error": {"message": "overloaded", "type": "server_error", "code": 502}}) + "\n\n",
    ],
    "error-event-without-message": [data({"error": {"code": 1}}) + "\n\n"],
    "unusual-shapes-fall-back-to-the-sdk-object": [
        data(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "m",
                "choices": [
                    {"index": 0, "delta": {"content": [{"type": "text", "text": "parts"}]}},
                    {"index": 1, "delta": {"content": "second choice"}, "finish_reason": "stop"},
                ],
            }
        )
        + "\n\n",
        data({"id": "c", "object": "chat.completion.chunk", "choices": [{"delta": {}}]}) + "\n\n",
        data({"id": "c", "choices": [{"index": 0, "delta": None, "finish_reason": "stop"}]})
        + "\n\n",
        data(
            {
                "id": "c",
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "reasoning": "hmm",
                            "tool_calls": [
                                {"index": None, "function": {"name": "f", "arguments": None}},
                                {"index": 1, "id": "call_2", "function": None},
                            ],
                        },
                    }
                ],
            }
        )
        + "\n\n",
        data({"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [{"id": "x"}]}}]})
        + "\n\n",
        data([1, 2]) + "\n\n",
    ],
    "cut-without-done": [data(chunk_event("a")) + "\n\n", data(chunk_event("b"))],
}


@pytest.mark.parametrize("case", sorted(WIRE_CASES))
def test_sse_rules_are_the_sdks(case: str) -> None:
    transcript = Transcript.from_events(
        "openai", "chat.completions", WIRE_CASES[case], name=f"synthetic/{case}", terminate=False
    )
    sdk, fast = both_paths_sync(Reply(transcript))
    assert_same(sdk, fast)


@pytest.mark.parametrize("case", ["crlf-and-cr-line-ends", "error-event-mid-stream"])
async def test_sse_rules_are_the_sdks_async(case: str) -> None:
    transcript = Transcript.from_events(
        "openai", "chat.completions", WIRE_CASES[case], name=f"synthetic/{case}", terminate=False
    )
    sdk, fast = await both_paths_async(Reply(transcript))
    assert_same(sdk, fast)


def sdk_events(pieces: list[bytes]) -> list[tuple[str | None, str]]:
    return [(sse.event, sse.data) for sse in SSEDecoder().iter_bytes(iter(pieces))]


def splitter_events(pieces: list[bytes]) -> list[tuple[str | None, str]]:
    splitter = SSESplitter()
    return [(name, raw.decode("utf-8")) for piece in pieces for name, raw in splitter.feed(piece)]


LINES = st.sampled_from(
    ["data: {}", "data:x", "data", "event: e", "event:", "id: 3", "id: a\0b", "retry: 5",
     "retry: x", ": comment", "other: 1", "", "data: ünï", "dat"]
)  # fmt: skip
LINE_ENDS = st.sampled_from(["\n", "\r", "\r\n"])


@given(
    lines=st.lists(st.tuples(LINES, LINE_ENDS), max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_splitter_reads_any_byte_split_as_the_sdk_decoder(
    lines: list[tuple[str, str]], cuts: list[int]
) -> None:
    body = "".join(line + end for line, end in lines).encode("utf-8")
    points = sorted({min(cut, len(body)) for cut in cuts} | {0, len(body)})
    pieces = [body[a:b] for a, b in itertools.pairwise(points)]
    assert splitter_events(pieces) == sdk_events(pieces)


# -- laziness -----------------------------------------------------------------------------
def test_the_sdk_chunk_is_built_only_when_read() -> None:
    with ReplayServer("openai/chat-text-usage") as server:
        client = server.client("openai")
        [*chunks] = run_sync(sk.stream("openai", "gpt-4o", "hi", client=client, fast=True))
    lazy = [chunk for chunk in chunks if isinstance(chunk, LazyOpenAIChunk)]
    assert len(lazy) == len(chunks) - 1  # the usage chunk is decoded through the SDK object
    assert all("chunk" not in chunk.__dict__ for chunk in lazy)
    first = lazy[0]
    assert first.raw_json["id"] == first.id
    built = first.chunk
    assert isinstance(built, ChatCompletionChunk) and first.chunk is built
    assert "chunk" in first.__dict__
    assert "chunk" not in lazy[1].__dict__


def test_a_lazy_chunk_copies_pickles_and_dumps_as_an_sdk_path_chunk() -> None:
    with ReplayServer() as server:
        server.push("openai/chat-text-usage", "openai/chat-text-usage")
        client = server.client("openai")
        [*fast] = run_sync(sk.stream("openai", "gpt-4o", "hi", client=client, fast=True))
        [*sdk] = run_sync(sk.stream("openai", "gpt-4o", "hi", client=client, fast=False))
    lazy, eager = fast[2], sdk[2]
    assert isinstance(lazy, LazyOpenAIChunk)
    copied = copy.deepcopy(lazy)  # shares the builder (a client holds locks)
    assert copied.chunk == eager.chunk and copied.content == eager.content
    restored = pickle.loads(pickle.dumps(lazy))  # pickled with the SDK object built
    assert restored.chunk == eager.chunk and restored.raw_json == lazy.raw_json
    assert lazy.model_fields_set == eager.model_fields_set  # "chunk" set once built
    assert lazy.model_dump(exclude_unset=True) == eager.model_dump(exclude_unset=True)


def test_a_strict_client_gets_every_sdk_chunk_at_once() -> None:
    with ReplayServer("openai/chat-tool-call-gpt-4o-mini") as server:
        server.push("openai/chat-tool-call-gpt-4o-mini", "openai/chat-tool-call-gpt-4o-mini")
        client = server.client("openai", _strict_response_validation=True)
        sdk, fast = read_sync(client, False), read_sync(client, True)
    assert fast.chunks and not any(isinstance(c, LazyOpenAIChunk) for c in fast.chunks)
    assert_same(sdk, fast)


# -- cancellation -----------------------------------------------------------------------
PACE = 0.02


def test_take_three_closes_the_response_sync() -> None:
    with ReplayServer("synthetic/openai-chat-structured-output-json", pace=PACE) as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"), fast=True)
        chunks = run_sync(stream.pipe(rx_ops.take(3)))
        record = server.wait_for_request_end(0, timeout=5)
    assert len(chunks) == 3
    assert record.disconnected
    assert 3 <= record.events_sent <= 5 < record.events_total


async def test_take_three_closes_the_response_async() -> None:
    with ReplayServer("synthetic/openai-chat-structured-output-json", pace=PACE) as server:
        async with server.client("openai", async_=True) as client:
            stream = sk.stream("openai", "gpt-4o", "hi", client=client, fast=True)
            chunks = await run_async(stream.pipe(rx_ops.take(3)))
            record = await request_end(server)
    assert len(chunks) == 3
    assert record.disconnected
    assert 3 <= record.events_sent <= 5 < record.events_total


# -- bad input ----------------------------------------------------------------------------
def test_bad_fast_values_fail_before_any_request() -> None:
    with ReplayServer("openai/chat-text-usage") as server:
        client = server.client("openai")
        with pytest.raises(TypeError, match="fast must be a bool"):
            sk.stream("openai", "gpt-4o", "hi", client=client, fast="yes")
        with pytest.raises(ValueError, match="chat completions only"):
            sk.stream("openai", "gpt-4o", "hi", client=client, fast=True, api="responses")
        assert server.requests == []


def events_of(transcript: str) -> Iterator[str]:
    yield from load_transcript(transcript).events


def test_the_sdk_path_is_unchanged_with_fast_false() -> None:
    with ReplayServer("openai/chat-text-usage") as server:
        client = server.client("openai")
        chunks = run_sync(sk.stream("openai", "gpt-4o", "hi", client=client, fast=False))
    assert chunks and not any(isinstance(c, LazyOpenAIChunk) for c in chunks)
    assert [c.content for c in chunks if c.content] == [
        json.loads(e.removeprefix("data: "))["choices"][0]["delta"]["content"]
        for e in events_of("openai/chat-text-usage")
        if '"content":"' in e and '"content":""' not in e
    ]
