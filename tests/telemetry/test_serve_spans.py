"""The serve integration says who ended a request: a client that disconnects mid-stream
ends the request's span with ``disposed_by="disconnect"``, a stop request with
``"stop"`` (a real uvicorn server, a real HTTP client, the replay server behind)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from opentelemetry.trace import SpanKind
from reactivex import Observable

import streamkit as sk
from streamkit import ops
from streamkit.serve import chat_app
from streamkit.testing import ReplayServer
from tests.serve._harness import Ends, running
from tests.telemetry._harness import Telemetry, attrs

TRANSCRIPT = "openai/chat-text-usage"
BODY = {
    "id": "c",
    "messages": [{"id": "u", "role": "user", "parts": [{"type": "text", "text": "hi"}]}],
}


def _text_deltas(url: str, count: int, *, stop: bool = False) -> None:
    """Read ``count`` text deltas of a chat, then leave (or, with ``stop``, ask the
    server to stop it and read on to its end)."""
    seen = 0
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", f"{url}/api/chat", json=BODY) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("data: {") and json.loads(line[6:])["type"] == "text-delta":
                seen += 1
                if seen == count:
                    if not stop:
                        return  # leaves: closes the connection mid-stream
                    assert client.post(f"{url}/api/chat/stop", json={"id": "c"}).json() == {
                        "stopped": True
                    }


@pytest.mark.parametrize("shape", ["sync", "async", "share_replay"])
def test_a_client_disconnecting_mid_stream_is_disposed_by_disconnect(
    telemetry: Telemetry, shape: str
) -> None:
    ends = Ends()
    with ReplayServer(TRANSCRIPT, pace=0.05) as replay:

        def handler(messages: list[dict[str, Any]]) -> Observable[sk.Chunk]:
            client = replay.client("openai", async_=shape == "async")
            stream = sk.stream("openai", "gpt", messages, client=client)
            return stream.pipe(ops.share_replay()) if shape == "share_replay" else stream

        with running(chat_app(handler, on_end=ends)) as url:
            _text_deltas(url, 2)
            (end,) = ends.wait()
            replay.wait_for_request_end()
    assert end.reason == "disconnected"
    telemetry.wait_for(1, SpanKind.CLIENT)
    (span,) = telemetry.requests()
    telemetry.check_ended_once()
    a = attrs(span)
    assert a["streamkit.end.outcome"] == "disposed"
    assert a["streamkit.end.disposed_by"] == "disconnect"
    assert a["streamkit.chunks"] >= 2


def test_a_stop_request_is_disposed_by_stop(telemetry: Telemetry) -> None:
    ends = Ends()
    with ReplayServer(TRANSCRIPT, pace=0.05) as replay:

        def handler(messages: list[dict[str, Any]]) -> Observable[sk.Chunk]:
            return sk.stream("openai", "gpt", messages, client=replay.client("openai"))

        with running(chat_app(handler, on_end=ends)) as url:
            _text_deltas(url, 2, stop=True)
            (end,) = ends.wait()
            replay.wait_for_request_end()
    assert end.reason == "stopped"
    telemetry.wait_for(1, SpanKind.CLIENT)
    (span,) = telemetry.requests()
    telemetry.check_ended_once()
    assert attrs(span)["streamkit.end.outcome"] == "disposed"
    assert attrs(span)["streamkit.end.disposed_by"] == "stop"
