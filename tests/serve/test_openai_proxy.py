"""The official ``openai`` SDK reads ``/v1/chat/completions`` served from every provider's
recorded stream (a normalizing proxy): same text, tool calls, usage as the stream behind.

Tool calls come in each backend's own shape (OpenAI chat's index and first-delta name,
the Responses API's name repeated when a call is done, Anthropic's content-block
indices, Gemini's whole calls in one part, Cohere's and Mistral's deltas); the SDK must
rebuild exactly the calls streamkit's reducer folds from the same transcript."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

import streamkit as sk
from streamkit import ops
from streamkit.serve import chat_app
from streamkit.testing import ReplayServer
from tests.serve._harness import Ends, running

RESPONSES: dict[str, Any] = {"api": "responses"}
NONE: dict[str, Any] = {}
CASES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("openai", "gpt-4o-mini", "openai/chat-text-usage", NONE),
    ("openai", "gpt-4o-mini", "openai/chat-parallel-tool-calls-usage", NONE),
    ("openai", "gpt-4o-mini", "openai/chat-tool-call-gpt-4o-mini", NONE),
    ("openai", "gpt-4o-mini", "openai/chat-refusal-structured-output", NONE),
    ("openai", "gpt-4.1-mini", "openai/responses-text", RESPONSES),
    ("openai", "gpt-4.1-mini", "openai/responses-parallel-function-calls", RESPONSES),
    ("openai", "gpt-5", "openai/responses-reasoning-summary-gpt-5", RESPONSES),
    ("openai", "qwen2.5-7b", "synthetic/vllm-chat-no-usage", NONE),
    ("anthropic", "claude-sonnet-4-5", "anthropic/messages-text", NONE),
    ("anthropic", "claude-sonnet-4-5", "anthropic/messages-thinking", NONE),
    ("anthropic", "claude-sonnet-4-5", "anthropic/messages-parallel-tool-use", NONE),
    (
        "anthropic",
        "claude-sonnet-4-5",
        "synthetic/anthropic-redacted-thinking-citations-tool-use",
        NONE,
    ),
    ("google", "gemini-2.5-flash", "google/gemini-text", NONE),
    ("google", "gemini-2.5-flash", "google/gemini-parallel-function-calls", NONE),
    ("google", "gemini-2.5-flash", "google/gemini-thinking-thoughts", NONE),
    ("google", "gemini-3-pro-preview", "google/gemini-3-function-call-thought-signature", NONE),
    ("google", "gemini-2.5-flash", "synthetic/google-thoughts-text-function-calls", NONE),
    ("groq", "llama-3.1-8b-instant", "groq/chat-text-x-groq-usage", NONE),
    ("groq", "openai/gpt-oss-20b", "groq/chat-tool-call-reasoning-usage", NONE),
    ("mistral", "mistral-small-latest", "mistral/chat-text-usage", NONE),
    ("mistral", "mistral-small-latest", "mistral/chat-tool-call-usage", NONE),
    ("mistral", "mistral-small-latest", "synthetic/mistral-chat-parallel-tool-calls", NONE),
    ("cohere", "command-a-03-2025", "cohere/chat-v2-text-usage", NONE),
    ("cohere", "command-a-03-2025", "synthetic/cohere-chat-v2-parallel-tool-calls", NONE),
]
TOOL_CASES = [case for case in CASES if "tool" in case[2] or "function" in case[2]]
"""Every transcript with tool calls: OpenAI chat and Responses, Anthropic, Gemini, Groq,
Mistral, Cohere."""
PROMPT: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def direct(provider: str, model: str, transcript: str, params: dict[str, Any]) -> sk.CallResponse:
    """streamkit's reducer on the transcript: what the proxy's client must rebuild."""
    with ReplayServer(transcript) as server:
        stream = sk.stream(provider, model, PROMPT, client=server.client(provider), **params)
        response: sk.CallResponse = stream.pipe(ops.to_call_response()).run()
        return response


def proxy(provider: str, model: str, transcript: str, params: dict[str, Any], ends: Ends) -> Any:
    """The app serving the transcript's stream, and its replay server (a context)."""
    replay = ReplayServer(transcript)

    def handler(messages: list[dict[str, Any]]) -> sk.Stream:
        return sk.stream(provider, model, messages, client=replay.client(provider), **params)

    return replay, chat_app(handler, on_end=ends)


@pytest.mark.parametrize(
    ("provider", "model", "transcript", "params"), CASES, ids=[case[2] for case in CASES]
)
def test_openai_sdk_rebuilds_the_stream_behind_the_proxy(
    provider: str, model: str, transcript: str, params: dict[str, Any]
) -> None:
    expected = direct(provider, model, transcript, params)
    ends = Ends()
    replay, app = proxy(provider, model, transcript, params, ends)
    with replay, running(app) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-fake-test-key")
        chunks = list(
            client.chat.completions.create(
                model="proxy",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        client.close()
        # Waited for: the replay server records the end after its last write, which the
        # proxy's client can outrun (it did on the fast path, under load)
        assert replay.wait_for_request_end(0).completed
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected.content
    refusal = "".join(c.choices[0].delta.refusal or "" for c in chunks if c.choices)
    assert refusal == expected.refusal
    # Each call's deltas as a client that concatenates them reads them: a name sent
    # twice (the Responses API repeats it when a call is done) would show here.
    calls: dict[int, dict[str, str]] = {}
    for c in chunks:
        for tool in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            call = calls.setdefault(tool.index, {"name": "", "arguments": ""})
            call["name"] += (tool.function.name or "") if tool.function else ""
            call["arguments"] += (tool.function.arguments or "") if tool.function else ""
    assert sorted(calls) == list(range(len(calls)))  # OpenAI's indices: 0, 1, ...
    got = [(call["name"], json.loads(call["arguments"])) for _, call in sorted(calls.items())]
    assert got == [(call.name, call.args) for call in expected.tool_calls]
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert len(finishes) == 1
    # Asked for, the usage chunk always comes: the provider's figures, or streamkit's
    # estimate where the provider reported none (the same the reducer bills).
    assert expected.usage is not None
    usage = chunks[-1].usage
    assert not chunks[-1].choices and usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        expected.usage.input_tokens,
        expected.usage.output_tokens,
    )
    (end,) = ends.wait()
    assert end.reason == "completed"
    assert end.usage == expected.usage
    assert end.cost is not None and end.cost.usage_source == expected.usage.source


@pytest.mark.parametrize(
    ("provider", "model", "transcript", "params"), TOOL_CASES, ids=[case[2] for case in TOOL_CASES]
)
def test_the_sdks_own_accumulator_rebuilds_each_backends_tool_calls(
    provider: str, model: str, transcript: str, params: dict[str, Any]
) -> None:
    """``client.chat.completions.stream()`` folds the deltas with the SDK's own rules
    (``accumulate_delta``: a list entry per ``index``, strings concatenated): the calls it
    ends with are the reducer's, name for name, argument text for argument text."""
    expected = direct(provider, model, transcript, params)
    assert expected.tool_calls
    ends = Ends()
    replay, app = proxy(provider, model, transcript, params, ends)
    with replay, running(app) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-fake-test-key")
        with client.chat.completions.stream(
            model="proxy", messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            completion = stream.get_final_completion()
        client.close()
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None
    got = [
        (call.id, call.function.name, call.function.arguments)
        for call in message.tool_calls
        if call.type == "function"
    ]
    assert len(got) == len(message.tool_calls) == len(expected.tool_calls)
    for (call_id, name, arguments), call in zip(got, expected.tool_calls, strict=True):
        assert name == call.name
        # The argument text as streamed; a call that streamed none is sent "{}", as
        # OpenAI sends for a call without arguments.
        assert arguments == (call.arguments or "{}")
        assert json.loads(arguments) == call.args
        if call.id is not None:
            assert call_id == call.id
    (end,) = ends.wait()
    assert end.reason == "completed"


def test_the_usage_chunk_is_estimated_when_the_provider_reports_none() -> None:
    """A server that never reports usage (vLLM without ``include_usage``): the client
    that asked still gets its usage chunk, with streamkit's estimate, and the end says
    it is an estimate."""
    expected = direct("openai", "qwen2.5-7b", "synthetic/vllm-chat-no-usage", NONE)
    assert expected.usage is not None and expected.usage.source == "estimated"
    ends = Ends()
    replay, app = proxy("openai", "qwen2.5-7b", "synthetic/vllm-chat-no-usage", NONE, ends)
    with replay, running(app) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-fake-test-key")
        with_usage = list(
            client.chat.completions.create(
                model="proxy", messages=PROMPT, stream=True, stream_options={"include_usage": True}
            )
        )
        without = list(client.chat.completions.create(model="proxy", messages=PROMPT, stream=True))
        client.close()
    usage = with_usage[-1].usage
    assert usage is not None and not with_usage[-1].choices
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (
        expected.usage.input_tokens,
        expected.usage.output_tokens,
        expected.usage.total_tokens,
    )
    assert all(chunk.usage is None for chunk in without)  # not asked: not sent
    first, _ = ends.wait(2)
    assert first.usage == expected.usage and first.usage.source == "estimated"


def test_a_stream_that_fails_midway_ends_with_a_safe_error_the_sdk_raises() -> None:
    ends = Ends()
    with ReplayServer("groq/chat-midstream-error-tool-use-failed") as replay:

        def handler(messages: list[dict[str, Any]]) -> sk.Stream:
            return sk.stream("groq", "m", messages, client=replay.client("groq"))

        with running(chat_app(handler, on_end=ends)) as url:
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-fake-test-key")
            stream = client.chat.completions.create(
                model="proxy", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            with pytest.raises(openai.APIError) as raised:
                list(stream)
            client.close()
    message = str(raised.value)
    assert "Traceback" not in message and "sk-fake" not in message
    (end,) = ends.wait()
    assert end.reason == "error"
    # What the failed request used is still accounted for.
    assert end.usage is not None and end.usage.source == "estimated"


def test_non_streaming_and_bad_bodies_are_refused_with_400() -> None:
    with running(chat_app(lambda messages: sk.stream("openai", "m", messages))) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-fake-test-key")
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(
                model="proxy", messages=[{"role": "user", "content": "hi"}]
            )
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="proxy", messages=[], stream=True)
        client.close()
