"""``ops.retry_on_error``: virtual-time examples (subscriptions, backoff, disposal),
hypothesis properties over fault schedules, and end to end with the openai and
anthropic SDKs (sync and async) against the replay server."""

from __future__ import annotations

import asyncio
import email.utils
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import openai
import pytest
import reactivex
from hypothesis import assume, given
from hypothesis import strategies as st
from reactivex import Observable
from reactivex.notification import OnError, OnNext
from reactivex.scheduler import ImmediateScheduler
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.coldobservable import ColdObservable
from reactivex.testing.recorded import Recorded

import streamkit as sk
from streamkit import ops
from streamkit._source import THREAD_NAME_PREFIX
from streamkit.ops._retry_on_error import retry_after_seconds
from streamkit.providers._base import CONTINUE_INSTRUCTION
from streamkit.testing import Fault, ReplayServer, Reply, Transcript, load_transcript
from streamkit.testing import strategies as sks

on_next, on_completed, on_error = (
    ReactiveTest.on_next,
    ReactiveTest.on_completed,
    ReactiveTest.on_error,
)
subscribe = ReactiveTest.subscribe


def text(content: str = "", **fields: Any) -> sk.Chunk:
    return sk.Chunk(provider="openai", content=content, **fields)


def usage(input_tokens: int, output_tokens: int) -> sk.Usage:
    return sk.Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
    )


def cut() -> sk.IncompleteStreamError:
    return sk.IncompleteStreamError("openai", "[DONE]", events=2)


def attempts(*sources: Observable[Any]) -> Observable[Any]:
    """A cold source whose n-th subscription is ``sources[n]`` (one per attempt)."""
    queue = iter(sources)
    return reactivex.defer(lambda _scheduler: next(queue))


def run_attempts(
    scheduler: TestScheduler,
    *sources: Observable[sk.Chunk],
    disposed: int = 1000,
    reduce: bool = False,
    **retry: Any,
) -> Any:
    """Subscribe at 200 to the attempts through ``retry_on_error(**retry)`` (default: 1
    tick of backoff, no jitter), then ``to_call_response()`` if ``reduce``; dispose at
    ``disposed``; return the test observer."""
    options = {"backoff": 1, "jitter": 0, "scheduler": scheduler, **retry}
    retried: Observable[Any] = attempts(*sources).pipe(ops.retry_on_error(**options))
    if reduce:
        retried = retried.pipe(ops.to_call_response())
    return scheduler.start(lambda: retried, disposed=disposed)


def values(results: Any) -> list[Any]:
    """The values the test observer received."""
    return [m.value.value for m in results.messages if isinstance(m.value, OnNext)]


def diverged(results: Any) -> sk.StreamDivergedError:
    """The ``StreamDivergedError`` the run ended with."""
    last = results.messages[-1].value
    assert isinstance(last, OnError)
    assert isinstance(last.exception, sk.StreamDivergedError)
    return last.exception


def timer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if isinstance(t, threading.Timer) and t.is_alive()]


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


@pytest.fixture(autouse=True)
def nothing_left_running() -> Iterator[None]:
    yield
    wait_until(lambda: not timer_threads())
    wait_until(
        lambda: not [t for t in threading.enumerate() if t.name.startswith(THREAD_NAME_PREFIX)]
    )


# -- virtual time: subscriptions, backoff, matching ----------------------------------
def test_a_cut_attempt_is_resubscribed_after_the_backoff_and_only_new_text_passes() -> None:
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(
        on_next(10, text("Hel")), on_next(20, text("lo ")), on_error(30, cut())
    )
    second = scheduler.create_cold_observable(
        on_next(10, text("Hello w")),  # straddles the delivered text: cut to "w"
        on_next(20, text("orld")),
        on_next(25, text(finish_reasons=["stop"], usage=usage(5, 3))),
        on_completed(30),
    )
    results = run_attempts(scheduler, first, second, max_attempts=3, backoff=5)

    assert first.subscriptions == [subscribe(200, 230)]
    assert second.subscriptions == [subscribe(235, 265)]
    assert results.messages == [
        on_next(210, text("Hel")),
        on_next(220, text("lo ")),
        on_next(245, text("w")),
        on_next(255, text("orld")),
        on_next(260, text(finish_reasons=["stop"], usage=usage(5, 3))),
        on_completed(265),
    ]


def test_the_delays_double_up_to_max_backoff() -> None:
    scheduler = TestScheduler()
    failing = [scheduler.create_cold_observable(on_error(10, cut())) for _ in range(4)]
    last = scheduler.create_cold_observable(on_next(10, text("ok")), on_completed(20))
    results = run_attempts(scheduler, *failing, last, max_attempts=5, backoff=4, max_backoff=12)

    starts = [source.subscriptions[0].subscribe for source in [*failing, last]]
    # each attempt fails 10 after it starts; then waits 4, 8, 12 (capped), 12
    assert starts == [200, 214, 232, 254, 276]
    assert results.messages == [on_next(286, text("ok")), on_completed(296)]


def test_a_backoff_function_gets_the_number_of_the_failed_attempt() -> None:
    scheduler = TestScheduler()
    seen: list[int] = []

    def backoff(failed: int) -> float:
        seen.append(failed)
        return 100.0 * failed

    failing = [scheduler.create_cold_observable(on_error(10, cut())) for _ in range(3)]
    run_attempts(
        scheduler,
        *failing,
        max_attempts=3,
        backoff=backoff,
        max_backoff=1000,
        disposed=2000,
    )
    assert seen == [1, 2]
    assert [source.subscriptions[0].subscribe for source in failing] == [200, 310, 520]


def test_jitter_draws_each_delay_from_its_lower_share() -> None:
    starts: list[float] = []
    for _ in range(12):
        scheduler = TestScheduler()
        first = scheduler.create_cold_observable(on_error(10, cut()))
        second = scheduler.create_cold_observable(on_completed(10))
        run_attempts(scheduler, first, second, backoff=100, max_backoff=1000, jitter=0.5)
        starts.append(second.subscriptions[0].subscribe - 210)
    assert all(50 <= delay <= 100 for delay in starts)
    assert len(set(starts)) > 1  # random, not a fixed delay


def test_a_non_transient_error_propagates_at_once() -> None:
    scheduler = TestScheduler()
    error = ValueError("a bad request")
    first = scheduler.create_cold_observable(on_next(10, text("a")), on_error(20, error))
    second = scheduler.create_cold_observable(on_completed(10))
    results = run_attempts(scheduler, first, second, max_attempts=3)
    assert results.messages == [on_next(210, text("a")), on_error(220, error)]
    assert first.subscriptions == [subscribe(200, 220)]
    assert second.subscriptions == []


def test_when_attempts_run_out_the_last_error_propagates_with_a_note() -> None:
    scheduler = TestScheduler()
    errors = [cut(), cut()]
    first = scheduler.create_cold_observable(on_next(10, text("ab")), on_error(20, errors[0]))
    second = scheduler.create_cold_observable(
        on_next(10, text("a")), on_next(15, text("bc")), on_error(20, errors[1])
    )
    unused = scheduler.create_cold_observable(on_completed(10))
    results = run_attempts(scheduler, first, second, unused, max_attempts=2)
    assert results.messages == [
        on_next(210, text("ab")),
        on_next(236, text("c")),
        on_error(241, errors[1]),
    ]
    assert unused.subscriptions == []
    if sys.version_info >= (3, 11):  # exception notes exist from 3.11
        assert errors[1].__notes__ == [
            "streamkit.ops.retry_on_error: 2 attempt(s) of 2 failed "
            "(IncompleteStreamError, IncompleteStreamError)"
        ]


def test_one_attempt_means_no_retry() -> None:
    scheduler = TestScheduler()
    error = cut()
    first = scheduler.create_cold_observable(on_error(10, error))
    second = scheduler.create_cold_observable(on_completed(10))
    results = run_attempts(scheduler, first, second, max_attempts=1)
    assert results.messages == [on_error(210, error)]
    assert second.subscriptions == []


def test_disposing_during_the_backoff_cancels_the_next_attempt() -> None:
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(on_next(10, text("a")), on_error(20, cut()))
    second = scheduler.create_cold_observable(on_next(10, text("ab")), on_completed(20))
    results = run_attempts(scheduler, first, second, max_attempts=3, backoff=50, disposed=250)
    assert first.subscriptions == [subscribe(200, 220)]
    assert second.subscriptions == []
    assert results.messages == [on_next(210, text("a"))]


def test_disposing_during_a_retry_disposes_that_attempt() -> None:
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(on_next(10, text("a")), on_error(20, cut()))
    second = scheduler.create_cold_observable(
        on_next(10, text("ab")), on_next(100, text("c")), on_completed(200)
    )
    results = run_attempts(scheduler, first, second, max_attempts=3, backoff=10, disposed=260)
    assert second.subscriptions == [subscribe(230, 260)]
    assert results.messages == [on_next(210, text("a")), on_next(240, text("b"))]


def test_a_retry_that_diverges_raises_and_is_disposed() -> None:
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(
        on_next(10, text("Hello ")), on_next(20, text("there")), on_error(30, cut())
    )
    second = scheduler.create_cold_observable(
        on_next(10, text("Hello ")), on_next(20, text("world")), on_completed(30)
    )
    results = run_attempts(scheduler, first, second, max_attempts=3, backoff=5)
    assert second.subscriptions == [subscribe(235, 255)]
    assert results.messages[:-1] == [on_next(210, text("Hello ")), on_next(220, text("there"))]
    assert results.messages[-1].time == 255
    error = diverged(results)
    assert (error.delivered, error.retried) == ("Hello there", "Hello world")


def test_a_retry_that_ends_before_reproducing_the_delivered_text_diverged() -> None:
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(on_next(10, text("Hello there")), on_error(20, cut()))
    second = scheduler.create_cold_observable(on_next(10, text("Hello")), on_completed(20))
    results = run_attempts(scheduler, first, second)
    assert diverged(results).retried == "Hello"
    assert [m.value.value.content for m in results.messages[:-1]] == ["Hello there"]


def test_new_output_on_another_channel_before_the_replay_is_done_diverged() -> None:
    scheduler = TestScheduler()
    call = sk.ToolCallDelta(index=0, id="call_1", name="lookup", arguments="{}")
    first = scheduler.create_cold_observable(on_next(10, text("Let me check")), on_error(20, cut()))
    second = scheduler.create_cold_observable(
        on_next(10, text("Let me")), on_next(20, text(tool_calls=[call])), on_completed(30)
    )
    results = run_attempts(scheduler, first, second)
    assert diverged(results).delivered == "Let me check"
    assert len(results.messages) == 2  # nothing of the retry was passed on


def test_usage_sums_the_last_report_of_each_failed_attempt() -> None:
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(
        on_next(10, text("a", usage=usage(10, 1))),
        on_next(20, text("b", usage=usage(10, 2))),
        on_error(30, cut()),
    )
    second = scheduler.create_cold_observable(
        on_next(10, text("a", usage=usage(10, 1))), on_error(20, cut())
    )
    third = scheduler.create_cold_observable(
        on_next(10, text("abc", usage=usage(10, 3))),
        on_next(20, text(finish_reasons=["stop"], usage=usage(10, 4))),
        on_completed(30),
    )
    results = run_attempts(scheduler, first, second, third, max_attempts=3)
    # the repeat of "a" in the second attempt carried a report: it passes, without "a"
    assert [chunk.content for chunk in values(results)] == ["a", "b", "", "c", ""]
    assert [chunk.usage for chunk in values(results)] == [
        usage(10, 1),
        usage(10, 2),
        usage(20, 3),
        usage(30, 6),
        usage(30, 7),
    ]


def test_the_reduced_response_shows_the_usage_of_every_attempt() -> None:
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(
        on_next(10, text("a", usage=usage(10, 2))), on_error(20, cut())
    )
    second = scheduler.create_cold_observable(
        on_next(10, text("ab", usage=usage(10, 3))), on_completed(20)
    )
    (response,) = values(run_attempts(scheduler, first, second, reduce=True))
    assert response.content == "ab"
    assert response.usage == usage(20, 5)


def test_tool_calls_keep_the_first_id_and_are_not_repeated() -> None:
    scheduler = TestScheduler()

    def call(id: str | None, arguments: str, name: str | None = None) -> sk.Chunk:
        return text(tool_calls=[sk.ToolCallDelta(index=0, id=id, name=name, arguments=arguments)])

    first = scheduler.create_cold_observable(
        on_next(10, call("call_A", '{"ci', "lookup")), on_error(20, cut())
    )
    second = scheduler.create_cold_observable(
        on_next(10, call("call_B", "", "lookup")),
        on_next(20, call(None, '{"city": "Paris"}')),
        on_next(30, text(finish_reasons=["tool_calls"])),
        on_completed(40),
    )
    (response,) = values(run_attempts(scheduler, first, second, reduce=True))
    (tool_call,) = response.tool_calls
    assert (tool_call.id, tool_call.name, tool_call.args) == ("call_A", "lookup", {"city": "Paris"})


def test_a_continuation_callable_gets_the_delivered_text() -> None:
    scheduler = TestScheduler()
    asked: list[str] = []
    first = scheduler.create_cold_observable(on_next(10, text("Once upon ")), on_error(20, cut()))
    continued = scheduler.create_cold_observable(
        on_next(10, text(" a time")),  # repeats the delivered trailing space: dropped
        on_next(20, text(".", finish_reasons=["stop"])),
        on_completed(30),
    )

    def continuation(delivered: str) -> Observable[sk.Chunk]:
        asked.append(delivered)
        return continued

    results = run_attempts(scheduler, first, continuation=continuation)
    assert asked == ["Once upon "]
    assert continued.subscriptions == [subscribe(221, 251)]
    assert results.messages == [
        on_next(210, text("Once upon ")),
        on_next(231, text("a time")),
        on_next(241, text(".", finish_reasons=["stop"])),
        on_completed(251),
    ]


def test_nothing_delivered_yet_retries_the_original_even_with_continuation() -> None:
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(on_next(10, text("")), on_error(20, cut()))
    second = scheduler.create_cold_observable(on_next(10, text("hi")), on_completed(20))

    def continuation(delivered: str) -> Observable[sk.Chunk]:
        raise AssertionError("no text was delivered: nothing to continue")

    results = run_attempts(scheduler, first, second, continuation=continuation)
    assert results.messages[-2:] == [on_next(231, text("hi")), on_completed(241)]


def test_a_failing_continuation_ends_the_stream_with_its_error() -> None:
    scheduler = TestScheduler()
    broken = ValueError("cannot build the continuation request")
    first = scheduler.create_cold_observable(on_next(10, text("Once")), on_error(20, cut()))

    def continuation(delivered: str) -> Observable[sk.Chunk]:
        raise broken

    results = run_attempts(scheduler, first, continuation=continuation)
    assert results.messages == [on_next(210, text("Once")), on_error(221, broken)]


def test_the_default_timer_thread_is_cancelled_on_dispose() -> None:
    source = attempts(reactivex.throw(cut()), reactivex.never())
    received: list[Any] = []
    subscription = source.pipe(ops.retry_on_error(backoff=30, jitter=0)).subscribe(
        received.append, received.append
    )
    assert len(timer_threads()) == 1  # waiting out the backoff
    subscription.dispose()
    wait_until(lambda: not timer_threads())
    assert received == []


def test_the_default_timer_runs_the_retry_and_ends() -> None:
    source = attempts(
        reactivex.concat(reactivex.of(text("a")), reactivex.throw(cut())),
        reactivex.of(text("ab"), text(finish_reasons=["stop"])),
    )
    response = source.pipe(ops.retry_on_error(backoff=0.01, jitter=0), ops.to_call_response()).run()
    assert response.content == "ab"


@pytest.mark.parametrize("from_thread", [False, True], ids=["on-loop", "other-thread"])
async def test_on_an_event_loop_the_delay_is_a_loop_timer_cancelled_on_dispose(
    from_thread: bool,
) -> None:
    subscribed: list[str] = []

    def second_attempt(_scheduler: Any) -> Observable[sk.Chunk]:
        subscribed.append("second")
        return reactivex.of(text("a"))

    source = attempts(reactivex.throw(cut()), reactivex.defer(second_attempt))
    subscription = source.pipe(ops.retry_on_error(backoff=0.05, jitter=0)).subscribe()
    assert timer_threads() == []  # the failing attempt ran on the loop: so does the delay
    if from_thread:
        await asyncio.to_thread(subscription.dispose)
    else:
        subscription.dispose()
    await asyncio.sleep(0.15)
    assert subscribed == []


async def test_on_an_event_loop_the_retry_runs_after_the_delay() -> None:
    source = attempts(
        reactivex.throw(cut()), reactivex.of(text("ok"), text(finish_reasons=["stop"]))
    )
    started = time.monotonic()
    response = await source.pipe(ops.retry_on_error(backoff=0.05, jitter=0), ops.to_call_response())
    assert response.content == "ok"
    assert time.monotonic() - started >= 0.05


def test_inline_sources_and_timers_do_not_lose_the_next_attempt() -> None:
    # Everything runs inside subscribe(): the error schedules the next attempt, which
    # subscribes before the first subscribe() has returned.
    source = attempts(
        reactivex.throw(cut()),
        reactivex.throw(cut()),
        reactivex.of(text("ok")),
    )
    received: list[Any] = []
    source.pipe(ops.retry_on_error(3, backoff=0, scheduler=ImmediateScheduler())).subscribe(
        received.append, received.append, lambda: received.append("done")
    )
    assert received == [text("ok"), "done"]


def test_a_retry_on_that_raises_ends_the_stream_with_its_error() -> None:
    scheduler = TestScheduler()
    broken = RuntimeError("classifier bug")

    def retry_on(error: BaseException) -> bool:
        raise broken

    first = scheduler.create_cold_observable(on_error(10, cut()))
    results = run_attempts(scheduler, first, retry_on=retry_on)
    assert results.messages == [on_error(210, broken)]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_attempts": 0}, ValueError),
        ({"max_attempts": "3"}, TypeError),
        ({"max_attempts": True}, TypeError),
        ({"backoff": -1}, ValueError),
        ({"backoff": "1s"}, TypeError),
        ({"max_backoff": -0.5}, ValueError),
        ({"jitter": 1.5}, ValueError),
        ({"retry_on": 3}, TypeError),
        ({"scheduler": "now"}, TypeError),
        ({"continuation": "restart"}, ValueError),
    ],
)
def test_bad_arguments_are_rejected_before_any_request(
    kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        ops.retry_on_error(**kwargs)


def test_continue_needs_the_stream_itself() -> None:
    with pytest.raises(TypeError, match="Stream itself"):
        reactivex.of(text("a")).pipe(ops.retry_on_error(continuation="continue"))


# -- retry-after ----------------------------------------------------------------------
class _Response:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


class _RateLimited(Exception):
    """Shaped as the SDKs' 429 errors: ``status_code`` and ``response.headers``."""

    status_code = 429

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__("rate limited")
        self.response = _Response(headers)


def test_retry_after_is_read_in_each_of_its_forms() -> None:
    assert retry_after_seconds(_RateLimited({"retry-after": "7"})) == 7.0
    assert retry_after_seconds(_RateLimited({"retry-after-ms": "250"})) == 0.25
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 55 <= (retry_after_seconds(_RateLimited({"retry-after": in_a_minute})) or 0) <= 60
    assert retry_after_seconds(_RateLimited({"retry-after": "soon"})) is None
    assert retry_after_seconds(_RateLimited({})) is None
    assert retry_after_seconds(ValueError()) is None


def test_retry_after_sets_the_delay_when_longer_than_the_backoff() -> None:
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(on_error(10, _RateLimited({"retry-after": "40"})))
    second = scheduler.create_cold_observable(on_completed(10))
    run_attempts(scheduler, first, second)
    assert second.subscriptions == [subscribe(250, 260)]


def test_a_retry_after_beyond_max_backoff_is_not_waited_for() -> None:
    scheduler = TestScheduler()
    error = _RateLimited({"retry-after": "120"})
    first = scheduler.create_cold_observable(on_error(10, error))
    second = scheduler.create_cold_observable(on_completed(10))
    results = run_attempts(scheduler, first, second, max_backoff=60)
    assert results.messages == [on_error(210, error)]
    assert second.subscriptions == []
    if sys.version_info >= (3, 11):  # exception notes exist from 3.11
        assert "longer than max_backoff=60" in error.__notes__[-1]


# -- properties -----------------------------------------------------------------------
def _attempt(
    scheduler: TestScheduler, chunks: Sequence[sk.Chunk], cut_at: int | None, error: Exception
) -> ColdObservable[sk.Chunk]:
    delivered = chunks if cut_at is None else chunks[:cut_at]
    messages: list[Recorded[sk.Chunk]] = [
        on_next(i + 1, chunk) for i, chunk in enumerate(delivered)
    ]
    end = len(delivered) + 1
    messages.append(on_completed(end) if cut_at is None else on_error(end, error))
    return scheduler.create_cold_observable(messages)


def _joined_arguments(chunks: Sequence[sk.Chunk]) -> dict[int, str]:
    joined: dict[int, str] = {}
    for chunk in chunks:
        for delta in chunk.tool_calls:
            joined[delta.index] = joined.get(delta.index, "") + delta.arguments
    return joined


@given(data=st.data(), stream=sks.chunk_streams(), max_attempts=st.integers(1, 4))
def test_output_equals_the_fault_free_output_whatever_the_faults(
    data: st.DataObject, stream: sks.ChunkStream, max_attempts: int
) -> None:
    schedule = data.draw(sks.fault_schedules(len(stream.chunks), max_faults=4))
    scheduler = TestScheduler()
    sources: list[ColdObservable[sk.Chunk]] = []
    outputs: list[list[sk.Chunk]] = []
    cuts: list[int | None] = []
    errors: list[Exception] = []
    for number in range(max_attempts):
        chunks = (
            stream.chunks
            if number == 0
            else data.draw(sks.rechunked(stream, id_prefix=f"retry{number}_"))
        )
        planned = schedule.breaks[number] if number < len(schedule.breaks) else None
        cut_at = None if planned is None else min(planned, len(chunks) - 1)
        errors.append(cut())
        cuts.append(cut_at)
        outputs.append(list(chunks))
        sources.append(_attempt(scheduler, chunks, cut_at, errors[-1]))
        if cut_at is None:
            break
    results = run_attempts(scheduler, *sources, max_attempts=max_attempts, disposed=100_000)
    received = values(results)
    content = "".join(chunk.content for chunk in received)
    last = results.messages[-1].value

    # every attempt was subscribed once, each after the previous one ended
    assert all(len(source.subscriptions) == 1 for source in sources)
    if cuts[-1] is not None:  # attempts ran out: the last error, after a prefix, no repeats
        assert isinstance(last, OnError)
        assert last.exception is errors[-1]
        assert stream.text.startswith(content)
        return
    assert last.kind == "C"
    assert content == stream.text  # nothing lost, nothing twice
    assert sum(1 for chunk in received if chunk.finish_reasons) == 1
    expected_arguments = {
        index: json.dumps(args, ensure_ascii=False)
        for index, (_, _, args) in enumerate(stream.tool_calls)
    }
    assert _joined_arguments(received) == expected_arguments
    # each tool call keeps the id of the first attempt that reached its first fragment
    first_ids: dict[int, str] = {}
    for chunks, cut_at in zip(outputs, cuts, strict=True):
        for chunk in chunks[:cut_at]:
            for delta in chunk.tool_calls:
                if delta.id is not None:
                    first_ids.setdefault(delta.index, delta.id)
    accumulator = sk.Accumulator()
    for chunk in received:
        accumulator.add(chunk)
    accumulator.finish()
    response = accumulator.response()
    assert [call.id for call in response.tool_calls] == [
        first_ids[i] for i in range(len(stream.tool_calls))
    ]
    assert [(c.name, c.args) for c in response.tool_calls] == [
        (name, args) for _, name, args in stream.tool_calls
    ]
    # usage: the last report of every failed attempt, plus the successful one's
    billed = stream.usage
    for chunks, cut_at in zip(outputs[:-1], cuts[:-1], strict=True):
        reports = [chunk.usage for chunk in chunks[:cut_at] if chunk.usage is not None]
        if reports:
            billed = reports[-1] + billed
    assert response.usage == billed


@given(data=st.data(), stream=sks.chunk_streams())
def test_a_retry_that_differs_in_the_delivered_text_raises_diverged(
    data: st.DataObject, stream: sks.ChunkStream
) -> None:
    text_chunks = [i for i, chunk in enumerate(stream.chunks) if chunk.content]
    assume(text_chunks)
    cut_at = data.draw(st.integers(text_chunks[0] + 1, len(stream.chunks) - 1))
    delivered = "".join(chunk.content for chunk in stream.chunks[:cut_at])
    position = data.draw(st.integers(0, len(delivered) - 1))
    replacement = data.draw(st.characters().filter(lambda c: c != delivered[position]))
    changed = stream.text[:position] + replacement + stream.text[position + 1 :]
    retry = [text(piece) for piece in data.draw(sks.split_text(changed))]
    retry.append(stream.chunks[-1])

    scheduler = TestScheduler()
    first = _attempt(scheduler, stream.chunks, cut_at, cut())
    second = _attempt(scheduler, retry, None, cut())
    results = run_attempts(scheduler, first, second)
    error = diverged(results)
    assert error.delivered == delivered
    assert error.retried[:position] == delivered[:position]
    assert "".join(chunk.content for chunk in values(results)) == delivered
    assert second.subscriptions[0].unsubscribe == results.messages[-1].time


# -- end to end: real SDK clients against the replay server ---------------------------
def _anthropic_story(*pieces: str, overloaded: bool = False) -> Transcript:
    """An Anthropic Messages stream of ``pieces`` (synthetic, in memory): the full
    stream, or (``overloaded``) the pieces then an ``overloaded_error`` event."""

    def event(kind: str, **data: Any) -> str:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}"

    message: dict[str, Any] = {
        "id": "msg_retry",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-20250514",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 14, "output_tokens": 1},
    }
    events = [
        event("message_start", message=message),
        event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        *(
            event("content_block_delta", index=0, delta={"type": "text_delta", "text": piece})
            for piece in pieces
        ),
    ]
    if overloaded:
        events.append(event("error", error={"type": "overloaded_error", "message": "Overloaded"}))
    else:
        events += [
            event("content_block_stop", index=0),
            event(
                "message_delta",
                delta={"stop_reason": "end_turn", "stop_sequence": None},
                usage={"output_tokens": 2 + len(pieces)},
            ),
            event("message_stop"),
        ]
    return Transcript.from_events("anthropic", "messages", events, name="synthetic/in-memory")


OVERLOADED = "synthetic/anthropic-midstream-overloaded-error"
STORY = ("Once upon a time", ", a dragon", " slept", " under the hill.")


async def _run(observable: Observable[Any], async_: bool) -> Any:
    if async_:
        return await observable
    return await asyncio.to_thread(observable.run)


async def _retried(
    stream: sk.Stream, async_: bool, **retry: Any
) -> tuple[sk.CallResponse, list[str]]:
    """The response of ``stream`` through ``retry_on_error(**retry)``, and the content
    pieces it passed on."""
    pieces: list[str] = []
    response = await _run(
        stream.pipe(
            ops.retry_on_error(**retry),
            reactivex.operators.do_action(lambda chunk: pieces.append(chunk.content)),
            ops.to_call_response(),
        ),
        async_,
    )
    return response, pieces


async def _close(client: Any, async_: bool) -> None:
    if async_:
        await client.close()


def _expected(server: ReplayServer, transcript: str, provider: str) -> sk.CallResponse:
    """The response of a fault-free run (one request, counted out by the caller)."""
    client = server.client(provider)
    server.push(transcript)
    response: sk.CallResponse = (
        sk.stream(provider, "m", "hi", client=client).pipe(ops.to_call_response()).run()
    )
    return response


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(
    "fault", [Fault(close_after_events=5), Fault(reset_after_events=5)], ids=["close", "reset"]
)
async def test_openai_cut_mid_stream_yields_the_full_text_once(async_: bool, fault: Fault) -> None:
    name = "openai/chat-text-after-tool-results"
    with ReplayServer(pace=0.0) as server:
        expected = _expected(server, name, "openai")
        client = server.client("openai", async_=async_)
        server.push(Reply(name, fault=fault), name)
        stream = sk.stream("openai", "gpt-4o-mini", "hi", client=client)
        response, pieces = await _retried(stream, async_, backoff=0.01)
        await _close(client, async_)
        assert len(server.requests) == 3  # the fault-free run, the cut attempt, the retry
        assert server.requests[1].events_sent == 5
        assert "".join(pieces) == expected.content == response.content
        # The cut attempt reported no usage, but it was billed: streamkit's estimate of
        # it is added to the retry's reported figures.
        assert expected.usage is not None and response.usage is not None
        assert response.usage.source == "mixed"
        assert response.usage.input_tokens > expected.usage.input_tokens
        assert response.usage.output_tokens > expected.usage.output_tokens
        wait_until(lambda: server.open_connections == 0)


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_retry_before_share_replay_gives_every_subscriber_the_text_once(
    async_: bool,
) -> None:
    name = "openai/chat-text-after-tool-results"
    with ReplayServer(pace=0.0) as server:
        expected = _expected(server, name, "openai").content
        client = server.client("openai", async_=async_)
        server.push(Reply(name, fault=Fault(close_after_events=7)), name)
        stream = sk.stream("openai", "gpt-4o-mini", "hi", client=client)
        shared = stream.pipe(ops.retry_on_error(backoff=0.01), ops.share_replay())
        responses = await asyncio.gather(
            *(_run(shared.pipe(ops.to_call_response()), async_) for _ in range(3))
        )
        await _close(client, async_)
        assert [response.content for response in responses] == [expected] * 3
        assert len(server.requests) == 3  # the fault-free run, then one cut and one retry


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_disposing_during_the_retry_closes_its_http_response(async_: bool) -> None:
    name = "openai/chat-text-after-tool-results"
    with ReplayServer(pace=0.02) as server:
        client = server.client("openai", async_=async_)
        server.push(Reply(name, pace=0.0, fault=Fault(close_after_events=3)), name)
        stream = sk.stream("openai", "gpt-4o-mini", "hi", client=client)
        received: list[sk.Chunk] = []
        subscription = stream.pipe(ops.retry_on_error(backoff=0.01)).subscribe(received.append)
        while len(server.requests) < 2 or server.requests[1].events_sent < 5:
            await asyncio.sleep(0.005)
        subscription.dispose()
        second = await asyncio.to_thread(server.wait_for_request_end, 1)
        await _close(client, async_)
        assert second.disconnected and not second.completed
        assert second.events_sent < second.events_total
        wait_until(lambda: server.open_connections == 0)


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_openai_429_waits_for_retry_after_then_succeeds(async_: bool) -> None:
    body = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit"}}
    rate_limited = Transcript.from_events(
        "openai",
        "chat.completions",
        [json.dumps(body)],
        status=429,
        headers={"retry-after": "0.3"},
        terminate=False,
    )
    with ReplayServer(pace=0.0) as server:
        client = server.client("openai", async_=async_)
        server.push(rate_limited, "openai/chat-text-usage")
        stream = sk.stream("openai", "gpt-4o-mini", "hi", client=client)
        response = await _run(
            stream.pipe(ops.retry_on_error(backoff=0.01, jitter=0), ops.to_call_response()),
            async_,
        )
        await _close(client, async_)
        assert response.content == "4200 + 42 equals 4242."
        assert [r.status for r in server.requests] == [429, 200]
        finished = server.requests[0].finished_at
        assert finished is not None
        assert server.requests[1].started_at - finished >= 0.25


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_openai_404_is_not_retried(async_: bool) -> None:
    with ReplayServer(pace=0.0) as server:
        client = server.client("openai", async_=async_)
        server.push("openai/chat-error-404-model-not-found", "openai/chat-text-usage")
        stream = sk.stream("openai", "gpt-4o-mini", "hi", client=client)
        with pytest.raises(openai.NotFoundError):
            await _run(stream.pipe(ops.retry_on_error(backoff=0.01)), async_)
        await _close(client, async_)
        assert len(server.requests) == 1


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_openai_retry_that_diverges_with_and_without_continuation(async_: bool) -> None:
    other = "openai/chat-text-usage"
    with ReplayServer(pace=0.0) as server:
        other_text = _expected(server, other, "openai").content
        client = server.client("openai", async_=async_)
        prompt = [{"role": "user", "content": "Which secrets go with which passwords?"}]
        stream = sk.stream("openai", "gpt-4o-mini", prompt, client=client)
        cut_first = Reply("openai/chat-text-after-tool-results", fault=Fault(close_after_events=6))

        server.push(cut_first, other)
        pieces: list[str] = []
        with pytest.raises(sk.StreamDivergedError) as diverged:
            await _run(
                stream.pipe(
                    ops.retry_on_error(backoff=0.01),
                    reactivex.operators.do_action(lambda chunk: pieces.append(chunk.content)),
                ),
                async_,
            )
        delivered = "".join(pieces)
        assert delivered and diverged.value.delivered == delivered
        assert other_text.startswith(diverged.value.retried)
        assert len(server.requests) == 3

        server.push(cut_first, other)
        response, _ = await _retried(stream, async_, backoff=0.01, continuation="continue")
        await _close(client, async_)
        assert response.content == delivered + other_text
        continuation_request = server.requests[4].json
        assert continuation_request["messages"] == [
            *prompt,
            {"role": "assistant", "content": delivered},
            {"role": "user", "content": CONTINUE_INSTRUCTION},
        ]
        assert continuation_request["model"] == "gpt-4o-mini"
        assert continuation_request["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_anthropic_overloaded_mid_stream_then_success(async_: bool) -> None:
    with ReplayServer(pace=0.0) as server:
        client = server.client("anthropic", async_=async_)
        server.push(OVERLOADED, _anthropic_story(*STORY))
        stream = sk.stream("anthropic", "claude-sonnet-4-20250514", "A story?", client=client)
        response, pieces = await _retried(stream, async_, backoff=0.01)
        await _close(client, async_)
        assert len(server.requests) == 2
        assert "".join(pieces) == response.content == "".join(STORY)
        assert pieces.count(" under the hill.") == 1
        # billed: the overloaded attempt (its message_start reported 14 in, 1 out, but
        # text came after it: its output is streamkit's estimate) plus the full call
        # (14 in, 6 out, reported)
        assert response.usage is not None
        assert response.usage.source == "mixed"
        assert response.input_tokens == 28
        assert response.output_tokens is not None and response.output_tokens > 6 + 1
        assert response.usage.total_tokens == 28 + response.output_tokens
        assert response.finish_reasons == ["end_turn"]


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_anthropic_continuation_prefills_the_delivered_text(async_: bool) -> None:
    with ReplayServer(pace=0.0) as server:
        client = server.client("anthropic", async_=async_)
        stream = sk.stream("anthropic", "claude-sonnet-4-20250514", "A story?", client=client)
        diverging = _anthropic_story("Once upon a time, a cat", " purred.")

        server.push(OVERLOADED, diverging)
        with pytest.raises(sk.StreamDivergedError) as diverged:
            await _run(stream.pipe(ops.retry_on_error(backoff=0.01)), async_)
        assert diverged.value.delivered == "Once upon a time, a dragon slept"

        # the first attempt stops after a trailing space, which the prefill must not hold
        server.push(_anthropic_story("Once upon a time, ", overloaded=True))
        server.push(_anthropic_story(" a dragon", " slept."))
        response, _ = await _retried(stream, async_, backoff=0.01, continuation="continue")
        await _close(client, async_)
        assert response.content == "Once upon a time, a dragon slept."
        assert server.requests[3].json["messages"] == [
            {"role": "user", "content": "A story?"},
            {"role": "assistant", "content": "Once upon a time,"},
        ]


def _openrouter_midstream_error(code: int | None) -> Transcript:
    """OpenRouter's recorded stream whose last chunk carries ``error.code`` 400, with
    that code changed (``None``: the error removed, the stream as it should have been)."""
    recorded = load_transcript("openrouter/chat-midstream-error-chunk")
    events = []
    for event in recorded.events:
        if event.startswith("data: {") and '"error"' in event:
            chunk = json.loads(event.removeprefix("data: "))
            if code is None:
                del chunk["error"]
            else:
                chunk["error"]["code"] = code
            event = f"data: {json.dumps(chunk)}\n\n"
        events.append(event)
    return Transcript.from_events("openrouter", "chat.completions", events, terminate=False)


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_openrouter_midstream_error_is_retried_by_its_carried_status(async_: bool) -> None:
    # OpenRouter reports an upstream failure as a chunk with a numeric error.code in a 200
    # stream: 502 is worth a retry, the recorded 400 is not.
    with ReplayServer(pace=0.0) as server:
        client = server.client("openai", async_=async_)
        stream = sk.stream("openai", "minimax/minimax-m2:free", "hi", client=client)
        server.push(_openrouter_midstream_error(502), _openrouter_midstream_error(None))
        response, _ = await _retried(stream, async_, backoff=0.01)
        assert len(server.requests) == 2
        assert response.thinking == "We need to respond to a greeting. The user"
        assert response.finish_reasons == ["length"]

        server.push(_openrouter_midstream_error(400), _openrouter_midstream_error(None))
        with pytest.raises(openai.APIError, match="Token limit reached"):
            await _retried(stream, async_, backoff=0.01)
        await _close(client, async_)
        assert len(server.requests) == 3
