"""Usage estimates, prices, the ledger and budgets (the exit-path matrix of usage reports
is in tests/test_lifecycle.py)."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import genai_prices
import pytest
from reactivex import operators as rx_ops

import streamkit as sk
from streamkit import _lifecycle as lc
from streamkit import ops
from streamkit._tokens import approximate_tokens, count_input, tiktoken_encoding
from streamkit.prices import Cost, Price, cost_of
from streamkit.testing import ReplayServer, Reply, Transcript, load_transcript
from tests.ops._pipelines import collect_sync
from tests.usage_estimates import (
    ABSOLUTE_SLACK,
    INPUT_BOUND,
    INPUT_OUTLIERS,
    OUTPUT_BOUND,
    Row,
    measure,
)

DOCS = Path(__file__).resolve().parent.parent / "docs" / "usage-and-cost.md"


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> list[Row]:
    # The documented bounds are the approximation's. Importing litellm points
    # TIKTOKEN_CACHE_DIR at the BPE files it bundles (so tiktoken then counts offline):
    # an empty cache keeps the measurement independent of which tests ran before.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path_factory.mktemp("no-bpe")))
        tiktoken_encoding.cache_clear()
        try:
            return measure()
        finally:
            tiktoken_encoding.cache_clear()


# -- estimates ------------------------------------------------------------------------------
def test_estimates_are_within_the_documented_bound(rows: list[Row]) -> None:
    assert len(rows) >= 20  # every recorded transcript that reports usage
    for row in rows:
        out_error = abs(row.estimated_output - row.visible_output)
        assert out_error <= max(OUTPUT_BOUND * row.visible_output, ABSOLUTE_SLACK), row
        if row.transcript in INPUT_OUTLIERS:
            continue
        in_error = abs(row.estimated_input - row.reported_input)
        assert in_error <= max(INPUT_BOUND * row.reported_input, ABSOLUTE_SLACK), row


def test_the_docs_state_the_measured_bounds(rows: list[Row]) -> None:
    text = DOCS.read_text()
    assert f"{OUTPUT_BOUND:.0%}" in text and f"{INPUT_BOUND:.0%}" in text
    for outlier in INPUT_OUTLIERS:
        assert outlier in text
    for row in rows:  # the table is the measured one
        assert f"`{row.transcript}` | {row.reported_input} | {row.estimated_input} |" in text


@pytest.mark.parametrize(
    ("page", "stop"),
    [
        ("usage-and-cost.md", "take_until_match"),
        ("operators/on_usage.md", "take_until_match"),
        ("operators/budget.md", "ops.budget(max_cost="),
    ],
)
def test_the_usage_pages_run_an_early_stop_and_show_its_output(page: str, stop: str) -> None:
    """Each of these pages shows usage and cost after an early stop on the replay server,
    with the printed output, which tests/test_docs.py runs and compares."""
    from tests.test_docs import python_blocks

    blocks = python_blocks(DOCS.parent / page)
    shown = [
        b
        for b in blocks
        if stop in b.code
        and "ReplayServer(" in b.code
        and not b.needs_key
        and b.expected_output is not None
        and "USD" in b.expected_output
    ]
    assert shown, f"{page}: no runnable early stop with its usage and cost shown"


def test_tiktoken_without_its_bpe_file_falls_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Offline, tiktoken would try to download its BPE file: streamkit never asks it to
    (an empty cache means the approximation)."""
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    tiktoken_encoding.cache_clear()
    try:
        assert tiktoken_encoding("gpt-4o-mini") is None
        assert count_input("openai", "gpt-4o-mini", [{"role": "user", "content": "hi"}]) > 0
    finally:
        tiktoken_encoding.cache_clear()


def test_approximation_examples() -> None:
    assert approximate_tokens("") == 0
    assert approximate_tokens("Hello world") == 2
    assert approximate_tokens("4200 + 42") == 5  # "420", "0", " +", " ", "42"


# -- prices -------------------------------------------------------------------------------
def test_prices_equal_genai_prices_for_the_transcripts_models(rows: list[Row]) -> None:
    provider_ids = {
        "openai": "openai",
        "anthropic": "anthropic",
        "google": "google",
        "groq": "groq",
        "mistral": "mistral",
        "cohere": "cohere",
    }
    priced = 0
    for row in rows:
        usage = sk.Usage(input_tokens=row.reported_input, output_tokens=row.reported_output)
        cost = cost_of(row.provider, row.model, usage)
        try:
            expected = genai_prices.calc_price(
                genai_prices.Usage(
                    input_tokens=row.reported_input, output_tokens=row.reported_output
                ),
                model_ref=str(row.model),
                provider_id=provider_ids[row.provider],
            ).total_price
        except LookupError:
            assert cost.amount is None and cost.reason and "sk.prices.register" in cost.reason
            continue
        assert cost.amount == expected and cost.priced_by == "genai-prices"
        priced += 1
    assert priced >= 15


def test_cached_input_is_priced_at_the_cache_rate() -> None:
    usage = sk.Usage(input_tokens=1000, output_tokens=10, cached_tokens=800)
    expected = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1000, output_tokens=10, cache_read_tokens=800),
        model_ref="gpt-4o",
        provider_id="openai",
    ).total_price
    assert cost_of("openai", "gpt-4o", usage).amount == expected
    # Anthropic's input_tokens exclude cache reads: they are added for the price.
    anthropic = sk.Usage(input_tokens=200, output_tokens=10, cached_tokens=800)
    expected = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1000, output_tokens=10, cache_read_tokens=800),
        model_ref="claude-sonnet-4-5",
        provider_id="anthropic",
    ).total_price
    assert cost_of("anthropic", "claude-sonnet-4-5", anthropic).amount == expected


AUDIO = "synthetic/openai-chat-audio-pcm16"
AUDIO_PARAMS: dict[str, Any] = {
    "modalities": ["text", "audio"],
    "audio": {"voice": "alloy", "format": "pcm16"},
}


def _audio_transcript(model: str) -> tuple[Transcript, dict[str, Any]]:
    """The synthetic audio answer with ``model`` as its reported model, and its usage
    read straight from the wire JSON (the oracle: no streamkit decoder involved)."""
    recorded = load_transcript(AUDIO)
    reported = "gpt-4o-audio-preview-2024-12-17"
    events = [
        event.replace(f'"model":"{reported}"', f'"model":"{model}"') for event in recorded.events
    ]
    usages = [
        json.loads(line[len("data: ") :])["usage"]
        for event in events
        for line in event.splitlines()
        if line.startswith("data: {") and '"usage":{' in line
    ]
    return Transcript.from_events("openai", recorded.api, events), usages[-1]


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o-audio-preview-2024-12-17",  # as recorded: genai-prices has no audio rate
        "gpt-audio-2025-08-28",  # genai-prices prices its audio tokens apart
    ],
)
def test_audio_tokens_are_priced_at_the_audio_rate(model: str) -> None:
    transcript, wire = _audio_transcript(model)
    with ReplayServer(transcript) as server:
        stream = sk.stream(
            "openai",
            "gpt-audio",
            "Tell me a story.",
            client=server.client("openai"),
            **AUDIO_PARAMS,
        )
        response = stream.pipe(ops.to_call_response()).run()
    audio_out = wire["completion_tokens_details"]["audio_tokens"]
    assert audio_out > 0
    assert response.usage is not None and response.usage.source == "reported"
    assert response.usage.audio_output_tokens == audio_out
    assert response.usage.audio_input_tokens is None  # 0 on the wire: not reported
    counts = {"input_tokens": wire["prompt_tokens"], "output_tokens": wire["completion_tokens"]}
    expected = genai_prices.calc_price(
        genai_prices.Usage(**counts, output_audio_tokens=audio_out),
        model_ref=model,
        provider_id="openai",
    )
    assert response.cost.amount == expected.total_price
    assert response.cost.output == expected.output_price
    if model.startswith("gpt-audio"):  # the audio rate is not the text rate here
        as_text = genai_prices.calc_price(
            genai_prices.Usage(**counts), model_ref=model, provider_id="openai"
        )
        assert response.cost.amount != as_text.total_price


def test_registered_audio_rates() -> None:
    usage = sk.Usage(
        input_tokens=30, output_tokens=22, audio_input_tokens=10, audio_output_tokens=13
    )
    price = Price(
        input=Decimal(1), output=Decimal(2), audio_input=Decimal(5), audio_output=Decimal(7)
    )
    cost = cost_of("openai", "anything", usage, price=price)
    assert cost.input == Decimal(20 * 1 + 10 * 5) / 1_000_000
    assert cost.output == Decimal(9 * 2 + 13 * 7) / 1_000_000


def test_register_overrides_and_unknown_models() -> None:
    usage = sk.Usage(input_tokens=2_000_000, output_tokens=1_000_000, cached_tokens=1_000_000)
    unknown = cost_of("openai", "my-fine-tune", usage)
    assert unknown.amount is None and "my-fine-tune" in (unknown.reason or "")
    sk.prices.register(
        "my-fine-tune", Price(input=Decimal(1), output=Decimal(4), cached_input=Decimal("0.5"))
    )
    try:
        cost = cost_of("openai", "my-fine-tune", usage)
        assert cost.amount == Decimal("1") + Decimal("0.5") + Decimal("4")
        assert cost.priced_by == "registered"
        # registered for one provider only
        sk.prices.register("gpt-4o", Price(input=Decimal(0), output=Decimal(0)), provider="azure")
        assert cost_of("azure", "gpt-4o", usage).amount == 0
        assert cost_of("openai", "gpt-4o", usage).priced_by == "genai-prices"
    finally:
        sk.prices.unregister("my-fine-tune")
        sk.prices.unregister("gpt-4o", provider="azure")
    assert cost_of("openai", "my-fine-tune", usage).amount is None
    argument = cost_of(
        "openai", "anything", usage, price=Price(input=Decimal(1), output=Decimal(1))
    )
    assert argument.amount == Decimal(3) and argument.priced_by == "argument"
    assert cost_of("openai", "gpt-4o", None).reason == "no usage to price"


def test_without_genai_prices_the_reason_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "genai_prices", None)
    cost = cost_of("openai", "gpt-4o", sk.Usage(input_tokens=1))
    assert cost.amount is None and "streamkit[cost]" in (cost.reason or "")


def test_bad_prices() -> None:
    with pytest.raises(ValueError, match="finite price"):
        Price(input=Decimal(-1), output=Decimal(1))
    with pytest.raises(TypeError, match="USD per million"):
        Price(input=True, output=Decimal(1))  # type: ignore[arg-type]
    # typed as Decimal, numbers and numeric strings are taken too, as Decimal
    lenient = Price(input=1, output="4", cached_input=0.5)  # type: ignore[arg-type]
    assert (lenient.input, lenient.output, lenient.cached_input) == (
        Decimal(1),
        Decimal(4),
        Decimal("0.5"),
    )
    with pytest.raises(TypeError, match="Price"):
        sk.prices.register("m", {"input": 1})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="model"):
        sk.prices.register("", Price(input=Decimal(1), output=Decimal(1)))


def test_cost_addition() -> None:
    a = Cost(Decimal(1), input=Decimal("0.5"), output=Decimal("0.5"), usage_source="reported")
    b = Cost(Decimal(2), input=Decimal(1), output=Decimal(1), usage_source="estimated")
    assert (a + b).amount == 3 and (a + b).usage_source == "mixed"
    assert (a + Cost(None, reason="x")).amount is None


# -- ledger -------------------------------------------------------------------------------
CONCURRENT = 200


async def test_ledger_totals_under_200_concurrent_streams() -> None:
    """200 async streams at once, a third stopped early, each reporting into one
    ledger from its own task: the ledger's totals are the sum of their reports."""
    ledger = sk.Ledger()
    reports: list[sk.UsageReport] = []
    with ReplayServer("openai/chat-text-usage", keep_alive=False) as server:
        client = server.client("openai", async_=True)

        async def one(index: int) -> None:
            stream = sk.stream("openai", "gpt-4o", "What is 4200 + 42?", client=client)
            stop = [rx_ops.take(2)] if index % 3 == 0 else []
            loop = asyncio.get_running_loop()
            done = loop.create_future()
            pipeline = stream.pipe(*stop, ops.on_usage(reports.append))
            with ledger.track():
                subscription = pipeline.subscribe(
                    on_error=done.set_exception, on_completed=lambda: done.set_result(None)
                )
            try:
                await asyncio.wait_for(done, 30)
            finally:
                subscription.dispose()

        await asyncio.gather(*(one(i) for i in range(CONCURRENT)))
        await client.close()
    assert ledger.requests == len(reports) == CONCURRENT
    total = reports[0].usage
    for report in reports[1:]:
        assert report.usage is not None and total is not None
        total = total + report.usage
    assert ledger.usage == total
    assert ledger.cost.amount == sum(r.cost.amount or Decimal(0) for r in reports)
    sources = {r.usage.source for r in reports if r.usage}
    assert sources == {"reported", "estimated"}
    assert ledger.usage is not None and ledger.usage.source == "mixed"


def test_ledger_from_threads() -> None:
    """Sync streams on threads report into one ledger (thread-safety)."""
    ledger = sk.Ledger()
    with ReplayServer("openai/chat-text-usage", keep_alive=False) as server:
        client = server.client("openai")

        def one() -> None:
            with ledger.track():
                collect_sync(sk.stream("openai", "gpt-4o", "hi", client=client))

        threads = [threading.Thread(target=one) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert ledger.requests == 20
    assert ledger.usage is not None and ledger.usage.total_tokens == 20 * 26


# -- budget -------------------------------------------------------------------------------
def test_budget_stops_the_stream_and_closes_the_response() -> None:
    recording: list[lc.StreamEnd] = []

    class Ends(lc.LifecycleObserver):
        def on_end(self, end: lc.StreamEnd) -> None:
            recording.append(end)

    name = "mistral/chat-text-usage"  # 45 events, one text piece each
    with ReplayServer(Reply(name, pace=0.01), keep_alive=False) as server:
        stream = sk.stream("mistral", "mistral-small-latest", "hi", client=server.client("mistral"))
        reports: list[sk.UsageReport] = []
        with lc.observing(Ends()):
            items, error = collect_sync(
                stream.pipe(ops.budget(max_output_tokens=10), ops.on_usage(reports.append))
            )
        record = server.wait_for_request_end()
    assert error is None
    assert (recording[0].outcome, recording[0].disposed_by) == ("disposed", "budget")
    assert record.disconnected and not record.completed  # measured on the server side
    assert record.events_sent < record.events_total
    text_tokens = sum(approximate_tokens(c.content) for c in items)
    assert 10 <= text_tokens <= 10 + approximate_tokens(items[-1].content)
    assert reports[0].usage is not None and reports[0].usage.source == "estimated"


def test_budget_by_cost_with_a_shared_ledger() -> None:
    """A ledger already over its limit: the next budgeted stream makes no request."""
    sk.prices.register(
        "cheap", Price(input=Decimal(1_000_000), output=Decimal(1_000_000))
    )  # $1 a token
    try:
        ledger = sk.Ledger()
        with ReplayServer("openai/chat-text-usage", keep_alive=False) as server:
            client = server.client("openai")
            with ledger.track():
                first, error = collect_sync(sk.stream("openai", "cheap", "hi", client=client))
            assert error is None and first
            assert ledger.requests == 1 and ledger.cost.amount == 26  # 16 in + 10 out, $1 each
            second, error = collect_sync(
                sk.stream("openai", "cheap", "hi", client=client).pipe(
                    ops.budget(max_cost=20, ledger=ledger)
                )
            )
            # a typed error, not an empty answer that looks like a model's silence
            assert second == [] and isinstance(error, sk.BudgetExceededError)
            assert (error.limit, error.spent, error.allowed) == ("max_cost", 26, 20)
            assert "no request was sent" in str(error)
            assert len(server.requests) == 1
            # the same for a token limit the ledger has reached
            _, error = collect_sync(
                sk.stream("openai", "cheap", "hi", client=client).pipe(
                    ops.budget(max_output_tokens=10, ledger=ledger)
                )
            )
            assert isinstance(error, sk.BudgetExceededError)
            assert (error.limit, error.spent) == ("max_output_tokens", 10)
            assert len(server.requests) == 1 and ledger.requests == 1
    finally:
        sk.prices.unregister("cheap")


def test_budget_cannot_price_an_unknown_model() -> None:
    with ReplayServer("openai/chat-text-usage", keep_alive=False) as server:
        stream = sk.stream("openai", "unknown-model", "hi", client=server.client("openai"))
        items, error = collect_sync(stream.pipe(ops.budget(max_cost=1)))
        assert len(server.requests) == 0  # refused before the request was sent
    assert isinstance(error, sk.BudgetError) and items == []
    assert not isinstance(error, sk.BudgetExceededError)
    assert "sk.prices.register" in str(error)


BUDGETED = "mistral/chat-text-usage"  # 45 events, one text piece each; usage at the end
BUDGETED_MODEL = "mistral-tiny"  # as the transcript answers; priced by genai-prices


def test_budget_max_cost_reached_mid_stream_stops_it_and_closes_the_response() -> None:
    """``max_cost`` is reached mid-stream: the budget disposes upstream (the server sees
    the connection closed before its last event), the stream completes with what was
    delivered, and the request is billed at its estimate, for less than the whole
    answer."""
    whole = load_transcript(BUDGETED).events[-2]
    reported = json.loads(whole[len("data: ") :])["usage"]
    whole_cost = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=reported["prompt_tokens"], output_tokens=reported["completion_tokens"]
        ),
        model_ref=BUDGETED_MODEL,
        provider_id="mistral",
    ).total_price
    max_cost = whole_cost * 2 / 3
    reports: list[sk.UsageReport] = []
    with ReplayServer(Reply(BUDGETED, pace=0.01), keep_alive=False) as server:
        stream = sk.stream("mistral", BUDGETED_MODEL, "hi", client=server.client("mistral"))
        items, error = collect_sync(
            stream.pipe(ops.budget(max_cost=max_cost), ops.on_usage(reports.append))
        )
        record = server.wait_for_request_end()
    assert error is None and items
    assert record.disconnected and not record.completed  # measured on the server side
    assert record.events_sent < record.events_total
    (report,) = reports
    (end,) = report.attempts
    assert (end.outcome, end.disposed_by) == ("disposed", "budget")
    assert report.usage is not None and report.usage.source == "estimated"
    assert report.cost.amount is not None and 0 < report.cost.amount < whole_cost
    assert stream.cost == report.cost


def test_budget_counts_the_input_the_provider_reports() -> None:
    """Anthropic reports the input at the start (602 tokens of tool results the short
    prompt given here does not show): the budget prices that, not its own estimate,
    and stops the answer before it costs more than ``max_cost``."""
    transcript = "anthropic/messages-tool-result-followup"
    reports: list[sk.UsageReport] = []
    with ReplayServer(Reply(transcript, pace=0.01), keep_alive=False) as server:
        stream = sk.stream(
            "anthropic", "claude-sonnet-4-0", "The secrets?", client=server.client("anthropic")
        )
        assert stream.estimate_input_tokens() < 20
        max_cost = Decimal("0.0022")  # 602 input tokens cost $0.001806, the answer $0.002586
        items, error = collect_sync(
            stream.pipe(ops.budget(max_cost=max_cost), ops.on_usage(reports.append))
        )
        record = server.wait_for_request_end()
    assert error is None and items
    assert record.disconnected and record.events_sent < record.events_total
    (report,) = reports
    assert report.attempts[0].disposed_by == "budget"
    assert report.usage is not None and report.usage.input_tokens == 602
    assert report.cost.amount is not None and report.cost.amount < max_cost


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_budget_refuses_a_request_whose_input_alone_exceeds_it(async_: bool) -> None:
    """The request's estimated input already costs more than ``max_cost``: a typed
    error before any HTTP request (the server receives none), nothing billed."""
    reports: list[sk.UsageReport] = []
    ledger = sk.Ledger()
    with ReplayServer(BUDGETED, keep_alive=False) as server:
        client = server.client("mistral", async_=async_)
        stream = sk.stream(
            "mistral", BUDGETED_MODEL, "a long question " * 50, client=client, async_=async_
        )
        input_cost = cost_of(
            "mistral", BUDGETED_MODEL, sk.Usage(input_tokens=stream.estimate_input_tokens())
        ).amount
        assert input_cost is not None
        pipeline = stream.pipe(
            ops.budget(max_cost=input_cost / 2, ledger=ledger), ops.on_usage(reports.append)
        )
        with pytest.raises(sk.BudgetExceededError) as raised:
            if async_:
                await pipeline.aresponse()
            else:
                pipeline.run()
        assert len(server.requests) == 0
    error = raised.value
    assert error.limit == "max_cost" and error.input_tokens == stream.estimate_input_tokens()
    assert error.spent == input_cost and "mistral-tiny" in str(error)
    (report,) = reports
    assert report.error is error and report.attempts == () and report.usage is None
    assert report.cost.amount == 0 and ledger.requests == 0 and ledger.cost.amount == 0
    assert stream.usage is None and stream.requests == 0


def test_budget_refuses_a_retry_it_can_no_longer_afford() -> None:
    """Every attempt is admitted on its own: after a cut first attempt, the retry's
    input would pass ``max_cost``, so it is not sent and the stream fails typed."""
    from streamkit.testing import Fault

    sk.prices.register("per-token", Price(input=Decimal(1_000_000), output=Decimal(1_000_000)))
    try:
        with ReplayServer(keep_alive=False) as server:
            server.push(Reply(BUDGETED, fault=Fault(end_after_events=6)), BUDGETED)
            stream = sk.stream("mistral", "per-token", "hi", client=server.client("mistral"))
            attempt = stream.estimate_input_tokens()  # $1 a token
            reports: list[sk.UsageReport] = []
            items, error = collect_sync(
                stream.pipe(
                    ops.retry_on_error(backoff=0.01),
                    ops.budget(max_cost=attempt * 2),
                    ops.on_usage(reports.append),
                )
            )
            assert len(server.requests) == 1
        assert isinstance(error, sk.BudgetExceededError) and items
        (report,) = reports
        (cut,) = report.attempts  # the refused retry was never a request
        assert cut.outcome == "error" and cut.usage is not None
        assert cut.cost.amount == cut.usage.input_tokens + cut.usage.output_tokens
        assert error.spent == cut.cost.amount + attempt  # as billed, and the retry's input
    finally:
        sk.prices.unregister("per-token")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({}, ValueError),
        ({"max_cost": 0}, ValueError),
        ({"max_cost": "1"}, TypeError),
        ({"max_output_tokens": 0}, ValueError),
        ({"max_output_tokens": 1.5}, TypeError),
        ({"max_output_tokens": 5, "ledger": object()}, TypeError),
    ],
)
def test_budget_bad_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        ops.budget(**kwargs)


def test_on_usage_bad_argument() -> None:
    with pytest.raises(TypeError, match="callable"):
        ops.on_usage(42)  # type: ignore[arg-type]


def test_on_usage_with_retries_bills_every_attempt() -> None:
    """retry_on_error: the report lists each attempt with its own usage, and its total
    is what was billed (the cut attempt at streamkit's estimate)."""
    from streamkit.testing import Fault

    name = "openai/chat-text-usage"
    with ReplayServer(keep_alive=False) as server:
        server.push(Reply(name, fault=Fault(end_after_events=6)), name)
        stream = sk.stream("openai", "gpt-4o", "What is 4200 + 42?", client=server.client("openai"))
        reports: list[sk.UsageReport] = []
        responses, error = collect_sync(
            stream.pipe(
                ops.retry_on_error(backoff=0.01),
                ops.on_usage(reports.append),
                ops.to_call_response(),
            )
        )
    assert error is None
    (report,) = reports
    cut, full = report.attempts
    assert (cut.outcome, full.outcome) == ("error", "completed")
    assert cut.usage is not None and cut.usage.source == "estimated"
    assert full.usage is not None and full.usage.source == "reported"
    assert report.usage == cut.usage + full.usage
    assert responses[0].usage == report.usage
    assert report.cost.amount == (cut.cost.amount or 0) + (full.cost.amount or 0)


def test_share_replay_bills_one_request() -> None:
    with ReplayServer("openai/chat-text-usage", keep_alive=False) as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"))
        shared = stream.pipe(ops.share_replay())
        ledger = sk.Ledger()
        with ledger.track():
            collect_sync(shared)
            collect_sync(shared)
            collect_sync(shared)
    assert ledger.requests == 1 == len(server.requests)
