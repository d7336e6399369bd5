"""``fallback``, ``hedge``, ``race``, ``first_match`` and ``best_of``: one span for the
operation, one child span per attempt, each child ending with its result.

End to end on the replay server (one server per candidate where the test needs to know
what happened to each request), with the SDK's in-memory exporter: every span started
is ended exactly once, each request span is a child of its operation's span (itself a
child of the subscriber's), each attempt says how it fared (``streamkit.attempt.result``
won / lost / failed / cancelled, and why), and the operation ends once, with its own
outcome, after its attempts."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from reactivex import operators as rx

import streamkit as sk
from streamkit import ops
from streamkit.testing import Fault, ReplayServer, Reply
from tests.ops._pipelines import collect_sync, run_async, run_sync
from tests.telemetry._harness import Telemetry, attrs

TEXT = "openai/chat-text-usage"  # "4200 + 42 equals 4242."
LONG = "anthropic/messages-tool-result-followup"  # a long answer about passwords


def _stream(server: ReplayServer, provider: str = "openai", model: str = "m") -> sk.Stream:
    return sk.stream(provider, model, "hi", client=server.client(provider))


def _by_attempt(spans: list[ReadableSpan]) -> dict[int, ReadableSpan]:
    return {attrs(span)["streamkit.attempt"]: span for span in spans}


def _check_tree(
    telemetry: Telemetry, operator: str, app: Any, attempts: int
) -> tuple[ReadableSpan, dict[int, ReadableSpan]]:
    """The operation's span (a child of ``app``) and its request spans by attempt number
    (each a child of the operation's, inside it in time); every span ended once."""
    telemetry.wait_for(attempts + 1)
    (operation,) = telemetry.operations()
    requests = telemetry.requests()
    telemetry.check_ended_once()
    assert len(requests) == attempts
    assert operation.name == f"streamkit.{operator}"
    assert operation.kind is SpanKind.INTERNAL
    assert attrs(operation)["streamkit.operator"] == operator
    assert attrs(operation)["streamkit.attempts"] == attempts
    assert operation.parent is not None
    assert operation.parent.span_id == app.get_span_context().span_id
    for request in requests:
        assert request.parent is not None
        assert request.parent.span_id == operation.context.span_id
        assert operation.start_time <= request.start_time  # type: ignore[operator]
        assert operation.end_time >= request.end_time  # type: ignore[operator]
    by_attempt = _by_attempt(requests)
    assert sorted(by_attempt) == list(range(1, attempts + 1))
    return operation, by_attempt


def _result(span: ReadableSpan) -> tuple[str, str | None]:
    a = attrs(span)
    return a["streamkit.attempt.result"], a.get("streamkit.attempt.reason")


# -- fallback ----------------------------------------------------------------------------
def test_fallback_a_failed_attempt_then_the_one_that_answered(telemetry: Telemetry) -> None:
    with ReplayServer() as primary_server, ReplayServer(TEXT) as backup_server:
        primary_server.push(Reply(TEXT, fault=Fault(http_error=503)))
        primary, backup = _stream(primary_server), _stream(backup_server, model="backup")
        with telemetry.tracer.start_as_current_span("app") as app:
            (response,) = run_sync(primary.pipe(ops.fallback(backup), ops.to_call_response()))
    operation, attempt = _check_tree(telemetry, "fallback", app, 2)
    assert attrs(attempt[1])["streamkit.end.outcome"] == "error"
    assert attrs(attempt[1])["gen_ai.request.model"] == "m"
    error_type = attrs(attempt[1])["error.type"]
    assert _result(attempt[1]) == ("failed", error_type)
    assert attrs(attempt[2])["streamkit.end.outcome"] == "completed"
    assert attrs(attempt[2])["gen_ai.request.model"] == "backup"
    assert _result(attempt[2]) == ("won", None)
    a = attrs(operation)
    assert a["streamkit.end.outcome"] == "completed"
    assert a["streamkit.winner"] == 2
    assert a["gen_ai.response.id"] == response.id
    assert response.usage is not None
    assert a["gen_ai.usage.output_tokens"] == response.usage.output_tokens
    assert operation.status.status_code is StatusCode.UNSET


def test_fallback_every_alternative_failing_is_an_error_operation(telemetry: Telemetry) -> None:
    with ReplayServer() as server:
        server.push(
            Reply(TEXT, fault=Fault(http_error=503)), Reply(TEXT, fault=Fault(http_error=503))
        )
        stream = _stream(server)
        with telemetry.tracer.start_as_current_span("app") as app:
            _, error = collect_sync(stream.pipe(ops.fallback(_stream(server))))
    assert isinstance(error, sk.AllFailedError)
    operation, attempt = _check_tree(telemetry, "fallback", app, 2)
    assert [_result(attempt[n])[0] for n in (1, 2)] == ["failed", "failed"]
    a = attrs(operation)
    assert a["streamkit.end.outcome"] == "error"
    assert a["error.type"] == "streamkit.AllFailedError"
    assert "streamkit.winner" not in a
    assert operation.status.status_code is StatusCode.ERROR


# -- race / first_match --------------------------------------------------------------------
def test_race_the_loser_is_disposed_as_lost_the_winner_won(telemetry: Telemetry) -> None:
    with ReplayServer() as slow_server, ReplayServer() as fast_server:
        slow_server.push(Reply(LONG, pace=0.05))
        fast_server.push(Reply(TEXT, fault=Fault(stall_before=0.2)))
        slow, fast = _stream(slow_server, "anthropic"), _stream(fast_server)
        with telemetry.tracer.start_as_current_span("app") as app:
            (response,) = run_sync(
                sk.race(slow, fast, until=lambda t: "4242" in t).pipe(ops.to_call_response())
            )
        slow_server.wait_for_request_end(0, 5.0)
    operation, attempt = _check_tree(telemetry, "race", app, 2)
    loser, winner = attrs(attempt[1]), attrs(attempt[2])
    assert loser["streamkit.end.outcome"] == "disposed"
    assert loser["streamkit.end.disposed_by"] == "lost"
    assert _result(attempt[1]) == ("lost", "attempt 2 won")
    assert winner["streamkit.end.outcome"] in ("completed", "disposed")
    assert _result(attempt[2]) == ("won", None)
    a = attrs(operation)
    assert a["streamkit.end.outcome"] == "completed"
    assert a["streamkit.winner"] == 2
    assert a["gen_ai.response.id"] == response.id  # the winner's
    # both requests were billed: the operation's usage and cost are theirs together
    assert (
        a["gen_ai.usage.input_tokens"]
        == loser["gen_ai.usage.input_tokens"] + (winner["gen_ai.usage.input_tokens"])
    )
    assert a["streamkit.chunks"] == loser["streamkit.chunks"] + winner["streamkit.chunks"]


async def test_race_on_async_clients_the_loser_is_disposed_as_lost(telemetry: Telemetry) -> None:
    with ReplayServer() as slow_server, ReplayServer() as fast_server:
        slow_server.push(Reply(LONG, pace=0.05))
        fast_server.push(Reply(TEXT, fault=Fault(stall_before=0.2)))
        slow_client = slow_server.client("anthropic", async_=True)
        fast_client = fast_server.client("openai", async_=True)
        slow = sk.stream("anthropic", "m", "hi", client=slow_client)
        fast = sk.stream("openai", "m", "hi", client=fast_client)
        with telemetry.tracer.start_as_current_span("app") as app:
            await run_async(sk.race(slow, fast, until=lambda t: "4242" in t))
        await asyncio.to_thread(slow_server.wait_for_request_end, 0, 5.0)
        await slow_client.close()
        await fast_client.close()
    operation, attempt = _check_tree(telemetry, "race", app, 2)
    assert attrs(attempt[1])["streamkit.end.disposed_by"] == "lost"
    assert _result(attempt[1]) == ("lost", "attempt 2 won")
    assert _result(attempt[2]) == ("won", None)
    assert attrs(operation)["streamkit.winner"] == 2


def test_race_without_until_the_first_to_complete_wins(telemetry: Telemetry) -> None:
    """The winner is decided when its request has already ended (at its completion):
    its span still says it won."""
    with ReplayServer() as slow_server, ReplayServer(TEXT) as fast_server:
        slow_server.push(Reply(LONG, pace=0.05))
        slow, fast = _stream(slow_server, "anthropic"), _stream(fast_server)
        with telemetry.tracer.start_as_current_span("app") as app:
            run_sync(sk.race(slow, fast))
        slow_server.wait_for_request_end(0, 5.0)
    operation, attempt = _check_tree(telemetry, "race", app, 2)
    assert attrs(attempt[2])["streamkit.end.outcome"] == "completed"
    assert _result(attempt[2]) == ("won", None)
    assert attrs(attempt[1])["streamkit.end.disposed_by"] == "lost"
    assert _result(attempt[1]) == ("lost", "attempt 2 won")
    assert attrs(operation)["streamkit.winner"] == 2


def test_first_match_a_candidate_without_a_match_failed(telemetry: Telemetry) -> None:
    with ReplayServer(LONG) as other_server, ReplayServer() as match_server:
        match_server.push(Reply(TEXT, fault=Fault(stall_before=0.3)))
        other, match = _stream(other_server, "anthropic"), _stream(match_server)
        with telemetry.tracer.start_as_current_span("app") as app:
            run_sync(sk.first_match(other, match, until=lambda t: "4242" in t))
    operation, attempt = _check_tree(telemetry, "first_match", app, 2)
    assert attrs(attempt[1])["streamkit.end.outcome"] == "completed"  # the request did
    assert _result(attempt[1]) == ("failed", "no match")  # the candidate did not
    assert _result(attempt[2]) == ("won", None)
    assert attrs(operation)["streamkit.end.outcome"] == "completed"
    assert attrs(operation)["streamkit.winner"] == 2


def test_race_disposed_before_a_decision_cancels_every_candidate(telemetry: Telemetry) -> None:
    with ReplayServer() as server:
        server.push(Reply(TEXT, pace=0.05), Reply(TEXT, pace=0.05))
        first = threading.Event()
        with telemetry.tracer.start_as_current_span("app") as app:
            subscription = sk.race(
                _stream(server), _stream(server), until=lambda _t: False
            ).subscribe(on_error=lambda _e: None)
        for request in (0, 1):
            while len(server.requests) <= request or server.requests[request].events_sent < 2:
                first.wait(0.01)
        subscription.dispose()
    operation, attempt = _check_tree(telemetry, "race", app, 2)
    for number in (1, 2):
        assert attrs(attempt[number])["streamkit.end.disposed_by"] == "unknown"
        assert _result(attempt[number]) == ("cancelled", "the race ended: disposed by unknown")
    a = attrs(operation)
    assert a["streamkit.end.outcome"] == "disposed"
    assert a["streamkit.end.disposed_by"] == "unknown"
    assert "streamkit.winner" not in a


# -- hedge -----------------------------------------------------------------------------------
def test_hedge_the_slow_primary_loses_to_the_hedge(telemetry: Telemetry) -> None:
    with ReplayServer() as slow_server, ReplayServer(TEXT) as fast_server:
        slow_server.push(Reply(LONG, fault=Fault(stall_after_events=(1, 5.0))))
        slow, fast = _stream(slow_server, "anthropic"), _stream(fast_server)
        with telemetry.tracer.start_as_current_span("app") as app:
            (response,) = run_sync(slow.pipe(ops.hedge(fast, after=0.2), ops.to_call_response()))
        slow_server.wait_for_request_end(0, 5.0)
    operation, attempt = _check_tree(telemetry, "hedge", app, 2)
    assert attrs(attempt[1])["streamkit.end.outcome"] == "disposed"
    assert attrs(attempt[1])["streamkit.end.disposed_by"] == "lost"
    assert _result(attempt[1]) == ("lost", "attempt 2 won")
    assert _result(attempt[2]) == ("won", None)
    # the hedge was started by the timer, after the primary
    assert attempt[2].start_time - attempt[1].start_time >= 0.2e9  # type: ignore[operator]
    a = attrs(operation)
    assert a["streamkit.end.outcome"] == "completed"
    assert a["streamkit.winner"] == 2
    assert response.usage is not None
    assert a["gen_ai.usage.input_tokens"] == response.usage.input_tokens  # both billed


def test_a_fast_primary_is_the_only_attempt(telemetry: Telemetry) -> None:
    with ReplayServer(TEXT) as server, telemetry.tracer.start_as_current_span("app") as app:
        run_sync(_stream(server).pipe(ops.hedge(after=5.0)))
    operation, attempt = _check_tree(telemetry, "hedge", app, 1)
    assert _result(attempt[1]) == ("won", None)
    assert attrs(operation)["streamkit.winner"] == 1


# -- best_of ---------------------------------------------------------------------------------
def test_best_of_every_sample_ends_won_or_lost(telemetry: Telemetry) -> None:
    with ReplayServer() as server:
        server.push(TEXT, TEXT, TEXT)
        with telemetry.tracer.start_as_current_span("app") as app:
            run_sync(sk.best_of(_stream(server), n=3, score=len))
    operation, attempt = _check_tree(telemetry, "best_of", app, 3)
    assert all(attrs(attempt[n])["streamkit.end.outcome"] == "completed" for n in (1, 2, 3))
    assert _result(attempt[1]) == ("won", None)  # ties go to the first
    assert _result(attempt[2]) == ("lost", "attempt 1 scored higher")
    assert _result(attempt[3]) == ("lost", "attempt 1 scored higher")
    a = attrs(operation)
    assert a["streamkit.end.outcome"] == "completed"
    assert a["streamkit.winner"] == 1
    assert a["gen_ai.usage.output_tokens"] == 3 * attrs(attempt[1])["gen_ai.usage.output_tokens"]


def test_best_of_a_candidate_that_can_no_longer_win_is_disposed_as_lost(
    telemetry: Telemetry,
) -> None:
    with ReplayServer(TEXT) as short_server, ReplayServer(LONG, pace=0.02) as long_server:
        long, short = _stream(long_server, "anthropic"), _stream(short_server)

        def brevity(text: str) -> float:
            return -len(text)

        with telemetry.tracer.start_as_current_span("app") as app:
            run_sync(sk.best_of(long, short, score=brevity, bound=brevity))
        long_server.wait_for_request_end(0, 5.0)
    operation, attempt = _check_tree(telemetry, "best_of", app, 2)
    assert attrs(attempt[1])["streamkit.end.outcome"] == "disposed"
    assert attrs(attempt[1])["streamkit.end.disposed_by"] == "lost"
    assert _result(attempt[1]) == ("lost", "its bound fell below the best score")
    assert _result(attempt[2]) == ("won", None)
    assert attrs(operation)["streamkit.winner"] == 2


def test_best_of_all_failing(telemetry: Telemetry) -> None:
    with ReplayServer() as server:
        server.push(
            Reply(TEXT, fault=Fault(http_error=400)), Reply(TEXT, fault=Fault(http_error=400))
        )
        with telemetry.tracer.start_as_current_span("app") as app:
            _, error = collect_sync(sk.best_of(_stream(server), n=2, score=len))
    assert isinstance(error, sk.AllFailedError)
    operation, attempt = _check_tree(telemetry, "best_of", app, 2)
    assert [_result(attempt[n])[0] for n in (1, 2)] == ["failed", "failed"]
    assert attrs(operation)["streamkit.end.outcome"] == "error"
    assert operation.status.status_code is StatusCode.ERROR


# -- nesting ---------------------------------------------------------------------------------
def test_a_retried_candidate_is_one_attempt_with_its_own_attempts(telemetry: Telemetry) -> None:
    """race(a.pipe(retry_on_error), b): the retry's span is the race's attempt 1, with
    its requests below it; the race waits for it."""
    with ReplayServer() as retried_server, ReplayServer() as slow_server:
        retried_server.push(Reply(TEXT, fault=Fault(http_error=503)), TEXT)
        slow_server.push(Reply(LONG, pace=0.05))
        retried = _stream(retried_server).pipe(ops.retry_on_error(2, backoff=0.01, jitter=0.0))
        with telemetry.tracer.start_as_current_span("app") as app:
            run_sync(
                sk.race(retried, _stream(slow_server, "anthropic"), until=lambda t: "4242" in t)
            )
        slow_server.wait_for_request_end(0, 5.0)
    telemetry.wait_for(5)
    telemetry.check_ended_once()
    race = next(s for s in telemetry.operations() if attrs(s)["streamkit.operator"] == "race")
    retry = next(
        s for s in telemetry.operations() if attrs(s)["streamkit.operator"] == "retry_on_error"
    )
    assert race.parent is not None and race.parent.span_id == app.get_span_context().span_id
    assert retry.parent is not None and retry.parent.span_id == race.context.span_id
    assert attrs(retry)["streamkit.attempt"] == 1
    assert _result(retry) == ("won", None)
    assert attrs(retry)["streamkit.attempts"] == 2
    retry_requests = [r for r in telemetry.requests() if r.parent.span_id == retry.context.span_id]  # type: ignore[union-attr]
    assert len(retry_requests) == 2
    (other,) = [r for r in telemetry.requests() if r.parent.span_id == race.context.span_id]  # type: ignore[union-attr]
    assert _result(other) == ("lost", "attempt 1 won")
    assert attrs(race)["streamkit.attempts"] == 2
    assert attrs(race)["streamkit.winner"] == 1
    assert race.end_time >= retry.end_time  # type: ignore[operator]


# -- off ---------------------------------------------------------------------------------------
def test_without_telemetry_no_operation_is_made(telemetry: Telemetry) -> None:
    telemetry.instrumentation.uninstrument()
    with ReplayServer(TEXT) as server:
        run_sync(sk.race(_stream(server), until=lambda t: "4242" in t).pipe(rx.to_list()))
    assert telemetry.spans() == []


@pytest.mark.parametrize("operator", ["race", "best_of"])
def test_an_abandoned_contest_still_ends(telemetry: Telemetry, operator: str) -> None:
    """A contest subscribed and dropped without a dispose (its candidates never ran):
    collected, its span and its candidates' spans end as abandoned / cancelled."""
    import gc

    from reactivex.testing import TestScheduler

    scheduler = TestScheduler()
    with ReplayServer(TEXT) as server:
        streams = (_stream(server), _stream(server))
        contest = (
            sk.race(*streams, until=lambda t: "4242" in t)
            if operator == "race"
            else sk.best_of(*streams, score=len)
        )
        subscription = contest.subscribe(scheduler=scheduler)
        assert telemetry.spans() == []
        del subscription, contest, scheduler
        gc.collect()
        telemetry.wait_for(3)
    (operation,) = telemetry.operations()
    telemetry.check_ended_once()
    assert attrs(operation)["streamkit.end.outcome"] == "abandoned"
    for request in telemetry.requests():
        assert attrs(request)["streamkit.end.outcome"] == "abandoned"
        assert _result(request)[0] == "cancelled"
