"""sk.Deadlines, ops.deadlines() and ops.total_timeout(): one time budget per call."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reactivex.testing import TestScheduler

import streamkit as sk
from streamkit import ops

from ._pipelines import chunks_of, on_completed, on_next, subscribe


def test_total_timeout_fires_even_while_chunks_flow() -> None:
    scheduler = TestScheduler()
    a, b, c = chunks_of(["a", "b", "c"])
    xs = scheduler.create_cold_observable(on_next(10, a), on_next(40, b), on_next(80, c))

    results = scheduler.start(lambda: xs.pipe(ops.total_timeout(50)))

    assert [m.value.value.content for m in results.messages[:-1]] == ["a", "b"]
    error = results.messages[-1].value.exception
    assert isinstance(error, sk.StreamTimeoutError) and (error.kind, error.seconds) == (
        "total",
        50.0,
    )
    assert results.messages[-1].time == 250
    assert xs.subscriptions == [subscribe(200, 250)]


def test_deadlines_combine_and_the_first_to_pass_names_itself() -> None:
    scheduler = TestScheduler()
    a, b = chunks_of(["a", "b"])
    xs = scheduler.create_cold_observable(on_next(10, a), on_next(60, b), on_completed(70))
    budget = sk.Deadlines(first_chunk=20, idle=30, total=500)

    results = scheduler.start(lambda: xs.pipe(ops.deadlines(budget)))

    error = results.messages[-1].value.exception
    assert isinstance(error, sk.StreamTimeoutError) and error.kind == "idle"
    assert results.messages[-1].time == 240
    assert xs.subscriptions == [subscribe(200, 240)]


def test_a_stream_that_ends_in_time_passes_unchanged() -> None:
    scheduler = TestScheduler()
    a, b = chunks_of(["a", "b"])
    xs = scheduler.create_cold_observable(on_next(10, a), on_next(20, b), on_completed(30))

    results = scheduler.start(lambda: xs.pipe(ops.deadlines(first_chunk=15, idle=15, total=40)))

    assert [m.time for m in results.messages] == [210, 220, 230]
    assert xs.subscriptions == [subscribe(200, 230)]


@given(st.lists(st.integers(1, 30), min_size=1, max_size=8), st.integers(1, 200))
def test_total_timeout_passes_exactly_the_chunks_before_it(gaps: list[int], total: int) -> None:
    scheduler = TestScheduler()
    times, now = [], 0
    for gap in gaps:
        now += gap
        times.append(now)
    chunks = chunks_of([str(i) for i in range(len(times))])
    xs = scheduler.create_cold_observable(
        *[on_next(t, c) for t, c in zip(times, chunks, strict=True)], on_completed(now + 1)
    )
    results = scheduler.start(lambda: xs.pipe(ops.total_timeout(total)))
    passed = [m for m in results.messages if m.value.kind == "N"]
    assert len(passed) == sum(1 for t in times if t < total)
    ended_by_timeout = results.messages[-1].value.kind == "E"
    assert ended_by_timeout == (now + 1 > total)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"headers": 0}, ValueError),
        ({"idle": "1"}, TypeError),
        ({"total": float("inf")}, ValueError),
    ],
)
def test_bad_deadlines_are_refused(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        sk.Deadlines(**kwargs)  # type: ignore[arg-type]


def test_deadlines_refuse_a_budget_and_keywords_together() -> None:
    with pytest.raises(TypeError):
        ops.deadlines(sk.Deadlines(total=1), idle=2)
    with pytest.raises(TypeError):
        sk.stream("openai", "m", "hi", client=None, deadlines=5)  # type: ignore[arg-type]


def test_read_timeout_covers_idle_gaps() -> None:
    assert sk.Deadlines(headers=2, idle=5).read_timeout == 5
    assert sk.Deadlines(headers=2).read_timeout == 2
    assert sk.Deadlines(idle=2).read_timeout is None
