"""The fast path of Mistral (``fast=True``) against its SDK path: a differential test.

On every Mistral transcript (and, through the mistralai SDK, every chat-completions
transcript: most fail mistralai's validation somewhere, which the fast path must fail the
same way), sync and async, under faults (cut, reset, error events, malformed and huge
events, a body trickled byte by byte, HTTP errors), the fast path must yield the SDK
path's chunks field by field (``chunk.chunk`` is built lazily: reading it gives an SDK
object equal to the SDK path's), the same response through the reducer, and the same
error. Its event splitting is checked against mistralai's own ``stream_events`` on any
body split anywhere, and cancellation must close the HTTP response.
"""

from __future__ import annotations

import copy
import itertools
import json
import pickle
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from mistralai.client.errors import ResponseValidationError, SDKError
from mistralai.client.models import CompletionChunk
from mistralai.client.utils.eventstreaming import stream_events
from reactivex import operators as rx_ops

import streamkit as sk
from streamkit import ops
from streamkit.providers._stainless import Built, LazyChunk
from streamkit.providers.mistral import MistralChunk
from streamkit.providers.mistral import _sdk as mistral_sdk
from streamkit.providers.mistral._sdk import MistralChunkBuilder
from streamkit.providers.mistral.fast import LazyMistralChunk, MistralEventReader
from streamkit.testing import (
    Fault,
    ReplayServer,
    Reply,
    Transcript,
    load_transcript,
    transcript_names,
)
from tests.ops._pipelines import run_async, run_sync
from tests.providers.chat_support import (
    assert_break_closes_async,
    assert_dispose_wakes_a_blocked_read,
    assert_take_closes_async,
    assert_take_closes_sync,
)
from tests.test_fast_path import WIRE_CASES

MODEL = "mistral-large-latest"
FIELDS = [name for name in sk.Chunk.model_fields if name != "chunk"]
OWN = transcript_names(provider="mistral")
CHAT = sorted(
    name for name in transcript_names() if load_transcript(name).api == "chat.completions"
)
TEXT = "mistral/chat-text-usage"
TOOLS = "synthetic/mistral-chat-tool-call-argument-deltas"


@dataclass
class Outcome:
    """What reading one stream gave: its chunks, then its error (if any)."""

    chunks: list[sk.Chunk] = field(default_factory=list)
    error: BaseException | None = None


def new_stream(client: Any, fast: bool, **params: Any) -> sk.Stream:
    return sk.stream("mistral", MODEL, "hi", client=client, fast=fast, **params)


def read_sync(client: Any, fast: bool) -> Outcome:
    outcome = Outcome()
    try:
        for chunk, _tool in new_stream(client, fast):
            outcome.chunks.append(chunk)
    except Exception as error:
        outcome.error = error
    return outcome


async def read_async(client: Any, fast: bool) -> Outcome:
    outcome = Outcome()
    try:
        async for chunk, _tool in new_stream(client, fast, async_=True):
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


def assert_same(sdk: Outcome, fast: Outcome) -> None:
    """Same error, same chunks field by field; each raw object, once built, equal."""
    assert error_signature(fast.error) == error_signature(sdk.error)
    assert len(fast.chunks) == len(sdk.chunks)
    for sdk_chunk, fast_chunk in zip(sdk.chunks, fast.chunks, strict=True):
        assert type(sdk_chunk) is MistralChunk
        assert type(fast_chunk) in (MistralChunk, LazyMistralChunk)
        for name in FIELDS:
            assert getattr(fast_chunk, name) == getattr(sdk_chunk, name), name
        assert type(fast_chunk.chunk) is type(sdk_chunk.chunk) is CompletionChunk
        assert fast_chunk.chunk == sdk_chunk.chunk
        assert fast_chunk.chunk.model_fields_set == sdk_chunk.chunk.model_fields_set
        assert fast_chunk.model_dump() == sdk_chunk.model_dump()


def both_paths_sync(reply: Reply | str) -> tuple[Outcome, Outcome]:
    with ReplayServer() as server:
        server.push(reply, reply)
        client = server.client("mistral")
        return read_sync(client, False), read_sync(client, True)


async def both_paths_async(reply: Reply | str) -> tuple[Outcome, Outcome]:
    with ReplayServer() as server:
        server.push(reply, reply)
        async with server.client("mistral") as client:
            return await read_async(client, False), await read_async(client, True)


# -- every transcript ------------------------------------------------------------------
def test_the_mistral_transcripts_are_all_here() -> None:
    assert len(OWN) == 5 and set(OWN) <= set(CHAT)


@pytest.mark.parametrize("name", CHAT)
def test_sync_fast_path_equals_the_sdk_path(name: str) -> None:
    sdk, fast = both_paths_sync(name)
    assert sdk.chunks or sdk.error is not None
    assert_same(sdk, fast)
    if name in OWN:
        assert sdk.error is None
        assert any(isinstance(chunk, LazyChunk) for chunk in fast.chunks)


@pytest.mark.parametrize("name", CHAT)
async def test_async_fast_path_equals_the_sdk_path(name: str) -> None:
    sdk, fast = await both_paths_async(name)
    assert_same(sdk, fast)


def responses_sync(name: str) -> list[Any]:
    """The reducer's CallResponse (or the error's type) of each path."""
    results: list[Any] = []
    with ReplayServer() as server:
        server.push(name, name)
        client = server.client("mistral")
        for fast in (False, True):
            try:
                results.append(run_sync(new_stream(client, fast).pipe(ops.to_call_response())))
            except Exception as error:
                results.append(type(error))
    return results


async def responses_async(name: str) -> list[Any]:
    results: list[Any] = []
    with ReplayServer() as server:
        server.push(name, name)
        async with server.client("mistral") as client:
            for fast in (False, True):
                stream = new_stream(client, fast, async_=True)
                try:
                    results.append(await run_async(stream.pipe(ops.to_call_response())))
                except Exception as error:
                    results.append(type(error))
    return results


@pytest.mark.parametrize("name", OWN)
def test_fast_path_reduces_to_the_same_response(name: str) -> None:
    expected, response = responses_sync(name)
    assert response == expected
    [call] = response
    assert isinstance(call, sk.CallResponse) and call.message_param


@pytest.mark.parametrize("name", OWN)
async def test_fast_path_reduces_to_the_same_response_async(name: str) -> None:
    expected, response = await responses_async(name)
    assert response == expected


def test_an_error_event_fails_as_the_sdk_fails() -> None:
    # mistralai validates each event: an error event is a ResponseValidationError.
    sdk, fast = both_paths_sync(Reply(TEXT, fault=Fault(error_event_after=3)))
    assert isinstance(fast.error, ResponseValidationError) and len(fast.chunks) == 3
    assert_same(sdk, fast)


# -- faults -----------------------------------------------------------------------------
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
FAULT_CASES = [(transcript, fault) for transcript in (TEXT, TOOLS) for fault in FAULTS]


@pytest.mark.parametrize("case", FAULT_CASES, ids=lambda case: "-".join(case))
def test_faults_fail_the_same_way(case: tuple[str, str]) -> None:
    transcript, fault = case
    sdk, fast = both_paths_sync(Reply(transcript, fault=FAULTS[fault]))
    assert_same(sdk, fast)
    if fault.startswith("http"):
        assert isinstance(fast.error, SDKError)


@pytest.mark.parametrize("fault", ["reset", "error-event", "broken-json", "trickled", "http-529"])
async def test_faults_fail_the_same_way_async(fault: str) -> None:
    sdk, fast = await both_paths_async(Reply(TOOLS, fault=FAULTS[fault]))
    assert_same(sdk, fast)


# -- shapes the decoder must leave to the SDK object ------------------------------------
def chunk_json(**changes: Any) -> dict[str, Any]:
    """A valid Mistral chunk, with ``changes`` to its first choice's delta (``delta``),
    the choice (``choice``) or the chunk itself (other keys; ``None`` removes one)."""
    delta: dict[str, Any] = {"content": "hi"}
    delta.update(changes.pop("delta", {}))
    choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": None}
    choice.update(changes.pop("choice", {}))
    chunk: dict[str, Any] = {"id": "c1", "object": "chat.completion.chunk", "created": 1}
    chunk.update(model=MODEL, choices=[choice])
    chunk.update(changes)
    return {k: v for k, v in chunk.items() if v is not None}


def call(**fields: Any) -> dict[str, Any]:
    return {"function": {"name": "f", "arguments": "{}"}, **fields}


ODD_EVENTS = {
    "plain": chunk_json(),
    "int-id": chunk_json(id=7),
    "no-model": chunk_json(model=None),
    "float-created": chunk_json(created=1.0),
    "bool-created": chunk_json(created=True),
    "no-finish-key": chunk_json(choice={"index": 0, "delta": {"content": "x"}}) | {
        "choices": [{"index": 0, "delta": {"content": "x"}}]
    },
    "bool-index": chunk_json(choice={"index": True}),
    "null-delta": chunk_json(choice={"delta": None}),
    "finish-number": chunk_json(choice={"finish_reason": 3}),
    "finish-unknown": chunk_json(choice={"finish_reason": "model_length"}),
    "logprobs": chunk_json(choice={"logprobs": {"content": []}}),
    "list-content": chunk_json(delta={"content": [{"type": "text", "text": "a"}]}),
    "number-content": chunk_json(delta={"content": 5}),
    "role-number": chunk_json(delta={"role": 1}),
    "metadata-list": chunk_json(delta={"metadata": []}),
    "extra-keys": chunk_json(delta={"reasoning": "r", "refusal": "no"}, extra={"a": 1}),
    "usage": chunk_json(usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}),
    "usage-null": chunk_json(usage=None) | {"usage": None},
    "call-no-index": chunk_json(delta={"tool_calls": [call(id="a"), call(), call(id="null")]}),
    "call-null-fields": chunk_json(delta={"tool_calls": [call(id=None, index=None, type=None)]}),
    "call-indexed": chunk_json(delta={"tool_calls": [call(id="b", index=2), call(index=1)]}),
    "call-object-args": chunk_json(
        delta={"tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}}]}
    ),
    "call-no-name": chunk_json(delta={"tool_calls": [{"function": {"arguments": "{}"}}]}),
    "call-str-index": chunk_json(delta={"tool_calls": [call(index="1")]}),
    "second-choice-bad-call": chunk_json()
    | {
        "choices": [
            {"index": 0, "delta": {"content": "a"}, "finish_reason": None},
            {"index": 1, "delta": {"tool_calls": [{"function": {}}]}, "finish_reason": None},
        ]
    },
    "two-choices": chunk_json()
    | {
        "choices": [
            {"index": 1, "delta": {"content": "b", "tool_calls": [call(id="z")]},
             "finish_reason": "stop"},
            {"index": 0, "delta": {"content": "a", "tool_calls": [call(id="y")]},
             "finish_reason": "length"},
        ]
    },
    "not-an-object": [1, 2],
    "a-string": "text",
    "nan": {"id": "c", "model": "m", "choices": [], "created": float("nan")},
}  # fmt: skip


def odd_body(*names: str) -> Iterator[str]:
    for name in names:
        value = ODD_EVENTS[name]
        text = json.dumps(value) if not isinstance(value, str) else value
        yield f"data: {text}"
    yield f"data: {json.dumps(chunk_json(choice={'finish_reason': 'stop'}))}"
    yield "data: [DONE]"


def in_memory(name: str, events: Iterable[str], *, terminate: bool = True) -> Reply:
    return Reply(
        Transcript.from_events(
            "mistral", "chat.completions", events, name=f"synthetic/{name}", terminate=terminate
        )
    )


@pytest.mark.parametrize("name", sorted(ODD_EVENTS))
def test_every_odd_shape_reads_as_on_the_sdk_path(name: str) -> None:
    sdk, fast = both_paths_sync(in_memory(name, odd_body("plain", name)))
    assert_same(sdk, fast)


def test_tool_call_indices_carry_across_lazy_and_built_events() -> None:
    names = ["call-no-index", "call-object-args", "call-no-index", "call-indexed", "usage"]
    sdk, fast = both_paths_sync(in_memory("indices", odd_body(*names)))
    assert_same(sdk, fast)
    assert any(isinstance(chunk, LazyChunk) for chunk in fast.chunks)
    assert any(type(chunk) is MistralChunk for chunk in fast.chunks)


# -- the SSE rules of mistralai's stream_events ------------------------------------------
@pytest.mark.parametrize("case", sorted(WIRE_CASES))
def test_the_openai_wire_cases_read_as_on_the_sdk_path(case: str) -> None:
    # CR line ends, split lines, ids, event names, multi-line data, values orjson refuses.
    sdk, fast = both_paths_sync(in_memory(case, WIRE_CASES[case], terminate=False))
    assert_same(sdk, fast)


@pytest.mark.parametrize("case", ["crlf-and-cr-line-ends", "values-orjson-refuses"])
async def test_the_openai_wire_cases_read_as_on_the_sdk_path_async(case: str) -> None:
    sdk, fast = await both_paths_async(in_memory(case, WIRE_CASES[case], terminate=False))
    assert_same(sdk, fast)


class _Body:
    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    def iter_bytes(self) -> Iterator[bytes]:
        yield from self.pieces

    def close(self) -> None:
        return


class _TextBuilder(MistralChunkBuilder):
    """Gives the JSON text the SDK validates for an event, instead of validating it."""

    __slots__ = ()

    def with_fields(self, fields: dict[str, Any]) -> MistralChunkBuilder:
        return _TextBuilder(None, None, fields)

    def __call__(self, data: Any) -> Any:
        fields = self.fields or {}
        ordered: dict[str, Any] = {k: fields[k] for k in ("id", "event") if k in fields}
        ordered["data"] = data
        if "retry" in fields:
            ordered["retry"] = fields["retry"]
        return json.dumps(ordered)


LINES = st.sampled_from(
    ['data: {"a": 1}', "data:[1,2]", "data: [DONE]", "data:x", "data", "data: NaN",
     "event: e", "event:", "event", "id: 3", "id: a\0b", "retry: 5", "retry: x", ": c",
     "other: 1", "", "data: \"ünï\"", "dat", '\ufeffdata: {}']
)  # fmt: skip
LINE_ENDS = st.sampled_from(["\n", "\r", "\r\n", "\n\n", "\r\n\r\n"])


def events_of_reader(pieces: list[bytes]) -> list[Any]:
    reader = MistralEventReader(_TextBuilder(None, None))
    texts: list[Any] = []
    for piece in [*pieces, None]:
        events = reader.finish() if piece is None else reader.feed(piece)
        for data, build in events:
            texts.append(build.built if isinstance(build, Built) else build(data))
        if reader.done:
            break
    return texts


@example(lines=[("id: 3", "\n\n"), ('data: {"a": 1}', "\n\n")], cuts=[])  # the id carried over
@example(lines=[("data:[1,2]", "\n\n"), ("\ufeffdata: {}", "\n\n")], cuts=[12])  # a BOM
@example(lines=[("event: e", "\r\n"), ("data:[1,2]", "\r\n\r\n")], cuts=[9, 21])
@given(
    lines=st.lists(st.tuples(LINES, LINE_ENDS), max_size=25),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_reader_splits_any_byte_split_as_stream_events(
    lines: list[tuple[str, str]], cuts: list[int]
) -> None:
    body = "".join(line + end for line, end in lines).encode("utf-8")
    points = sorted({min(cut, len(body)) for cut in cuts} | {0, len(body)})
    pieces = [body[a:b] for a, b in itertools.pairwise(points)]
    expected = list(stream_events(_Body(pieces), lambda text: text, "[DONE]"))  # type: ignore[arg-type]
    assert events_of_reader(pieces) == expected


# -- laziness ---------------------------------------------------------------------------
def test_the_sdk_object_is_built_only_when_read() -> None:
    with ReplayServer(TEXT) as server:
        chunks = run_sync(new_stream(server.client("mistral"), True))
    lazy = [chunk for chunk in chunks if isinstance(chunk, LazyChunk)]
    assert len(lazy) >= len(chunks) - 1
    assert all("chunk" not in chunk.__dict__ for chunk in lazy)
    first = lazy[0]
    built = first.chunk
    assert first.chunk is built and "chunk" in first.__dict__
    assert "chunk" not in lazy[1].__dict__
    assert isinstance(built, CompletionChunk) and built.id == first.raw_json["id"]


def test_the_reducer_builds_no_sdk_object() -> None:
    seen: list[sk.Chunk] = []
    with ReplayServer(TOOLS) as server:
        stream = new_stream(server.client("mistral"), True)
        [response] = run_sync(stream.pipe(rx_ops.do_action(seen.append), ops.to_call_response()))
    assert response.message_param and response.tool_calls
    lazy = [chunk for chunk in seen if isinstance(chunk, LazyChunk)]
    assert lazy and all("chunk" not in chunk.__dict__ for chunk in lazy)


def test_a_lazy_chunk_copies_pickles_and_dumps_as_an_sdk_path_chunk() -> None:
    with ReplayServer() as server:
        server.push(TEXT, TEXT)
        client = server.client("mistral")
        fast = run_sync(new_stream(client, True))
        sdk = run_sync(new_stream(client, False))
    index = next(i for i, chunk in enumerate(fast) if isinstance(chunk, LazyChunk))
    lazy, eager = fast[index], sdk[index]
    copied = copy.deepcopy(lazy)  # shares the builder (a client holds locks)
    assert copied.chunk == eager.chunk and copied.content == eager.content
    restored = pickle.loads(pickle.dumps(lazy))  # pickled with the SDK object built
    assert restored.chunk == eager.chunk
    assert lazy.model_fields_set == eager.model_fields_set
    assert lazy.model_dump(exclude_unset=True) == eager.model_dump(exclude_unset=True)


# -- cancellation, seen from the server --------------------------------------------------
def test_take_closes_the_http_response_sync() -> None:
    with ReplayServer(TEXT, pace=0.02) as server:
        assert_take_closes_sync(server, new_stream(server.client("mistral"), True))


async def test_take_closes_the_http_response_async() -> None:
    with ReplayServer(TEXT, pace=0.02) as server:
        async with server.client("mistral") as client:
            await assert_take_closes_async(server, new_stream(client, True, async_=True))


async def test_async_break_closes_the_http_response() -> None:
    with ReplayServer(TEXT, pace=0.02) as server:
        async with server.client("mistral") as client:
            await assert_break_closes_async(server, new_stream(client, True, async_=True))


def test_dispose_from_another_thread_wakes_a_blocked_read() -> None:
    with ReplayServer() as server:
        server.push(Reply(TEXT, fault=Fault(stall_after_events=(3, 30.0))))
        assert_dispose_wakes_a_blocked_read(server, new_stream(server.client("mistral"), True))


# -- bad input and SDK versions ----------------------------------------------------------
def test_fast_is_checked_and_never_sent() -> None:
    with ReplayServer(TEXT) as server:
        client = server.client("mistral")
        with pytest.raises(TypeError, match="fast must be a bool"):
            new_stream(client, "yes")  # type: ignore[arg-type]
        assert server.requests == []
        run_sync(new_stream(client, True))
        assert "fast" not in server.requests[0].json


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("_EVENTSTREAMING", (*mistral_sdk._EVENTSTREAMING, "_gone")),
        ("MESSAGE_BOUNDARIES", (b"\n\n",)),
        ("_PARSE_PARAMETERS", ("raw",)),
    ],
)
def test_changed_sdk_internals_fail_before_any_request_naming_the_version(
    name: str, value: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mistral_sdk, name, value)
    with ReplayServer(TEXT) as server:
        with pytest.raises(ImportError, match=rf"mistralai {mistral_sdk.sdk_version()}"):
            new_stream(server.client("mistral"), True)
        assert server.requests == []


def test_the_sdk_path_is_unchanged_with_fast_false() -> None:
    with ReplayServer(TEXT) as server:
        chunks = run_sync(new_stream(server.client("mistral"), False))
    assert chunks and all(type(chunk) is MistralChunk for chunk in chunks)
