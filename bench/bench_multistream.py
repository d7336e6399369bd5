"""Many streams at once: what ``ops.hedge`` buys on a heavy tail, what ``sk.race`` spares.

Run: ``PYTHONPATH=. python bench/bench_multistream.py`` (``--quick`` for a smaller run,
``--no-write`` to print only). It writes its section of ``docs/performance.md``
(between the ``multistream`` markers, which ``bench/run.py`` keeps when it rewrites
the page).

Two measurements, each on a :class:`~streamkit.testing.ReplayServer` in this process
(wall-clock latency is measured here, not CPU, so the server may share the process)
with the official async openai SDK client:

- **hedge**: every reply waits a first-token delay drawn from a Pareto distribution
  (heavy-tailed: most answers start fast, a few very late) before its first event.
  The same number of calls runs without and with ``ops.hedge(after=...)``; time to
  first text (TTFT) is measured from subscribing to the first chunk with text. The
  cost of hedging is read from the server's records: extra requests, the output
  events the losers were sent before they were closed, and the prompt tokens each
  extra request is billed.
- **race**: ``sk.race(*candidates, until=...)`` over 2, 4 and 8 candidates, each a
  paced 200-delta stream (as a model writes) that names the sought word at a random
  point after a heavy-tailed first-token delay. Time to decision is from subscribing
  to the winner's first emitted chunk; tokens spared are the losers' events the
  server never sent (``events_total - events_sent`` of every request closed early),
  against running every candidate to its end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _streams
from reactivex import Observable

import streamkit as sk
from streamkit import ops
from streamkit.testing import Fault, ReplayServer, Reply

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "performance.md"
SECTION = "multistream"  # its section of docs/performance.md (bench/_sections.py)

# The first-token delay: Pareto with scale XM and shape ALPHA, capped at CAP seconds.
XM, ALPHA, CAP = 0.05, 1.3, 3.0
HEDGE_AFTER = 0.15
"""Seconds without text before the hedge request starts (about the delay's p75)."""
HEDGE_CHUNKS = 20
HEDGE_CONCURRENCY = 8
PROMPT_TOKENS = 16
"""Prompt tokens of the generated streams' usage: what each extra request is billed."""

RACE_CHUNKS = 200
RACE_PACE = 0.004
"""Seconds between a race candidate's events (a model writing ~250 tokens/s)."""
RACE_SIZES = (1, 2, 4, 8)


def first_token_delay(rng: random.Random) -> float:
    """One heavy-tailed delay: Pareto(XM, ALPHA), capped at CAP."""
    return min(CAP, XM / (1.0 - rng.random()) ** (1.0 / ALPHA))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def time_to_first_text(observable: Observable[sk.Chunk]) -> float:
    """Seconds from subscribing to the first chunk with text; waits for the end."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    start = time.perf_counter()
    first: list[float] = []

    def on_next(chunk: sk.Chunk) -> None:
        if chunk.content and not first:
            first.append(time.perf_counter() - start)

    def on_error(error: Exception) -> None:
        if not done.done():
            done.set_exception(error)

    def on_completed() -> None:
        if not done.done():
            done.set_result(None)

    subscription = observable.subscribe(on_next, on_error, on_completed)
    try:
        await done
    finally:
        subscription.dispose()
    if not first:
        raise RuntimeError("the stream ended without text")
    return first[0]


# -- hedge -------------------------------------------------------------------------------
@dataclass
class HedgeRun:
    ttft: list[float] = field(default_factory=list)
    requests: int = 0
    loser_events: int = 0
    calls: int = 0


async def hedge_run(calls: int, hedged: bool, seed: int) -> HedgeRun:
    rng = random.Random(seed)
    transcript = _streams.openai_transcript(HEDGE_CHUNKS)
    result = HedgeRun(calls=calls)
    with ReplayServer(pace=0.0) as server:
        # every request, hedges included, takes the next reply with its own delay
        server.push(
            *[
                Reply(transcript, fault=Fault(stall_before=first_token_delay(rng)))
                for _ in range(calls * 2)
            ]
        )
        client = server.client("openai", async_=True)
        semaphore = asyncio.Semaphore(HEDGE_CONCURRENCY)

        async def one() -> None:
            # the SDK path, as these figures have always been measured
            primary = sk.stream("openai", "gpt-4o", "hi", client=client, fast=False)
            observable: Observable[sk.Chunk] = primary
            if hedged:
                backup = sk.stream("openai", "gpt-4o", "hi", client=client, fast=False)
                observable = primary.pipe(ops.hedge(backup, after=HEDGE_AFTER))
            async with semaphore:
                result.ttft.append(await time_to_first_text(observable))

        await asyncio.gather(*[one() for _ in range(calls)])
        await client.close()
        records = [server.wait_for_request_end(i, 10.0) for i in range(len(server.requests))]
    result.requests = len(records)
    result.loser_events = sum(r.events_sent for r in records if not r.completed)
    return result


# -- race --------------------------------------------------------------------------------
@dataclass
class RaceRun:
    size: int
    decision: list[float] = field(default_factory=list)
    events_total: int = 0
    events_spared: int = 0
    losers: int = 0
    losers_closed: int = 0


async def race_run(size: int, trials: int, seed: int) -> RaceRun:
    rng = random.Random(seed)
    result = RaceRun(size)
    for _ in range(trials):
        with ReplayServer(pace=RACE_PACE) as server:
            for _ in range(size):
                match_at = rng.randrange(20, RACE_CHUNKS - 10)
                transcript = _streams.openai_transcript(RACE_CHUNKS, match_at=match_at)
                fault = Fault(stall_before=first_token_delay(rng))
                server.push(Reply(transcript, pace=RACE_PACE, fault=fault))
            client = server.client("openai", async_=True)
            candidates = [
                sk.stream("openai", "gpt-4o", "hi", client=client, fast=False) for _ in range(size)
            ]

            def found(text: str) -> bool:
                return _streams.MATCH_TEXT in text

            contest: Observable[sk.Chunk] = sk.race(*candidates, until=found)
            result.decision.append(await time_to_first_text(contest))
            await client.close()
            records = [server.wait_for_request_end(i, 10.0) for i in range(size)]
        result.events_total += sum(r.events_total for r in records)
        for record in records:
            if not record.completed:
                result.losers += 1
                result.losers_closed += record.disconnected
                result.events_spared += record.events_total - record.events_sent
    return result


# -- the report --------------------------------------------------------------------------
def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms"


def render(plain: HedgeRun, hedged: HedgeRun, races: list[RaceRun], quick: bool) -> str:
    extra = hedged.requests - hedged.calls
    delays = [first_token_delay(random.Random(s)) for s in range(20_000)]
    lines = [
        "## 7. Many streams at once: `ops.hedge` and `sk.race`",
        "",
        "Written by `bench/bench_multistream.py` (its own section: `bench/run.py` keeps it).",
        "",
        f"- Written: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        f"{' (--quick)' if quick else ''}; {platform.platform()}; Python "
        f"{platform.python_version()}; load average (1 min) {os.getloadavg()[0]:.1f}",
        f"- Command: `PYTHONPATH=. python bench/bench_multistream.py{' --quick' if quick else ''}`",
        "- Wall-clock latency with the async openai SDK against a `ReplayServer` on "
        "127.0.0.1 (no network). One run; the machine is shared, so read the figures "
        "as orders of magnitude.",
        "",
        "### Hedged requests on a heavy-tailed first token",
        "",
        f"Each reply waits a first-token delay drawn from a Pareto distribution "
        f"(scale {XM * 1e3:.0f} ms, shape {ALPHA}, capped at {CAP:g} s: p50 "
        f"{ms(percentile(delays, 50))}, p90 {ms(percentile(delays, 90))}, p99 "
        f"{ms(percentile(delays, 99))}), then sends {HEDGE_CHUNKS} text deltas. "
        f"{plain.calls} calls each way, {HEDGE_CONCURRENCY} at a time; the hedge starts "
        f"after {ms(HEDGE_AFTER)} without text.",
        "",
        "| | TTFT p50 | TTFT p90 | TTFT p99 | max | requests | extra output events | "
        "extra prompt tokens |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, run in (("without hedge", plain), (f"`ops.hedge(after={HEDGE_AFTER})`", hedged)):
        extra_run = run.requests - run.calls
        lines.append(
            f"| {name} | {ms(percentile(run.ttft, 50))} | {ms(percentile(run.ttft, 90))} | "
            f"{ms(percentile(run.ttft, 99))} | {ms(max(run.ttft))} | {run.requests} | "
            f"{run.loser_events} | {extra_run * PROMPT_TOKENS} |"
        )
    lines += [
        "",
        f"- The hedge cut p99 TTFT from {ms(percentile(plain.ttft, 99))} to "
        f"{ms(percentile(hedged.ttft, 99))} (p50 {ms(percentile(plain.ttft, 50))} → "
        f"{ms(percentile(hedged.ttft, 50))}) for {extra} extra requests "
        f"({extra / hedged.calls:.0%} of the calls).",
        "- What it cost, from the server's records: every extra request is billed its "
        f"prompt ({PROMPT_TOKENS} tokens here: {extra * PROMPT_TOKENS} in all); the "
        f"losers were sent {hedged.loser_events} events before they were closed (the "
        "loser is closed at the winner's first text, and a request still in its "
        "first-token delay has sent nothing).",
        "",
        "### Races over 2, 4 and 8 candidates",
        "",
        f"Each candidate streams {RACE_CHUNKS} deltas, one every {RACE_PACE * 1e3:g} ms, "
        "after its own heavy-tailed first-token delay, and names the sought word at a "
        f"random delta; `sk.race(..., until=...)` keeps the first to name it. "
        f"{len(races[0].decision)} races per size.",
        "",
        "| candidates | decision p50 | decision p90 | losers closed early | "
        "events spared (of running all to the end) |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in races:
        share = run.events_spared / run.events_total if run.events_total else 0.0
        closed = f"{run.losers_closed}/{run.losers}" if run.losers else "none"
        lines.append(
            f"| {run.size} | {ms(percentile(run.decision, 50))} | "
            f"{ms(percentile(run.decision, 90))} | {closed} | "
            f"{run.events_spared} ({share:.0%}) |"
        )
    lines += [
        "",
        "- Time to decision falls as candidates are added (the minimum of more draws of "
        "delay plus position of the answer); the tokens spared grow with them: each loser "
        "is closed at the decision, so the server never sends the rest of its stream.",
        "- With one candidate there is nothing to spare: it is the plain stream, the "
        "baseline of the decision time.",
    ]
    return "\n".join(lines) + "\n"


def write_section(section: str, page: Path = PAGE) -> None:
    """Put ``section`` into its marked section of ``page`` (appended the first time)."""
    import _sections

    page.write_text(
        _sections.replace_section(page.read_text(encoding="utf-8"), SECTION, section),
        encoding="utf-8",
    )


async def main(quick: bool, write: bool) -> None:
    calls = 80 if quick else 300
    trials = 6 if quick else 20
    log: Callable[[str], Any] = lambda message: print(message, file=sys.stderr)  # noqa: E731
    log(f"hedge: {calls} calls without, then with ops.hedge")
    plain = await hedge_run(calls, hedged=False, seed=1)
    hedged = await hedge_run(calls, hedged=True, seed=2)
    races = []
    for size in RACE_SIZES:
        log(f"race: {trials} races of {size}")
        races.append(await race_run(size, trials, seed=100 + size))
    section = render(plain, hedged, races, quick)
    print(section)
    if write:
        write_section(section)
        log(f"wrote {PAGE}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and races")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    asyncio.run(main(args.quick, not args.no_write))
