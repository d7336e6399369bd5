"""The Vercel AI SDK's own client (the ``ai`` npm package, under node) rebuilds the same
message from ``/api/chat`` as streamkit's reducer does from the provider stream: its
``DefaultChatTransport`` + ``readUIMessageStream``, and ``AbstractChat``, the engine
``useChat`` binds to React (``js/use_chat.mjs``), with its ``stop()``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import streamkit as sk
from streamkit import ops
from streamkit.serve import chat_app
from streamkit.testing import ReplayServer
from tests.serve._harness import Ends, running

JS = Path(__file__).parent / "js"


@pytest.fixture(scope="module")
def node_client() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm are not installed: the ai package's client cannot run")
    if not (JS / "node_modules" / "ai" / "package.json").is_file():
        # Once per checkout (node_modules/ is git-ignored), the exact versions of the
        # committed lock file, from npm's cache when it has them.
        command = ["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline"]
        installed = subprocess.run(command, cwd=JS, capture_output=True, text=True, timeout=300)
        if installed.returncode != 0:
            tail = (installed.stderr or installed.stdout).strip().splitlines()[-3:]
            pytest.skip(f"npm ci could not install the ai package: {' / '.join(tail)}")
    return JS


CASES = [
    ("openai", "gpt-4o-mini", "openai/chat-text-usage"),
    ("anthropic", "claude-sonnet-4-5", "anthropic/messages-thinking"),
    ("anthropic", "claude-sonnet-4-5", "anthropic/messages-parallel-tool-use"),
    ("google", "gemini-2.5-flash", "google/gemini-parallel-function-calls"),
    ("groq", "openai/gpt-oss-20b", "groq/chat-tool-call-reasoning-usage"),
]


@pytest.mark.parametrize(("provider", "model", "transcript"), CASES, ids=[c[2] for c in CASES])
def test_ai_sdk_rebuilds_the_message(
    node_client: Path, provider: str, model: str, transcript: str
) -> None:
    ends = Ends()
    with ReplayServer(transcript) as replay:

        def handler(messages: list[dict[str, Any]]) -> sk.Stream:
            return sk.stream(provider, model, messages, client=replay.client(provider))

        expected = handler([{"role": "user", "content": "hi"}]).pipe(ops.to_call_response()).run()
        with running(chat_app(handler, on_end=ends)) as url:
            result = subprocess.run(
                ["node", str(node_client / "read_chat.mjs"), f"{url}/api/chat", "hi"],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
    output = json.loads(result.stdout)
    assert output["errors"] == []
    message = output["message"]
    assert message["role"] == "assistant"
    parts = message["parts"]
    text = "".join(p["text"] for p in parts if p["type"] == "text")
    assert text == expected.content + expected.refusal
    reasoning = "".join(p["text"] for p in parts if p["type"] == "reasoning")
    assert reasoning == expected.thinking
    tools = [p for p in parts if p["type"].startswith("tool-") or p["type"] == "dynamic-tool"]
    assert [(p["type"].removeprefix("tool-"), p["input"]) for p in tools] == [
        (call.name, call.args) for call in expected.tool_calls
    ]
    assert all(p["state"] == "input-available" for p in tools)
    if expected.usage is not None:
        assert message["metadata"]["usage"]["output_tokens"] == expected.usage.output_tokens
    assert ends.wait()[0].reason == "completed"


def run_use_chat(js: Path, url: str, *extra: str) -> dict[str, Any]:
    command = ["node", str(js / "use_chat.mjs"), f"{url}/api/chat", "hi", *extra]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    output: dict[str, Any] = json.loads(result.stdout)
    return output


def test_use_chats_engine_gets_the_whole_message_unchanged(node_client: Path) -> None:
    ends = Ends()
    with ReplayServer("anthropic/messages-thinking") as replay:

        def handler(messages: list[dict[str, Any]]) -> sk.Stream:
            client = replay.client("anthropic")
            return sk.stream("anthropic", "claude-sonnet-4-5", messages, client=client)

        expected = handler([{"role": "user", "content": "hi"}]).pipe(ops.to_call_response()).run()
        with running(chat_app(handler, on_end=ends)) as url:
            output = run_use_chat(node_client, url)
        sent = replay.wait_for_request_end().json
    assert output["errors"] == [] and output["status"] == "ready"
    assert output["finish"] == {"isAbort": False, "isDisconnect": False, "isError": False}
    user, assistant = output["messages"]
    assert user["parts"] == [{"type": "text", "text": "hi"}]
    assert sent["messages"] == [{"role": "user", "content": "hi"}]  # useChat's body, converted
    kinds = [p["type"] for p in assistant["parts"]]
    assert kinds == ["step-start", "reasoning", "text"]
    reasoning, text = assistant["parts"][1:]
    assert (reasoning["text"], text["text"]) == (expected.thinking, expected.content)
    assert reasoning["state"] == text["state"] == "done"
    assert expected.usage is not None
    assert assistant["metadata"]["usage"]["output_tokens"] == expected.usage.output_tokens
    assert ends.wait()[0].reason == "completed"


def test_use_chats_stop_closes_the_provider_connection_mid_stream(
    node_client: Path,
) -> None:
    ends = Ends()
    with ReplayServer("anthropic/messages-thinking", pace=0.03) as replay:

        def handler(messages: list[dict[str, Any]]) -> sk.Stream:
            return sk.stream("anthropic", "m", messages, client=replay.client("anthropic"))

        with running(chat_app(handler, on_end=ends)) as url:
            output = run_use_chat(node_client, url, "stop")
            (end,) = ends.wait()
        record = replay.wait_for_request_end()
    assert output["finish"]["isAbort"] is True and output["status"] == "ready"
    assert output["messages"][-1]["role"] == "assistant"  # what had streamed in is kept
    # stop() aborts the request: the server sees the client go, and the provider stops.
    assert end.reason == "disconnected" and end.usage is not None
    assert record.disconnected and not record.completed
    assert record.events_sent < record.events_total // 2
