"""``ops.fallback``: virtual-time examples (what is subscribed and disposed when),
hypothesis properties (a prefix of attempt 1, then the continuation, never a repeat),
and end to end: every provider failing (before its first chunk, or cut mid-stream)
falls back to another provider's SDK on the replay server, sync and async."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import genai_prices
import pytest
import reactivex
from hypothesis import given
from hypothesis import strategies as st
from reactivex import Observable
from reactivex.testing import ReactiveTest, TestScheduler

import streamkit as sk
from streamkit import ops
from streamkit.providers._base import CONTINUE_INSTRUCTION
from streamkit.testing import Fault, ReplayServer, Reply
from tests.ops._fault_grid import FAULTS, GRID, attempt_deadlines, close, run
from tests.recorded import error_of, kind_of, value_of
from tests.reliability._matrix import ProviderCase

on_next, on_completed, on_error = (
    ReactiveTest.on_next,
    ReactiveTest.on_completed,
    ReactiveTest.on_error,
)

subscribe = ReactiveTest.subscribe


def text(content: str = "", provider: str = "openai", **fields: Any) -> sk.Chunk:
    return sk.Chunk(provider=provider, content=content, **fields)


def cut() -> sk.IncompleteStreamError:
    return sk.IncompleteStreamError("openai", "[DONE]", events=2)


def contents(messages: list[Any]) -> list[str]:
    return [value_of(m).content for m in messages if kind_of(m) == "N"]


# -- reactivex.testing examples ---------------------------------------------------------
def test_after_a_cut_the_alternative_continues_the_delivered_text() -> None:
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(
        on_next(10, text("Once ")), on_next(20, text("upon")), on_error(30, cut())
    )
    second = scheduler.create_cold_observable(
        on_next(5, text(" a time", "anthropic")), on_completed(10)
    )
    asked: list[str] = []

    def continue_(delivered: str) -> Observable[sk.Chunk]:
        asked.append(delivered)
        return second

    results = scheduler.start(lambda: first.pipe(ops.fallback(continue_)))

    assert contents(results.messages) == ["Once ", "upon", " a time"]
    assert asked == ["Once upon"]
    assert [m.time for m in results.messages] == [210, 220, 235, 240]
    assert first.subscriptions == [subscribe(200, 230)]
    assert second.subscriptions == [subscribe(230, 240)]
    providers = [value_of(m).provider for m in results.messages if kind_of(m) == "N"]
    assert providers == ["openai", "openai", "anthropic"]  # who produced which span


def test_a_restarting_alternative_is_matched_and_only_its_new_text_passes() -> None:
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(on_next(10, text("Once upon")), on_error(20, cut()))
    second = scheduler.create_cold_observable(
        on_next(5, text("Once ")),
        on_next(6, text("upon a")),
        on_next(7, text(" time")),
        on_completed(8),
    )

    results = scheduler.start(lambda: first.pipe(ops.fallback(second)))

    assert "".join(contents(results.messages)) == "Once upon a time"
    assert second.subscriptions == [subscribe(220, 228)]


def test_a_rejected_error_propagates_at_once_and_the_alternative_is_never_subscribed() -> None:
    scheduler = TestScheduler()
    refused = ValueError("bad request")
    first = scheduler.create_cold_observable(on_next(10, text("a")), on_error(20, refused))
    second = scheduler.create_cold_observable(on_completed(5))

    results = scheduler.start(lambda: first.pipe(ops.fallback(second)))

    assert error_of(results.messages[-1]) is refused
    assert second.subscriptions == []


def test_when_every_alternative_fails_one_error_lists_each_cause() -> None:
    scheduler = TestScheduler()
    errors = [cut(), ConnectionResetError("reset"), TimeoutError("slow")]
    sources = [scheduler.create_cold_observable(on_error(10, e)) for e in errors]

    results = scheduler.start(lambda: sources[0].pipe(ops.fallback(*sources[1:])))

    failure = error_of(results.messages[-1])
    assert isinstance(failure, sk.AllFailedError)
    assert failure.errors == errors
    assert "IncompleteStreamError" in str(failure) and "ConnectionResetError" in str(failure)
    assert [s.subscriptions for s in sources] == [
        [subscribe(200, 210)],
        [subscribe(210, 220)],
        [subscribe(220, 230)],
    ]


def test_disposing_during_the_alternative_disposes_it() -> None:
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(on_error(10, cut()))
    second = scheduler.create_cold_observable(on_next(100, text("late")))

    scheduler.start(lambda: first.pipe(ops.fallback(second)), disposed=250)

    assert second.subscriptions == [subscribe(210, 250)]


def test_usage_is_summed_over_attempts() -> None:
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(
        on_next(10, text("a", usage=sk.Usage(input_tokens=5, output_tokens=1))),
        on_error(20, cut()),
    )
    second = scheduler.create_cold_observable(
        on_next(5, text("b", usage=sk.Usage(input_tokens=7, output_tokens=2))), on_completed(6)
    )

    results = scheduler.start(
        lambda: first.pipe(ops.fallback(lambda delivered: second), ops.to_call_response())
    )

    response = value_of(results.messages[0])
    assert response.content == "ab"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (12, 3)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        ops.fallback()
    with pytest.raises(TypeError):
        ops.fallback("openai")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ops.fallback(reactivex.empty(), on=3)  # type: ignore[arg-type]


# -- hypothesis properties --------------------------------------------------------------
pieces = st.lists(st.text("abc xyz", min_size=1, max_size=4), min_size=1, max_size=6)


@given(pieces, st.integers(0, 6), pieces)
def test_output_is_a_prefix_of_attempt_one_then_the_continuation(
    first_pieces: list[str], cut_at: int, continuation: list[str]
) -> None:
    cut_at = min(cut_at, len(first_pieces))
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(
        *[on_next(1 + i, text(p)) for i, p in enumerate(first_pieces[:cut_at])],
        on_error(cut_at + 1, cut()),
    )
    second = scheduler.create_cold_observable(
        *[on_next(1 + i, text(p, "mistral")) for i, p in enumerate(continuation)],
        on_completed(len(continuation) + 1),
    )
    results = scheduler.start(lambda: first.pipe(ops.fallback(lambda delivered: second)))
    delivered = "".join(first_pieces[:cut_at])
    out = "".join(contents(results.messages))
    chunks = [value_of(m) for m in results.messages if kind_of(m) == "N"]
    # attempt 1's chunks, then attempt 2's: never interleaved, never back to attempt 1
    providers = [c.provider for c in chunks]
    assert providers == sorted(providers, key=["openai", "mistral"].index)
    assert "".join(c.content for c in chunks if c.provider == "openai") == delivered
    if not delivered:
        assert out == "".join(continuation)
    if delivered.strip():
        # a continuation may repeat the delivered text's trailing whitespace: it is dropped
        tail = "".join(continuation)
        stripped = delivered.rstrip()
        trailing = delivered[len(stripped) :]
        common = 0
        while common < min(len(trailing), len(tail)) and tail[common] == trailing[common]:
            common += 1
        assert out == delivered + tail[common:]
    else:
        assert out.startswith(delivered)
    assert kind_of(results.messages[-1]) == "C"


@given(pieces, st.integers(0, 6))
def test_a_restart_that_reproduces_the_text_never_repeats_it(
    all_pieces: list[str], cut_at: int
) -> None:
    cut_at = min(cut_at, len(all_pieces))
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(
        *[on_next(1 + i, text(p)) for i, p in enumerate(all_pieces[:cut_at])],
        on_error(cut_at + 1, cut()),
    )
    second = scheduler.create_cold_observable(
        *[on_next(1 + i, text(p)) for i, p in enumerate(all_pieces)],
        on_completed(len(all_pieces) + 1),
    )
    # a plain Observable (not a Stream, not a callable) restarts and is matched
    results = scheduler.start(lambda: first.pipe(ops.fallback(second)))
    assert "".join(contents(results.messages)) == "".join(all_pieces)


# -- end to end -------------------------------------------------------------------------
BACKUP = "openai/chat-text-usage"


@pytest.mark.parametrize(("provider", "fault", "async_"), GRID)
async def test_every_provider_falls_back_to_another_on_the_replay_server(
    provider: ProviderCase, fault: str, async_: bool
) -> None:
    missing = provider.missing()
    if missing:
        pytest.skip(missing)
    with ReplayServer(pace=0.001) as server:
        primary_client = server.client(provider.name, async_=async_)
        backup_name, backup_transcript = (
            ("groq", "groq/chat-text-x-groq-usage")
            if provider.name == "openai"
            else ("openai", BACKUP)
        )
        backup_client = server.client(backup_name, async_=async_)
        broken = FAULTS[fault](provider)
        server.push(Reply(provider.transcript, fault=broken), backup_transcript)
        primary = sk.stream(
            provider.name,
            "m",
            "hi",
            client=primary_client,
            async_=async_,
            deadlines=attempt_deadlines(provider, fault, async_),
        )
        backup = sk.stream(backup_name, "backup", "hi", client=backup_client, async_=async_)
        chunks: list[sk.Chunk] = []
        try:
            response = await run(
                primary.pipe(
                    ops.fallback(backup),
                    reactivex.operators.do_action(chunks.append),
                    ops.to_call_response(),
                ),
                async_,
            )
        finally:
            await close(async_, primary_client, backup_client)
        assert len(server.requests) == 2
        first = await asyncio.to_thread(server.wait_for_request_end, 0, 5.0)
        if fault in {"stall-after-first-chunk", "cut-mid-stream"}:
            assert first.events_sent < first.events_total  # the failed attempt was cut short
        if fault == "529-mid-stream":
            assert first.events_sent == provider.at + 1  # its events, then the error event
        if fault.startswith("stall"):
            assert first.disconnected  # released at its deadline, not the stall's end
        delivered = "".join(c.content for c in chunks if c.provider == provider.name)
        continued = "".join(c.content for c in chunks if c.provider == backup_name)
        assert continued  # the backup's own answer follows
        assert response.content == delivered + continued
        # the response says who produced which span
        assert [(s.provider, s.start, s.end) for s in response.spans] == [
            (name, start, start + len(part))
            for name, start, part in [
                (provider.name, 0, delivered),
                (backup_name, len(delivered), continued),
            ]
            if part
        ]
        backup_messages = server.requests[1].json["messages"]
        if delivered:
            assert fault in {"stall-after-first-chunk", "529-mid-stream", "cut-mid-stream"}
            assert backup_messages[-2:] == [
                {"role": "assistant", "content": delivered},
                {"role": "user", "content": CONTINUE_INSTRUCTION},
            ]
        else:
            assert backup_messages == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_anthropic_continuation_is_an_assistant_prefill(async_: bool) -> None:
    with ReplayServer(pace=0.0) as server:
        openai_client = server.client("openai", async_=async_)
        anthropic_client = server.client("anthropic", async_=async_)
        server.push(Reply(BACKUP, fault=Fault(close_after_events=3)))
        server.push("anthropic/messages-tool-result-followup")
        first = sk.stream("openai", "gpt-4o-mini", "hi", client=openai_client, async_=async_)
        second = sk.stream("anthropic", "claude", "hi", client=anthropic_client, async_=async_)
        try:
            response = await run(first.pipe(ops.fallback(second), ops.to_call_response()), async_)
        finally:
            await close(async_, openai_client, anthropic_client)
        messages = server.requests[1].json["messages"]
        assert messages[-1]["role"] == "assistant"
        assert response.content.startswith(messages[-1]["content"])


def test_every_attempt_of_a_fallback_reports_to_on_usage_and_is_billed() -> None:
    # The alternative subscribes from the failed attempt's error callback, on its reading
    # thread: it must still report to the observers of the pipeline's subscription.
    reports: list[sk.UsageReport] = []
    with ReplayServer() as server:
        server.push(
            Reply("anthropic/messages-text", fault=Fault(close_after_events=4)),
            "openai/chat-text-usage",
        )
        claude = sk.stream(
            "anthropic", "claude-sonnet-4-5", "hi", client=server.client("anthropic")
        )
        gpt = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        response = claude.pipe(
            ops.fallback(gpt), ops.on_usage(reports.append), ops.to_call_response()
        ).run()
    assert len(reports) == 1
    attempts = reports[0].attempts
    assert [end.provider for end in attempts] == ["anthropic", "openai"]
    assert [end.start.attempt for end in attempts] == [1, 2]
    assert attempts[0].outcome == "error" and attempts[1].outcome == "completed"
    assert reports[0].usage == response.usage
    assert response.usage is not None and response.usage.source == "mixed"
    assert response.usage.input_tokens == sum(
        end.usage.input_tokens for end in attempts if end.usage is not None
    )


def test_cost_sums_each_attempt_priced_at_its_own_model() -> None:
    """A fallback from Anthropic to OpenAI: the response's cost is each request's usage
    at its own provider and model (genai-prices, asked directly), never the summed
    usage at one model."""
    reports: list[sk.UsageReport] = []
    with ReplayServer() as server:
        server.push(
            Reply("anthropic/messages-text", fault=Fault(close_after_events=4)),
            "openai/chat-text-usage",
        )
        claude = sk.stream(
            "anthropic", "claude-sonnet-4-0", "hi", client=server.client("anthropic")
        )
        gpt = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        response = claude.pipe(
            ops.fallback(gpt), ops.on_usage(reports.append), ops.to_call_response()
        ).run()
    attempts = reports[0].attempts
    assert [(end.provider, end.response_model) for end in attempts] == [
        ("anthropic", "claude-sonnet-4-20250514"),
        ("openai", "gpt-4o-2024-08-06"),
    ]
    expected = Decimal(0)
    for end in attempts:
        assert end.usage is not None and end.response_model is not None
        assert not end.usage.cached_tokens  # priced as plain input below
        expected += genai_prices.calc_price(
            genai_prices.Usage(
                input_tokens=end.usage.input_tokens, output_tokens=end.usage.output_tokens
            ),
            model_ref=end.response_model,
            provider_id=end.provider,
        ).total_price
    assert [(r.provider, r.model, r.usage) for r in response.requests] == [
        (end.provider, end.response_model, end.usage) for end in attempts
    ]
    assert response.cost.amount == expected > 0
    assert reports[0].cost.amount == expected
    # each stream made (or continued) one of the requests, and bills it
    assert claude.cost.amount == attempts[0].cost.amount
    assert gpt.usage == attempts[1].usage and gpt.cost.amount == attempts[1].cost.amount


# -- after thinking: the next provider goes on, the reasoning is not owed -----------------
THINKING = "anthropic/messages-thinking"


def _thinking_of(transcript: str, events: int) -> tuple[str, str]:
    """The thinking and the text of a transcript's first ``events`` events, read from
    the wire JSON (an oracle that shares nothing with streamkit's decoders)."""
    import json

    from streamkit.testing import load_transcript

    thinking = text_ = ""
    for event in load_transcript(transcript).events[:events]:
        for line in event.splitlines():
            if line.startswith("data: {"):
                delta = json.loads(line[len("data: ") :]).get("delta") or {}
                thinking += delta.get("thinking") or ""
                text_ += delta.get("text") or ""
    return thinking, text_


@pytest.mark.parametrize(
    ("cut_after", "continues"),
    [(26, True), (9, False)],
    ids=["after-thinking-and-text", "during-thinking"],
)
@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_an_anthropic_thinking_stream_cut_mid_way_falls_back_to_openai(
    cut_after: int, continues: bool, async_: bool
) -> None:
    """Anthropic's stream is cut after its thinking and some text, or in the middle of
    its thinking; OpenAI (no thinking at all) takes over. The delivered thinking stays
    delivered and is not asked of OpenAI (it once was: the fallback wanted it
    reproduced and failed with ``StreamDivergedError``); delivered text is continued,
    and with none OpenAI is asked the original question. Nothing is repeated or lost,
    and each chunk says which provider produced it."""
    with ReplayServer(pace=0.0) as server:
        server.push(Reply(THINKING, fault=Fault(close_after_events=cut_after)), BACKUP)
        anthropic_client = server.client("anthropic", async_=async_)
        openai_client = server.client("openai", async_=async_)
        claude = sk.stream(
            "anthropic",
            "claude",
            "hi",
            client=anthropic_client,
            async_=async_,
            max_tokens=2048,
            thinking={"type": "enabled", "budget_tokens": 1024},
        )
        gpt = sk.stream("openai", "gpt", "hi", client=openai_client, async_=async_)
        chunks: list[sk.Chunk] = []
        try:
            response = await run(
                claude.pipe(
                    ops.fallback(gpt),
                    reactivex.operators.do_action(chunks.append),
                    ops.to_call_response(),
                ),
                async_,
            )
        finally:
            await close(async_, anthropic_client, openai_client)
        asked = server.requests[1].json["messages"]
    thought, said = _thinking_of(THINKING, cut_after)
    assert thought and bool(said) == continues
    continued = "".join(c.content for c in chunks if c.provider == "openai")
    assert continued == "4200 + 42 equals 4242."
    assert response.thinking == thought  # delivered once, and OpenAI has none
    assert response.content == said + continued
    assert "".join(c.thinking for c in chunks if c.provider == "anthropic") == thought
    assert [(s.provider, s.start, s.end) for s in response.spans] == [
        (name, start, start + len(part))
        for name, start, part in [("anthropic", 0, said), ("openai", len(said), continued)]
        if part
    ]
    if continues:
        assert asked[-2:] == [
            {"role": "assistant", "content": said},
            {"role": "user", "content": CONTINUE_INSTRUCTION},
        ]
    else:
        assert asked == [{"role": "user", "content": "hi"}]


def test_thinking_delivered_is_not_owed_and_the_next_attempts_thinking_follows() -> None:
    """Virtual time: a factory alternative after thinking and text is asked to continue
    the text; its own thinking is appended after the delivered thinking, never
    matched against it."""
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(
        on_next(10, text(thinking="Let me think", provider="anthropic")),
        on_next(20, text("The answer", provider="anthropic")),
        on_error(30, cut()),
    )
    second = scheduler.create_cold_observable(
        on_next(5, text(thinking="Resuming")),
        on_next(6, text(" is 42.")),
        on_completed(7),
    )
    asked: list[str] = []

    def continue_(delivered: str) -> Observable[sk.Chunk]:
        asked.append(delivered)
        return second

    results = scheduler.start(lambda: first.pipe(ops.fallback(continue_)))
    out = [value_of(m) for m in results.messages if kind_of(m) == "N"]
    assert kind_of(results.messages[-1]) == "C"
    assert asked == ["The answer"]
    assert "".join(c.thinking for c in out) == "Let me thinkResuming"
    assert "".join(c.content for c in out) == "The answer is 42."
