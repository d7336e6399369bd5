"""``docs/performance.md`` from one run's results (``bench/run.py``)."""

from __future__ import annotations

import math
import shlex
import statistics
from pathlib import Path
from typing import Any

from _measure import Runs
from _plan import BY_NAME, LONG, MATCH_CLIENTS, PEERS, TABLE, TTFC, Scenario

# Targets of issue 6.
PIPELINE_MAX_RATIO = 1.05  # issue 17: sync and async, openai and anthropic
TTFC_MAX_ADDED_MS = 0.5  # issue 17: time to first text added by the realistic pipeline
FLAT_MAX_RATIO = 1.10  # per-chunk cost at the long stream over the short one
FAST_MIN_SPEEDUP = 3.0
MAX_EVENTS_AFTER_MATCH = 1
FLAT_MEMORY_BYTES_PER_CHUNK = 16  # "flat": well under one byte of text per chunk retained

X = "\u00d7"  # the multiplication sign (spelled out: ruff flags it as ambiguous)
DASH = "\u2013"  # the en dash of ranges


def _us(seconds: float) -> str:
    return "\u2013" if math.isnan(seconds) else f"{seconds * 1e6:.1f}"


def _ms(seconds: float) -> str:
    return "\u2013" if math.isnan(seconds) else f"{seconds * 1e3:.2f}"


def _x(ratio: float) -> str:
    return "\u2013" if math.isnan(ratio) else f"{ratio:.2f}\u00d7"


def _mb(size: float) -> str:
    return f"{size / 2**20:.1f} MiB"


def per_chunk(runs: Runs | None, chunks: int) -> float:
    """Median CPU seconds per text delta of the stream (the whole read, request
    included, over the stream's text deltas)."""
    if runs is None or not runs.cpu:
        return float("nan")
    return runs.cpu_median / chunks


def ratio(runs: Runs | None, base: Runs | None) -> tuple[float, float, float]:
    """(median, min, max) of the per-round CPU ratios ``runs`` / ``base``: each round
    read both once, close in time, so the pair shares the machine's load of the
    moment; with unequal counts, the ratio of the medians (min = max = it)."""
    if runs is None or base is None or not runs.cpu or not base.cpu:
        return (float("nan"),) * 3
    if len(runs.cpu) == len(base.cpu):
        pairs = [a / b for a, b in zip(runs.cpu, base.cpu, strict=True)]
        return statistics.median(pairs), min(pairs), max(pairs)
    value = runs.cpu_median / base.cpu_median
    return value, value, value


class Report:
    """Derived figures shared by the page and the console summary."""

    def __init__(self, results: Any) -> None:
        self.r = results
        self.plan = results.plan

    def runs(self, name: str, mode: str) -> Runs | None:
        return self.r.table.get((name, mode))

    def chunks(self, mode: str) -> int:
        return self.plan.table_chunks if mode == "burst" else self.plan.paced_chunks

    def ratio(self, name: str, mode: str, base: str | None = None) -> tuple[float, float, float]:
        base = base or BY_NAME[name].baseline or name
        return ratio(self.runs(name, mode), self.runs(base, mode))

    def ttfc_added_ms(self, name: str) -> float | None:
        """What ``name`` adds to its raw SDK's median time to first text, in ms."""
        base = BY_NAME[name].baseline
        got, base_got = self.r.ttfc.get(name), self.r.ttfc.get(base or "")
        if not isinstance(got, list) or not got or not isinstance(base_got, list) or not base_got:
            return None
        return (statistics.median(got) - statistics.median(base_got)) * 1e3

    def error(self, name: str, mode: str = "burst") -> str | None:
        runs = self.runs(name, mode)
        return None if runs is None else runs.error

    # -- targets -------------------------------------------------------------------------
    def targets(self) -> list[tuple[str, str, bool | None]]:
        """(target, what was measured, met?) for each target of the issue."""
        rows: list[tuple[str, str, bool | None]] = []
        # Each realistic pipeline twice: as sk.stream(...) gives it by default (the fast
        # path where it runs) and on the SDK path (fast=False).
        pipelines = (
            ("sk-default-pipeline", "openai sync, default: the fast path"),
            ("sk-pipeline", "openai sync, SDK path `fast=False`"),
            ("sk-default-async-pipeline", "openai async, default: the fast path"),
            ("sk-async-pipeline", "openai async, SDK path `fast=False`"),
            ("sk-default-anthropic-pipeline", "anthropic sync, default: the fast path"),
            ("sk-anthropic-pipeline", "anthropic sync, SDK path `fast=False`"),
            ("sk-default-anthropic-async-pipeline", "anthropic async, default: the fast path"),
            ("sk-anthropic-async-pipeline", "anthropic async, SDK path `fast=False`"),
        )
        for mode in ("burst", "paced"):
            for name, what in pipelines:
                value = self.ratio(name, mode)[0]
                rows.append(
                    (
                        f"realistic pipeline ≤ {PIPELINE_MAX_RATIO:.2f}{X} raw SDK CPU/chunk "
                        f"({what}, {mode})",
                        _x(value),
                        None if math.isnan(value) else value <= PIPELINE_MAX_RATIO,
                    )
                )
        for name in (
            "sk-default-pipeline",
            "sk-pipeline",
            "sk-default-async-pipeline",
            "sk-async-pipeline",
            "sk-default-anthropic-pipeline",
            "sk-anthropic-pipeline",
        ):
            added = self.ttfc_added_ms(name)
            rows.append(
                (
                    f"time to first text added by the realistic pipeline ≤ "
                    f"{TTFC_MAX_ADDED_MS} ms ({BY_NAME[name].label.split(': ')[0]})",
                    "\u2013" if added is None else f"{added:+.2f} ms",
                    None if added is None else added <= TTFC_MAX_ADDED_MS,
                )
            )
        for mode in ("burst", "paced"):
            rows.extend(self.peer_targets(mode))
        flat = self.flatness("sk-pipeline")
        rows.append(
            (
                f"per-chunk cost flat from {self.plan.table_chunks:,} to "
                f"{self.plan.long_chunks:,} chunks (realistic pipeline, ≤ {FLAT_MAX_RATIO:.2f}{X})",
                _x(flat),
                None if math.isnan(flat) else flat <= FLAT_MAX_RATIO,
            )
        )
        memory = self.r.memory.get("flat")
        if isinstance(memory, dict):
            growth = self.memory_growth(memory)
            rows.append(
                (
                    f"memory flat without accumulation ({memory['chunks']:,} chunks)",
                    f"{growth['per_chunk']:+.2f} bytes/chunk after the first "
                    f"{100 / self.plan.memory_samples:.0f} % "
                    f"({_mb(growth['bytes'])})",
                    growth["per_chunk"] < FLAT_MEMORY_BYTES_PER_CHUNK,
                )
            )
        else:
            rows.append(("memory flat without accumulation", f"did not run: {memory}", None))
        worst = self.events_after_match_worst()
        rows.append(
            (
                f"≤ {MAX_EVENTS_AFTER_MATCH} event sent after the match (streamkit, 4 cases)",
                "\u2013" if worst is None else f"at most {worst}",
                None if worst is None else worst <= MAX_EVENTS_AFTER_MATCH,
            )
        )
        speed = self.fast_speedup("burst")
        pipeline_speed = self.fast_speedup("burst", "sk-fast-pipeline")
        rows.append(
            (
                f"fast path ≥ {FAST_MIN_SPEEDUP:.0f}{X} faster than raw openai iteration (burst)",
                f"{speed:.2f}{X} (source alone), {pipeline_speed:.2f}{X} (realistic pipeline)",
                None if math.isnan(speed) else speed >= FAST_MIN_SPEEDUP,
            )
        )
        rows.extend(self.fast_provider_targets())
        return rows

    def versus(self, mine: str, peer: str, mode: str) -> tuple[str, bool | None]:
        """Row ``mine`` against the peer ``peer``: its CPU per chunk and the median of the
        per-round ratios, and whether it is cheaper by more than the noise floor (a
        difference within it is not told apart: "no", with that reason)."""
        value, low, high = self.ratio(mine, mode, peer)
        own = per_chunk(self.runs(mine, mode), self.chunks(mode))
        if math.isnan(value):
            return f"{BY_NAME[mine].label}: did not run ({self.error(mine, mode)})", None
        noise = self.noise(mode)
        figures = f"{_us(own)} µs, {_x(value)} (rounds {low:.2f}{DASH}{high:.2f})"
        if value < 1 - noise:
            return f"{figures}: cheaper", True
        if value <= 1 + noise:
            return (
                f"{figures}: within the noise floor ({100 * noise:.0f} %, see "
                "[Noise](#noise)), not told apart",
                False,
            )
        return f"{figures}: {100 * (value - 1):.0f} % dearer", False

    def peer_targets(self, mode: str) -> list[tuple[str, str, bool | None]]:
        """Issue 17: streamkit cheaper than every peer on the same stream in the same
        run, one row per peer (the realistic pipeline of the same provider, sync or
        async as the peer, decides; the fast path's figure is given with it), then one
        row for the fast path against every peer."""
        rows: list[tuple[str, str, bool | None]] = []
        fast: list[str] = []
        fast_met: list[bool | None] = []
        for name in PEERS:
            peer = BY_NAME[name]
            realistic, quick = peer.versus
            theirs = per_chunk(self.runs(name, mode), self.chunks(mode))
            target = (
                f"SDK path (`fast=False`) realistic pipeline cheaper than {peer.short} ({mode})"
            )
            if math.isnan(theirs):
                rows.append((target, f"{peer.short} did not run: {self.error(name, mode)}", None))
                fast.append(f"{peer.short}: did not run")
                fast_met.append(None)
                continue
            text, met = self.versus(realistic, name, mode)
            fast_text, fast_ok = self.versus(quick, name, mode)
            async_ = " (async, as the peer)" if "async" in realistic else ""
            rows.append(
                (
                    target,
                    f"{peer.short} {_us(theirs)} µs; streamkit `fast=False`{async_} {text}. "
                    f"With `fast=True` (the default where it runs): {fast_text}",
                    met,
                )
            )
            fast.append(f"{peer.short} {_us(theirs)} µs: {fast_text}")
            fast_met.append(fast_ok)
        if fast:
            known = [ok for ok in fast_met if ok is not None]
            rows.append(
                (
                    f"fast path (`fast=True`) realistic pipeline cheaper than every peer ({mode})",
                    "; ".join(fast),
                    all(known) if known else None,
                )
            )
        return rows

    def fast_provider_targets(self, mode: str = "burst") -> list[tuple[str, str, bool | None]]:
        """The fast path at least 3 times faster than each raw SDK, anthropic, groq and
        mistral (issue 17): the source alone decides; the realistic pipeline and the async client
        are shown."""
        rows: list[tuple[str, str, bool | None]] = []
        for provider in ("anthropic", "groq", "mistral"):
            speeds = {
                kind: self.fast_speedup(mode, f"sk-fast-{provider}-{kind}")
                for kind in ("source", "pipeline", "async-source")
            }
            if all(math.isnan(value) for value in speeds.values()):
                continue
            source = speeds["source"]
            rows.append(
                (
                    f"{provider} fast path ≥ {FAST_MIN_SPEEDUP:.0f}{X} faster than raw "
                    f"{provider} iteration ({mode})",
                    f"{source:.2f}{X} (source alone), {speeds['pipeline']:.2f}{X} (realistic "
                    f"pipeline), {speeds['async-source']:.2f}{X} (source alone, async client, "
                    f"against the raw async SDK)",
                    None if math.isnan(source) else source >= FAST_MIN_SPEEDUP,
                )
            )
        return rows

    def noise(self, mode: str) -> float:
        """How far from 1 the control row's ratio came (at least 2 %): two figures
        closer than this are not told apart by this run."""
        control = self.ratio("openai-sync-control", mode, "openai-sync")[0]
        return 0.02 if math.isnan(control) else max(0.02, abs(control - 1))

    def fast_speedup(self, mode: str, name: str = "sk-fast-source") -> float:
        """How many times less CPU per chunk than the raw SDK's iteration the row is set
        against (openai sync for the openai rows)."""
        value = self.ratio(name, mode)[0]
        return 1 / value if value and not math.isnan(value) else float("nan")

    def flatness(self, name: str) -> float:
        """Per-chunk CPU at the long stream over the short (burst table) one."""
        long = per_chunk(self.r.long.get(name), self.plan.long_chunks)
        short = per_chunk(self.runs(name, "burst"), self.plan.table_chunks)
        return long / short

    @staticmethod
    def memory_growth(memory: dict[str, Any]) -> dict[str, float]:
        """Resident memory added between the first sample (~10 % of the stream) and the
        end, in all and per chunk."""
        points = memory["points"]
        if not points:
            return {"bytes": float("nan"), "per_chunk": float("nan")}
        first_count, first_rss = points[0]
        last_count, last_rss = points[-1]
        grown = last_rss - first_rss
        return {"bytes": grown, "per_chunk": grown / max(1, last_count - first_count)}

    def events_after(self, record: dict[str, Any]) -> int:
        """Events the server sent after the one carrying the match (index
        ``match_at + 1``: the role event comes first)."""
        return int(record["events_sent"]) - (self.plan.match_at + 2)

    def events_after_match_worst(self) -> int | None:
        worst: int | None = None
        for name in (
            "match-direct-sync",
            "match-direct-async",
            "match-shared-sync",
            "match-shared-async",
        ):
            records = self.r.match.get(name)
            if not isinstance(records, list) or not records:
                return None
            value = max(self.events_after(record) for record in records)
            worst = value if worst is None else max(worst, value)
        return worst


# -- the page -----------------------------------------------------------------------------
def _portable(command: str) -> str:
    """The command without this machine's directories: an interpreter given by its
    absolute path (a venv outside the checkout) is ``python`` (its version is on the
    Machine line), other absolute paths are shown relative to the checkout."""
    words = shlex.split(command)
    root = Path(__file__).resolve().parent.parent
    for i, word in enumerate(words):
        if not word.startswith("/"):
            continue
        if i == 0:
            words[i] = "python"
        elif Path(word).is_relative_to(root):
            words[i] = str(Path(word).relative_to(root))
        else:
            words[i] = Path(word).name
    return shlex.join(words)


def render(results: Any, *, command: str, environment: dict[str, Any]) -> str:
    """The whole of ``docs/performance.md``."""
    rep = Report(results)
    out: list[str] = []
    w = out.append
    w("# Performance")
    w("")
    w(
        "<!-- Generated by bench/run.py: do not edit by hand, run it again "
        '(see "Reproduce" below). -->'
    )
    w("")
    w(
        "What streaming through streamkit costs, client side, next to iterating the provider "
        "SDK yourself and next to the libraries you might use instead. Every stream is "
        "served by streamkit's `ReplayServer` on 127.0.0.1 from a separate process, so no "
        "network time and no server work is counted; every client runs in a process of its "
        "own and its CPU time (all threads) is what is measured. All figures come from "
        "**one run**, and each is set against the raw SDK measured in the same run on the "
        "same stream."
    )
    w("")
    w(f"- Written: {environment['date']}, in {results.seconds / 60:.1f} minutes")
    w(
        f"- Machine: {environment['cpu']}, {environment['cores']} cores, "
        f"{environment['memory']}; {environment['platform']}; Python {environment['python']}"
    )
    loads = ", ".join(f"{load[0]:.1f}" for load in results.load)
    w(
        f"- Load average (1 min) along the run: {loads}. The machine is shared: other jobs "
        "ran at the same time, which is why every figure is a ratio within the run and a "
        "median of several reads (see [Noise](#noise))."
    )
    w(f"- Checkout: {environment['commit'] or 'unknown'}")
    versions = ", ".join(f"{k} {v}" for k, v in environment["versions"].items())
    w(f"- Versions: {versions}")
    command = _portable(command)
    w(
        f"- Command: `{command}`"
        + (" (`--quick`: smaller streams, fewer reads)" if "--quick" in command else "")
    )
    w("")
    w("## Reproduce")
    w("")
    w("```bash")
    w("python3 -m venv .venv-bench && .venv-bench/bin/pip install -r bench/requirements.txt")
    w(".venv-bench/bin/python bench/run.py          # this page, ~12 minutes")
    w(".venv-bench/bin/python bench/run.py --quick  # a smaller run, ~3 minutes")
    w("```")
    w("")
    w(
        "The peers (LangChain, Mirascope, pydantic-ai) are installed in that environment "
        "of their own, never in the test suite's: they bring their own pins. "
        "`bench/requirements.txt` pins the SDK versions this page was taken with."
    )
    w("")

    # -- summary
    w("## Targets")
    w("")
    w("| target | measured | met |")
    w("| --- | --- | --- |")
    for target, measured, met in rep.targets():
        mark = "\u2013" if met is None else ("**yes**" if met else "**no**")
        w(f"| {target} | {measured} | {mark} |")
    w("")
    w(
        "Each peer is set against streamkit's realistic pipeline on the same provider's "
        "stream, read in the same rounds (the async realistic pipeline of that provider "
        "for pydantic-ai, whose streaming is async): `\u00d7` is the median over rounds "
        "of streamkit's CPU over the peer's, **yes** when streamkit is cheaper by more "
        "than the noise floor. The SDK path (`fast=False`) wraps the SDK's own chunk "
        "objects, so it cannot cost much less than a peer that only reads them; the fast "
        "path, which does not build them and is what `sk.stream(...)` takes by default "
        "wherever it can run, is streamkit's answer there and is given in every row. The "
        "realistic pipeline's targets are checked on both: the default rows (no `fast=`) "
        "and the SDK path's."
    )
    w("")

    _cpu_section(rep, w)
    _ttfc_section(rep, w)
    _memory_section(rep, w)
    _flatness_section(rep, w)
    _match_section(rep, w)
    _concurrent_section(rep, w)
    _profile_section(rep, w)
    _noise_section(rep, w)
    return "\n".join(out).rstrip() + "\n"


def _cpu_section(rep: Report, w: Any) -> None:
    plan = rep.plan
    w("## 1. CPU per chunk")
    w("")
    w(
        f"One read = one whole request and stream. **Burst**: the server writes the whole "
        f"response at once ({plan.table_chunks:,} text deltas plus the role, finish and "
        f"usage events), so the figures isolate the per-chunk parsing and dispatch cost. "
        f"**Paced**: {plan.pace * 1e3:.0f} ms between events, so each event arrives in "
        f"its own read, as from a real model ({plan.paced_chunks:,} text deltas). "
        f"CPU per chunk is the read's process CPU (every thread) over its text deltas; "
        f"the median of {plan.rounds} reads, one per round, the rounds going through all "
        "clients in turn. `\u00d7 raw` is the median over rounds of the ratio to the raw SDK "
        "row read in the same round (openai sync for sync openai clients, openai async "
        "for async ones, anthropic for anthropic ones); `range` is the lowest and highest "
        "of those per-round ratios."
    )
    w("")
    for mode in ("burst", "paced"):
        title = "Burst" if mode == "burst" else "Paced"
        w(f"### {title}")
        w("")
        if mode == "burst":
            w("| client | µs CPU / chunk | \u00d7 raw | range | chunks/s |")
            w("| --- | ---: | ---: | --- | ---: |")
        else:
            w("| client | µs CPU / chunk | \u00d7 raw | range |")
            w("| --- | ---: | ---: | --- |")
        chunks = rep.chunks(mode)
        for client in TABLE:
            runs = rep.runs(client.name, mode)
            if runs is None:
                continue
            label = client.label
            if runs.error:
                cells = [f"did not run: {runs.error}", "", ""] + ([""] if mode == "burst" else [])
                w(f"| {label} | " + " | ".join(cells) + " |")
                continue
            value, low, high = rep.ratio(client.name, mode)
            spread = "" if client.baseline is None else f"{low:.2f}\u2013{high:.2f}"
            x = "1 (baseline)" if client.baseline is None else _x(value)
            row = [_us(per_chunk(runs, chunks)), x, spread]
            if mode == "burst":
                row.append(f"{chunks / runs.wall_median:,.0f}")
            w(f"| {label} | " + " | ".join(row) + " |")
        w("")
    w(
        "`share_replay` rows count the CPU of every subscriber's callbacks (each subscriber "
        "here only counts its chunks), so the 10 and 100 rows show what fanning one request "
        "out costs per subscriber."
    )
    w("")


def _ttfc_section(rep: Report, w: Any) -> None:
    plan = rep.plan
    w("## 2. Time to first text")
    w("")
    w(
        f"From the call (building the stream and subscribing or iterating) to the first "
        f"item carrying text, on a burst stream of {plan.ttfc_chunks} deltas; the median of "
        f"{3 * plan.ttfc_reads} reads. `added` is the difference to the raw SDK's median. "
        "For the realistic pipeline that is the first snapshot its `render` receives (what "
        "a UI shows first); `to_call_response` emits its one response at the end of the "
        "stream, after every delta has been read."
    )
    w("")
    w("| client | median ms | added vs raw SDK (ms) |")
    w("| --- | ---: | ---: |")
    medians: dict[str, float] = {}
    for name in TTFC:
        got = rep.r.ttfc.get(name)
        if isinstance(got, list) and got:
            medians[name] = statistics.median(got)
    for name in TTFC:
        got = rep.r.ttfc.get(name)
        label = BY_NAME[name].label
        if not isinstance(got, list) or not got:
            w(f"| {label} | did not run: {got} | |")
            continue
        base = BY_NAME[name].baseline
        added = (
            "baseline"
            if base is None
            else (f"{(medians[name] - medians[base]) * 1e3:+.2f}" if base in medians else "\u2013")
        )
        w(f"| {label} | {_ms(medians[name])} | {added} |")
    w("")


def _memory_section(rep: Report, w: Any) -> None:
    w("## 3. Memory over one very long stream")
    w("")
    flat, reducer = rep.r.memory.get("flat"), rep.r.memory.get("reducer")
    iteration = rep.r.memory.get("iteration")
    chunks = rep.plan.memory_chunks
    w(
        f"Resident memory (RSS, from `/proc/self/statm`) of the client process, sampled "
        f"along one {chunks:,}-chunk burst stream read through the SDK path "
        "(`sk.stream(..., fast=False)`). **flat**: `take_until_match` (never matching) + "
        "`ops.text()`, which "
        "keeps nothing. **reducer**: the realistic pipeline (`accumulate` + "
        "`to_call_response`), whose accumulators keep the text. The two ran at the same "
        "time, each in its own process. Growth is counted from the first sample (after "
        f"1/{rep.plan.memory_samples} of the stream: the allocator's pools are warm by "
        "then) to the end. For comparison, **iteration** (`for chunk, tool in stream`, "
        f"over the {rep.plan.long_chunks:,}-delta stream), which keeps every chunk by "
        "design: a second iteration replays them without a new request."
    )
    w("")
    w(
        "| pipeline | chunks | RSS before | RSS at first sample | RSS at end | growth "
        "| per chunk | peak RSS | text kept |"
    )
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, memory in (("flat", flat), ("reducer", reducer), ("iteration", iteration)):
        if memory is None:
            continue
        if not isinstance(memory, dict):
            w(f"| {name} | did not run: {memory} | | | | | | | |")
            continue
        growth = rep.memory_growth(memory)
        points = memory["points"]
        text = DASH if memory["text_chars"] is None else f"{memory['text_chars']:,} chars"
        first = _mb(points[0][1]) if points else DASH
        w(
            f"| {name} | {memory['chunks']:,} | {_mb(memory['baseline'])} | {first} | "
            f"{_mb(memory['end'])} | {_mb(growth['bytes'])} | {growth['per_chunk']:,.1f} B | "
            f"{_mb(memory['peak'])} | {text} |"
        )
    w("")
    if isinstance(flat, dict) and isinstance(reducer, dict) and reducer["text_chars"]:
        grown = rep.memory_growth(reducer)
        per_char = grown["bytes"] / reducer["text_chars"]
        w(
            f"The reducer grows by {per_char:.1f} bytes per character of text "
            f"({grown['per_chunk']:.0f} bytes per chunk of ~"
            f"{reducer['text_chars'] / reducer['chunks']:.1f} characters): two accumulators "
            "(`accumulate`'s and `to_call_response`'s) each keep a list of the text "
            "pieces, joined only when read: per chunk, the chunk's own text `str` (about 54 "
            "bytes for 5 characters, the same object in both lists) and an 8-byte slot in "
            "each list. That is the text only: no chunk is kept. Reading the stream took "
            f"{flat['cpu']:.0f} s of CPU (flat) and {reducer['cpu']:.0f} s (reducer)."
        )
        w("")
    if isinstance(iteration, dict):
        w(
            f"Iteration keeps {rep.memory_growth(iteration)['per_chunk']:,.0f} bytes per chunk: "
            "each normalized chunk with its SDK object. Use a pipeline (or "
            "`ops.share_replay(buffer_size=...)`) rather than iteration for very long "
            "streams."
        )
        w("")
    for name, memory in (("flat", flat), ("reducer", reducer)):
        if isinstance(memory, dict) and memory["points"]:
            series = ", ".join(
                f"{count // 1000}k: {rss / 2**20:.0f}" for count, rss in memory["points"]
            )
            w(f"- {name}, MiB by chunks read: {series}")
    w("")


def _flatness_section(rep: Report, w: Any) -> None:
    plan = rep.plan
    w("## 4. Cost per chunk as the stream grows")
    w("")
    w(
        f"The same burst stream shape at {plan.table_chunks:,} and at {plan.long_chunks:,} "
        f"text deltas. The short figure is the burst table's; the long one the median of up "
        f"to {plan.long_rounds} reads (one for a client whose read takes longer than "
        f"{plan.long_budget:.0f} s). A pipeline that appends every delta to a growing string "
        "or re-reads what it has seen gets slower per chunk as the stream grows."
    )
    w("")
    w(
        f"| client | µs / chunk at {plan.table_chunks:,} | µs / chunk at {plan.long_chunks:,} "
        "| long ÷ short | reads |"
    )
    w("| --- | ---: | ---: | ---: | ---: |")
    for name in LONG:
        runs = rep.r.long.get(name)
        label = BY_NAME[name].label
        if runs is None or runs.error or not runs.cpu:
            w(f"| {label} | did not run: {None if runs is None else runs.error} | | | |")
            continue
        short = per_chunk(rep.runs(name, "burst"), plan.table_chunks)
        long = per_chunk(runs, plan.long_chunks)
        w(f"| {label} | {_us(short)} | {_us(long)} | {_x(long / short)} | {len(runs.cpu)} |")
    w("")


def _match_section(rep: Report, w: Any) -> None:
    plan = rep.plan
    w("## 5. Early termination")
    w("")
    w(
        f"A paced stream ({plan.match_pace * 1e3:.0f} ms between events, {plan.match_chunks} "
        f"deltas) whose delta {plan.match_at} carries the word the client waits for. The "
        "figure is what the server recorded: how many events it wrote to the socket after "
        "the one carrying the match, before it saw the client gone. "
        f"{plan.match_reads} reads each."
    )
    w("")
    w(
        "| case | events sent after the match (each read) | items received "
        "| connection closed by client |"
    )
    w("| --- | --- | --- | --- |")
    for name, label in MATCH_CLIENTS:
        records = rep.r.match.get(name)
        if not isinstance(records, list):
            w(f"| {label} | did not run: {records} | | |")
            continue
        after = ", ".join(str(rep.events_after(r)) for r in records)
        items = ", ".join(sorted({str(r["items"]) for r in records}))
        closed = (
            "yes"
            if all(r["disconnected"] for r in records)
            else (f"{sum(bool(r['disconnected']) for r in records)}/{len(records)}")
        )
        w(f"| {label} | {after} | {items} | {closed} |")
    w("")


def _concurrent_section(rep: Report, w: Any) -> None:
    plan = rep.plan
    w(f"## 6. {plan.concurrent_streams:,} concurrent async streams on one event loop")
    w("")
    w(
        f"{plan.concurrent_streams:,} streams of {plan.concurrent_chunks} deltas, "
        f"{plan.concurrent_pace * 1e3:.0f} ms between events, started over "
        f"{plan.concurrent_stagger:.0f} s (requests arriving as at a busy service, not in "
        "lockstep), all on one asyncio loop with one `AsyncOpenAI` client (its pool allows "
        "1,000 connections). CPU per chunk is the process CPU of the whole run, requests "
        "included (the openai SDK spends ~3 ms of CPU per request here), over every delta "
        "of every stream. Loop lag: how late a 10 ms `asyncio.sleep` woke, sampled all "
        "along; the worst lags are during the burst of request starts."
    )
    w("")
    w(
        "| client | streams completed | µs CPU / chunk | \u00d7 raw async | lag p50 ms "
        "| lag p99 ms | lag max ms | longest full GC ms | wall s |"
    )
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    raw = rep.r.concurrent.get("openai-async")
    raw_cpu = (
        raw["cpu"] / (raw["streams"] * raw["chunks"]) if isinstance(raw, dict) else float("nan")
    )
    for client, result in rep.r.concurrent.items():
        if not isinstance(result, dict):
            w(f"| {client} | did not run: {result} | | | | | | | |")
            continue
        cpu = result["cpu"] / (result["streams"] * result["chunks"])
        errors = f" ({'; '.join(result['errors'])})" if result["errors"] else ""
        pauses = result["full_gc"]
        longest = f"{_ms(max(pauses))} ({len(pauses)} passes)" if pauses else "none"
        w(
            f"| {client} | {result['ok']:,}{errors} | {_us(cpu)} | {_x(cpu / raw_cpu)} | "
            f"{_ms(result['lag_p50'])} | {_ms(result['lag_p99'])} | {_ms(result['lag_max'])} | "
            f"{longest} | {result['wall']:.1f} |"
        )
    w("")
    w(
        "A full (generation 2) collection of the garbage collector stops the loop for as "
        "long as it takes, which grows with every live object of the process; with this "
        "many streams in flight, those pauses and the burst of request starts make the "
        "worst lags, not the per-chunk work."
    )
    w("")


def _profile_section(rep: Report, w: Any) -> None:
    plan = rep.plan
    w("## Where the time goes")
    w("")
    sdk = rep.r.profiles.get("sdk")
    fast = rep.r.profiles.get("fast")
    if not isinstance(sdk, dict):
        w(f"The profile did not run: {sdk}")
        w("")
        return
    w(
        f"{sdk['tool']} over one read of a {plan.profile_chunks:,}-delta burst stream "
        "through the realistic pipeline, the whole pipeline on one thread "
        "(`subscribe(scheduler=ImmediateScheduler())`), self time grouped by package:"
    )
    w("")
    w("| package | SDK path | share | fast path | share |")
    w("| --- | ---: | ---: | ---: | ---: |")
    fast_groups = dict(fast["groups"]) if isinstance(fast, dict) else {}
    names = [name for name, _ in sdk["groups"]]
    names += [name for name in fast_groups if name not in names]
    sdk_groups = dict(sdk["groups"])
    for name in names:
        a = sdk_groups.get(name, 0.0)
        b = fast_groups.get(name, 0.0)
        fast_cells = (
            f"{b * 1e6 / plan.profile_chunks:.1f} µs | {100 * b / fast['total']:.0f} %"
            if isinstance(fast, dict)
            else "\u2013 | \u2013"
        )
        w(
            f"| {name} | {a * 1e6 / plan.profile_chunks:.1f} µs | {100 * a / sdk['total']:.0f} % | "
            f"{fast_cells} |"
        )
    w("")
    w("(µs per chunk under the profiler, which slows everything by a similar factor.)")
    w("")
    for key, profile in (("SDK path", sdk), ("fast path", fast)):
        if not isinstance(profile, dict):
            continue
        w(f"Top functions by self time, {key}:")
        w("")
        w("| function | where | share |")
        w("| --- | --- | ---: |")
        for name, where, own in profile["functions"][:10]:
            w(f"| `{name}` | `{where}` | {100 * own / profile['total']:.1f} % |")
        w("")
    w("### Findings")
    w("")
    for finding in findings(rep, sdk, fast):
        w(f"- {finding}")
    w("")


def findings(rep: Report, sdk: dict[str, Any], fast: Any) -> list[str]:
    """The profile's lessons, with this run's numbers."""

    def shares(profile: dict[str, Any]) -> dict[str, float]:
        groups = dict(profile["groups"])
        total = profile["total"] or 1.0
        return {name: 100 * value / total for name, value in groups.items()}

    def part(values: dict[str, float], *names: str) -> float:
        return sum(values.get(name, 0.0) for name in names)

    http = ("HTTP (httpx2/httpx, httpcore, h11)", "socket, ssl, selectors (stdlib)")
    on_sdk = shares(sdk)
    sdk_share = part(on_sdk, "openai SDK", "pydantic", "typing / inspect (stdlib)")
    items = [
        f"On the SDK path, {sdk_share:.0f} % of the time is the openai SDK building its "
        "pydantic chunk objects "
        "(`openai._models.construct_type` and `construct`, which walk the type annotations "
        "of every field of every nested object with `typing.get_origin`, "
        "`inspect.getattr_static` and pydantic's field defaults) and reading its events "
        f"(`json`: {part(on_sdk, 'json (stdlib)'):.0f} %); the HTTP stack takes "
        f"{part(on_sdk, *http):.0f} %, streamkit's own code {part(on_sdk, 'streamkit'):.0f} % "
        f"and reactivex's plumbing {part(on_sdk, 'reactivex'):.0f} %. (Time spent in a "
        "built-in is counted to the package of the Python code that called it.)",
        "streamkit's own share is a few µs a chunk: the SDK path cannot get much cheaper "
        "than the SDK it wraps. The fast path (the default where it runs) removes the SDK's "
        "share: it "
        "reads the SDK's own HTTP response, splits the SSE bytes itself, decodes each "
        "event with orjson and builds the SDK's chunk object only if `chunk.chunk` is read.",
    ]
    speed = rep.fast_speedup("burst")
    pipeline_speed = rep.fast_speedup("burst", "sk-fast-pipeline")
    if not math.isnan(speed):
        items.append(
            f"Measured in the burst table: the fast source alone is {speed:.1f}{X} faster "
            f"than iterating the raw openai SDK, the whole fast realistic pipeline "
            f"{pipeline_speed:.1f}{X}."
        )
    if isinstance(fast, dict):
        on_fast = shares(fast)
        parts = {
            "streamkit's own per-chunk work (building the normalized `Chunk`, the two "
            "folds of `accumulate` and `to_call_response`, the snapshot, "
            "`take_until_match`'s window search)": part(on_fast, "streamkit"),
            "the HTTP stack's reading": part(on_fast, *http),
            "reactivex's plumbing": part(on_fast, "reactivex"),
        }
        largest = max(parts, key=lambda name: parts[name])
        items.append(
            f"On the fast path, streamkit's code is {part(on_fast, 'streamkit'):.0f} % of what "
            f"is left (orjson's decoding included), the HTTP stack {part(on_fast, *http):.0f} "
            f"%, reactivex {part(on_fast, 'reactivex'):.0f} % and pydantic "
            f"{part(on_fast, 'pydantic'):.0f} %: the largest part left is {largest}."
        )
    per_chunk_extra = per_chunk(
        rep.runs("sk-pipeline", "burst"), rep.plan.table_chunks
    ) - per_chunk(rep.runs("sk-source", "burst"), rep.plan.table_chunks)
    if not math.isnan(per_chunk_extra):
        items.append(
            f"What the realistic pipeline adds to the source (burst): {per_chunk_extra * 1e6:.1f} "
            "µs a chunk: the accumulator's fold and a snapshot per chunk, the match "
            "window, and reactivex's plumbing (every `pipe` stage wraps its observer in "
            "an `AutoDetachObserver`, five of them in this pipeline). The stream is folded "
            "once: `to_call_response` after `accumulate` takes the last snapshot's "
            "response (an earlier form of this pipeline fanned the chunks out with "
            "`publish` to `accumulate` and `to_call_response` and folded them twice, which "
            "cost about twice as much on top of the source)."
        )
    anthropic_raw = per_chunk(rep.runs("anthropic-sync", "burst"), rep.plan.table_chunks)
    if not math.isnan(anthropic_raw):
        items.append(
            f"The anthropic SDK costs {anthropic_raw * 1e6:.0f} µs a chunk here, a quarter of "
            "openai's (its events are plain, small objects), so the same few µs of "
            "streamkit weigh more in its ratios: source alone "
            f"{_x(rep.ratio('sk-anthropic-source', 'burst')[0])}, realistic pipeline "
            f"{_x(rep.ratio('sk-anthropic-pipeline', 'burst')[0])} (burst)."
        )
    raw_gc = rep.r.concurrent.get("openai-async")
    for client in ("sk-async-pipeline", "sk-async-source"):
        result = rep.r.concurrent.get(client)
        if isinstance(result, dict) and isinstance(raw_gc, dict) and result["full_gc"]:
            raw_pauses = raw_gc["full_gc"]
            raw_text = (
                f"{len(raw_pauses)} with the raw SDK (longest {_ms(max(raw_pauses))} ms)"
                if raw_pauses
                else "none with the raw SDK"
            )
            items.append(
                f"With {rep.plan.concurrent_streams:,} streams in flight, `{client}` "
                f"triggered {len(result['full_gc'])} full garbage collection(s) during the "
                f"run, the longest {_ms(max(result['full_gc']))} ms ({raw_text}): each stream "
                "holds more live objects for its whole life (reactivex observers and "
                "disposables, the accumulators, the snapshot of the moment: about 490 "
                "objects tracked by the collector per stream in flight with the realistic "
                "pipeline, 220 with the source alone, 180 with the raw SDK, counted with "
                "`gc.get_objects()` over 100 streams when this page was written), which "
                "brings the next full collection sooner and makes it longer. A service "
                "running many streams may want `gc.freeze()` after start-up or a higher "
                "`gc.set_threshold`."
            )
            break
    construct = sdk.get("construct") or {}
    if "construct_chunk" in construct:
        items.append(
            "Acted on: the decoders built every normalized `Chunk` with pydantic's "
            f"`model_construct`, {construct['model_construct'] * 1e6:.1f} µs a chunk (it "
            "loops over every field looking for aliases and defaults). They now call "
            "`streamkit._models.construct_chunk`, which builds the same instance (the same "
            "`__dict__` in the same order, fields set, extra and private state) directly "
            "when every field with a default is given, and falls back to `model_construct` "
            f"otherwise: {construct['construct_chunk'] * 1e6:.1f} µs. For the fast path's "
            "lazy chunk, whose private attribute pydantic initializes in a post-init "
            "(~1.8 µs), it sets the same empty private state directly."
        )
        items.append(
            "Also acted on: `ResponseSnapshot` (one per chunk from `accumulate`) read the "
            "five piece counts through `_Pieces.__len__` and ran a list comprehension over "
            "the (usually empty) tool calls; it now reads the lists' lengths directly and "
            "skips the comprehension without tools: 0.64 → 0.30 µs a snapshot (timeit, when "
            "the change was made)."
        )
    return items


def _noise_section(rep: Report, w: Any) -> None:
    w("## Noise")
    w("")
    control = rep.ratio("openai-sync-control", "burst", "openai-sync")
    control_paced = rep.ratio("openai-sync-control", "paced", "openai-sync")
    w(
        "The machine has 2 cores and is shared: other jobs ran during this run (see the load "
        "averages above), and the replay server's process needs CPU too. The `openai-sync "
        f"control` row reads the same stream with the same code as the raw openai row: its "
        f"ratio, {_x(control[0])} burst (rounds {control[1]:.2f}\u2013{control[2]:.2f}) and "
        f"{_x(control_paced[0])} paced "
        f"(rounds {control_paced[1]:.2f}{DASH}{control_paced[2]:.2f}), "
        "is the noise floor of every ratio on this page: differences within it mean nothing."
    )
    w("")


def summary(results: Any) -> str:
    """A few lines for the console."""
    rep = Report(results)
    lines = ["targets:"]
    for target, measured, met in rep.targets():
        mark = "?" if met is None else ("MET" if met else "NOT MET")
        lines.append(f"  [{mark}] {target}: {measured}")
    return "\n".join(lines)


# -- one scenario alone (bench/run.py --scenario) -------------------------------------------
def _cpu_rows(rep: Report, names: list[str], mode: str, w: Any) -> None:
    chunks = rep.chunks(mode)
    burst = mode == "burst"
    w("| client | µs CPU / chunk | \u00d7 raw | range |" + (" chunks/s |" if burst else ""))
    w("| --- | ---: | ---: | --- |" + (" ---: |" if burst else ""))
    for name in names:
        client = BY_NAME[name]
        runs = rep.runs(name, mode)
        if runs is None:
            continue
        if runs.error:
            cells = [f"did not run: {runs.error}", "", ""] + ([""] if burst else [])
            w(f"| {client.label} | " + " | ".join(cells) + " |")
            continue
        value, low, high = rep.ratio(name, mode)
        spread = "" if client.baseline is None else f"{low:.2f}\u2013{high:.2f}"
        x = "1 (baseline)" if client.baseline is None else _x(value)
        row = [_us(per_chunk(runs, chunks)), x, spread]
        if burst:
            row.append(f"{chunks / runs.wall_median:,.0f}")
        w(f"| {client.label} | " + " | ".join(row) + " |")
    w("")


def render_scenario(
    results: Any,
    scenario: Scenario,
    names: list[str],
    *,
    command: str,
    environment: dict[str, Any],
) -> str:
    """The page section of one scenario run alone (``bench/run.py --scenario``)."""
    rep = Report(results)
    out: list[str] = []
    w = out.append
    plan = rep.plan
    w(f"## {scenario.title}")
    w("")
    w(
        f"<!-- Written by `bench/run.py --scenario {scenario.name}` (a full run keeps this "
        "section): run it again. -->"
    )
    w("")
    if scenario.intro:
        w(scenario.intro)
        w("")
    w(
        f"Measured in one run of this scenario alone, as section 1 measures: "
        f"{plan.table_chunks:,} text deltas per burst read (the server writes the whole "
        f"response at once), the median of {plan.rounds} reads per client, one per round, "
        "the rounds going through every client in turn; `\u00d7 raw` is the median over "
        "rounds of the ratio to the raw SDK row read in the same round (the same SDK, sync "
        "or async as the row), `range` the lowest and highest of those ratios."
    )
    w("")
    loads = ", ".join(f"{load[0]:.1f}" for load in results.load)
    w(f"- Written: {environment['date']}, in {results.seconds / 60:.1f} minutes")
    w(
        f"- Machine: {environment['cpu']}, {environment['cores']} cores, "
        f"{environment['memory']}; {environment['platform']}; Python {environment['python']}"
    )
    w(f"- Load average (1 min) along the run: {loads} (a shared machine: see [Noise](#noise))")
    w(f"- Checkout: {environment['commit'] or 'unknown'}")
    versions = ", ".join(f"{k} {v}" for k, v in environment["versions"].items())
    w(f"- Versions: {versions}")
    w(f"- Command: `{_portable(command)}`")
    w("")
    for mode in scenario.modes:
        w(f"### {'Burst' if mode == 'burst' else 'Paced'}")
        w("")
        _cpu_rows(rep, names, mode, w)
    for provider in ("anthropic", "groq", "mistral"):
        floor = rep.ratio(f"{provider}-bytes", scenario.modes[0])[0]
        if f"{provider}-bytes" in names and not math.isnan(floor):
            w(
                f"- {provider}: reading the response's bytes alone costs {_x(floor)} the raw "
                f"SDK's CPU per chunk, so no reader of it can be more than "
                f"{1 / floor:.1f}{X} faster than the raw SDK here."
            )
    w("")
    targets = rep.fast_provider_targets(scenario.modes[0])
    if targets:
        w("| target | measured | met |")
        w("| --- | --- | --- |")
        for target, measured, met in targets:
            mark = "\u2013" if met is None else ("**yes**" if met else "**not met**")
            w(f"| {target} | {measured} | {mark} |")
        w("")
    return "\n".join(out)


def scenario_summary(results: Any, scenario: Scenario, names: list[str]) -> str:
    """A few lines for the console: each row's ratio to its raw SDK row."""
    rep = Report(results)
    lines = [f"scenario {scenario.name}:"]
    for mode in scenario.modes:
        for name in names:
            runs = rep.runs(name, mode)
            if runs is None:
                continue
            if runs.error:
                lines.append(f"  {mode} {name}: did not run: {runs.error}")
                continue
            value, low, high = rep.ratio(name, mode)
            cost = _us(per_chunk(runs, rep.chunks(mode)))
            lines.append(
                f"  {mode} {name}: {cost} µs/chunk, {_x(value)} raw ({low:.2f}-{high:.2f})"
            )
    for target, measured, met in rep.fast_provider_targets(scenario.modes[0]):
        mark = "?" if met is None else ("MET" if met else "NOT MET")
        lines.append(f"  [{mark}] {target}: {measured}")
    return "\n".join(lines)
