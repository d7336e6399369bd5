"""The fault matrix (see ``_matrix.py`` for what is tried and what each cell expects).

Every cell asserts:

- the outcome: success with the whole text, or the expected typed error, reaching
  every subscriber exactly once and nothing after it (with an async client, on the
  event loop's thread);
- nothing lost or duplicated: the text received equals the text the server sent
  before the fault (a prefix of it after a reset), or the whole text on success,
  identical across ``share_replay``'s subscribers; the foreign event's text never
  appears;
- the number of requests the server saw (one, or three for a recovering retry), and
  a 429's ``retry-after`` honored between them;
- nothing hangs: the cell ends within :data:`WAIT_LIMIT`, stalls end by the library's
  own timeouts long before the stall would, and pytest-timeout bounds the test;
- nothing leaks: the fixtures in ``conftest.py`` check connections, threads, tasks;
- telemetry (every cell runs instrumented): exactly one ended request span per request
  the server saw, none open and none ended twice; under ``retry_on_error`` each is a
  child of the one span of the logical call, under ``share_replay`` one request span
  serves every subscriber; the span's end says what the subscriber got (its error's
  type, a timeout, a completion, or take_until_match's dispose).

By default a pairwise-covering subset runs; ``STREAMKIT_FULL_MATRIX=1`` runs every
cell. ``python tests/reliability/report.py`` runs it and writes ``docs/reliability.md``.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from reactivex import Observable, abc
from reactivex import operators as rx

import streamkit as sk
from streamkit import ops
from streamkit._source import THREAD_NAME_PREFIX
from streamkit.testing import ReplayServer, Reply
from streamkit.testing.replay import FOREIGN_TEXT
from tests.reliability._matrix import (
    GUARD_TIMEOUT,
    MODEL,
    RETRY_AFTER,
    SETTLE,
    SHORT_TIMEOUT,
    STALL,
    SUBSCRIBERS,
    Cell,
    cells_for,
    describe,
    settle,
)
from tests.reliability._run import close_async_client
from tests.telemetry._harness import Telemetry, attrs

WAIT_LIMIT = 15.0
"""Seconds a cell may take to end before it counts as hung."""

GAP_SETTLE = 0.5
"""Seconds a known-gap cell waits to see its leak (it is not going to close)."""


class Subscriber:
    """What one subscriber received and how it ended (thread-safe)."""

    def __init__(self, on_end: Callable[[], None]) -> None:
        self.items: list[Any] = []
        self.error: BaseException | None = None
        self.completed = False
        self.ends = 0
        self.after_end: list[str] = []
        self.threads: set[threading.Thread] = set()
        self._on_end = on_end
        self._lock = threading.Lock()

    def on_next(self, item: Any) -> None:
        with self._lock:
            self.threads.add(threading.current_thread())
            if self.ends:
                self.after_end.append(f"on_next({item!r:.80})")
            self.items.append(item)

    def on_error(self, error: Exception) -> None:
        self._end(error)

    def on_completed(self) -> None:
        self._end(None)

    def _end(self, error: BaseException | None) -> None:
        with self._lock:
            self.threads.add(threading.current_thread())
            self.ends += 1
            if self.ends > 1:
                self.after_end.append(f"a second end ({error!r})")
                return
            self.error = error
            self.completed = error is None
        self._on_end()

    def text(self) -> str:
        """The content of the chunks received."""
        return "".join(item.content for item in self.items if isinstance(item, sk.Chunk))


class CellRun:
    """Builds one cell's pipeline against ``server``, subscribes, then checks it.

    ``signal`` is called once every subscriber has ended; sync and async cells differ
    only in how they wait for it and close their client.
    """

    def __init__(self, cell: Cell, server: ReplayServer, signal: Callable[[], None]) -> None:
        self.cell = cell
        self.server = server
        self.expectation = cell.expectation()
        for fault in cell.attempts():
            server.push(Reply(cell.provider.transcript, fault=fault))
        self.client = server.client(cell.provider.name, async_=cell.async_)
        self.stream = sk.stream(
            cell.provider.name, MODEL, "hello", client=self.client, async_=cell.async_
        )
        self.subscribers: list[Subscriber] = []
        self.tapped: list[sk.Chunk] = []  # chunks before to_call_response (reduce)
        self.disposables: list[abc.DisposableBase] = []
        self._signal = signal
        self._ended = 0
        self._lock = threading.Lock()
        self.started_at = 0.0
        self.ended_at = 0.0

    # -- running ---------------------------------------------------------------------
    def _subscriber_ended(self) -> None:
        with self._lock:
            self._ended += 1
            last = self._ended == self._expected_subscribers()
        if last:
            self.ended_at = time.monotonic()
            self._signal()

    def _expected_subscribers(self) -> int:
        return SUBSCRIBERS if self.cell.pipeline == "share_replay" else 1

    def _subscribe(self, source: Observable[Any], subscriber: Subscriber) -> None:
        self.disposables.append(
            source.subscribe(subscriber.on_next, subscriber.on_error, subscriber.on_completed)
        )

    def start(self) -> None:
        """Build the pipeline and subscribe (the request starts now)."""
        timeout = SHORT_TIMEOUT if self.cell.fault.stall else GUARD_TIMEOUT
        base = self.stream.pipe(ops.first_chunk_timeout(timeout), ops.idle_timeout(timeout))
        pipeline = self.cell.pipeline
        self.started_at = time.monotonic()
        if pipeline == "share_replay":
            self._start_shared(base.pipe(ops.share_replay()))
            return
        if pipeline == "reduce":
            source = base.pipe(rx.do_action(on_next=self.tapped.append), ops.to_call_response())
        elif pipeline == "take_until_match":
            source = base.pipe(ops.take_until_match(re.escape(self.cell.provider.phrase)))
        else:
            source = base.pipe(
                ops.retry_on_error(3, backoff=0.01, jitter=0.0, retry_on=self.stream.is_transient)
            )
        subscriber = Subscriber(self._subscriber_ended)
        self.subscribers.append(subscriber)
        self._subscribe(source, subscriber)

    def _start_shared(self, shared: Observable[sk.Chunk]) -> None:
        """Two subscribers at once; the third joins from inside the first's first
        notification (late, while the stream runs or after it ended)."""
        first = Subscriber(self._subscriber_ended)
        late = Subscriber(self._subscriber_ended)
        joined = threading.Event()

        def join_late() -> None:
            if not joined.is_set():
                joined.set()
                self._subscribe(shared, late)

        def first_next(item: sk.Chunk) -> None:
            first.on_next(item)
            join_late()

        def first_error(error: Exception) -> None:
            join_late()
            first.on_error(error)

        def first_completed() -> None:
            join_late()
            first.on_completed()

        second = Subscriber(self._subscriber_ended)
        self.subscribers += [first, second, late]
        self.disposables.append(shared.subscribe(first_next, first_error, first_completed))
        self._subscribe(shared, second)

    def dispose(self) -> None:
        """Dispose every subscription (a no-op for those that ended)."""
        for disposable in self.disposables:
            disposable.dispose()

    # -- checking --------------------------------------------------------------------
    def check(self, loop_thread: threading.Thread | None = None) -> dict[str, Any]:
        """Assert everything the cell must show; return what was observed."""
        expect = self.expectation
        outcome = expect.outcome
        subscribers = self.subscribers
        for subscriber in subscribers:
            assert subscriber.ends == 1 and not subscriber.after_end, subscriber.after_end
            if loop_thread is not None:
                assert subscriber.threads == {loop_thread}, "notified off the event loop"
        errors = [subscriber.error for subscriber in subscribers]
        texts = [self._text(subscriber) for subscriber in subscribers]
        for text in texts:
            assert FOREIGN_TEXT not in text, "another provider's event reached the output"
        if outcome.ok:
            for error in errors:
                if error is not None:
                    raise AssertionError(f"expected success, got {error!r}") from error
            assert texts == [expect.text] * len(texts), "text lost, duplicated or changed"
            if self.cell.pipeline == "reduce":
                (response,) = subscribers[0].items
                assert isinstance(response, sk.CallResponse)
                assert response.content == expect.text
        else:
            for error, text in zip(errors, texts, strict=True):
                self._check_error(error, text)
        if self.cell.pipeline == "share_replay":
            sequences = [[id(item) for item in subscriber.items] for subscriber in subscribers]
            assert all(sequence == sequences[0] for sequence in sequences), "fan-out differs"
            assert all(error is errors[0] for error in errors), "subscribers got different ends"
        requests = self.server.requests
        assert len(requests) == expect.requests, [r.fault for r in requests]
        if self.cell.fault.key == "http_429" and expect.requests > 1:
            waited = requests[1].started_at - (requests[0].finished_at or 0.0)
            assert waited >= RETRY_AFTER * 0.9, f"retry-after not honored: {waited:.3f} s"
        return {
            "observed": "ok" if errors[0] is None else type(errors[0]).__name__,
            "requests": len(requests),
            "seconds": round(self.ended_at - self.started_at, 3),
        }

    def leaks(self, timeout: float) -> list[str]:
        """What is still open after the cell (waiting up to ``timeout`` for it to close):
        connections on the server's side, streamkit source threads."""

        def found() -> list[str]:
            threads = [
                t.name for t in threading.enumerate() if t.name.startswith(THREAD_NAME_PREFIX)
            ]
            connections = self.server.open_connections
            return [*threads, *([f"{connections} open connection(s)"] if connections else [])]

        settle(lambda: not found(), timeout)
        return found()

    def _text(self, subscriber: Subscriber) -> str:
        if self.cell.pipeline == "reduce":
            return "".join(chunk.content for chunk in self.tapped)
        return subscriber.text()

    def _check_error(self, error: BaseException | None, text: str) -> None:
        expect = self.expectation
        outcome = expect.outcome
        if error is None:
            raise AssertionError(f"expected {outcome.label()}, the stream succeeded")
        if self.cell.fault.key == "reset" and not isinstance(error, sk.IncompleteStreamError):
            # The RST came before the client had read any event: the transport's error.
            assert text == "" and self.stream.is_transient(error), repr(error)
        elif not isinstance(error, outcome.error_types()):
            raise AssertionError(f"expected {outcome.label()}, got {error!r}") from error
        if outcome.status is not None:
            assert _status_of(error) == outcome.status, repr(error)
        if outcome.exact:
            assert text == expect.text, "text lost or duplicated before the error"
        else:
            assert expect.text.startswith(text), "text received is not a prefix of the truth"
        if self.cell.fault.stall:
            assert isinstance(error, sk.StreamTimeoutError)
            kind = "first chunk" if self.cell.fault.key == "stall_first" else "idle"
            assert error.kind == kind
            assert self.ended_at - self.started_at < STALL / 2, "the stall was waited out"


def _status_of(error: BaseException) -> int | None:
    """The HTTP status an SDK error carries (``status_code`` or google's ``code``)."""
    for name in ("status_code", "code"):
        value = getattr(error, name, None)
        if isinstance(value, int | str) and str(value).isdigit():
            return int(value)
    return None


def _qualified(error: BaseException) -> str:
    return f"{type(error).__module__}.{type(error).__qualname__}"


def _check_spans(run: CellRun, telemetry: Telemetry) -> None:
    """One ended request span per request, in the right tree, ending as the cell did."""
    requests = len(run.server.requests)
    pipeline = run.cell.pipeline
    telemetry.wait_for(requests + (pipeline == "retry_on_error"))
    spans = telemetry.requests()
    assert len(spans) == requests, [s.name for s in spans]
    if pipeline == "retry_on_error":
        (operation,) = telemetry.operations()
        for span in spans:
            assert span.parent is not None and span.parent.span_id == operation.context.span_id
        assert attrs(operation)["streamkit.attempts"] == requests
        ended_with = attrs(operation)
    else:
        assert telemetry.operations() == []
        assert all(span.parent is None for span in spans)
        ended_with = attrs(spans[-1])
    telemetry.check_ended_once()
    error = run.subscribers[0].error
    outcome = ended_with["streamkit.end.outcome"]
    if error is None:
        expected = "disposed" if pipeline == "take_until_match" else "completed"
        assert outcome == expected, ended_with
    elif run.cell.fault.stall and isinstance(error, sk.StreamTimeoutError):
        assert outcome == "timeout", ended_with
        assert ended_with["error.type"] == "streamkit.StreamTimeoutError"
    else:
        assert outcome == "error", ended_with
        assert ended_with["error.type"] == _qualified(error)


def _skip_if_missing(cell: Cell) -> None:
    reason = cell.skip_reason()
    if reason is not None:
        pytest.skip(reason)


def _check_leaks(run: CellRun) -> None:
    """No connection or source thread left (the conftest fixtures check again, wider);
    a known gap must still leak, and is then cleaned up by closing the server."""
    gap = run.cell.known_gap()
    leaks = run.leaks(GAP_SETTLE if gap else SETTLE)
    if gap is None:
        assert leaks == [], f"left open after the cell: {leaks}"
        return
    run.server.close()  # wakes the blocked reader, so nothing outlives the test
    if leaks:
        pytest.xfail(f"known gap: {gap}")
    pytest.fail("this known gap no longer leaks: remove it from KNOWN_GAPS in _matrix.py")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("cell", list(cells_for("sync")), ids=lambda cell: cell.id)
def test_sync_cell(
    cell: Cell,
    replay: Callable[..., ReplayServer],
    record_property: Callable[[str, str], None],
    telemetry: Telemetry,
) -> None:
    _skip_if_missing(cell)
    record_property("cell", describe(cell))
    ended = threading.Event()
    run = CellRun(cell, replay(), ended.set)
    try:
        run.start()
        assert ended.wait(WAIT_LIMIT), f"the cell did not end in {WAIT_LIMIT} s: it hangs"
        record_property("observed", json.dumps(run.check()))
    finally:
        run.dispose()
    _check_spans(run, telemetry)
    _check_leaks(run)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("cell", list(cells_for("async")), ids=lambda cell: cell.id)
async def test_async_cell(
    cell: Cell,
    replay: Callable[..., ReplayServer],
    record_property: Callable[[str, str], None],
    telemetry: Telemetry,
) -> None:
    _skip_if_missing(cell)
    record_property("cell", describe(cell))
    loop = asyncio.get_running_loop()
    ended = asyncio.Event()

    def end() -> None:
        loop.call_soon_threadsafe(ended.set)

    run = CellRun(cell, replay(), end)
    try:
        run.start()
        try:
            await asyncio.wait_for(ended.wait(), WAIT_LIMIT)
        except TimeoutError:
            raise AssertionError(f"the cell did not end in {WAIT_LIMIT} s: it hangs") from None
        record_property("observed", json.dumps(run.check(threading.current_thread())))
    finally:
        run.dispose()
        await close_async_client(run.client)
    _check_spans(run, telemetry)
    _check_leaks(run)
