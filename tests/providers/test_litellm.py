"""LiteLLM: ``litellm.completion`` / ``acompletion`` against the replay server.

The model ``"openai/gpt-4o"`` with ``api_base=server.url + "/v1"`` makes litellm use its
OpenAI route (the openai SDK underneath), so the recorded OpenAI chat streams apply and
the oracle is the openai SDK's ``ChatCompletionStreamState`` over the same chunks
(``tests/providers/test_openai.py``).
"""

from __future__ import annotations

import os

from litellm.exceptions import NotFoundError
from litellm.router import Router

# Before litellm is imported: no fetch of the model cost map from GitHub (no network).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import functools
import json
import threading
from typing import Any

import litellm
import openai
import pytest
from litellm.exceptions import MidStreamFallbackError
from litellm.types.utils import ModelResponseStream

import streamkit as sk
from streamkit import ops
from streamkit._source import THREAD_NAME_PREFIX
from streamkit.providers import get_adapter
from streamkit.providers.litellm import LiteLLMChunk, mapped_error
from streamkit.testing import FAKE_API_KEY, Fault, ReplayServer, Reply, Transcript, load_transcript
from tests.providers.chat_support import (
    assert_cut_is_incomplete,
    assert_dispose_wakes_a_blocked_read,
    assert_take_closes_async,
    assert_take_closes_sync,
    wait_until,
)
from tests.providers.test_openai import CHAT_TRANSCRIPTS, oracle

MODEL = "openai/gpt-4o"
TEXT = "openai/chat-text-usage"
REFUSAL = "openai/chat-refusal-structured-output"
ADAPTER = get_adapter("litellm")

# litellm's own noise on pydantic 2.13, not streamkit's.
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning"),
    pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince211"),
]


def completion(server: ReplayServer, *, async_: bool = False) -> Any:
    """litellm's completion function bound to the replay server (no retries)."""
    function = litellm.acompletion if async_ else litellm.completion
    return functools.partial(
        function, api_base=server.url + "/v1", api_key=FAKE_API_KEY, max_retries=0
    )


def assert_matches_oracle(name: str, response: sk.CallResponse) -> None:
    completion_, usage = oracle(name)
    choice = completion_.choices[0]
    assert response.content == (choice.message.content or "")
    # litellm 1.110 drops refusal deltas on its OpenAI route (and names the model as
    # requested, not as served): streamkit can only pass on what litellm yields.
    assert response.refusal == ""
    assert (response.model, response.id) == ("gpt-4o", completion_.id)
    assert response.finish_reasons == [choice.finish_reason]
    assert [(c.id, c.name, c.arguments, c.args) for c in response.tool_calls] == [
        (c.id, c.function.name, c.function.arguments, json.loads(c.function.arguments))
        for c in choice.message.tool_calls or []
    ]
    assert response.usage == sk.Usage(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        cached_tokens=usage.prompt_tokens_details.cached_tokens,
        reasoning_tokens=usage.completion_tokens_details.reasoning_tokens,
    )


def test_litellm_drops_refusals_on_its_own() -> None:
    # What the refusal exemption above rests on: litellm itself yields no refusal text.
    with ReplayServer(REFUSAL) as server:
        chunks = list(
            completion(server)(
                model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
    assert oracle(REFUSAL)[0].choices[0].message.refusal
    assert not any(getattr(c.choices[0].delta, "refusal", None) for c in chunks if c.choices)


@pytest.mark.parametrize("name", CHAT_TRANSCRIPTS)
def test_sync_iteration_reduces_like_the_sdk(name: str) -> None:
    with ReplayServer(name) as server:
        stream = sk.stream("litellm", MODEL, "hi", client=completion(server))
        pairs = list(stream)
        request = server.requests[0]
    assert request.path == "/v1/chat/completions"
    assert request.json["stream"] is True
    assert request.json["stream_options"] == {"include_usage": True}
    assert all(isinstance(chunk, LiteLLMChunk) for chunk, _ in pairs)
    assert all(isinstance(chunk.chunk, ModelResponseStream) for chunk, _ in pairs)
    response = stream.construct_call_response()
    assert_matches_oracle(name, response)
    assert [tool for _, tool in pairs if tool is not None] == response.tool_calls
    assert pairs[0][0].model_dump()["provider"] == "litellm"  # the chunk model is complete


@pytest.mark.parametrize("name", CHAT_TRANSCRIPTS)
async def test_async_iteration_and_observable_reduce_like_the_sdk(name: str) -> None:
    with ReplayServer(name) as server:
        stream = sk.stream("litellm", MODEL, "hi", client=completion(server, async_=True))
        assert stream.is_async
        async for _ in stream:
            pass
        assert_matches_oracle(name, stream.construct_call_response())
        assert_matches_oracle(name, await stream.pipe(ops.to_call_response()))
        assert len(server.requests) == 2


def test_sync_observable_and_params_without_a_client() -> None:
    # With no client, litellm.completion (or acompletion with async_=True) is called
    # with the keyword arguments given to sk.stream.
    name = "openai/chat-parallel-tool-calls-usage"
    with ReplayServer(name) as server:
        stream = sk.stream(
            "litellm",
            MODEL,
            "hi",
            api_base=server.url + "/v1",
            api_key=FAKE_API_KEY,
            max_retries=0,
            temperature=0.5,
        )
        assert not stream.is_async
        assert_matches_oracle(name, stream.pipe(ops.to_call_response()).run())
        assert server.requests[0].json["temperature"] == 0.5


async def test_async_without_a_client() -> None:
    with ReplayServer(TEXT) as server:
        stream = sk.stream(
            "litellm",
            MODEL,
            "hi",
            async_=True,
            api_base=server.url + "/v1",
            api_key=FAKE_API_KEY,
            max_retries=0,
        )
        assert_matches_oracle(TEXT, await stream.pipe(ops.to_call_response()))


def test_clients_are_completion_functions() -> None:
    assert ADAPTER.is_async_client(litellm.acompletion)
    assert ADAPTER.is_async_client(functools.partial(litellm.acompletion, api_base="x"))
    assert not ADAPTER.is_async_client(litellm.completion)
    router = Router(model_list=[])
    assert ADAPTER.is_async_client(router.acompletion)
    assert not ADAPTER.is_async_client(router.completion)
    with pytest.raises(TypeError, match="completion function"):
        sk.stream("litellm", MODEL, "hi", client={"api_base": "x"})
    with pytest.raises(TypeError, match="sync client"):
        sk.stream("litellm", MODEL, "hi", client=litellm.completion, async_=True)


# -- errors ------------------------------------------------------------------------------
def test_http_error_is_litellms_exception() -> None:
    with (
        ReplayServer("openai/chat-error-404-model-not-found") as server,
        pytest.raises(NotFoundError) as raised,
    ):
        list(sk.stream("litellm", MODEL, "hi", client=completion(server)))
    assert not ADAPTER.is_transient(raised.value)


def _cut_replies() -> list[Reply]:
    recorded = load_transcript(TEXT)
    ended_early = Transcript.from_events("openai", "chat.completions", recorded.events[:5])
    return [
        Reply(ended_early),
        Reply(TEXT, fault=Fault(close_after_events=5)),
        Reply(TEXT, fault=Fault(reset_after_events=5)),
    ]


@pytest.mark.parametrize("reply", _cut_replies(), ids=["body-ended", "closed", "reset"])
def test_stream_cut_before_its_end_is_incomplete_sync(reply: Reply) -> None:
    # litellm reports every one of these cuts itself: its report is the cause.
    with ReplayServer() as server:
        server.push(reply)
        stream = sk.stream("litellm", MODEL, "hi", client=completion(server))
        assert_cut_is_incomplete(stream, MidStreamFallbackError)
    assert stream.content == "4200 + "


async def test_stream_cut_before_its_end_is_incomplete_async() -> None:
    with ReplayServer() as server:
        server.push(*_cut_replies()[:2])
        for _ in range(2):
            stream = sk.stream("litellm", MODEL, "hi", client=completion(server, async_=True))
            with pytest.raises(sk.IncompleteStreamError):
                await stream.pipe(ops.to_call_response())


@pytest.mark.parametrize(
    ("fault", "mapped", "transient"),
    [
        (Fault(malformed=(5, "broken_json")), json.JSONDecodeError, False),
        (Fault(error_event_after=5), openai.APIError, True),  # type server_error
    ],
    ids=["broken-json", "error-event"],
)
def test_read_errors_that_are_not_cuts_stay_litellms(
    fault: Fault, mapped: type[Exception], transient: bool
) -> None:
    # litellm reports these as it reports a cut (MidStreamFallbackError over an
    # APIConnectionError, status 500): only what it mapped tells them apart.
    with ReplayServer() as server:
        server.push(Reply(TEXT, fault=fault))
        stream = sk.stream("litellm", MODEL, "hi", client=completion(server))
        with pytest.raises(MidStreamFallbackError) as raised:
            list(stream)
    assert stream.content == "4200 + "
    assert isinstance(mapped_error(raised.value), mapped)
    assert ADAPTER.is_transient(raised.value) is transient


def test_a_cut_after_the_finish_reason_is_completed_by_litellm() -> None:
    # Documented limit: litellm builds the usage chunk itself when the stream ends after
    # the finish reason, so streamkit sees a whole stream. That usage is litellm's own
    # count, not the provider's: labelled estimated.
    recorded = load_transcript(TEXT)
    no_usage = Transcript.from_events("openai", "chat.completions", recorded.events[:-2])
    with ReplayServer(no_usage) as server:
        response = (
            sk.stream("litellm", MODEL, "hi", client=completion(server))
            .pipe(ops.to_call_response())
            .run()
        )
    assert response.finish_reasons == ["stop"] and response.usage is not None
    assert response.usage.source == "estimated"


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("reports", [True, False], ids=["provider-usage", "no-usage"])
async def test_usage_litellm_counted_itself_is_estimated(reports: bool, async_: bool) -> None:
    """The usage chunk litellm yields is the provider's figure (``reported``) only when
    the provider sent one; for a server that sends none (vLLM's default) it is
    litellm's own count (``estimated``), on the chunk, the end record and the stream."""
    name = TEXT if reports else "synthetic/vllm-chat-no-usage"
    ends: list[sk.UsageReport] = []
    with ReplayServer(name) as server:
        stream = sk.stream(
            "litellm", MODEL, "hi", client=completion(server, async_=async_), async_=async_
        )
        pipeline = stream.pipe(ops.on_usage(ends.append), ops.to_call_response())
        response = await pipeline.aresponse() if async_ else pipeline.run()
    usage = response.usage
    assert usage is not None and usage.output_tokens > 0
    assert usage.source == ("reported" if reports else "estimated")
    (report,) = ends
    assert report.usage == usage and report.attempts[0].outcome == "completed"
    if reports:
        assert (usage.input_tokens, usage.output_tokens) == (16, 10)  # the transcript's


# -- cancellation, seen from the server --------------------------------------------------
def test_take_closes_the_http_response_sync() -> None:
    with ReplayServer(TEXT, pace=0.02) as server:
        assert_take_closes_sync(
            server, sk.stream("litellm", MODEL, "hi", client=completion(server))
        )


async def test_take_closes_the_http_response_async() -> None:
    with ReplayServer(TEXT, pace=0.02) as server:
        stream = sk.stream("litellm", MODEL, "hi", client=completion(server, async_=True))
        await assert_take_closes_async(server, stream)


def test_dispose_from_another_thread_wakes_a_blocked_read() -> None:
    # The socket under litellm's wrapper (its openai SDK stream) is shut down at once.
    with ReplayServer() as server:
        server.push(Reply(TEXT, fault=Fault(stall_after_events=(3, 30.0))))
        stream = sk.stream("litellm", MODEL, "hi", client=completion(server))
        assert_dispose_wakes_a_blocked_read(server, stream)


def test_threads_left_are_litellms_bounded_logging_pool() -> None:
    before = {t.name for t in threading.enumerate()}
    with ReplayServer(TEXT) as server:
        for _ in range(3):
            sk.stream("litellm", MODEL, "hi", client=completion(server)).pipe(
                ops.to_call_response()
            ).run()
    wait_until(
        lambda: not any(t.name.startswith(THREAD_NAME_PREFIX) for t in threading.enumerate())
    )
    new = {t.name for t in threading.enumerate()} - before
    assert all(name.startswith("litellm-logging") for name in new), new
    executor = litellm.litellm_core_utils.thread_pool_executor.executor
    logging_threads = [t for t in threading.enumerate() if t.name.startswith("litellm-logging")]
    assert len(logging_threads) <= executor._max_workers
