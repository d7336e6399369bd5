"""The ReplayServer's fault injection on the wire: what each ``Fault`` field sends,
checked over a bare socket or httpx (no SDK), so the matrix stands on known ground."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable

import httpx
import pytest

from streamkit.testing import Fault, ReplayServer, Reply, load_transcript
from streamkit.testing.replay import (
    FOREIGN_TEXT,
    MALFORMED_KINDS,
    error_body,
    error_event,
    event_text,
    large_event_text,
    malformed_event,
)

PATHS = {
    "chat.completions": "/v1/chat/completions",
    "responses": "/v1/responses",
    "messages": "/v1/messages",
    "streamGenerateContent": "/v1beta/models/m:streamGenerateContent?alt=sse",
    "v2/chat": "/v2/chat",
}
ONE_PER_API = [
    "openai/chat-text-usage",
    "groq/chat-text-x-groq-usage",
    "mistral/chat-text-usage",
    "anthropic/messages-text",
    "google/gemini-text",
    "cohere/chat-v2-text-usage",
    "openai/responses-text",
]


def post(
    server: ReplayServer, path: str, *, close: bool = True, delay_reads: float = 0.0
) -> tuple[int, dict[str, str], bytes, list[float]]:
    """One POST over a bare socket; read to EOF (or to the end of a chunked body when
    ``close`` is False). Returns status, headers, raw body and when each read came."""
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        connection = "close" if close else "keep-alive"
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
            f"Connection: {connection}\r\n\r\n{{}}".encode()
        )
        data, reads = b"", []
        while not data.endswith(b"\r\n0\r\n\r\n") or close:
            part = sock.recv(65536)
            if not part:
                break
            reads.append(time.monotonic())
            data += part
            if delay_reads:
                time.sleep(delay_reads)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body, reads


def dechunk(body: bytes) -> tuple[bytes, bool]:
    """The payload of a chunked body, and whether it ended with the last chunk."""
    out = b""
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return out, body == b"\r\n"
        out, body = out + body[:size], body[size + 2 :]
    return out, False


def test_no_fault_sends_the_transcript_as_recorded(replay: Callable[..., ReplayServer]) -> None:
    for name in ONE_PER_API:
        transcript = load_transcript(name)
        assert Fault().events_for(transcript) == transcript.events
        server = replay(name)
        _, _, body, _ = post(server, PATHS[transcript.api])
        assert dechunk(body) == (transcript.body_bytes, True)


def test_end_after_events_ends_the_body_properly_and_keeps_the_connection(
    replay: Callable[..., ReplayServer],
) -> None:
    transcript = load_transcript("anthropic/messages-text")
    server = replay(Reply(transcript, fault=Fault(end_after_events=3)))
    status, _, body, _ = post(server, "/v1/messages", close=False)
    payload, terminated = dechunk(body)
    assert status == 200 and terminated
    assert payload == "".join(transcript.events[:3]).encode()
    record = server.wait_for_request_end()
    assert record.completed and record.events_sent == record.events_total == 3


def test_close_after_events_differs_from_end_after_events(
    replay: Callable[..., ReplayServer],
) -> None:
    server = replay(Reply("anthropic/messages-text", fault=Fault(close_after_events=3)))
    _, _, body, _ = post(server, "/v1/messages")
    assert dechunk(body)[1] is False  # cut: no last chunk


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
@pytest.mark.parametrize("name", ONE_PER_API)
def test_malformed_event_is_inserted_at_its_position(
    name: str, kind: str, replay: Callable[..., ReplayServer]
) -> None:
    transcript = load_transcript(name)
    fault = Fault(malformed=(2, kind))  # type: ignore[arg-type]
    events = fault.events_for(transcript)
    inserted = malformed_event(transcript, kind)  # type: ignore[arg-type]
    assert events == [*transcript.events[:2], inserted, *transcript.events[2:]]
    assert inserted.endswith("\n\n")
    data = "\n".join(line[6:] for line in inserted.splitlines() if line.startswith("data: "))
    if kind == "broken_json":
        with pytest.raises(json.JSONDecodeError):
            json.loads(data)
    else:
        assert isinstance(json.loads(data), dict)
        # Neither kind carries text the stream's own API would read.
        assert event_text(inserted, transcript.api) == ""
    if kind == "foreign_event":
        assert FOREIGN_TEXT in inserted
    server = replay(Reply(transcript, fault=fault))
    _, _, body, _ = post(server, PATHS[transcript.api])
    assert dechunk(body) == ("".join(events).encode(), True)


def test_malformed_shapes_follow_each_api() -> None:
    anthropic = load_transcript("anthropic/messages-text")
    openai = load_transcript("openai/chat-text-usage")
    assert malformed_event(anthropic, "broken_json").startswith("event: content_block_delta\n")
    assert malformed_event(anthropic, "foreign_event").startswith("data: ")  # OpenAI-shaped
    assert malformed_event(openai, "foreign_event").startswith("event: content_block_delta\n")
    unknown = json.loads(malformed_event(openai, "unknown_event")[6:])
    first = json.loads(openai.events[0][6:])
    assert unknown["id"] == first["id"] and unknown["model"] == first["model"]
    assert unknown["choices"] == []


@pytest.mark.parametrize(
    ("name", "prefix", "marker"),
    [
        ("anthropic/messages-text", "event: error\n", '"overloaded_error"'),
        ("openai/chat-text-usage", 'data: {"error":', '"server_error"'),
        ("mistral/chat-text-usage", 'data: {"error":', '"server_error"'),
        ("groq/chat-text-x-groq-usage", "event: error\n", '"internal_server_error"'),
        ("google/gemini-text", 'data: {"error":', '"UNAVAILABLE"'),
        ("openai/responses-text", "event: error\n", '"server_error"'),
    ],
)
def test_error_event_in_each_providers_format(
    name: str, prefix: str, marker: str, replay: Callable[..., ReplayServer]
) -> None:
    transcript = load_transcript(name)
    event = error_event(transcript)
    assert event.startswith(prefix) and marker in event
    fault = Fault(error_event_after=2)
    assert fault.events_for(transcript) == [*transcript.events[:2], event]
    server = replay(Reply(transcript, fault=fault))
    _, _, body, _ = post(server, PATHS[transcript.api])
    assert dechunk(body) == ("".join(transcript.events[:2]).encode() + event.encode(), True)


@pytest.mark.parametrize(
    ("name", "status", "check"),
    [
        ("openai/chat-text-usage", 429, lambda b: b["error"]["code"] == "rate_limit_exceeded"),
        ("anthropic/messages-text", 529, lambda b: b["error"]["type"] == "overloaded_error"),
        ("anthropic/messages-text", 429, lambda b: b["error"]["type"] == "rate_limit_error"),
        ("mistral/chat-text-usage", 503, lambda b: b["object"] == "error"),
        ("groq/chat-text-x-groq-usage", 500, lambda b: b["error"]["type"] == "server_error"),
        ("google/gemini-text", 503, lambda b: b["error"]["status"] == "UNAVAILABLE"),
        ("cohere/chat-v2-text-usage", 500, lambda b: "message" in b),
    ],
)
def test_http_error_with_headers_and_the_providers_body(
    name: str,
    status: int,
    check: Callable[[dict[str, object]], bool],
    replay: Callable[..., ReplayServer],
) -> None:
    transcript = load_transcript(name)
    fault = Fault(http_error=status, headers={"retry-after": "7"})
    server = replay(Reply(transcript, fault=fault))
    got, headers, body, _ = post(server, PATHS[transcript.api])
    assert got == status
    assert headers["retry-after"] == "7" and headers["content-type"] == "application/json"
    assert body == error_body(transcript, status)
    assert check(json.loads(body))
    record = server.wait_for_request_end()
    assert record.status == status and record.events_total == 0 and record.fault == fault


def test_529_says_overloaded(replay: Callable[..., ReplayServer]) -> None:
    server = replay(Reply("anthropic/messages-text", fault=Fault(http_error=529)))
    response = httpx.post(server.url + "/v1/messages", json={})
    assert response.status_code == 529 and response.reason_phrase == "Overloaded"


def test_large_event_is_a_valid_copy_of_the_first_text_delta(
    replay: Callable[..., ReplayServer],
) -> None:
    for name in ONE_PER_API:
        transcript = load_transcript(name)
        events = Fault(large_event=1_000_000).events_for(transcript)
        first = next(i for i, e in enumerate(transcript.events) if event_text(e, transcript.api))
        assert events[: first + 1] == transcript.events[: first + 1]
        assert events[first + 2 :] == transcript.events[first + 1 :]
        assert event_text(events[first + 1], transcript.api) == large_event_text(1_000_000)
    server = replay(Reply("openai/chat-text-usage", fault=Fault(large_event=3_000_000)))
    response = httpx.post(server.url + "/v1/chat/completions", json={}, timeout=10)
    assert len(response.content) > 3_000_000


def test_trickle_sends_one_byte_at_a_time(replay: Callable[..., ReplayServer]) -> None:
    transcript = load_transcript("anthropic/messages-text")
    server = replay(Reply(transcript, fault=Fault(trickle=0.002, trickle_bytes=40)))
    started = time.monotonic()
    _, _, body, reads = post(server, "/v1/messages", delay_reads=0.0)
    assert dechunk(body) == (transcript.body_bytes, True)
    # 40 bytes 2 ms apart: at least ~80 ms, read in many small pieces.
    assert reads[-1] - started >= 0.07
    assert len(reads) >= 20


def test_keep_alive_false_waits_for_the_client_to_close(
    replay: Callable[..., ReplayServer],
) -> None:
    server = replay("openai/chat-text-usage")
    with httpx.Client() as client:
        response = client.post(server.url + "/v1/chat/completions", json={})
        assert response.headers["connection"] == "close"
    assert server.wait_for_request_end().completed
    deadline = time.monotonic() + 2
    while server.open_connections and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.open_connections == 0
    # A client that does not close holds the connection: that is what is counted.
    sock = socket.create_connection((server.host, server.port))
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
    server.wait_for_request_end(1)
    assert server.open_connections == 1
    sock.close()


def test_each_request_meets_its_own_fault(replay: Callable[..., ReplayServer]) -> None:
    server = replay()
    faults = [Fault(http_error=503), Fault(close_after_events=2), None]
    server.push(*(Reply("openai/chat-text-usage", fault=fault) for fault in faults))
    statuses = [post(server, "/v1/chat/completions")[0] for _ in faults]
    assert statuses == [503, 200, 200]
    assert [r.fault for r in server.requests] == faults
    assert [r.completed for r in server.requests] == [True, False, True]


def test_faults_are_hashable_and_validated() -> None:
    assert hash(Fault(headers={"b": "2", "a": "1"})) == hash(
        Fault(headers=(("a", "1"), ("b", "2")))
    )
    assert Fault(headers={"retry-after": "1"}).header_items() == (("retry-after", "1"),)
    bad: list[dict[str, object]] = [
        {"end_after_events": -1},
        {"error_event_after": -2},
        {"malformed": (1, "nonsense")},
        {"malformed": (-1, "broken_json")},
        {"large_event": 0},
        {"trickle": -0.1},
        {"trickle_bytes": -1},
        {"http_error": 200},
        {"http_error": 503, "close_after_events": 2},
        {"http_error": 503, "trickle": 0.0},
    ]
    for kwargs in bad:
        with pytest.raises(ValueError):
            Fault(**kwargs)  # type: ignore[arg-type]
