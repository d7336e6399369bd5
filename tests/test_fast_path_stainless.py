"""The fast paths of anthropic and groq (``fast=True``) against their SDK paths: a
differential test.

On every anthropic and groq transcript (and, through the groq SDK, every chat-completions
transcript), sync and async, under faults (cut, reset, error events, malformed and huge
events, a body trickled byte by byte, HTTP errors), the fast path must yield the SDK
path's chunks field by field (``chunk.chunk`` is built lazily: reading it gives an SDK
object equal to the SDK path's), the same response through the reducer, and the same
error. The OpenAI fast path has its own file (``tests/test_fast_path.py``); this one
also checks the shared core's pieces that only these SDKs use (the anthropic tracing
observer, a client that is not read as server-sent events, the SDK-version check).
"""

from __future__ import annotations

import copy
import itertools
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anthropic
import groq
import pytest
from anthropic._streaming import SSEDecoder as AnthropicSSEDecoder
from groq._streaming import SSEDecoder as GroqSSEDecoder
from groq.types.chat import ChatCompletionChunk as GroqChatCompletionChunk
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from reactivex import operators as rx_ops

import streamkit as sk
from streamkit import ops
from streamkit.providers._sse import SSESplitter
from streamkit.providers._stainless import LazyChunk
from streamkit.providers.anthropic import AnthropicChunk
from streamkit.providers.anthropic import _sdk as anthropic_sdk
from streamkit.providers.anthropic.fast import LazyAnthropicChunk
from streamkit.providers.groq import GroqChunk
from streamkit.providers.groq import _sdk as groq_sdk
from streamkit.providers.groq.fast import LazyGroqChunk
from streamkit.testing import Fault, ReplayServer, Reply, load_transcript, transcript_names
from tests.ops._pipelines import run_async, run_sync

MODELS = {"anthropic": "claude-sonnet-4-0", "groq": "openai/gpt-oss-120b"}
CHUNK_TYPES: dict[str, tuple[type[sk.Chunk], type[LazyChunk]]] = {
    "anthropic": (AnthropicChunk, LazyAnthropicChunk),
    "groq": (GroqChunk, LazyGroqChunk),
}
FIELDS = [name for name in sk.Chunk.model_fields if name != "chunk"]
CHAT = sorted(
    name for name in transcript_names() if load_transcript(name).api == "chat.completions"
)
TRANSCRIPTS = [
    *(("anthropic", name) for name in transcript_names(provider="anthropic")),
    *(("groq", name) for name in CHAT),  # groq's own, and every chat stream through its SDK
]
OWN = [(p, n) for p, n in TRANSCRIPTS if p == "anthropic" or n.startswith("groq/")]


def ids(case: tuple[str, str]) -> str:
    return f"{case[0]}:{case[1]}"


@dataclass
class Outcome:
    """What reading one stream gave: its chunks, then its error (if any)."""

    chunks: list[sk.Chunk] = field(default_factory=list)
    error: BaseException | None = None


def new_stream(provider: str, client: Any, fast: bool, **params: Any) -> sk.Stream:
    return sk.stream(provider, MODELS[provider], "hi", client=client, fast=fast, **params)


def read_sync(provider: str, client: Any, fast: bool) -> Outcome:
    outcome = Outcome()
    try:
        for chunk, _tool in new_stream(provider, client, fast):
            outcome.chunks.append(chunk)
    except Exception as error:
        outcome.error = error
    return outcome


async def read_async(provider: str, client: Any, fast: bool) -> Outcome:
    outcome = Outcome()
    try:
        async for chunk, _tool in new_stream(provider, client, fast):
            outcome.chunks.append(chunk)
    except Exception as error:
        outcome.error = error
    return outcome


def error_signature(error: BaseException | None) -> Any:
    """An error's type, message and (for the SDK's) body, status and cause type."""
    if error is None:
        return None
    cause = type(error.__cause__).__name__ if error.__cause__ is not None else None
    status = getattr(error, "status_code", None)
    return (type(error), str(error), getattr(error, "body", None), status, cause)


def assert_same(provider: str, sdk: Outcome, fast: Outcome) -> None:
    """Same error, same chunks field by field; each raw object, once built, equal."""
    assert error_signature(fast.error) == error_signature(sdk.error)
    assert len(fast.chunks) == len(sdk.chunks)
    chunk_type, lazy_type = CHUNK_TYPES[provider]
    for sdk_chunk, fast_chunk in zip(sdk.chunks, fast.chunks, strict=True):
        assert type(sdk_chunk) is chunk_type
        assert type(fast_chunk) in (chunk_type, lazy_type)
        for name in FIELDS:
            assert getattr(fast_chunk, name) == getattr(sdk_chunk, name), name
        assert type(fast_chunk.chunk) is type(sdk_chunk.chunk)
        assert fast_chunk.chunk == sdk_chunk.chunk
        assert fast_chunk.model_dump() == sdk_chunk.model_dump()


def both_paths_sync(provider: str, reply: Reply | str, **client: Any) -> tuple[Outcome, Outcome]:
    with ReplayServer() as server:
        server.push(reply, reply)
        sdk_client = server.client(provider, **client)
        return read_sync(provider, sdk_client, False), read_sync(provider, sdk_client, True)


async def both_paths_async(provider: str, reply: Reply | str) -> tuple[Outcome, Outcome]:
    with ReplayServer() as server:
        server.push(reply, reply)
        async with server.client(provider, async_=True) as client:
            return (
                await read_async(provider, client, False),
                await read_async(provider, client, True),
            )


# -- every transcript ------------------------------------------------------------------
@pytest.mark.parametrize("case", TRANSCRIPTS, ids=ids)
def test_sync_fast_path_equals_the_sdk_path(case: tuple[str, str]) -> None:
    provider, name = case
    sdk, fast = both_paths_sync(provider, name)
    assert sdk.chunks or sdk.error is not None
    assert_same(provider, sdk, fast)
    if name.startswith(provider) and sdk.error is None:
        assert any(isinstance(chunk, LazyChunk) for chunk in fast.chunks)


@pytest.mark.parametrize("case", TRANSCRIPTS, ids=ids)
async def test_async_fast_path_equals_the_sdk_path(case: tuple[str, str]) -> None:
    provider, name = case
    sdk, fast = await both_paths_async(provider, name)
    assert_same(provider, sdk, fast)


def responses_sync(provider: str, name: str) -> list[Any]:
    """The reducer's CallResponse (or the error's type) of each path."""
    results: list[Any] = []
    with ReplayServer() as server:
        server.push(name, name)
        client = server.client(provider)
        for fast in (False, True):
            try:
                results.append(
                    run_sync(new_stream(provider, client, fast).pipe(ops.to_call_response()))
                )
            except Exception as error:
                results.append(type(error))
    return results


async def responses_async(provider: str, name: str) -> list[Any]:
    results: list[Any] = []
    with ReplayServer() as server:
        server.push(name, name)
        async with server.client(provider, async_=True) as client:
            for fast in (False, True):
                stream = new_stream(provider, client, fast)
                try:
                    results.append(await run_async(stream.pipe(ops.to_call_response())))
                except Exception as error:
                    results.append(type(error))
    return results


@pytest.mark.parametrize("case", OWN, ids=ids)
def test_fast_path_reduces_to_the_same_response(case: tuple[str, str]) -> None:
    expected, response = responses_sync(*case)
    assert response == expected
    transcript = load_transcript(case[1])
    if transcript.status == 200 and "error" not in case[1]:
        [call] = response
        assert isinstance(call, sk.CallResponse) and call.message_param


@pytest.mark.parametrize("case", OWN, ids=ids)
async def test_fast_path_reduces_to_the_same_response_async(case: tuple[str, str]) -> None:
    expected, response = await responses_async(*case)
    assert response == expected


def test_midstream_errors_are_the_sdks_own() -> None:
    for provider, name, error_type in (
        ("anthropic", "synthetic/anthropic-midstream-overloaded-error", anthropic.APIStatusError),
        ("groq", "groq/chat-midstream-error-tool-use-failed", groq.APIError),
    ):
        sdk, fast = both_paths_sync(provider, name)
        assert isinstance(fast.error, error_type) and fast.chunks
        assert_same(provider, sdk, fast)


# -- faults -----------------------------------------------------------------------------
TEXT = {"anthropic": "anthropic/messages-text", "groq": "groq/chat-text-x-groq-usage"}
TOOLS = {
    "anthropic": "anthropic/messages-parallel-tool-use",
    "groq": "groq/chat-tool-call-reasoning-usage",
}
FAULTS = {
    "cut": Fault(close_after_events=4),
    "reset": Fault(reset_after_events=4),
    "cut-before-any": Fault(close_after_events=0),
    "ended-early": Fault(end_after_events=4),
    "error-event": Fault(error_event_after=3),
    "broken-json": Fault(malformed=(3, "broken_json")),
    "unknown-event": Fault(malformed=(3, "unknown_event")),
    "foreign-event": Fault(malformed=(3, "foreign_event")),
    "large-event": Fault(large_event=200_000),
    "trickled": Fault(trickle=0.0, trickle_bytes=1_500),
    "http-529": Fault(http_error=529),
    "http-400": Fault(http_error=400),
}
FAULT_CASES = [
    (provider, transcript, fault)
    for provider in ("anthropic", "groq")
    for transcript in (TEXT[provider], TOOLS[provider])
    for fault in FAULTS
]


@pytest.mark.parametrize("case", FAULT_CASES, ids=lambda case: "-".join(case))
def test_faults_fail_the_same_way(case: tuple[str, str, str]) -> None:
    provider, transcript, fault = case
    sdk, fast = both_paths_sync(provider, Reply(transcript, fault=FAULTS[fault]))
    assert_same(provider, sdk, fast)


@pytest.mark.parametrize("fault", ["reset", "error-event", "broken-json", "trickled", "http-529"])
@pytest.mark.parametrize("provider", ["anthropic", "groq"])
async def test_faults_fail_the_same_way_async(provider: str, fault: str) -> None:
    sdk, fast = await both_paths_async(provider, Reply(TOOLS[provider], fault=FAULTS[fault]))
    assert_same(provider, sdk, fast)


# -- the SSE rules of each SDK's decoder ------------------------------------------------
LINES = st.sampled_from(
    ["data: {}", "data:x", "data", "event: e", "event:", "event: ping", "id: 3", "id: a\0b",
     "retry: 5", "retry: x", ": comment", "other: 1", "", "data: ünï", "dat"]
)  # fmt: skip
LINE_ENDS = st.sampled_from(["\n", "\r", "\r\n"])
DECODERS: dict[str, Callable[[], Any]] = {
    "anthropic": AnthropicSSEDecoder,
    "groq": GroqSSEDecoder,
}


@pytest.mark.parametrize("sdk", sorted(DECODERS))
@given(
    lines=st.lists(st.tuples(LINES, LINE_ENDS), max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_splitter_reads_any_byte_split_as_each_sdk_decoder(
    sdk: str, lines: list[tuple[str, str]], cuts: list[int]
) -> None:
    body = "".join(line + end for line, end in lines).encode("utf-8")
    points = sorted({min(cut, len(body)) for cut in cuts} | {0, len(body)})
    pieces = [body[a:b] for a, b in itertools.pairwise(points)]
    expected = [(sse.event, sse.data) for sse in DECODERS[sdk]().iter_bytes(iter(pieces))]
    splitter = SSESplitter()
    got = [(name, raw.decode("utf-8")) for piece in pieces for name, raw in splitter.feed(piece)]
    assert got == expected


# -- laziness ---------------------------------------------------------------------------
@pytest.mark.parametrize("provider", ["anthropic", "groq"])
def test_the_sdk_object_is_built_only_when_read(provider: str) -> None:
    with ReplayServer(TEXT[provider]) as server:
        chunks = run_sync(new_stream(provider, server.client(provider), True))
    lazy = [chunk for chunk in chunks if isinstance(chunk, LazyChunk)]
    assert len(lazy) >= len(chunks) // 2
    assert all("chunk" not in chunk.__dict__ for chunk in lazy)
    first = lazy[0]
    built = first.chunk
    assert first.chunk is built and "chunk" in first.__dict__
    assert "chunk" not in lazy[1].__dict__
    if provider == "groq":
        assert isinstance(built, GroqChatCompletionChunk) and built.id == first.raw_json["id"]
    else:
        assert built.type == first.raw_json["type"]


@pytest.mark.parametrize("provider", ["anthropic", "groq"])
def test_the_reducer_builds_no_sdk_object(provider: str) -> None:
    seen: list[sk.Chunk] = []
    with ReplayServer(TOOLS[provider]) as server:
        stream = new_stream(provider, server.client(provider), True)
        [response] = run_sync(stream.pipe(rx_ops.do_action(seen.append), ops.to_call_response()))
    assert response.message_param and response.tool_calls
    lazy = [chunk for chunk in seen if isinstance(chunk, LazyChunk)]
    assert lazy and all("chunk" not in chunk.__dict__ for chunk in lazy)


@pytest.mark.parametrize("provider", ["anthropic", "groq"])
def test_a_lazy_chunk_copies_pickles_and_dumps_as_an_sdk_path_chunk(provider: str) -> None:
    with ReplayServer() as server:
        server.push(TEXT[provider], TEXT[provider])
        client = server.client(provider)
        fast = run_sync(new_stream(provider, client, True))
        sdk = run_sync(new_stream(provider, client, False))
    index = next(i for i, chunk in enumerate(fast) if isinstance(chunk, LazyChunk))
    lazy, eager = fast[index], sdk[index]
    copied = copy.deepcopy(lazy)  # shares the builder (a client holds locks)
    assert copied.chunk == eager.chunk and copied.content == eager.content
    restored = pickle.loads(pickle.dumps(lazy))  # pickled with the SDK object built
    assert restored.chunk == eager.chunk
    assert lazy.model_fields_set == eager.model_fields_set
    assert lazy.model_dump(exclude_unset=True) == eager.model_dump(exclude_unset=True)


@pytest.mark.parametrize("provider", ["anthropic", "groq"])
def test_a_strict_client_gets_every_sdk_object_at_once(provider: str) -> None:
    sdk, fast = both_paths_sync(provider, TOOLS[provider], _strict_response_validation=True)
    assert fast.chunks and not any(isinstance(chunk, LazyChunk) for chunk in fast.chunks)
    assert_same(provider, sdk, fast)


def test_a_traced_anthropic_client_records_the_same_span() -> None:
    spans: dict[bool, Any] = {}
    for fast in (False, True):
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        with ReplayServer(TOOLS["anthropic"]) as server:
            client = server.client("anthropic", open_telemetry={"tracer_provider": provider})
            chunks = run_sync(new_stream("anthropic", client, fast))
        assert chunks and not any(isinstance(chunk, LazyChunk) for chunk in chunks)
        [span] = exporter.get_finished_spans()
        spans[fast] = span
    by_sdk, by_fast = spans[False], spans[True]
    assert by_fast.status.status_code == by_sdk.status.status_code
    ignored = {"server.port", "url.full", "gen_ai.response.time_to_first_chunk"}
    assert {k: v for k, v in by_fast.attributes.items() if k not in ignored} == {
        k: v for k, v in by_sdk.attributes.items() if k not in ignored
    }
    assert "gen_ai.usage.output_tokens" in by_fast.attributes


class _OwnDecoderAnthropic(anthropic.Anthropic):
    """A client with a decoder of its own (as Bedrock's): the fast path leaves it to
    the SDK's Stream."""

    def _make_sse_decoder(self, options: Any = None) -> Any:
        return AnthropicSSEDecoder()


def test_a_client_with_its_own_stream_decoder_is_read_by_the_sdk() -> None:
    with ReplayServer() as server:
        name = TOOLS["anthropic"]
        server.push(name, name)
        client = _OwnDecoderAnthropic(base_url=server.url, api_key="sk-test", max_retries=0)
        sdk = read_sync("anthropic", client, False)
        fast = read_sync("anthropic", client, True)
        client.close()
    assert fast.chunks and all(type(chunk) is AnthropicChunk for chunk in fast.chunks)
    assert_same("anthropic", sdk, fast)


# -- bad input and SDK versions ----------------------------------------------------------
@pytest.mark.parametrize("provider", ["anthropic", "groq"])
def test_fast_is_checked_and_never_sent(provider: str) -> None:
    with ReplayServer(TEXT[provider]) as server:
        client = server.client(provider)
        with pytest.raises(TypeError, match="fast must be a bool"):
            new_stream(provider, client, "yes")  # type: ignore[arg-type]
        assert server.requests == []
        run_sync(new_stream(provider, client, False))
        assert "fast" not in server.requests[0].json


@pytest.mark.parametrize(
    ("provider", "module", "sdk_name"),
    [("anthropic", anthropic_sdk, "anthropic"), ("groq", groq_sdk, "groq")],
)
def test_missing_sdk_internals_fail_before_any_request_naming_the_version(
    provider: str, module: Any, sdk_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "_CLIENT_INTERNALS", (*module._CLIENT_INTERNALS, "_gone"))
    version = anthropic.__version__ if sdk_name == "anthropic" else groq.__version__
    with ReplayServer(TEXT[provider]) as server:
        with pytest.raises(ImportError, match=rf"_gone.*{sdk_name} {version}"):
            new_stream(provider, server.client(provider), True)
        assert server.requests == []
