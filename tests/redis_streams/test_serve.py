"""The Redis transport: ``resumable_chat_app`` (and ``python -m streamkit serve --redis``)
on real uvicorn servers, two workers sharing one Redis and one ReplayServer, driven over
HTTP by httpx: SSE ids are entry ids, ``Last-Event-ID`` resumes exactly, ``GET
/api/chat/{id}/stream`` is 204 when nothing is active, stop works from any worker and the
two workers are interchangeable."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import uvicorn

import streamkit as sk
from streamkit.messages import Message
from streamkit.serve import resumable_chat_app
from streamkit.testing import ReplayServer
from streamkit.testing.redis_server import RedisServer
from tests.redis_streams.helpers import text_of, text_transcript

ROOT = Path(__file__).resolve().parents[2]
BODY = {"messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}]}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Worker:
    """One uvicorn server of ``resumable_chat_app`` in a thread (its own loop, its own
    Redis and SDK clients)."""

    def __init__(self, replay: ReplayServer, redis_url: str) -> None:
        client = replay.client("openai", async_=True)

        def handler(messages: list[Message]) -> Any:
            return sk.stream("openai", "gpt-4o-mini", messages, client=client)

        app = resumable_chat_app(handler, aioredis.Redis.from_url(redis_url), poll=0.2)
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
