"""Usage and cost on the stream itself, whatever consumed it, and ``on_usage=`` of
``sk.stream`` / ``@sk.call``: exactly one report per request, on every exit path (the
official SDK clients on the replay server)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import genai_prices
import openai
import pytest
from reactivex import operators as rx_ops

import streamkit as sk
from streamkit import _lifecycle as lc
from streamkit import ops
from streamkit._ledger import EndCollector
from streamkit.testing import Fault, ReplayServer, Reply
from tests.ops._pipelines import wait_for_no_leftover_threads

TRANSCRIPT = "openai/chat-text-after-tool-results"  # usage in its last event only
PHRASE = "Moria"  # well before the end
MODEL = "gpt-4o"  # the transcript answers as gpt-4o-2024-08-06: priced by genai-prices
PACE = 0.01
"""Seconds between events, as a model writes: a consumer that stops early does so while
the request is still running."""


def genai_cost(end: lc.StreamEnd) -> Decimal:
    """The price of an end's usage at its reported model, asked of genai-prices directly."""
    assert end.usage is not None and end.response_model is not None
    return genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=end.usage.input_tokens, output_tokens=end.usage.output_tokens
        ),
        model_ref=end.response_model,
        provider_id="openai",
    ).total_price


def _run_complete(stream: sk.Stream) -> None:
    stream.pipe(ops.to_call_response()).run()


def _run_take_until_match(stream: sk.Stream) -> None:
    stream.pipe(ops.take_until_match(PHRASE), ops.to_call_response()).run()


def _run_take(stream: sk.Stream) -> None:
    # reactivex's take completes downstream before it disposes upstream: run() must
    # not return before the request's end is recorded
    stream.pipe(rx_ops.take(2)).run()


def _iter_complete(stream: sk.Stream) -> None:
    assert "".join(stream.iter(ops.text()))


def _iter_break(stream: sk.Stream) -> None:
    for _ in stream.iter(ops.text()):
        break


def _iterate_take_until_match(stream: sk.Stream) -> None:
    assert PHRASE in "".join(sk.iterate(stream.pipe(ops.take_until_match(PHRASE), ops.text())))


def _seed_iteration_break(stream: sk.Stream) -> None:
    for _chunk, _tool in stream:
        break


SYNC_PATHS = [
    pytest.param(_run_complete, "completed", None, id="pipe-run"),
    pytest.param(_run_take_until_match, "disposed", "take_until_match", id="pipe-run-match"),
    pytest.param(_run_take, "disposed", "take", id="pipe-run-take"),
    pytest.param(_iter_complete, "completed", None, id="pipe-iterate"),
    pytest.param(_iter_break, "disposed", "break", id="pipe-iterate-break"),
    pytest.param(_iterate_take_until_match, "disposed", "take_until_match", id="sk-iterate-match"),
    pytest.param(_seed_iteration_break, "disposed", "break", id="iteration-break"),
]


def assert_billed(
    stream: sk.Stream, ends: list[lc.StreamEnd], outcome: str, by: str | None
) -> None:
    """The stream's usage and cost are its one request's, priced at its model."""
    (end,) = ends
    assert (end.outcome, end.disposed_by) == (outcome, by)
    assert stream.end is end and stream.requests == 1
    assert stream.usage is not None and stream.usage == end.usage
    assert stream.usage.source == ("reported" if outcome == "completed" else "estimated")
    assert stream.usage.input_tokens > 0
    if by != "break":  # (a break after the first chunk, which holds only the role)
        assert stream.usage.output_tokens > 0
    assert stream.cost == end.cost
    assert stream.cost.amount == genai_cost(end) > 0


@pytest.mark.parametrize(("consume", "outcome", "by"), SYNC_PATHS)
def test_usage_and_cost_after_every_sync_consumption(
    consume: Callable[[sk.Stream], None], outcome: str, by: str | None
) -> None:
    collector = EndCollector()
    with ReplayServer(TRANSCRIPT, pace=PACE) as server:
        stream = sk.stream("openai", MODEL, "hi", client=server.client("openai"))
        assert stream.usage is None and stream.end is None
        with lc.observing(collector):
            consume(stream)
        # read at once: no wait for the request to wind down
        assert_billed(stream, collector.ends, outcome, by)


async def _aresponse(stream: sk.Stream) -> None:
    await stream.pipe(ops.take_until_match(PHRASE), ops.to_call_response()).aresponse()


async def _aiter_break(stream: sk.Stream) -> None:
    texts = stream.aiter(ops.text())
    assert isinstance(texts, AsyncGenerator)  # typed as an AsyncIterator
    async with contextlib.aclosing(texts):  # closed at once, not when the loop gets to it
        async for _ in texts:
            break


async def _aiter_complete(stream: sk.Stream) -> None:
    chunks = sk.aiter(stream.pipe(rx_ops.take(2)))
    assert isinstance(chunks, AsyncGenerator)
    async with contextlib.aclosing(chunks):
        async for _ in chunks:
            pass


ASYNC_PATHS = [
    pytest.param(_aresponse, "disposed", "take_until_match", id="aresponse-match"),
    pytest.param(_aiter_break, "disposed", "break", id="aiter-break"),
    pytest.param(_aiter_complete, "disposed", "take", id="aiter-take"),
]


@pytest.mark.parametrize("async_", [False, True], ids=["sync-client", "async-client"])
@pytest.mark.parametrize(("consume", "outcome", "by"), ASYNC_PATHS)
async def test_usage_and_cost_after_every_async_consumption(
    consume: Callable[[sk.Stream], Awaitable[None]], outcome: str, by: str | None, async_: bool
) -> None:
    collector = EndCollector()
    with ReplayServer(TRANSCRIPT, pace=PACE) as server:
        client = server.client("openai", async_=async_)
        stream = sk.stream("openai", MODEL, "hi", client=client, async_=async_)
        with lc.observing(collector):
            await consume(stream)
        assert_billed(stream, collector.ends, outcome, by)
        if async_:
            await client.close()


def test_a_stream_subscribed_several_times_bills_every_request() -> None:
    """Each subscription is one request: the stream's usage and cost add them up."""
    collector = EndCollector()
    with ReplayServer(TRANSCRIPT, pace=PACE) as server:
        stream = sk.stream("openai", MODEL, "hi", client=server.client("openai"))
        with lc.observing(collector):
            stream.pipe(ops.to_call_response()).run()
            stream.pipe(ops.take_until_match(PHRASE)).run()
    first, second = collector.ends
    assert stream.requests == 2 and stream.end is second
    assert first.usage is not None and second.usage is not None
    assert stream.usage == first.usage + second.usage
    assert stream.usage.source == "mixed"
    assert stream.cost.amount == genai_cost(first) + genai_cost(second)


# -- on_usage= ----------------------------------------------------------------------------
Consume = Callable[[sk.Stream], Any]


def _take_until_match(stream: sk.Stream) -> None:
    stream.pipe(ops.take_until_match(PHRASE)).run()


def _iteration_complete(stream: sk.Stream) -> None:
    for _ in stream:
        pass


def _error(stream: sk.Stream) -> None:
    with pytest.raises((sk.IncompleteStreamError, openai.InternalServerError)):
        stream.pipe(ops.to_call_response()).run()


def _idle_timeout(stream: sk.Stream) -> None:
    with pytest.raises(sk.StreamTimeoutError):
        stream.pipe(ops.idle_timeout(0.2)).run()


EXITS = [
    pytest.param(TRANSCRIPT, _run_complete, "completed", "completed", id="complete"),
    pytest.param(TRANSCRIPT, _iteration_complete, "completed", "completed", id="iteration"),
    pytest.param(TRANSCRIPT, _take_until_match, "disposed", "disposed", id="take_until_match"),
    pytest.param(TRANSCRIPT, _seed_iteration_break, "disposed", "disposed", id="break"),
    pytest.param(
        Reply(TRANSCRIPT, fault=Fault(end_after_events=5)), _error, "error", "error", id="cut"
    ),
    pytest.param(
        Reply(TRANSCRIPT, fault=Fault(http_error=500)), _error, "error", "error", id="http-500"
    ),
    pytest.param(
        Reply(TRANSCRIPT, fault=Fault(stall_after_events=(3, 2.0))),
        _idle_timeout,
        "timeout",
        "error",
        id="idle-timeout",
    ),
]


@pytest.mark.parametrize(("reply", "consume", "outcome", "reported_as"), EXITS)
def test_on_usage_argument_is_called_exactly_once_per_request(
    reply: str | Reply, consume: Consume, outcome: str, reported_as: str
) -> None:
    calls: list[sk.UsageReport] = []
    collector = EndCollector()
    with ReplayServer(reply, pace=PACE) as server:
        client = server.client("openai")  # no SDK retries: one request
        stream = sk.stream("openai", MODEL, "hi", client=client, on_usage=calls.append)
        with lc.observing(collector):
            consume(stream)
        server.wait_until_idle(5.0)
    wait_for_no_leftover_threads()
    (end,) = collector.ends
    assert end.outcome == outcome
    (report,) = calls  # exactly once, and not again once everything has wound down
    assert report.attempts == (end,)
    assert report.outcome == reported_as
    assert report.usage == end.usage and report.usage is not None
    assert report.cost == end.cost
    if end.chunks:
        assert report.cost.amount == genai_cost(end)
    if outcome == "error":
        assert report.error is end.error is not None


def test_on_usage_argument_reports_each_attempt_of_a_retry() -> None:
    calls: list[sk.UsageReport] = []
    with ReplayServer() as server:
        server.push(Reply(TRANSCRIPT, fault=Fault(end_after_events=5)), TRANSCRIPT)
        stream = sk.stream(
            "openai", MODEL, "hi", client=server.client("openai"), on_usage=calls.append
        )
        stream.pipe(ops.retry_on_error(backoff=0.01, continuation="continue")).run()
    assert [c.outcome for c in calls] == ["error", "completed"]
    assert [c.attempts[0].start.attempt for c in calls] == [1, 2]
    # the continuation's request is the stream's too
    assert stream.requests == 2
    assert stream.usage == calls[0].usage + calls[1].usage  # type: ignore[operator]


async def test_on_usage_argument_of_an_async_stream() -> None:
    calls: list[sk.UsageReport] = []
    with ReplayServer(TRANSCRIPT, pace=PACE) as server:
        client = server.client("openai", async_=True)
        stream = sk.stream("openai", MODEL, "hi", client=client, on_usage=calls.append)
        await stream.pipe(ops.take_until_match(PHRASE)).aresponse()
        await client.close()
    (report,) = calls
    assert report.outcome == "disposed" and report.attempts[0].disposed_by == "take_until_match"
    assert report.usage is not None and report.usage.source == "estimated"


@pytest.mark.parametrize("stop_early", [False, True], ids=["complete", "break"])
def test_call_decorator_on_usage_sync(stop_early: bool) -> None:
    calls: list[sk.UsageReport] = []
    with ReplayServer(TRANSCRIPT, pace=PACE) as server:

        @sk.call(
            "openai", MODEL, stream=True, client=server.client("openai"), on_usage=calls.append
        )
        def answer(question: str) -> str:
            return question

        stream = answer("List the passwords.")
        for _ in stream:
            if stop_early:
                break
        server.wait_until_idle(5.0)
    (report,) = calls
    assert report.outcome == ("disposed" if stop_early else "completed")
    assert report.usage == stream.usage and report.cost == stream.cost


async def test_call_decorator_on_usage_async_and_not_streamed() -> None:
    calls: list[sk.UsageReport] = []
    with ReplayServer(TRANSCRIPT, pace=PACE) as server:
        client = server.client("openai", async_=True)

        @sk.call("openai", MODEL, stream=True, client=client, on_usage=calls.append)
        async def streamed(question: str) -> str:
            return question

        @sk.call("openai", MODEL, client=client, on_usage=calls.append)
        async def reduced(question: str) -> str:
            return question

        stream = await streamed("hi")
        async for _ in stream:
            pass
        response = await reduced("hi")
        await client.close()
    assert [c.outcome for c in calls] == ["completed", "completed"]
    assert calls[0].usage == stream.usage
    assert calls[1].usage == response.usage and calls[1].cost == response.cost


def test_an_on_usage_error_goes_to_the_unraisable_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    hooked: list[Any] = []
    monkeypatch.setattr("sys.unraisablehook", hooked.append)

    def broken(report: sk.UsageReport) -> None:
        raise RuntimeError("a bug in the callback")

    with ReplayServer(TRANSCRIPT, pace=PACE) as server:
        stream = sk.stream("openai", MODEL, "hi", client=server.client("openai"), on_usage=broken)
        response = stream.pipe(ops.to_call_response()).run()
    assert response.content and stream.usage is not None
    assert [type(h.exc_value) for h in hooked] == [RuntimeError]


def test_on_usage_must_be_callable() -> None:
    with pytest.raises(TypeError, match="on_usage must be callable"):
        sk.stream("openai", MODEL, "hi", client=object(), on_usage=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on_usage must be callable"):

        @sk.call("openai", MODEL, on_usage="print")  # type: ignore[arg-type]
        def ask() -> str:
            return "hi"

        ask()
