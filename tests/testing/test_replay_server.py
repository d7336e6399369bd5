"""ReplayServer: real HTTP on 127.0.0.1, real SDK clients, no mocks."""

from __future__ import annotations

import inspect
import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from streamkit.testing import (
    FAKE_API_KEY,
    Fault,
    RecordedRequest,
    ReplayServer,
    Reply,
    Transcript,
    load_transcript,
    transcript_names,
)
from streamkit.testing.replay import path_fits_api

PATH_FOR_API = {
    "chat.completions": "/v1/chat/completions",
    "responses": "/v1/responses",
    "messages": "/v1/messages?beta=true",
    "streamGenerateContent": "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
    "v2/chat": "/v2/chat",
}

TEN_EVENTS = Transcript.from_events(
    "openai",
    "chat.completions",
    [f'data: {{"n":{i}}}' for i in range(9)] + ["data: [DONE]"],
    name="test/ten-events",
)


def _server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("streamkit-replay")]


@pytest.fixture(autouse=True)
def _no_thread_leaks() -> Iterator[None]:
    yield
    deadline = time.monotonic() + 2.0
    while _server_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _server_threads() == []


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer() as s:
        yield s
    assert s.open_connections == 0


# ------------------------------------------------------------------- helpers
def raw_post(
    server: ReplayServer,
    path: str,
    body: bytes = b"{}",
    *,
    method: str = "POST",
    extra_headers: str = "",
) -> tuple[int, dict[str, str], bytes, BaseException | None]:
    """One request over a bare socket with ``Connection: close``; read until EOF."""
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        request = (
            f"{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra_headers}\r\n"
        ).encode() + body
        sock.sendall(request)
        data = b""
        error: BaseException | None = None
        while True:
            try:
                part = sock.recv(65536)
            except OSError as exc:
                error = exc
                break
            if not part:
                break
            data += part
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines[0] else 0
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest, error


def parse_chunked(raw: bytes) -> tuple[list[bytes], bool]:
    """Split a chunked body into its chunks; the flag says whether it was terminated."""
    chunks: list[bytes] = []
    while raw:
        size_line, sep, raw = raw.partition(b"\r\n")
        if not sep:
            return chunks, False
        size = int(size_line, 16)
        if size == 0:
            return chunks, raw == b"\r\n"
        if len(raw) < size + 2:
            return chunks, False
        chunks.append(raw[:size])
        assert raw[size : size + 2] == b"\r\n"
        raw = raw[size + 2 :]
    return chunks, False


def chunk_times(url: str, path: str = "/v1/chat/completions") -> tuple[float, list[float]]:
    """POST, then time (monotonic) the headers and each SSE event as it arrives."""
    events: list[float] = []
    with httpx.Client(timeout=5) as client:
        t0 = time.monotonic()
        with client.stream("POST", url + path, json={}) as resp:
            headers_at = time.monotonic() - t0
            buf = b""
            for part in resp.iter_raw():
                buf += part
                while b"\n\n" in buf:
                    _, _, buf = buf.partition(b"\n\n")
                    events.append(time.monotonic() - t0)
    return headers_at, events


# ---------------------------------------------------------------- lifecycle
def test_binds_loopback_only(server: ReplayServer) -> None:
    assert server.host == "127.0.0.1"
    assert server.url == f"http://127.0.0.1:{server.port}"
    assert server.port > 0
    # Another loopback address on the same port is refused: not bound to 0.0.0.0.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", server.port), timeout=1).close()


def test_start_close_lifecycle() -> None:
    s = ReplayServer("openai/chat-text-usage")
    with pytest.raises(RuntimeError):
        _ = s.url
    s.start()
    with pytest.raises(RuntimeError):
        s.start()
    assert httpx.post(s.url + "/v1/chat/completions", json={}).status_code == 200
    s.close()
    s.close()  # idempotent
    assert s.threads == [] and s.open_connections == 0
    with pytest.raises(RuntimeError):
        s.start()


def test_close_drops_every_connection_and_joins_threads() -> None:
    server = ReplayServer("anthropic/messages-text").start()
    idle = [httpx.Client(timeout=5) for _ in range(3)]
    for c in idle:  # keep-alive connections the server now holds
        assert c.post(server.url + "/v1/messages", json={}).status_code == 200
    server.push(Reply("anthropic/messages-thinking", pace=0.05))
    reading: dict[str, Any] = {}

    def slow_reader() -> None:
        try:
            with (
                httpx.Client(timeout=5) as c,
                c.stream("POST", server.url + "/v1/messages", json={}) as resp,
            ):
                for _ in resp.iter_raw():
                    pass
        except Exception as exc:  # the server going away mid-stream
            reading["error"] = exc

    reader = threading.Thread(target=slow_reader)
    reader.start()
    deadline = time.monotonic() + 2
    # A connection counts as open a moment before its thread is listed: wait for both.
    while (server.open_connections < 4 or len(server.threads) < 5) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.open_connections == 4
    assert len(server.threads) == 5  # the accept loop and one per connection
    t0 = time.monotonic()
    server.close()
    # a hang guard, not a speed claim: close() shuts sockets down rather than waiting
    # for the 5 s client timeouts or the paced reply's end
    assert time.monotonic() - t0 < 4.0
    assert server.threads == []
    assert server.open_connections == 0
    reader.join(5)
    assert not reader.is_alive()
    assert isinstance(reading.get("error"), httpx.HTTPError)
    streaming = server.requests[-1]
    assert streaming.finished and not streaming.completed
    assert streaming.events_sent < streaming.events_total
    for c in idle:
        c.close()


# ------------------------------------------------------------ serving bytes
@pytest.mark.parametrize("name", transcript_names())
def test_every_transcript_is_served_byte_for_byte(server: ReplayServer, name: str) -> None:
    t = load_transcript(name)
    server.push(name)
    with (
        httpx.Client(timeout=5) as client,
        client.stream("POST", server.url + PATH_FOR_API[t.api], json={"model": "m"}) as resp,
    ):
        raw = b"".join(resp.iter_raw())
        assert resp.status_code == t.status
        assert resp.headers["content-type"] == t.headers["content-type"]
        assert resp.headers["x-streamkit-transcript"] == name
        if t.is_stream:
            assert resp.headers["transfer-encoding"] == "chunked"
            assert "content-length" not in resp.headers
        else:
            assert resp.headers["content-length"] == str(len(t.body_bytes))
    assert raw == t.body_bytes
    record = server.wait_for_request_end()
    assert record.completed and record.events_sent == record.events_total == len(t.events)
    assert record.bytes_sent == len(t.body_bytes)


@pytest.mark.parametrize("name", [n for n in transcript_names() if load_transcript(n).is_stream])
def test_each_event_is_its_own_chunk(server: ReplayServer, name: str) -> None:
    t = load_transcript(name)
    server.push(name)
    status, _, raw, error = raw_post(server, PATH_FOR_API[t.api])
    assert error is None and status == t.status
    chunks, terminated = parse_chunked(raw)
    assert terminated
    assert chunks == [e.encode() for e in t.events]


def test_keep_alive_reuses_one_connection(server: ReplayServer) -> None:
    server.default = Reply("openai/chat-text-usage")
    with httpx.Client(timeout=5) as client:
        for _ in range(3):
            r = client.post(server.url + "/v1/chat/completions", json={"n": 1})
            assert r.content == load_transcript("openai/chat-text-usage").body_bytes
        assert server.open_connections == 1
        assert len(server.requests) == 3


# ------------------------------------------------------------ path matching
def test_path_mismatch_is_a_loud_404(server: ReplayServer) -> None:
    server.push("openai/chat-text-usage")
    r = httpx.post(server.url + "/v1/messages", json={})
    assert r.status_code == 404
    error = r.json()["error"]
    assert error["type"] == "streamkit_replay_path_mismatch"
    assert "openai/chat-text-usage" in error["message"]
    assert "/chat/completions" in error["message"]
    record = server.wait_for_request_end()
    assert record.status == 404 and record.error and record.events_sent == 0


def test_path_mismatch_through_an_sdk() -> None:
    anthropic = pytest.importorskip("anthropic")
    with ReplayServer("openai/chat-text-usage") as server:
        client = server.client("anthropic")
        with pytest.raises(anthropic.NotFoundError):
            client.messages.create(
                model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}], stream=True
            )


@pytest.mark.parametrize(
    ("path", "api", "fits"),
    [
        ("/v1/chat/completions", "chat.completions", True),
        ("/openai/deployments/d/chat/completions?api-version=2024-10-21", "chat.completions", True),
        ("/openai/v1/chat/completions", "chat.completions", True),
        ("/v1/chat/completions/", "chat.completions", True),
        ("/v1/responses", "chat.completions", False),
        ("/v1/responses", "responses", True),
        ("/v1/messages?beta=true", "messages", True),
        ("/v1/messages/count_tokens", "messages", False),
        ("/v1beta/models/g:streamGenerateContent?alt=sse", "streamGenerateContent", True),
        ("/v1/models/g:generateContent", "streamGenerateContent", True),
        ("/v1/models/g", "streamGenerateContent", False),
        ("/v2/chat", "v2/chat", True),
        ("/v1/chat", "v2/chat", False),
        ("/anything", "some-future-api", True),
    ],
)
def test_path_rules(path: str, api: str, fits: bool) -> None:
    assert path_fits_api(path, api) is fits


def test_only_post_is_answered(server: ReplayServer) -> None:
    server.default = Reply("openai/chat-text-usage")
    r = httpx.get(server.url + "/v1/chat/completions")
    assert r.status_code == 405
    assert r.json()["error"]["type"] == "streamkit_replay_method_not_allowed"


# ------------------------------------------------------------- FIFO/default
def test_fifo_then_default_then_500(server: ReplayServer) -> None:
    tool = load_transcript("openai/chat-tool-call-gpt-4o-mini")
    server.push("openai/chat-text-usage")
    server.push(tool, Reply("openai/chat-parallel-tool-calls-usage"))
    assert server.queued == 3
    url = server.url + "/v1/chat/completions"
    with httpx.Client(timeout=5) as client:
        served = [client.post(url, json={}).headers["x-streamkit-transcript"] for _ in range(3)]
        assert served == [
            "openai/chat-text-usage",
            "openai/chat-tool-call-gpt-4o-mini",
            "openai/chat-parallel-tool-calls-usage",
        ]
        assert server.queued == 0
        r = client.post(url, json={})
        assert r.status_code == 500
        assert r.json()["error"]["type"] == "streamkit_replay_no_reply"
        server.default = Reply("openai/chat-refusal-structured-output")
        server.push("openai/chat-text-usage")
        served = [client.post(url, json={}).headers["x-streamkit-transcript"] for _ in range(3)]
        assert served == [
            "openai/chat-text-usage",
            "openai/chat-refusal-structured-output",
            "openai/chat-refusal-structured-output",
        ]
    assert [r.transcript for r in server.requests] == [
        "openai/chat-text-usage",
        "openai/chat-tool-call-gpt-4o-mini",
        "openai/chat-parallel-tool-calls-usage",
        None,
        "openai/chat-text-usage",
        "openai/chat-refusal-structured-output",
        "openai/chat-refusal-structured-output",
    ]
    assert server.requests[3].status == 500


def test_default_accepts_name_transcript_or_reply() -> None:
    for default in (
        "openai/chat-text-usage",
        load_transcript("openai/chat-text-usage"),
        Reply("openai/chat-text-usage", pace=0),
    ):
        with ReplayServer(default) as server:
            r = httpx.post(server.url + "/v1/chat/completions", json={})
            assert r.status_code == 200
            assert r.headers["x-streamkit-transcript"] == "openai/chat-text-usage"


def test_reply_status_override(server: ReplayServer) -> None:
    server.push(Reply("openai/chat-error-404-model-not-found", status=503))
    r = httpx.post(server.url + "/v1/chat/completions", json={})
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "model_not_found"


def test_in_memory_transcript_is_served_as_given(server: ReplayServer) -> None:
    t = Transcript.from_events(
        "openai", "chat.completions", ["data: 1\n\ndata: 2\n\n", "", "data: 3"], terminate=False
    )
    server.push(t)
    status, _, raw, _ = raw_post(server, "/v1/chat/completions")
    chunks, terminated = parse_chunked(raw)
    assert status == 200 and terminated
    assert chunks == [b"data: 1\n\ndata: 2\n\n", b"data: 3"]  # an empty item is no chunk
    assert server.wait_for_request_end().events_sent == 3


# --------------------------------------------------------------------- pace
def test_pacing_spaces_events() -> None:
    # Lower bounds only: a loaded machine can make gaps longer, never shorter.
    pace = 0.05
    with ReplayServer(TEN_EVENTS, pace=pace) as server:
        t0 = time.monotonic()
        _, times = chunk_times(server.url)
        assert len(times) == 10
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= pace * 0.8, gaps
        assert time.monotonic() - t0 >= 9 * pace
        record = server.wait_for_request_end()
        assert record.completed


def test_a_reply_without_pace_overrides_a_slow_server() -> None:
    # The server's pace would take 9 * 0.5 s; an unpaced reply ends long before that
    # (the margin is wide enough for a loaded machine: this is not a speed claim).
    with ReplayServer(TEN_EVENTS, pace=0.5) as server:
        server.push(Reply(TEN_EVENTS, pace=0))
        t0 = time.monotonic()
        _, times = chunk_times(server.url)
        assert len(times) == 10
        assert time.monotonic() - t0 < 9 * 0.5 / 2


def test_reply_pace_overrides_a_fast_server() -> None:
    with ReplayServer() as server:
        server.push(Reply(TEN_EVENTS, pace=0.03))
        _, times = chunk_times(server.url)
        assert times[-1] - times[0] >= 9 * 0.03 * 0.8


# ------------------------------------------------------------------- faults
def test_fault_close_after_events_cuts_the_stream_cleanly(server: ReplayServer) -> None:
    server.push(Reply("openai/chat-text-usage", fault=Fault(close_after_events=3)))
    status, _, raw, error = raw_post(server, "/v1/chat/completions")
    assert status == 200
    assert error is None  # FIN, not RST
    chunks, terminated = parse_chunked(raw)
    assert not terminated
    assert chunks == [e.encode() for e in load_transcript("openai/chat-text-usage").events[:3]]
    record = server.wait_for_request_end()
    assert record.events_sent == 3 and record.events_total == 14
    assert not record.completed and not record.disconnected
    assert record.fault == Fault(close_after_events=3)


def test_fault_close_after_events_through_httpx(server: ReplayServer) -> None:
    server.push(Reply("anthropic/messages-text", fault=Fault(close_after_events=2)))
    body = b""
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.Client(timeout=5) as client,
        client.stream("POST", server.url + "/v1/messages", json={}) as resp,
    ):
        for part in resp.iter_raw():
            body += part
    events = load_transcript("anthropic/messages-text").events
    assert body == "".join(events[:2]).encode()


def test_fault_close_after_all_events_still_drops_the_end_of_body(server: ReplayServer) -> None:
    t = load_transcript("google/gemini-text")
    server.push(Reply(t, fault=Fault(close_after_events=99)))
    _, _, raw, error = raw_post(server, PATH_FOR_API[t.api])
    chunks, terminated = parse_chunked(raw)
    assert chunks == [e.encode() for e in t.events] and not terminated and error is None
    assert server.wait_for_request_end().completed  # every event was sent


def test_fault_reset_after_events_sends_rst(server: ReplayServer) -> None:
    server.push(Reply("openai/chat-text-usage", fault=Fault(reset_after_events=2)))
    _, _, raw, error = raw_post(server, "/v1/chat/completions")
    assert isinstance(error, ConnectionResetError)
    chunks, terminated = parse_chunked(raw)
    assert not terminated and len(chunks) <= 2
    record = server.wait_for_request_end()
    assert record.events_sent == 2 and not record.completed
    assert server.wait_until_idle()
    assert server.open_connections == 0


def test_wait_until_idle_times_out_while_a_connection_is_open(server: ReplayServer) -> None:
    with socket.create_connection((server.host, server.port)):
        deadline = time.monotonic() + 5
        while server.open_connections != 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert server.open_connections == 1
        assert server.wait_until_idle(timeout=0.05) is False
    assert server.wait_until_idle()


def test_fault_reset_through_httpx(server: ReplayServer) -> None:
    server.push(Reply("openai/chat-text-usage", fault=Fault(reset_after_events=0)))
    with (
        pytest.raises(httpx.TransportError),
        httpx.Client(timeout=5) as client,
        client.stream("POST", server.url + "/v1/chat/completions", json={}) as resp,
    ):
        b"".join(resp.iter_raw())


def test_fault_stall_before_first_event() -> None:
    with ReplayServer(Reply(TEN_EVENTS, fault=Fault(stall_before=0.3))) as server:
        headers_at, times = chunk_times(server.url)
        assert headers_at < 0.2  # the headers come at once, the first token late
        assert times[0] >= 0.28
        assert times[-1] - times[0] < 0.2
        assert server.wait_for_request_end().completed


def test_fault_stall_after_events() -> None:
    with ReplayServer(Reply(TEN_EVENTS, fault=Fault(stall_after_events=(4, 0.3)))) as server:
        _, times = chunk_times(server.url)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert gaps[3] >= 0.28
        assert max(gaps[:3] + gaps[4:]) < 0.15
        assert server.wait_for_request_end().completed


def test_a_stall_notices_the_client_leaving() -> None:
    with ReplayServer(Reply(TEN_EVENTS, fault=Fault(stall_before=30))) as server:
        with (
            httpx.Client(timeout=5) as client,
            client.stream("POST", server.url + "/v1/chat/completions", json={}) as resp,
        ):
            assert resp.status_code == 200
        t0 = time.monotonic()
        record = server.wait_for_request_end(timeout=5)
        assert time.monotonic() - t0 < 1.0
        assert record.disconnected and record.disconnected_at_event == 0
        assert record.events_sent == 0


def test_fault_cut_picks_the_earlier_and_validates() -> None:
    assert Fault().cut() is None
    assert Fault(close_after_events=3, reset_after_events=5).cut() == (3, "close")
    assert Fault(close_after_events=3, reset_after_events=3).cut() == (3, "reset")
    assert Fault(stall_before=1, stall_after_events=(0, 2)).stall_at(0) == 3
    for bad in (
        {"close_after_events": -1},
        {"reset_after_events": -1},
        {"stall_before": -0.1},
        {"stall_after_events": (1, -1.0)},
    ):
        with pytest.raises(ValueError):
            Fault(**bad)


# ---------------------------------------------------------------- recording
def test_recording_fields(server: ReplayServer) -> None:
    t = load_transcript("openai/chat-text-usage")
    server.push(t)
    payload = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    before = time.monotonic()
    r = httpx.post(
        server.url + "/v1/chat/completions?api-version=1&key=" + FAKE_API_KEY,
        json=payload,
        headers={
            "Authorization": f"Bearer {FAKE_API_KEY}",
            "x-api-key": FAKE_API_KEY,
            "api-key": FAKE_API_KEY,
            "x-goog-api-key": FAKE_API_KEY,
            "X-Custom": "kept",
        },
    )
    assert r.status_code == 200
    record = server.wait_for_request_end(0)
    assert isinstance(record, RecordedRequest)
    assert record is server.requests[0] and record.index == 0
    assert record.method == "POST"
    assert record.path.startswith("/v1/chat/completions?api-version=1&key=")
    for name in ("authorization", "x-api-key", "api-key", "x-goog-api-key"):
        assert record.headers[name] == "<redacted>"
    assert record.headers["x-custom"] == "kept"
    assert FAKE_API_KEY not in json.dumps(record.headers) + record.path
    assert json.loads(record.body) == payload and record.json == payload
    assert record.transcript == "openai/chat-text-usage"
    assert record.status == 200 and record.error is None and record.fault is None
    assert record.events_total == record.events_sent == 14
    assert record.bytes_sent == len(t.body_bytes)
    assert record.completed and not record.disconnected
    assert record.disconnected_at_event is None
    assert record.finished_at is not None
    assert before <= record.started_at <= record.finished_at <= time.monotonic()
    assert record.duration is not None and record.duration >= 0


def test_non_json_body_is_kept_raw(server: ReplayServer) -> None:
    server.push("cohere/chat-v2-text-usage")
    httpx.post(server.url + "/v2/chat", content=b"not json \xff")
    record = server.wait_for_request_end()
    assert record.body == b"not json \xff" and record.json is None


def test_chunked_request_body_is_read(server: ReplayServer) -> None:
    server.push("openai/chat-text-usage")
    r = httpx.post(server.url + "/v1/chat/completions", content=iter([b'{"a":', b" 1}"]))
    assert r.status_code == 200
    assert server.wait_for_request_end().json == {"a": 1}


def test_wait_for_request_end_times_out(server: ReplayServer) -> None:
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        server.wait_for_request_end(timeout=0.1)
    assert time.monotonic() - t0 < 1


def test_wait_for_request_end_waits_for_the_stream() -> None:
    with ReplayServer(TEN_EVENTS, pace=0.03) as server:
        done = threading.Thread(target=lambda: httpx.post(server.url + "/v1/chat/completions"))
        done.start()
        record = server.wait_for_request_end(0, timeout=5)
        assert record.completed and record.finished
        assert record.duration is not None and record.duration >= 9 * 0.03 * 0.8
        done.join(5)


# --------------------------------------------------------------- disconnects
def _assert_cut_short(record: RecordedRequest, total: int) -> None:
    assert record.disconnected
    assert record.events_total == total
    assert 2 <= record.events_sent <= 3
    assert record.disconnected_at_event == record.events_sent
    assert not record.completed


def test_disconnect_with_raw_httpx() -> None:
    with ReplayServer("openai/chat-text-usage", pace=0.05) as server:
        with (
            httpx.Client(timeout=5) as client,
            client.stream("POST", server.url + "/v1/chat/completions", json={}) as resp,
        ):
            events = 0
            for line in resp.iter_lines():
                if line == "":
                    events += 1
                    if events == 2:
                        break
        t0 = time.monotonic()
        record = server.wait_for_request_end(timeout=5)
        assert time.monotonic() - t0 < 0.5
        _assert_cut_short(record, 14)


def test_disconnect_with_openai_sdk() -> None:
    pytest.importorskip("openai")
    with ReplayServer("openai/chat-text-usage", pace=0.05) as server:
        client = server.client("openai")
        stream = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        it = iter(stream)
        next(it)
        next(it)
        stream.close()
        _assert_cut_short(server.wait_for_request_end(timeout=5), 14)


def test_disconnect_with_anthropic_sdk() -> None:
    pytest.importorskip("anthropic")
    with ReplayServer("anthropic/messages-thinking", pace=0.05) as server:
        client = server.client("anthropic")
        stream = client.messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}], stream=True
        )
        it = iter(stream)
        next(it)
        next(it)
        stream.close()
        _assert_cut_short(server.wait_for_request_end(timeout=5), 118)


async def test_disconnect_with_async_openai_sdk() -> None:
    pytest.importorskip("openai")
    with ReplayServer("openai/chat-text-usage", pace=0.05) as server:
        client = server.client("openai", async_=True)
        try:
            stream = await client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            seen = 0
            async for _ in stream:
                seen += 1
                if seen == 2:
                    break
            await stream.close()
        finally:
            await client.close()
        _assert_cut_short(server.wait_for_request_end(timeout=5), 14)


# ------------------------------------------------------------- SDK clients
def _openai_like(client: Any) -> str:
    text = []
    for chunk in client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
    return "".join(text)


def _anthropic(client: Any) -> str:
    text = []
    for event in client.messages.create(
        model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}], stream=True
    ):
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            text.append(event.delta.text)
    return "".join(text)


def _mistral(client: Any) -> str:
    text = []
    for event in client.chat.stream(model="m", messages=[{"role": "user", "content": "hi"}]):
        content = event.data.choices[0].delta.content if event.data.choices else None
        if isinstance(content, str):
            text.append(content)
    return "".join(text)


def _google(client: Any) -> str:
    return "".join(
        chunk.text or ""
        for chunk in client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi")
    )


def _cohere(client: Any) -> str:
    text = []
    for event in client.chat_stream(model="m", messages=[{"role": "user", "content": "hi"}]):
        if event.type == "content-delta":
            text.append(event.delta.message.content.text)
    return "".join(text)


def _litellm(client: Any) -> str:
    # litellm's client is a completion function (a partial bound to the server).
    text = []
    for chunk in client(model="m", messages=[{"role": "user", "content": "hi"}], stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
    return "".join(text)


def _azure(client: Any) -> str:
    text = []
    for update in client.complete(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    ):
        if update.choices and update.choices[0].delta.content:
            text.append(update.choices[0].delta.content)
    return "".join(text)


SDK_CASES = [
    ("openai", "openai", "openai/chat-text-usage", _openai_like, "/v1/chat/completions"),
    (
        "azure_openai",
        "openai",
        "openai/chat-text-usage",
        _openai_like,
        "/openai/deployments/m/chat/completions?api-version=2024-10-21",
    ),
    ("anthropic", "anthropic", "anthropic/messages-text", _anthropic, "/v1/messages"),
    ("groq", "groq", "groq/chat-text-x-groq-usage", _openai_like, "/openai/v1/chat/completions"),
    ("mistral", "mistralai", "mistral/chat-text-usage", _mistral, "/v1/chat/completions"),
    ("google", "google.genai", "google/gemini-text", _google, None),
    ("cohere", "cohere", "cohere/chat-v2-text-usage", _cohere, "/v2/chat"),
    ("litellm", "litellm", "openai/chat-text-usage", _litellm, "/v1/chat/completions"),
    (
        "azure",
        "azure.ai.inference",
        "openai/chat-text-usage",
        _azure,
        "/chat/completions?api-version=2024-05-01-preview",
    ),
]


@pytest.mark.parametrize(
    ("provider", "module", "name", "consume", "path"), SDK_CASES, ids=[c[0] for c in SDK_CASES]
)
def test_sdk_client_streams_its_transcript(
    provider: str, module: str, name: str, consume: Any, path: str | None
) -> None:
    pytest.importorskip(module)
    with ReplayServer() as server:
        server.push(name)
        client = server.client(provider)
        text = consume(client)
        assert text.strip()
        record = server.wait_for_request_end()
        assert record.status == 200 and record.completed, record
        assert record.transcript == name
        if path is not None:
            assert record.path == path
        else:
            assert record.path.endswith(":streamGenerateContent?alt=sse")
        # The fake key went out, and the recording never shows it.
        sent = json.dumps(record.headers) + record.path + record.body.decode("utf-8", "replace")
        assert FAKE_API_KEY not in sent
        assert "<redacted>" in record.headers.values()
    assert server.open_connections == 0


@pytest.mark.parametrize(
    "provider", ["openai", "anthropic", "groq", "mistral", "google", "cohere", "litellm", "azure"]
)
def test_sdk_clients_do_not_retry(provider: str) -> None:
    with ReplayServer() as server:  # nothing queued: every request gets a 500
        client = server.client(provider)
        consume = {c[0]: c[3] for c in SDK_CASES}[provider]
        with pytest.raises(Exception):  # noqa: B017 - each SDK has its own error type
            consume(client)
        time.sleep(0.05)
        assert len(server.requests) == 1
        assert server.requests[0].status == 500


async def test_async_clients_of_litellm_and_azure() -> None:
    pytest.importorskip("litellm")
    pytest.importorskip("azure.ai.inference")
    messages = [{"role": "user", "content": "hi"}]
    with ReplayServer() as server:
        server.push("openai/chat-text-usage", "openai/chat-text-usage")
        completion = server.client("litellm", async_=True)
        assert inspect.iscoroutinefunction(completion)  # litellm.acompletion, bound
        texts = [
            chunk.choices[0].delta.content or ""
            async for chunk in await completion(model="m", messages=messages, stream=True)
            if chunk.choices
        ]
        async with server.client("azure", async_=True) as client:
            texts += [
                update.choices[0].delta.content or ""
                async for update in await client.complete(model="m", messages=messages, stream=True)
                if update.choices
            ]
        assert [record.path.split("?")[0] for record in server.requests] == [
            "/v1/chat/completions",
            "/chat/completions",
        ]
    assert "".join(texts) == "4200 + 42 equals 4242." * 2
    assert server.open_connections == 0


def test_azure_sync_client_is_closed_with_the_server() -> None:
    pytest.importorskip("azure.ai.inference")
    with ReplayServer("openai/chat-text-usage") as server:
        client = server.client("azure", api_key="sk-other-fake", connection_timeout=3)
        assert client._config.credential.key == "sk-other-fake"  # api_key: the credential's
        assert _azure(client)
        transport = client._client._pipeline._transport  # the SDK has no is_closed()
        assert transport.session is not None
        assert server.requests[0].headers["api-key"] == "<redacted>"
    assert transport.session is None  # RequestsTransport.close() drops its session


def test_synthetic_audio_through_openai_sdk() -> None:
    pytest.importorskip("openai")
    import base64

    with ReplayServer("synthetic/openai-chat-audio-pcm16") as server:
        client = server.client("openai")
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o-audio-preview",
                messages=[{"role": "user", "content": "hi"}],
                modalities=["text", "audio"],
                audio={"voice": "alloy", "format": "pcm16"},
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    audio = [c.choices[0].delta.audio for c in chunks if c.choices and c.choices[0].delta.audio]
    pcm = b"".join(base64.b64decode(a.data) for a in audio if a.data)
    assert len(pcm) == 24_000
    assert "".join(a.transcript or "" for a in audio) == "Once upon a time, a dragon slept."
    assert chunks[-1].usage.completion_tokens_details.audio_tokens == 13


def test_synthetic_overloaded_error_through_anthropic_sdk() -> None:
    anthropic = pytest.importorskip("anthropic")
    with ReplayServer("synthetic/anthropic-midstream-overloaded-error") as server:
        client = server.client("anthropic")
        seen = []
        with pytest.raises(anthropic.APIStatusError) as info:
            for event in client.messages.create(
                model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}], stream=True
            ):
                seen.append(event.type)
    assert seen[-1] == "content_block_delta"
    assert info.value.status_code == 200
    assert info.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }


def test_unknown_provider() -> None:
    with ReplayServer() as server, pytest.raises(ValueError, match="unknown provider"):
        server.client("nope")


def test_clients_built_by_the_server_are_closed_with_it() -> None:
    pytest.importorskip("openai")
    with ReplayServer("openai/chat-text-usage") as server:
        client = server.client("openai", timeout=3.0)
        assert client.timeout == 3.0
        assert _openai_like(client)
    assert client.is_closed()
    assert server.open_connections == 0
