"""The lifecycle seam: every subscription reports one start and exactly one end, with the
right outcome, on every exit path, for every provider, sync and async, on the replay
server (the official SDK clients over real HTTP). Every pipeline here also ends with
``ops.on_usage``, which must report exactly once, with that one end's usage and cost."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import re
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as rx_ops
from reactivex.testing import TestScheduler

import streamkit as sk
from streamkit import _lifecycle as lc
from streamkit import ops
from streamkit.testing import Fault, ReplayServer, Reply
from tests.ops._pipelines import collect_sync, wait_for_no_leftover_threads
from tests.reliability._matrix import PROVIDER_CASES, ProviderCase
from tests.reliability._matrix import settle as settle_until
from tests.reliability._run import close_async_client


class Recording(lc.LifecycleObserver):
    """Every lifecycle call, as it happened (thread-safe)."""

    wants_chunks = True

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.starts: list[lc.StreamStart] = []
        self.firsts: list[lc.StreamStart] = []
        self.chunks = 0
        self.ends: list[lc.StreamEnd] = []
        self.reports: list[sk.UsageReport] = []

    def on_start(self, start: lc.StreamStart) -> None:
        with self.lock:
            self.starts.append(start)

    def on_first_chunk(self, start: lc.StreamStart, chunk: sk.Chunk, now_ns: int) -> None:
        with self.lock:
            assert all(end.start is not start for end in self.ends), "first chunk after the end"
            self.firsts.append(start)

    def on_chunk(self, start: lc.StreamStart, chunk: sk.Chunk, now_ns: int) -> None:
        with self.lock:
            self.chunks += 1

    def on_end(self, end: lc.StreamEnd) -> None:
        with self.lock:
            self.ends.append(end)

    def only_end(self) -> lc.StreamEnd:
        """The one end of the one subscription (fails on anything else)."""
        assert len(self.starts) == 1, self.starts
        assert len(self.ends) == 1, self.ends
        assert len(self.firsts) <= 1
        end = self.ends[0]
        assert end.start is self.starts[0]
        assert end.chunks == self.chunks
        assert end.started_ns <= end.ended_ns
        if end.first_chunk_ns is not None:
            assert end.headers_ns is not None
            assert end.started_ns <= end.headers_ns <= end.first_chunk_ns <= end.ended_ns
        if self.reports:  # the pipeline ended with ops.on_usage
            assert len(self.reports) == 1, self.reports
            report = self.reports[0]
            assert report.attempts == (end,)
            assert report.usage == end.usage
            assert report.cost == end.cost
        return end


STALL = 1.0
"""Seconds a stall lasts: a timeout or dispose ends it first, except for a reader the
socket shutdown cannot wake (google-genai's), which waits it out."""

CASES = [
    pytest.param(case, async_, id=f"{case.name}-{'async' if async_ else 'sync'}")
    for case in PROVIDER_CASES
    for async_ in (False, True)
]


@pytest.fixture
def server() -> Any:
    with ReplayServer(keep_alive=False) as replay:
        yield replay


@contextlib.asynccontextmanager
async def stream_of(
    server: ReplayServer, case: ProviderCase, async_: bool
) -> AsyncIterator[sk.Stream]:
    missing = case.missing()
    if missing:
        pytest.skip(missing)
    client = server.client(case.name, async_=async_)
    try:
        yield sk.stream(case.name, "replayed-model", "hello", client=client, async_=async_)
    finally:
        if async_:
            await close_async_client(client)


async def run(observable: Observable[Any], recording: Recording, async_: bool) -> Any:
    """Subscribe with ``recording`` attached (on the loop, or on a worker thread with
    no loop for a sync client); the items and the error it ended with."""
    observable = observable.pipe(ops.on_usage(recording.reports.append))
    with lc.observing(recording):
        if async_:
            return await _collect_async(observable)
        return await asyncio.to_thread(collect_sync, observable, 10.0)


async def _collect_async(observable: Observable[Any]) -> tuple[list[Any], Exception | None]:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Exception | None] = loop.create_future()
    items: list[Any] = []

    def settle(error: Exception | None) -> None:
        if not done.done():
            done.set_result(error)

    subscription = observable.subscribe(items.append, settle, lambda: settle(None))
    try:
        error = await asyncio.wait_for(done, 10.0)
    finally:
        subscription.dispose()
    return items, error


async def settled(server: ReplayServer) -> None:
    """Wait until the request's connection and the source's thread are gone (a late
    second end would have been reported by then)."""
    await asyncio.to_thread(server.wait_until_idle, 5.0)
    await asyncio.to_thread(wait_for_no_leftover_threads)


def expected_source(chunks: list[sk.Chunk]) -> str:
    """The usage source an end after exactly ``chunks`` must report: the provider's
    last report when nothing with text came after it, input-only when something did,
    else streamkit's estimate."""
    last_usage = max((i for i, c in enumerate(chunks) if c.usage is not None), default=None)
    if last_usage is None:
        return "estimated"
    after = chunks[last_usage + 1 :]
    if any(c.content or c.thinking or c.refusal or c.tool_calls for c in after):
        return "mixed"
    return "reported"


# -- completed, error ---------------------------------------------------------------------
@pytest.mark.parametrize(("case", "async_"), CASES)
async def test_completed(server: ReplayServer, case: ProviderCase, async_: bool) -> None:
    server.push(case.transcript)
    recording = Recording()
    async with stream_of(server, case, async_) as stream:
        items, error = await run(stream, recording, async_)
    await settled(server)
    assert error is None
    end = recording.only_end()
    assert end.outcome == "completed" and recording.reports[0].outcome == "completed"
    assert end.cost == sk.prices.cost_of(
        case.name, end.response_model, end.usage, requested="replayed-model"
    )
    assert end.disposed_by is None and end.timeout is None and end.error is None
    assert end.chunks == len(items)
    assert end.provider == case.name and end.request_model == "replayed-model"
    reported = [c.usage for c in items if c.usage is not None]
    assert reported, "these transcripts report usage"
    assert end.usage is not None
    assert end.usage == reported[-1] and end.usage.source == "reported"
    assert end.reported_usage == reported[-1]
    assert end.response_model == next(c.model for c in reversed(items) if c.model)
    finish = [c.finish_reasons for c in items if c.finish_reasons]
    assert end.finish_reasons == finish[-1]


@pytest.mark.parametrize("fault", ["http_500", "error_event", "end_early"])
@pytest.mark.parametrize(("case", "async_"), CASES)
async def test_error(server: ReplayServer, case: ProviderCase, async_: bool, fault: str) -> None:
    faults = {
        "http_500": Fault(http_error=500),
        "error_event": Fault(error_event_after=case.at),
        "end_early": Fault(end_after_events=case.at),
    }
    server.push(Reply(case.transcript, fault=faults[fault]))
    recording = Recording()
    async with stream_of(server, case, async_) as stream:
        items, error = await run(stream, recording, async_)
    await settled(server)
    assert error is not None
    end = recording.only_end()
    assert end.outcome == "error" and recording.reports[0].error is error
    assert end.error is error
    assert end.error_type == f"{type(error).__module__}.{type(error).__qualname__}"
    if fault == "end_early":
        assert isinstance(error, sk.IncompleteStreamError)
    if fault == "http_500":
        assert end.chunks == 0 and end.first_chunk_ns is None
    else:
        assert end.chunks == len(items) > 0
        assert end.usage is not None and end.usage.source == expected_source(items)


# -- disposed -----------------------------------------------------------------------------
def _tapped(stream: sk.Stream, seen: list[sk.Chunk], *operators: Any) -> Observable[Any]:
    return stream.pipe(rx_ops.do_action(seen.append), *operators)


@pytest.mark.parametrize(("case", "async_"), CASES)
async def test_take_until_match(server: ReplayServer, case: ProviderCase, async_: bool) -> None:
    server.push(case.transcript)
    recording = Recording()
    seen: list[sk.Chunk] = []
    async with stream_of(server, case, async_) as stream:
        _, error = await run(
            _tapped(stream, seen, ops.take_until_match(re.escape(case.phrase))), recording, async_
        )
    await settled(server)
    assert error is None
    end = recording.only_end()
    assert (end.outcome, end.disposed_by) == ("disposed", "take_until_match")
    assert end.chunks == len(seen)
    assert end.usage is not None and end.usage.source == expected_source(seen)
    if end.usage.source != "reported":
        assert end.usage.output_tokens > 0


@pytest.mark.parametrize(("case", "async_"), CASES)
async def test_take(server: ReplayServer, case: ProviderCase, async_: bool) -> None:
    server.push(case.transcript)
    recording = Recording()
    seen: list[sk.Chunk] = []
    async with stream_of(server, case, async_) as stream:
        items, error = await run(_tapped(stream, seen, rx_ops.take(1)), recording, async_)
    await settled(server)
    assert error is None and len(items) == 1
    end = recording.only_end()
    assert (end.outcome, end.disposed_by) == ("disposed", "take")
    assert end.chunks == len(seen) == 1
    assert end.usage is not None and end.usage.source == expected_source(seen)


@pytest.mark.parametrize(("case", "async_"), CASES)
async def test_disposed_from_outside(
    server: ReplayServer, case: ProviderCase, async_: bool
) -> None:
    """A dispose from the subscriber, named (a server's disconnect) or not (unknown),
    while the stream is stalled before its first event."""
    for reason in ("disconnect", None):
        requests = len(server.requests)
        server.push(Reply(case.transcript, fault=Fault(stall_before=STALL)))
        recording = Recording()
        async with stream_of(server, case, async_) as stream:
            with lc.observing(recording):
                subscription = stream.pipe(ops.on_usage(recording.reports.append)).subscribe(
                    lambda _: None, lambda _: None
                )
            await asyncio.to_thread(_wait_for_requests, server, requests + 1)
            if reason is None:
                subscription.dispose()
            else:
                with lc.disposing(reason):
                    subscription.dispose()
        await settled(server)
        end = recording.only_end()
        assert recording.reports[0].outcome == "disposed"
        assert (end.outcome, end.disposed_by) == ("disposed", reason or "unknown")
        assert end.chunks == 0
        assert end.usage is not None and end.usage.source == "estimated"
        assert end.usage.output_tokens == 0 and end.usage.input_tokens > 0


def _wait_for_requests(server: ReplayServer, count: int) -> None:
    assert settle_until(lambda: len(server.requests) >= count), "the request never came"


# -- timeouts -----------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["first_chunk", "idle"])
@pytest.mark.parametrize(("case", "async_"), CASES)
async def test_timeout(server: ReplayServer, case: ProviderCase, async_: bool, which: str) -> None:
    if which == "first_chunk":
        fault, operator = Fault(stall_before=STALL), ops.first_chunk_timeout(0.2)
    else:
        fault, operator = Fault(stall_after_events=(case.at, STALL)), ops.idle_timeout(0.2)
    server.push(Reply(case.transcript, fault=fault))
    recording = Recording()
    seen: list[sk.Chunk] = []
    async with stream_of(server, case, async_) as stream:
        _, error = await run(_tapped(stream, seen, operator), recording, async_)
    await settled(server)
    assert isinstance(error, sk.StreamTimeoutError)
    end = recording.only_end()
    assert (end.outcome, end.timeout) == ("timeout", which)
    assert end.error_type == "streamkit.StreamTimeoutError"
    assert end.chunks == len(seen)
    assert (end.first_chunk_ns is None) == (which == "first_chunk")


# -- iteration: break, close ----------------------------------------------------------------
@pytest.mark.parametrize(("case", "async_"), CASES)
async def test_iteration_break_and_close(
    server: ReplayServer, case: ProviderCase, async_: bool
) -> None:
    for how in ("break", "close", "complete"):
        server.push(case.transcript)
        recording = Recording()
        async with stream_of(server, case, async_) as stream:
            with lc.observing(recording):
                if async_:
                    await _iterate_async(stream, how)
                else:
                    await asyncio.to_thread(_iterate_sync, stream, how)
        await settled(server)
        end = recording.only_end()
        assert stream.end is end
        assert stream.cost == end.cost
        assert stream.construct_call_response().usage == end.usage
        if how == "complete":
            assert end.outcome == "completed"
            assert stream.usage == end.usage and stream.usage is not None
            assert stream.usage.source == "reported"
        else:
            assert (end.outcome, end.disposed_by) == ("disposed", how)
            assert stream.usage is end.usage is not None
            assert end.chunks >= 1


def _iterate_sync(stream: sk.Stream, how: str) -> None:
    for _chunk, _tool in stream:
        if how == "break":
            break
        if how == "close":
            stream.close()


async def _iterate_async(stream: sk.Stream, how: str) -> None:
    iterator = stream.__aiter__()
    assert isinstance(iterator, AsyncGenerator)  # typed as an AsyncIterator
    if how == "complete":
        async for _ in iterator:
            pass
        return
    await iterator.__anext__()
    if how == "close":
        await stream.aclose()
    else:
        await iterator.aclose()  # what `break` leads to once the loop finalizes it


# -- abandoned, observers, reasons -------------------------------------------------------
def test_abandoned_subscription_is_ended_by_the_gc() -> None:
    """A subscription whose pull never ran (its scheduler never advanced), dropped."""
    recording = Recording()
    scheduler = TestScheduler()
    stream = sk.stream("openai", "gpt-4o-mini", "hi", client=_unused_openai_client())
    with lc.observing(recording):
        subscription = stream.subscribe(lambda _: None, scheduler=scheduler)
    assert len(recording.starts) == 1 and not recording.ends
    del subscription, scheduler
    gc.collect()
    end = recording.only_end()
    assert end.outcome == "abandoned"
    assert end.usage is not None and end.usage.source == "estimated"


def _unused_openai_client() -> Any:
    openai = pytest.importorskip("openai")
    return openai.OpenAI(api_key="sk-fake-not-a-key", base_url="http://127.0.0.1:9/v1")


def test_global_observer_and_removal(server: ReplayServer) -> None:
    recording = Recording()
    remove = lc.add_observer(recording)
    try:
        server.push("openai/chat-text-usage")
        stream = sk.stream("openai", "m", "hi", client=server.client("openai"))
        _, error = collect_sync(stream)
        assert error is None
    finally:
        remove()
    assert recording.only_end().outcome == "completed"
    server.push("openai/chat-text-usage")
    collect_sync(sk.stream("openai", "m", "hi", client=server.client("openai")))
    assert len(recording.ends) == 1  # removed: the second stream is not seen


def test_observer_errors_do_not_change_the_stream(server: ReplayServer) -> None:
    class Broken(lc.LifecycleObserver):
        def on_start(self, start: lc.StreamStart) -> None:
            raise RuntimeError("observer bug")

        def on_end(self, end: lc.StreamEnd) -> None:
            raise RuntimeError("observer bug")

    reported: list[Any] = []
    server.push("openai/chat-text-usage")
    stream = sk.stream("openai", "m", "hi", client=server.client("openai"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.unraisablehook", reported.append)
        with lc.observing(Broken()):
            items, error = collect_sync(stream)
    assert error is None and items
    assert [type(r.exc_value) for r in reported] == [RuntimeError, RuntimeError]


def test_bad_observer_and_reason() -> None:
    with pytest.raises(TypeError, match="LifecycleObserver"), lc.observing(object()):  # type: ignore[arg-type]
        pass
    with pytest.raises(TypeError, match="LifecycleObserver"):
        lc.add_observer(print)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown dispose reason"), lc.disposing("whim"):  # type: ignore[arg-type]
        pass


def test_retry_attempts_are_numbered_and_all_reported(server: ReplayServer) -> None:
    server.push(Reply("openai/chat-text-usage", fault=Fault(http_error=500)))
    server.push(Reply("openai/chat-text-usage", fault=Fault(end_after_events=4)))
    server.push("openai/chat-text-usage")
    recording = Recording()
    stream = sk.stream("openai", "m", "hi", client=server.client("openai"))
    with lc.observing(recording):
        _, error = collect_sync(stream.pipe(ops.retry_on_error(backoff=0.01)))
    assert error is None
    assert [s.attempt for s in recording.starts] == [1, 2, 3]
    assert [e.outcome for e in recording.ends] == ["error", "error", "completed"]


def test_share_replay_is_one_subscription(server: ReplayServer) -> None:
    server.push("openai/chat-text-usage")
    recording = Recording()
    stream = sk.stream("openai", "m", "hi", client=server.client("openai"))
    shared = stream.pipe(ops.share_replay())
    with lc.observing(recording):
        first, error = collect_sync(shared)
    second, error2 = collect_sync(shared)
    assert error is error2 is None and first == second
    assert recording.only_end().outcome == "completed"
    assert len(server.requests) == 1


def test_start_holds_the_request(server: ReplayServer) -> None:
    server.push("openai/chat-text-usage")
    recording = Recording()
    stream = sk.stream("openai", "m", "hi there", client=server.client("openai"), temperature=0)
    with lc.observing(recording):
        collect_sync(stream)
    start = recording.only_end().start
    assert start.messages is not None and start.messages[-1]["content"] == "hi there"
    assert start.params == {"temperature": 0}


def test_no_observer_costs_no_call(server: ReplayServer) -> None:
    """With nothing attached the recorder still keeps the end (for Stream's totals),
    and no observer method exists to call."""
    server.push("openai/chat-text-usage")
    stream = sk.stream("openai", "m", "hi", client=server.client("openai"))
    for _ in stream:
        pass
    assert stream.end is not None and stream.end.outcome == "completed"


def test_exactly_once_under_racing_ends() -> None:
    """complete, fail, dispose and abandon racing from many threads: one end."""
    for _ in range(50):
        _race_once()


def _race_once() -> None:
    recording = Recording()
    recorder = lc.Recorder("openai", "m", observers=(recording,))
    recorder.begin()
    barrier = threading.Barrier(4)
    calls: list[Callable[[], None]] = [
        recorder.complete,
        lambda: recorder.fail(RuntimeError("x")),
        lambda: recorder.dispose("take"),
        recorder.abandon,
    ]

    def racer(call: Callable[[], None]) -> None:
        barrier.wait()
        call()

    threads = [threading.Thread(target=racer, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(recording.ends) == 1
    assert recorder.end is recording.ends[0]


def test_only_streamkit_sources_record() -> None:
    """An ordinary observable never reaches a recorder: the seam is in the source."""
    recording = Recording()
    with lc.observing(recording):
        reactivex.of(1, 2, 3).pipe(rx_ops.take(1)).subscribe()
    assert not recording.starts and not recording.ends
