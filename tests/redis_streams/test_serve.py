"""The Redis transport: ``resumable_chat_app`` (and ``python -m streamkit serve --redis``)
on real uvicorn servers, two workers sharing one Redis and one ReplayServer, driven over
HTTP by httpx and the official ``openai`` SDK: SSE ids are entry ids, ``Last-Event-ID``
resumes exactly, ``GET /api/chat/{id}/stream`` is 204 when nothing is active, stop works
from any worker, the two workers are interchangeable, ``/v1/chat/completions`` is served
from Redis too, and idle gaps get heartbeat comments."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import openai
import pytest
import redis
import redis.asyncio as aioredis
import uvicorn

import streamkit as sk
import streamkit.redis as skr
from streamkit import ops
from streamkit._messages import Message
from streamkit.redis._codec import decode_terminal
from streamkit.serve import HEARTBEAT, EntriesResponse, resumable_chat_app
from streamkit.serve._cli import build_chat_server
from streamkit.testing import ReplayServer
from streamkit.testing.redis_server import RedisServer
from tests.redis_streams.helpers import text_of, text_transcript
from tests.serve._harness import running

ROOT = Path(__file__).resolve().parents[2]
BODY = {"messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}]}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Worker:
    """One uvicorn server of ``resumable_chat_app`` in a thread (its own loop, its own
    Redis and SDK clients)."""

    def __init__(self, replay: ReplayServer, redis_url: str, **options: Any) -> None:
        client = replay.client("openai", async_=True)

        def handler(messages: list[Message]) -> Any:
            return sk.stream("openai", "gpt-4o-mini", messages, client=client)

        app = resumable_chat_app(handler, aioredis.Redis.from_url(redis_url), poll=0.2, **options)
        self.port = _free_port()
        config = uvicorn.Config(app, port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    with ReplayServer(text_transcript(80), pace=0.01) as server:
        yield server


@pytest.fixture
def workers(replay: ReplayServer, redis_server: RedisServer) -> Iterator[list[Worker]]:
    both = [Worker(replay, redis_server.url), Worker(replay, redis_server.url)]
    yield both
    for worker in both:
        worker.close()


def events(response: httpx.Response) -> Iterator[tuple[str | None, Any]]:
    """``(id, data)`` of each SSE event (data parsed as JSON, ``[DONE]`` as is)."""
    entry_id: str | None = None
    for line in response.iter_lines():
        if line.startswith("id: "):
            entry_id = line[4:]
        elif line.startswith("data: "):
            data = line[6:]
            yield entry_id, data if data == "[DONE]" else json.loads(data)
            entry_id = None


def text(got: list[tuple[str | None, Any]]) -> str:
    return "".join(d["delta"] for _, d in got if isinstance(d, dict) and d["type"] == "text-delta")


def test_resume_on_the_other_worker_after_the_last_event_id(
    workers: list[Worker], replay: ReplayServer
) -> None:
    a, b = workers
    first: list[tuple[str | None, Any]] = []
    with httpx.stream("POST", f"{a.url}/api/chat", json={"id": "c1", **BODY}, timeout=10) as r:
        assert r.status_code == 200
        assert r.headers["x-vercel-ai-ui-message-stream"] == "v1"
        for event in events(r):
            first.append(event)
            if len([e for e in first if e[0]]) == 20:
                break  # the tab closed mid-answer
    last = [i for i, _ in first if i][-1]
    headers = {"last-event-id": last}
    with httpx.stream("GET", f"{b.url}/api/chat/c1/stream", headers=headers, timeout=10) as r:
        assert r.status_code == 200
        rest = list(events(r))
    assert text(first) + text(rest) == text_of(80)  # nothing lost, nothing twice
    ids = [i for i, _ in first + rest if i]
    seqs = [int(i.split("-")[1]) for i in ids]
    assert seqs == sorted(set(seqs))
    assert rest[-1][1] == "[DONE]" and rest[-2][1]["type"] == "finish"
    assert len(replay.requests) == 1
    assert replay.wait_for_request_end().completed  # the client leaving did not stop it
    # Whole replay from the start on either worker equals the live answer's events.
    with httpx.stream("GET", f"{a.url}/api/chat/c1/stream", headers={"last-event-id": "0-0"}) as r:
        whole = list(events(r))
    assert whole[: len(first)] == first and whole[len(first) :] == rest
    # Every cut point, resumed on either worker: exactly the events after it.
    cuts = [(position, i) for position, (i, _) in enumerate(whole) if i]
    for n, (position, entry_id) in enumerate(cuts):
        worker = workers[n % 2]
        url = f"{worker.url}/api/chat/c1/stream"
        with httpx.stream("GET", url, headers={"last-event-id": entry_id}) as r:
            assert list(events(r)) == whole[position + 1 :], entry_id
    # Finished and no Last-Event-ID: nothing active.
    assert httpx.get(f"{b.url}/api/chat/c1/stream").status_code == 204
    assert httpx.get(f"{a.url}/api/chat/never/stream").status_code == 204
    bad = httpx.get(f"{a.url}/api/chat/c1/stream", headers={"last-event-id": "x"})
    assert bad.status_code == 400


def test_both_workers_asked_to_start_one_chat_make_one_request(
    workers: list[Worker], replay: ReplayServer
) -> None:
    results: list[str] = []

    def post(worker: Worker) -> None:
        with httpx.stream(
            "POST", f"{worker.url}/api/chat", json={"id": "c2", **BODY}, timeout=20
        ) as r:
            results.append(text(list(events(r))))

    threads = [threading.Thread(target=post, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [text_of(80)] * 2
    assert len(replay.requests) == 1


def test_stop_from_the_other_worker_closes_the_provider_response(
    workers: list[Worker], replay: ReplayServer
) -> None:
    a, b = workers
    got: list[tuple[str | None, Any]] = []
    with httpx.stream("POST", f"{a.url}/api/chat", json={"id": "c3", **BODY}, timeout=10) as r:
        for event in events(r):
            got.append(event)
            if len(got) == 10:
                stopped = httpx.post(f"{b.url}/api/chat/c3/stop").json()
                sent_at_stop = replay.requests[0].events_sent
                assert stopped == {"stopped": True}
    record = replay.wait_for_request_end()
    assert record.disconnected and not record.completed
    assert record.events_sent <= sent_at_stop + 1
    assert got[-1][1] == "[DONE]" and got[-2][1]["type"] == "abort"
    assert text_of(80).startswith(text(got))
    assert httpx.post(f"{a.url}/api/chat/c3/stop").json() == {"stopped": False}


def test_two_serve_processes_with_redis_are_interchangeable(redis_server: RedisServer) -> None:
    ports = [_free_port(), _free_port()]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "streamkit", "serve", "--port", str(port)),
                *("--pace", "0.01", "--transcript", "openai/chat-text-after-tool-results"),
                *("--redis", redis_server.url),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url in urls:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"{url}/api/chat/none/stream")
                    break
                except httpx.ConnectError:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
        first: list[tuple[str | None, Any]] = []
        with httpx.stream("POST", f"{urls[0]}/api/chat", json={"id": "p1", **BODY}) as r:
            for event in events(r):
                first.append(event)
                if event[0] and len(first) > 3:
                    break
        headers = {"last-event-id": [i for i, _ in first if i][-1]}
        with httpx.stream("GET", f"{urls[1]}/api/chat/p1/stream", headers=headers) as r:
            rest = list(events(r))
        with httpx.stream(
            "GET", f"{urls[1]}/api/chat/p1/stream", headers={"last-event-id": "0-0"}
        ) as r:
            whole = list(events(r))
        assert first + rest == whole
        assert whole[-2][1]["type"] == "finish" and text(whole)
        page = httpx.get(f"{urls[1]}/")
        assert page.status_code == 200 and "/api/chat/stop" in page.text
        # The chat page's stop ({"id"} to /api/chat/stop) on the other process.
        with httpx.stream("POST", f"{urls[0]}/api/chat", json={"id": "p2", **BODY}) as r:
            got = []
            for event in events(r):
                got.append(event)
                if len(got) == 4:
                    stopped = httpx.post(f"{urls[1]}/api/chat/stop", json={"id": "p2"})
                    assert stopped.json() == {"stopped": True}
        assert got[-1][1] == "[DONE]" and got[-2][1]["type"] == "abort"
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)


def _direct(provider: str, model: str, transcript: str) -> sk.CallResponse:
    """The stream behind the server, reduced in-process."""
    with ReplayServer(transcript) as server:
        stream = sk.stream(provider, model, "hi", client=server.client(provider))
        response: sk.CallResponse = stream.pipe(ops.to_call_response()).run()
    return response


COMPLETION_CASES = [
    ("openai", "gpt-4o-mini", "openai/chat-parallel-tool-calls-usage"),
    ("anthropic", "claude-sonnet-4-5", "anthropic/messages-parallel-tool-use"),
    ("anthropic", "claude-sonnet-4-5", "anthropic/messages-text"),
    ("google", "gemini-2.5-flash", "google/gemini-text"),
]


@pytest.mark.parametrize(
    ("provider", "model", "transcript"), COMPLETION_CASES, ids=[c[2] for c in COMPLETION_CASES]
)
def test_openai_sdk_reads_v1_chat_completions_of_serve_redis(
    redis_server: RedisServer, provider: str, model: str, transcript: str
) -> None:
    expected = _direct(provider, model, transcript)
    # serve --redis's own app (the CLI builds it), on uvicorn, the replay server behind.
    server = build_chat_server(transcript=transcript, pace=0.0, redis_url=redis_server.url)
    try:
        with running(server.app) as url:
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-fake-test-key")
            chunks = list(
                client.chat.completions.create(
                    model="proxy",
                    messages=[{"role": "user", "content": "hi"}],
                    stream=True,
                    stream_options={"include_usage": True},
                )
            )
            with pytest.raises(openai.BadRequestError):  # only streaming is served
                client.chat.completions.create(
                    model="proxy", messages=[{"role": "user", "content": "hi"}]
                )
            client.close()
            completion_id = chunks[0].id
            # A chat like the others: once its producer let go, nothing to stop.
            sync = redis.Redis.from_url(redis_server.url)
            deadline = time.monotonic() + 10
            while sync.exists(f"chat:{completion_id}:lease"):
                assert time.monotonic() < deadline
                time.sleep(0.01)
            sync.close()
            stopped = httpx.post(f"{url}/api/chat/{completion_id}/stop").json()
            assert stopped == {"stopped": False}
        # waited for: the replay server records the end after its last write
        assert server.replay.wait_for_request_end(0).completed
        assert len(server.replay.requests) == 1
    finally:
        server.close()
    assert {chunk.id for chunk in chunks} == {completion_id}
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected.content
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
    # The provider's own reason, normalized as the producer normalized it (the chunks
    # came back from Redis as the provider's chunk type: tool_use is tool_calls).
    assert finishes == [{"stop": "stop", "tool_calls": "tool_calls"}[str(expected.finish_reason)]]
    usage = chunks[-1].usage
    assert expected.usage is not None and usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        expected.usage.input_tokens,
        expected.usage.output_tokens,
    )
    # The answer is on Redis, under the completion's id, ended complete.
    sync = redis.Redis.from_url(redis_server.url)
    try:
        ((_, fields),) = cast(list[Any], sync.xrevrange(f"chat:{completion_id}", count=1))
        terminal = decode_terminal(fields[b"end"])
    finally:
        sync.close()
    assert terminal.state == "complete" and terminal.usage == expected.usage


def test_a_completion_is_stopped_from_the_other_worker_by_its_id(
    workers: list[Worker], replay: ReplayServer
) -> None:
    a, b = workers
    client = openai.OpenAI(base_url=f"{a.url}/v1", api_key="sk-fake-test-key")
    got = []
    for chunk in client.chat.completions.create(
        model="proxy", messages=[{"role": "user", "content": "hi"}], stream=True
    ):
        got.append(chunk)
        if len(got) == 10:
            stopped = httpx.post(f"{b.url}/api/chat/{chunk.id}/stop").json()
            assert stopped == {"stopped": True}
            sent_at_stop = replay.requests[0].events_sent
    client.close()
    record = replay.wait_for_request_end()
    assert record.disconnected and not record.completed
    assert record.events_sent <= sent_at_stop + 1
    text = "".join(c.choices[0].delta.content or "" for c in got if c.choices)
    assert text and text_of(80).startswith(text) and text != text_of(80)
    assert not [c for c in got if c.choices and c.choices[0].finish_reason]  # an abort


def _kinds(lines: list[str]) -> list[str]:
    """Each SSE line as ``ping`` (a heartbeat comment), ``text`` (a text delta, either
    wire format) or ``other``."""
    kinds = []
    for line in lines:
        if line == HEARTBEAT.decode().strip():
            kinds.append("ping")
        elif '"text-delta"' in line or '"content":"w' in line:
            kinds.append("text")
        elif line:
            kinds.append("other")
    return kinds


def test_idle_gaps_get_heartbeat_comments(redis_server: RedisServer) -> None:
    with ReplayServer(text_transcript(4), pace=0.4) as replay:
        worker = Worker(replay, redis_server.url, heartbeat=0.05)
        try:
            with httpx.stream(
                "POST", f"{worker.url}/api/chat", json={"id": "hb", **BODY}, timeout=10
            ) as r:
                ui_lines = list(r.iter_lines())
            body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
            with httpx.stream(
                "POST", f"{worker.url}/v1/chat/completions", json=body, timeout=10
            ) as r:
                openai_lines = list(r.iter_lines())
            # The openai SDK reads a stream with heartbeats as if they were not there.
            client = openai.OpenAI(base_url=f"{worker.url}/v1", api_key="sk-fake-test-key")
            chunks = list(
                client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "hi"}], stream=True
                )
            )
            client.close()
        finally:
            worker.close()
    for lines in (ui_lines, openai_lines):
        kinds = _kinds(lines)
        texts = [i for i, kind in enumerate(kinds) if kind == "text"]
        assert len(texts) == 4
        # A heartbeat arrived in each 0.4 s gap between two text deltas...
        for before, after in itertools.pairwise(texts):
            assert "ping" in kinds[before:after], kinds
        # ...and none after the end.
        assert "ping" not in kinds[kinds.index("other", texts[-1]) :]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text_of(4)


async def test_no_heartbeat_when_disabled_and_a_bad_interval_is_refused(
    redis: aioredis.Redis,
) -> None:
    with pytest.raises(ValueError, match="heartbeat"):
        EntriesResponse(redis, "k", heartbeat=0)
    import reactivex

    chunks = [sk.Chunk(provider="openai", content="x")]
    await skr.produce(redis, "k", reactivex.from_iterable(chunks))
    sent: list[bytes] = []

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(10)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message.get("body", b""))

    await EntriesResponse(redis, "k", heartbeat=None)({}, receive, send)  # type: ignore[arg-type]
    assert HEARTBEAT not in b"".join(sent) and b"[DONE]" in b"".join(sent)
