"""The official ``openai`` SDK reads ``/v1/chat/completions`` served from every provider's
recorded stream (a normalizing proxy): same text, tool calls, usage as the stream behind."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

import streamkit as sk
from streamkit import ops
from streamkit.serve import chat_app
from streamkit.testing import ReplayServer
from tests.serve._harness import Ends, running

CASES = [
    ("openai", "gpt-4o-mini", "openai/chat-text-usage"),
    ("openai", "gpt-4o-mini", "openai/chat-parallel-tool-calls-usage"),
    ("openai", "gpt-4o-mini", "openai/chat-refusal-structured-output"),
    ("anthropic", "claude-sonnet-4-5", "anthropic/messages-text"),
    ("anthropic", "claude-sonnet-4-5", "anthropic/messages-thinking"),
    ("anthropic", "claude-sonnet-4-5", "anthropic/messages-parallel-tool-use"),
    ("google", "gemini-2.5-flash", "google/gemini-text"),
    ("google", "gemini-2.5-flash", "google/gemini-parallel-function-calls"),
    ("google", "gemini-2.5-flash", "google/gemini-thinking-thoughts"),
    ("groq", "llama-3.1-8b-instant", "groq/chat-text-x-groq-usage"),
    ("groq", "openai/gpt-oss-20b", "groq/chat-tool-call-reasoning-usage"),
    ("mistral", "mistral-small-latest", "mistral/chat-text-usage"),
    ("mistral", "mistral-small-latest", "mistral/chat-tool-call-usage"),
    ("cohere", "command-a-03-2025", "cohere/chat-v2-text-usage"),
]


def direct(provider: str, model: str, transcript: str) -> sk.CallResponse:
    with ReplayServer(transcript) as server:
        stream = sk.stream(provider, model, "hi", client=server.client(provider))
        response: sk.CallResponse = stream.pipe(ops.to_call_response()).run()
        return response


@pytest.mark.parametrize(("provider", "model", "transcript"), CASES, ids=[c[2] for c in CASES])
def test_openai_sdk_rebuilds_the_stream_behind_the_proxy(
    provider: str, model: str, transcript: str
) -> None:
    expected = direct(provider, model, transcript)
    ends = Ends()
    with ReplayServer(transcript) as replay:

        def handler(messages: list[dict[str, Any]]) -> sk.Stream:
            return sk.stream(provider, model, messages, client=replay.client(provider))

        with running(chat_app(handler, on_end=ends)) as url:
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
        assert replay.requests[0].completed
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected.content
    refusal = "".join(c.choices[0].delta.refusal or "" for c in chunks if c.choices)
    assert refusal == expected.refusal
    calls: dict[int, dict[str, str]] = {}
    for c in chunks:
        for tool in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            call = calls.setdefault(tool.index, {"name": "", "arguments": ""})
            call["name"] += (tool.function.name or "") if tool.function else ""
            call["arguments"] += (tool.function.arguments or "") if tool.function else ""
    got = [
        (call["name"], json.loads(call["arguments"] or "{}")) for _, call in sorted(calls.items())
    ]
    assert got == [(call.name, call.args) for call in expected.tool_calls]
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert len(finishes) == 1
    usage = chunks[-1].usage
    if expected.usage is None:
        assert usage is None
    else:
        assert usage is not None
        assert (usage.prompt_tokens, usage.completion_tokens) == (
            expected.usage.input_tokens,
            expected.usage.output_tokens,
        )
    (end,) = ends.wait()
    assert end.reason == "completed"
    assert end.usage == expected.usage


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
