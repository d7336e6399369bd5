"""Operator fusion: consecutive streamkit operators subscribe upstream once, as one
observer, and behave exactly as the same operators unfused.

The property builds random pipelines of the fusable operators with reactivex's own
operators between them (which end a fused run), over random chunk streams, twice: with
fusion on and off (``_fusion.ENABLED``, read when an operator is applied). Both run
on a ``TestScheduler`` over the same cold observable and must agree on every recorded
notification and its tick, on when upstream was subscribed and disposed and with what
dispose reason, on what the user's callbacks saw (a ``take_until_match`` predicate, a
``do_action``), and on an exception escaping an ``on_next``.
"""

from __future__ import annotations

import contextlib
import gc
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from reactivex import Observable, abc
from reactivex import operators as rx_ops
from reactivex.disposable import Disposable
from reactivex.notification import OnCompleted, OnError, OnNext
from reactivex.testing import TestScheduler
from reactivex.testing.mockobserver import MockObserver
from reactivex.testing.recorded import Recorded

import streamkit as sk
from streamkit import ops
from streamkit._accumulator import ResponseSnapshot
from streamkit._lifecycle import current_reason
from streamkit.ops import _fusion
from streamkit.ops._fusion import FusedObservable
from streamkit.testing import strategies as sks

from ._pipelines import chunks_of, cold_items, on_completed, on_next, subscribe, values


@contextlib.contextmanager
def fusion(enabled: bool) -> Iterator[None]:
    """Operators applied inside the block fuse (or not)."""
    saved = _fusion.ENABLED
    _fusion.ENABLED = enabled
    try:
        yield
    finally:
        _fusion.ENABLED = saved


# -- examples ----------------------------------------------------------------------------
def test_a_run_of_streamkit_operators_is_one_observable_over_the_source() -> None:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(["Hel", "lo"]))
    pipeline = xs.pipe(ops.take_until_match("never"), ops.accumulate(), ops.to_call_response())
    assert isinstance(pipeline, FusedObservable)
    assert pipeline.source is xs
    assert len(pipeline.stages) == 3


def test_a_foreign_operator_ends_the_run_and_the_next_one_starts_another() -> None:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(["Hel", "lo"]))
    mapped = xs.pipe(ops.take_until_match("never"), rx_ops.map(lambda chunk: chunk))
    pipeline = mapped.pipe(ops.text())
    assert isinstance(pipeline, FusedObservable)
    assert pipeline.source is mapped
    assert len(pipeline.stages) == 1
    assert not isinstance(mapped, FusedObservable)


def test_applying_an_operator_leaves_the_run_it_extends_unchanged() -> None:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(["a", "b"]))
    shorter = xs.pipe(ops.take_until_match("never"))
    longer = shorter.pipe(ops.text())
    assert isinstance(shorter, FusedObservable) and isinstance(longer, FusedObservable)
    assert len(shorter.stages) == 1 and len(longer.stages) == 2
    assert values(scheduler.start(lambda: shorter).messages) == chunks_of(["a", "b"])


def count_subscribe_calls(monkeypatch: pytest.MonkeyPatch) -> list[Observable[Any]]:
    """Record every ``Observable.subscribe`` call from now on (each one is an
    ``AutoDetachObserver``)."""
    calls: list[Observable[Any]] = []
    original = Observable.subscribe

    def counting(self: Observable[Any], *args: Any, **kwargs: Any) -> abc.DisposableBase:
        calls.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Observable, "subscribe", counting)
    return calls


@pytest.mark.parametrize("enabled", [True, False], ids=["fused", "unfused"])
def test_a_fused_chain_subscribes_upstream_once_and_is_subscribed_once(
    monkeypatch: pytest.MonkeyPatch, enabled: bool
) -> None:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(["Hel", "lo", "!"]))
    with fusion(enabled):
        pipeline = xs.pipe(
            ops.take_until_match("never"), ops.text(), ops.take_until_match("also never")
        )
    calls = count_subscribe_calls(monkeypatch)

    results = scheduler.start(lambda: pipeline)

    assert results.messages == [
        on_next(210, "Hel"),
        on_next(220, "lo"),
        on_next(230, "!"),
        on_completed(240),
    ]
    assert xs.subscriptions == [subscribe(200, 240)]
    assert calls.count(xs) == 1
    # Fused: the test's subscription and the source's, two observers for three stages;
    # unfused: one more per stage.
    assert len(calls) == (2 if enabled else 4)


def test_each_subscription_is_a_request_of_its_own_with_fresh_state() -> None:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(["Hel", "lo"]))
    pipeline = xs.pipe(ops.accumulate(), ops.to_call_response())
    first, second = scheduler.create_observer(), scheduler.create_observer()
    scheduler.schedule_absolute(200, lambda *_: pipeline.subscribe(first, scheduler=scheduler))
    scheduler.schedule_absolute(215, lambda *_: pipeline.subscribe(second, scheduler=scheduler))
    scheduler.start()
    assert [r.content for r in values(first.messages)] == ["Hello"]
    assert [r.content for r in values(second.messages)] == ["Hello"]
    assert xs.subscriptions == [subscribe(200, 230), subscribe(215, 245)]


def test_the_scheduler_given_to_subscribe_reaches_the_source() -> None:
    seen: list[abc.SchedulerBase | None] = []

    def source_subscribe(
        observer: abc.ObserverBase[sk.Chunk], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        seen.append(scheduler)
        observer.on_completed()
        return Disposable()

    given_scheduler = TestScheduler()
    pipeline = Observable(source_subscribe).pipe(ops.text(), ops.take_until_match("x"))
    pipeline.subscribe(scheduler=given_scheduler)
    assert seen == [given_scheduler]


def test_take_until_match_disposes_upstream_before_completing_downstream() -> None:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(["Mo", "ria", "after"]))
    events: list[str] = []
    reasons: list[str | None] = []

    def source_subscribe(
        observer: abc.ObserverBase[sk.Chunk], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        subscription = xs.subscribe(observer, scheduler=scheduler)

        def dispose() -> None:
            events.append("upstream disposed")
            reasons.append(current_reason())
            subscription.dispose()

        return Disposable(dispose)

    pipeline = Observable(source_subscribe).pipe(
        ops.take_until_match("Moria"), ops.accumulate(), ops.to_call_response()
    )
    observer = scheduler.create_observer()
    scheduler.schedule_absolute(
        200,
        lambda *_: pipeline.subscribe(
            lambda response: events.append(f"response {response.content}"),
            observer.on_error,
            lambda: events.append("completed"),
            scheduler=scheduler,
        ),
    )
    scheduler.start()
    assert events == ["upstream disposed", "response Moria", "completed"]
    assert reasons == ["take_until_match"]


@pytest.mark.parametrize("enabled", [True, False], ids=["fused", "unfused"])
def test_an_exception_in_a_downstream_on_next_propagates_to_the_source(enabled: bool) -> None:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(["a", "b"]))
    with fusion(enabled):
        pipeline = xs.pipe(ops.take_until_match("never"), ops.text())

    def fail(_text: str) -> None:
        raise RuntimeError("on_next failed")

    scheduler.schedule_absolute(200, lambda *_: pipeline.subscribe(fail, scheduler=scheduler))
    with pytest.raises(RuntimeError, match="on_next failed"):
        scheduler.start()


def recording_stage(log: list[str]) -> Callable[[Observable[Any]], Observable[Any]]:
    """A fusable operator passing everything on, logging the notifications it gets."""

    def stage(
        observer: _fusion.Sink[Any], subscribe_upstream: _fusion.SubscribeUpstream[Any]
    ) -> abc.DisposableBase:
        def on_next(item: Any) -> None:
            log.append(f"next {text_of(item)}")
            observer.on_next(item)

        def on_error(error: Exception) -> None:
            log.append(f"error {error}")
            observer.on_error(error)

        def on_completed() -> None:
            log.append("completed")
            observer.on_completed()

        return subscribe_upstream(on_next, on_error, on_completed)

    return _fusion.fusable(stage)


def failing_stage() -> Callable[[Observable[Any]], Observable[Any]]:
    """A fusable operator whose subscription fails."""

    def stage(
        observer: _fusion.Sink[Any], subscribe_upstream: _fusion.SubscribeUpstream[Any]
    ) -> abc.DisposableBase:
        raise LookupError("cannot subscribe")

    return _fusion.fusable(stage)


@pytest.mark.parametrize("enabled", [True, False], ids=["fused", "unfused"])
def test_a_completion_after_downstream_disposed_is_dropped_between_two_stages(
    enabled: bool,
) -> None:
    # take_until_match completes right after the matching item, and take(1) answers
    # that item by disposing everything: the completion behind it reaches no stage.
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(["a", "stop", "more"]))
    log: list[str] = []
    with fusion(enabled):
        pipeline = xs.pipe(ops.take_until_match("stop"), recording_stage(log), rx_ops.take(2))

    results = scheduler.start(lambda: pipeline)

    assert [m.time for m in results.messages] == [210, 220, 220]
    assert log == ["next a", "next stop"]
    assert xs.subscriptions == [subscribe(200, 220)]


@pytest.mark.parametrize("enabled", [True, False], ids=["fused", "unfused"])
def test_a_stage_failing_to_subscribe_is_an_error_for_the_stage_after_it(
    enabled: bool,
) -> None:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(["a"]))
    log: list[str] = []
    with fusion(enabled):
        pipeline = xs.pipe(failing_stage(), recording_stage(log))

    results = scheduler.start(lambda: pipeline)

    assert [m.time for m in results.messages] == [200]
    assert log == ["error cannot subscribe"]
    assert xs.subscriptions == []


# -- the property: fused == unfused --------------------------------------------------------
CHUNK, TEXT, SNAPSHOT, RESPONSE, OBJECT = "chunk", "str", "snapshot", "response", "object"
"""The kinds of item a pipeline carries between two steps."""


def text_of(item: Any) -> str:
    """The text an item carries, whatever its kind."""
    if isinstance(item, str):
        return item
    return str(getattr(item, "content", item))


class Answer(BaseModel):
    """What ``partial_object`` parses the JSON sources into."""

    a: str


@dataclass(frozen=True)
class Step:
    """One operator of a random pipeline: its name and arguments, enough to build it
    again (once fused, once not) with fresh callbacks recording into ``Log``."""

    name: str
    argument: Any = None

    def operator(self, log: Log) -> Callable[[Observable[Any]], Observable[Any]]:
        name, argument = self.name, self.argument
        if name == "text":
            return ops.text()
        if name == "accumulate":
            return ops.accumulate()
        if name == "to_call_response":
            return ops.to_call_response()
        if name == "on_usage":
            return ops.on_usage(lambda report: log.calls.append(("usage", report.outcome)))
        if name == "partial_object":
            return ops.partial_object(Answer)
        if name == "take_until_match":
            pattern, inclusive, literal = argument
            return ops.take_until_match(pattern, inclusive=inclusive, literal=literal)
        if name == "take_until_predicate":

            def predicate(text: str) -> bool:
                log.calls.append(("predicate", text))
                if "!" in text:
                    raise ValueError(f"the predicate refuses {text!r}")
                return text.endswith(str(argument))

            return ops.take_until_match(predicate)
        if name == "map":
            return rx_ops.map(lambda item: item)
        if name == "filter":
            return rx_ops.filter(lambda item: text_of(item) != argument)
        if name == "take":
            return rx_ops.take(argument)
        if name == "do_action":
            return rx_ops.do_action(lambda item: log.calls.append(("do", text_of(item))))
        if name == "raise_on_next":
            return raise_on_next(argument)
        raise AssertionError(name)


def raise_on_next(needle: str) -> Callable[[Observable[Any]], Observable[Any]]:
    """A foreign operator whose ``on_next`` raises (nothing catches it on the way up)
    for an item whose text contains ``needle``."""

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe_(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            def on_next_(item: Any) -> None:
                if needle in text_of(item):
                    raise LookupError(f"raised on {text_of(item)!r}")
                observer.on_next(item)

            return source.subscribe(
                on_next_, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe_)

    return operator


# Which steps can follow an item of each kind, and the kind they emit.
PATTERNS = st.tuples(
    st.sampled_from(["a", "ab", "b!", "ba", "a.b", "b$", "(?<=a)b", "!"]),
    st.booleans(),
    st.booleans(),
)
STEPS: dict[str, list[tuple[st.SearchStrategy[Step], str | None]]] = {
    CHUNK: [
        (st.just(Step("text")), TEXT),
        (st.just(Step("accumulate")), SNAPSHOT),
        (st.just(Step("to_call_response")), RESPONSE),
        (st.just(Step("partial_object")), OBJECT),
    ],
    TEXT: [],
    SNAPSHOT: [(st.just(Step("to_call_response")), RESPONSE)],
    RESPONSE: [],
    OBJECT: [],
}
for _kind in (CHUNK, TEXT, SNAPSHOT):
    STEPS[_kind] += [
        (PATTERNS.map(lambda argument: Step("take_until_match", argument)), None),
        (st.sampled_from("ab").map(lambda end: Step("take_until_predicate", end)), None),
    ]
for _kind in STEPS:
    STEPS[_kind] += [
        (st.just(Step("on_usage")), None),
        (st.just(Step("map")), None),
        (st.sampled_from(["a", "b", ""]).map(lambda text: Step("filter", text)), None),
        (st.integers(0, 4).map(lambda count: Step("take", count)), None),
        (st.just(Step("do_action")), None),
        (st.sampled_from("ab").map(lambda needle: Step("raise_on_next", needle)), None),
    ]


@st.composite
def pipelines(draw: st.DrawFn) -> list[Step]:
    """Up to 8 steps, each one taking the kind of item the one before emits."""
    steps: list[Step] = []
    kind = CHUNK
    for _ in range(draw(st.integers(1, 8))):
        strategy, emits = draw(st.sampled_from(STEPS[kind]))
        steps.append(draw(strategy))
        kind = emits or kind
    return steps


@st.composite
def sources(draw: st.DrawFn) -> tuple[list[sk.Chunk], Exception | None]:
    """Text chunks of a small alphabet (so that patterns match; sometimes as a JSON
    object), maybe followed by a whole stream's tool-call and finish chunks; it
    completes or fails."""
    texts = st.text(alphabet="ab!", max_size=10)
    if draw(st.booleans()):  # a JSON object, for partial_object
        texts = texts.map(lambda text: json.dumps({"a": text}))
    _text, pieces = draw(sks.text_splits(texts))
    chunks = chunks_of(pieces)
    if draw(st.booleans()):
        stream = draw(sks.chunk_streams())
        chunks += [chunk for chunk in stream.chunks if not chunk.content]
    failure = draw(st.sampled_from([None, sk.StreamError("the connection broke")]))
    return chunks, failure


@dataclass
class Log:
    """What a run showed: its notifications, its source's subscriptions and dispose
    reasons, the user callbacks' calls, an exception that escaped."""

    messages: list[tuple[float, str, Any]] = field(default_factory=list)
    subscriptions: list[Any] = field(default_factory=list)
    reasons: list[str | None] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    escaped: tuple[str, str] | None = None


def comparable(value: Any) -> Any:
    """A value as the two runs can be compared on: a snapshot by the response it reads
    as (a snapshot object compares by identity)."""
    if isinstance(value, ResponseSnapshot):
        return ("snapshot", value.to_call_response())
    if isinstance(value, Exception):
        return (type(value).__name__, str(value))
    return value


def recorded(messages: Sequence[Recorded[Any]]) -> list[tuple[float, str, Any]]:
    out: list[tuple[float, str, Any]] = []
    for message in messages:
        notification = message.value
        if isinstance(notification, OnNext):
            out.append((message.time, "next", comparable(notification.value)))
        elif isinstance(notification, OnError):
            out.append((message.time, "error", comparable(notification.exception)))
        else:
            assert isinstance(notification, OnCompleted)
            out.append((message.time, "completed", None))
    return out


def run(
    steps: Sequence[Step],
    chunks: Sequence[sk.Chunk],
    failure: Exception | None,
    disposed: int,
    *,
    fused: bool,
) -> Log:
    """Build the pipeline (fused or not) and run it on a fresh ``TestScheduler``."""
    log = Log()
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks)
    if failure is not None:
        messages = [*xs.messages[:-1], Recorded(xs.messages[-1].time, OnError(failure))]
        xs = scheduler.create_cold_observable(messages)

    def source_subscribe(
        observer: abc.ObserverBase[sk.Chunk], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        subscription = xs.subscribe(observer, scheduler=scheduler)

        def dispose() -> None:
            log.reasons.append(current_reason())
            subscription.dispose()

        return Disposable(dispose)

    with fusion(fused):
        pipeline = Observable(source_subscribe).pipe(*(step.operator(log) for step in steps))
    assert isinstance(pipeline, FusedObservable) == (fused and steps[-1].name in FUSABLE)
    observer: MockObserver[Any] = scheduler.create_observer()
    subscription: list[abc.DisposableBase] = []
    scheduler.schedule_absolute(
        200, lambda *_: subscription.append(pipeline.subscribe(observer, scheduler=scheduler))
    )
    scheduler.schedule_absolute(disposed, lambda *_: subscription[0].dispose())
    try:
        scheduler.advance_to(1000)
    except LookupError as error:
        log.escaped = (type(error).__name__, str(error))
    log.messages = recorded(observer.messages)
    log.subscriptions = list(xs.subscriptions)
    return log


FUSABLE = {
    "text",
    "accumulate",
    "to_call_response",
    "take_until_match",
    "take_until_predicate",
    "on_usage",
    "partial_object",
}


@settings(max_examples=300)
@given(pipelines(), sources(), st.integers(200, 300))
def test_fused_pipelines_behave_as_unfused_ones(
    steps: list[Step], source: tuple[list[sk.Chunk], Exception | None], disposed: int
) -> None:
    chunks, failure = source
    fused = run(steps, chunks, failure, disposed, fused=True)
    unfused = run(steps, chunks, failure, disposed, fused=False)
    assert fused == unfused


def test_the_property_reaches_the_interesting_cases() -> None:
    # A sanity check of the generators: a pipeline whose take_until_match matches,
    # one whose upstream fails and one whose on_next raises, each fused.
    chunks = chunks_of(["a", "b", "a"])
    matched = run(
        [Step("take_until_match", ("ab", True, False)), Step("text")], chunks, None, 999, fused=True
    )
    assert [m[2] for m in matched.messages] == ["a", "b", None]
    assert matched.reasons == ["take_until_match"]
    failed = run([Step("accumulate")], chunks, sk.StreamError("broke"), 999, fused=True)
    assert failed.messages[-1][1:] == ("error", ("StreamError", "broke"))
    raised = run([Step("text"), Step("raise_on_next", "b")], chunks, None, 999, fused=True)
    assert raised.escaped == ("LookupError", "raised on 'b'")


def test_an_operator_of_reactivex_applied_to_a_fused_run_sees_a_normal_observable() -> None:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(["a", "b"]))
    pipeline = reactivex.concat(xs.pipe(ops.text()), xs.pipe(ops.text()))
    assert values(scheduler.start(lambda: pipeline).messages) == ["a", "b", "a", "b"]


def test_piping_a_pipeline_again_extends_its_run() -> None:
    scheduler = TestScheduler()
    xs = cold_items(scheduler, chunks_of(["Hel", "lo"]))
    pipeline = sk.Pipeline(xs, is_async=False).pipe(ops.take_until_match("never"))
    longer = pipeline.pipe(ops.text())
    assert isinstance(longer, sk.Pipeline)
    run = longer._observable
    assert isinstance(run, FusedObservable)
    assert run.source is xs
    assert len(run.stages) == 2
    assert values(scheduler.start(lambda: longer).messages) == ["Hel", "lo"]
    assert xs.subscriptions == [subscribe(200, 230)]


@pytest.mark.parametrize("enabled", [True, False], ids=["fused", "unfused"])
def test_an_ended_subscription_leaves_no_reference_cycle(enabled: bool) -> None:
    # Its state (an accumulator holds the whole text) is freed as soon as nothing
    # refers to it, not at the collector's next pass.
    def source_subscribe(
        observer: abc.ObserverBase[sk.Chunk], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        observer.on_next(sk.Chunk(provider="openai", content="Hello"))
        observer.on_completed()
        return Disposable()

    source: Observable[sk.Chunk] = Observable(source_subscribe)
    with fusion(enabled):
        pipeline = source.pipe(
            ops.take_until_match("never"), ops.accumulate(), ops.to_call_response()
        )
    responses: list[sk.CallResponse] = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(10):
            pipeline.subscribe(responses.append)
        assert gc.collect() == 0
    finally:
        gc.enable()
    assert [response.content for response in responses] == ["Hello"] * 10
