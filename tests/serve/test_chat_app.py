"""``chat_app``'s request side and its errors: messages in the UI message format
(``useChat``) and in OpenAI's format reach the handler as streamkit's neutral messages,
and from there the provider (per the replay server's records); a stream that fails
midway ends with the protocol's error event, a safe text and a clean end."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from reactivex import Observable

import streamkit as sk
from streamkit import ops
from streamkit.serve import chat_app, from_openai_messages, from_ui_messages
from streamkit.testing import ReplayServer
from tests.serve._harness import Ends, running

NEUTRAL = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "How do I cross the street?"},
    {"role": "assistant", "content": "Look both ways."},
    {"role": "user", "content": "And then?"},
]

# What useChat's default transport sends for that conversation (AI SDK 5 UIMessages):
# parts other than text (reasoning, tool calls, step markers) are not part of a prompt.
UI_MESSAGES = [
    {"id": "s", "role": "system", "parts": [{"type": "text", "text": "Be brief."}]},
    {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "How do I cross the street?"}]},
    {
        "id": "a1",
        "role": "assistant",
        "metadata": {"usage": {"output_tokens": 3}},
        "parts": [
            {"type": "step-start"},
            {"type": "reasoning", "text": "Simple question.", "state": "done"},
            {"type": "text", "text": "Look both ", "state": "done"},
            {
                "type": "tool-weather",
                "toolCallId": "c1",
                "state": "input-available",
                "input": {"city": "Paris"},
            },
            {"type": "text", "text": "ways.", "state": "done"},
        ],
    },
    {"id": "u2", "role": "user", "parts": [{"type": "text", "text": "And then?"}]},
]

OPENAI_MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "developer", "content": "Be brief."},
    {"role": "user", "content": [{"type": "text", "text": "How do I cross the street?"}]},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    {"role": "assistant", "content": "Look both ways."},
    {"role": "user", "content": "And then?"},
]


def test_ui_messages_become_neutral_messages() -> None:
    assert from_ui_messages(UI_MESSAGES) == NEUTRAL


def test_openai_messages_become_neutral_messages() -> None:
    assert from_openai_messages(OPENAI_MESSAGES) == NEUTRAL


@pytest.mark.parametrize(
    ("messages", "problem"),
    [
        (None, "non-empty list"),
        ([], "non-empty list"),
        ("hi", "non-empty list"),
        (["hi"], "message 0 must be an object"),
        ([{"role": "user", "parts": 3, "content": 3}], "a string or a list of parts"),
        ([{"role": "user", "parts": ["x"], "content": ["x"]}], "part must be an object"),
        ([{"role": "tool", "content": "x"}], "no message with text content"),
    ],
)
def test_bad_messages_are_refused_with_a_value_error(messages: Any, problem: str) -> None:
    for convert in (from_ui_messages, from_openai_messages):
        with pytest.raises(ValueError, match=problem):
            convert(messages)


def test_both_endpoints_hand_the_provider_the_converted_conversation() -> None:
    seen: list[list[dict[str, Any]]] = []
    with ReplayServer("openai/chat-text-usage") as replay:

        def handler(messages: list[dict[str, Any]]) -> sk.Stream:
            seen.append(messages)
            return sk.stream("openai", "gpt-4o-mini", messages, client=replay.client("openai"))

        with running(chat_app(handler)) as url:
            body = {"id": "chat-1", "messages": UI_MESSAGES, "trigger": "submit-message"}
            ui = httpx.post(f"{url}/api/chat", json=body, timeout=10)
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-fake-test-key")
            stream = client.chat.completions.create(
                model="proxy",
                messages=OPENAI_MESSAGES,
                stream=True,
            )
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            client.close()
        provider_bodies = [replay.wait_for_request_end(i).json for i in range(2)]
    assert ui.status_code == 200 and text
    assert seen == [NEUTRAL, NEUTRAL]
    assert [b["messages"] for b in provider_bodies] == [NEUTRAL, NEUTRAL]


def test_bad_ui_bodies_are_refused_with_400() -> None:
    with running(chat_app(lambda messages: sk.stream("openai", "m", messages))) as url:
        not_json = httpx.post(f"{url}/api/chat", content=b"{", timeout=10)
        no_messages = httpx.post(f"{url}/api/chat", json={"id": "c"}, timeout=10)
    assert not_json.status_code == no_messages.status_code == 400
    assert "messages" in no_messages.json()["error"]["message"]


def test_an_error_midway_ends_the_ui_stream_with_a_safe_error_event() -> None:
    ends = Ends()
    with ReplayServer("synthetic/anthropic-midstream-overloaded-error") as replay:

        def handler(messages: list[dict[str, Any]]) -> sk.Stream:
            return sk.stream("anthropic", "m", messages, client=replay.client("anthropic"))

        with running(chat_app(handler, on_end=ends)) as url:
            body = {"id": "c", "messages": UI_MESSAGES}
            response = httpx.post(f"{url}/api/chat", json=body, timeout=10)
    lines = [line for line in response.text.splitlines() if line.startswith("data: ")]
    events = [json.loads(line[6:]) for line in lines[:-1]]
    assert lines[-1] == "data: [DONE]"
    assert [e["type"] for e in events][-3:] == ["text-end", "message-metadata", "error"]
    assert any(e["type"] == "text-delta" for e in events)  # it failed midway
    error_text = events[-1]["errorText"]
    assert error_text and "Traceback" not in error_text and "sk-" not in error_text
    (end,) = ends.wait()
    assert end.reason == "error" and end.error is not None
    # Anthropic reported the input at message_start; the output is streamkit's count.
    assert end.usage is not None and end.usage.source == "mixed"
    assert events[-2]["messageMetadata"]["usage"] == end.usage.model_dump(exclude_none=True)


def test_a_stop_request_ends_the_chat_with_abort_and_is_told_apart_from_a_disconnect() -> None:
    ends = Ends()
    with ReplayServer("anthropic/messages-thinking", pace=0.03) as replay:

        def handler(messages: list[dict[str, Any]]) -> sk.Stream:
            return sk.stream("anthropic", "m", messages, client=replay.client("anthropic"))

        with running(chat_app(handler, on_end=ends)) as url, httpx.Client(timeout=10) as http:
            body = {"id": "chat-7", "messages": UI_MESSAGES}
            kinds: list[str] = []
            last = ""
            with http.stream("POST", f"{url}/api/chat", json=body) as response:
                for line in response.iter_lines():
                    if line.startswith("data: {"):
                        kinds.append(json.loads(line[6:])["type"])
                    if kinds.count("reasoning-delta") == 2 and "stop" not in kinds:
                        kinds.append("stop")
                        sent_when_stopped = replay.requests[0].events_sent
                        stopped = http.post(f"{url}/api/chat/stop", json={"id": "chat-7"})
                    last = line or last
            unknown = http.post(f"{url}/api/chat/stop", json={"id": "chat-7"})
        record = replay.wait_for_request_end()
    assert stopped.json() == {"stopped": True}
    assert unknown.status_code == 404  # that stream is over
    # The client read the stream to its end: the abort event, then [DONE].
    assert kinds[-1] == "abort" and last == "data: [DONE]"
    assert "finish" not in kinds
    (end,) = ends.wait()
    assert end.reason == "stopped" and end.usage is not None
    assert record.disconnected and not record.completed
    assert record.events_sent <= sent_when_stopped + 1


def test_a_stream_stopped_early_reports_streamkits_estimated_usage_and_cost() -> None:
    """OpenAI reports usage in its last chunk only: a stream stopped before it ends with
    streamkit's estimate (input from the request, output from the text received), sent
    to the client as message metadata before ``abort`` and reported to ``on_end`` with
    its cost, both saying ``estimated``."""
    ends = Ends()
    reports: list[sk.UsageReport] = []
    with ReplayServer("openai/chat-text-usage", pace=0.05) as replay:

        def handler(messages: list[dict[str, Any]]) -> Observable[sk.Chunk]:
            client = replay.client("openai")
            stream = sk.stream("openai", "gpt-4o", messages, client=client)
            return stream.pipe(ops.on_usage(reports.append))

        with running(chat_app(handler, on_end=ends)) as url, httpx.Client(timeout=10) as http:
            events: list[dict[str, Any]] = []
            with http.stream(
                "POST", f"{url}/api/chat", json={"id": "c9", "messages": UI_MESSAGES}
            ) as response:
                for line in response.iter_lines():
                    if line.startswith("data: {"):
                        events.append(json.loads(line[6:]))
                    if [e["type"] for e in events].count("text-delta") == 2:
                        http.post(f"{url}/api/chat/stop", json={"id": "c9"})
        record = replay.wait_for_request_end()
    assert record.disconnected and not record.completed  # stopped before the usage chunk
    kinds = [e["type"] for e in events]
    assert kinds[-2:] == ["message-metadata", "abort"] and "finish" not in kinds
    (end,) = ends.wait()
    assert end.reason == "stopped"
    usage = end.usage
    assert usage is not None and usage.source == "estimated"
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert events[-2]["messageMetadata"]["usage"] == usage.model_dump(exclude_none=True)
    assert events[-2]["messageMetadata"]["usage"]["source"] == "estimated"
    assert end.cost is not None and end.cost.usage_source == "estimated"
    # Priced like any streamkit request: at the model the provider said it ran.
    assert end.cost == sk.prices.cost_of("openai", "gpt-4o-2024-08-06", usage)
    assert end.cost.amount is not None and end.cost.amount > 0
    # The request's own record (what on_usage, a Ledger and telemetry read) names the
    # stop, and says the same.
    (report,) = reports
    assert report.outcome == "disposed" and report.attempts[0].disposed_by == "stop"
    assert report.usage == usage and report.cost == end.cost
