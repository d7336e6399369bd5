"""What telemetry costs: the realistic pipeline with telemetry off, on, and in streamkit
before telemetry existed, in one run. Writes its section of ``docs/performance.md``.

Run from the repository root (any environment with streamkit's ``[dev]`` extra)::

    python bench/bench_otel.py                        # ~5 minutes
    python bench/bench_otel.py --quick                # ~2 minutes
    python bench/bench_otel.py --baseline REF         # "before" = that git ref (default: main)
    python bench/bench_otel.py --seam issue-14        # also the lifecycle seam alone

Clients, each in a child process of its own, read the same stream (generated OpenAI
chat deltas from a ReplayServer in another process, so no server work is counted; once
in one burst, once paced 1 ms apart) through the realistic pipeline of ``bench/run.py``
(``take_until_match`` never matching + ``accumulate`` + ``do_action`` +
``to_call_response``):

- **before**: streamkit as of ``--baseline`` (exported with ``git archive`` into a
  temporary directory, so it is the code before this work, not a switch in today's);
- **seam** (with ``--seam``): the lifecycle record telemetry is built on, alone;
- **off**: today's streamkit, not instrumented (the default);
- **on**: today's streamkit with ``sk.telemetry.instrument()`` (its defaults) on the
  OpenTelemetry SDK: a ``TracerProvider`` with a ``BatchSpanProcessor`` (to an exporter that drops
  the batches: no I/O measured) and a ``MeterProvider`` with a reader, so the spans,
  events and every histogram record are really processed and aggregated;
- **on-chunk-timing**: the same with ``chunk_timing=True`` (the per-chunk histogram).

The pipeline reads the stream on the SDK path (``fast=False``), as these figures have
always been measured; with ``BENCH_OTEL_DEFAULT_PATH=1`` in the environment it reads it
as ``sk.stream`` is called (the fast path): then compare *on* with *off*, not with
*before*, whose default was the SDK path.

Each round asks every client for one read, in turn (the order reversed every other
round); a client's figure is the median CPU time (every thread of its process) per
chunk, and each ratio is the median over rounds of the ratio within the round, so load
drifting on the shared machine lands on all of them alike.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

SECTION = "telemetry"
X = "\u00d7"  # the multiplication sign (spelled out: ruff flags it as ambiguous)
DASH = "\u2013"
LE = "\u2264"
MODES = ("before", "seam", "off", "on", "on-chunk-timing")
LABELS = {
    "before": "before",
    "seam": "the lifecycle seam alone (usage and cost, no telemetry)",
    "off": "telemetry off (the default)",
    "on": "telemetry on (`instrument()`)",
    "on-chunk-timing": "telemetry on, `chunk_timing=True`",
}


# -- the child -----------------------------------------------------------------------------
def _sdk_providers() -> tuple[Any, Any]:
    """The OpenTelemetry SDK as the runs use it: a ``TracerProvider`` with a batch span
    processor to an exporter that drops the batches (no I/O measured) and a
    ``MeterProvider`` with a reader, so every span and record is really processed."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Drop()))
    return tracer_provider, MeterProvider(metric_readers=[InMemoryMetricReader()])


def _instrument(*, chunk_timing: bool) -> None:
    import streamkit as sk

    tracer_provider, meter_provider = _sdk_providers()
    # without chunk timing: instrument()'s defaults, as users turn it on
    flags = {"chunk_timing": True} if chunk_timing else {}
    sk.telemetry.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider, **flags)


def child(mode: str, url: str) -> None:
    """Serve reads: each stdin line ``n`` -> a JSON line of n (cpu seconds, chunks)."""
    import _clients

    import streamkit

    if mode.startswith("on"):
        _instrument(chunk_timing=mode == "on-chunk-timing")
    # BENCH_OTEL_DEFAULT_PATH=1: sk.stream as called (the fast path); else the SDK path,
    # as the page's figures have always been measured
    run = _clients.make_sk_pipeline(url, as_default=bool(os.environ.get("BENCH_OTEL_DEFAULT_PATH")))
    run()  # warm-up: imports, first connection
    print(json.dumps({"ready": streamkit.__file__}), flush=True)
    for line in sys.stdin:
        reads = []
        for _ in range(int(line)):
            started = time.process_time()
            run()
            reads.append(time.process_time() - started)
        print(json.dumps({"cpu": reads}), flush=True)


# -- the parent ----------------------------------------------------------------------------
class Client:
    """One child process reading the stream with one configuration."""

    def __init__(self, mode: str, url: str, tree: Path) -> None:
        env = dict(os.environ, PYTHONPATH=f"{tree}{os.pathsep}{tree / 'bench'}")
        self.mode = mode
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "bench_otel.py"), "--child", mode, url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tree,
        )
        self.module = json.loads(self._line())["ready"]

    def _line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.mode} client died")
        return line

    def reads(self, count: int) -> list[float]:
        """``count`` reads' CPU seconds."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{count}\n")
        self.process.stdin.flush()
        cpu: list[float] = json.loads(self._line())["cpu"]
        return cpu

    def close(self) -> None:
        """End the child."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(30)


def export_tree(ref: str, into: Path) -> str:
    """Write ``ref``'s ``streamkit/`` and ``bench/`` into ``into``; return its commit."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", ref],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "streamkit", "bench"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return commit


RATIOS = {
    # name: (mode, the mode it is set against)
    "off": ("off", "before"),
    "on": ("on", "before"),
    "on-chunk-timing": ("on-chunk-timing", "before"),
    "seam": ("seam", "before"),
    "off/seam": ("off", "seam"),
    "on/off": ("on", "off"),
    "on-chunk-timing/off": ("on-chunk-timing", "off"),
}


def measure(args: argparse.Namespace, stream: str, pace: float) -> dict[str, Any]:
    """Run the clients round after round on one stream; the figures of the run."""
    from _server import ServerPool

    chunks = int(stream.split(":")[1])
    # One read per client a round, so the reads a ratio sets side by side are a second
    # or two apart and a burst of the machine's other load lands on few of them; a
    # paced read wakes the process for every chunk and swings more: twice the rounds.
    rounds = (9 if args.quick else 27) * (2 if pace else 1)
    per_round = 1
    modes = [m for m in MODES if m != "seam" or args.seam]
    results: dict[str, Any] = {"chunks": chunks, "rounds": rounds}
    with tempfile.TemporaryDirectory() as tmp, ServerPool() as pool:
        trees = {"before": Path(tmp) / "before", "seam": Path(tmp) / "seam"}
        trees["before"].mkdir()
        results["baseline"] = export_tree(args.baseline, trees["before"])
        if args.seam:
            trees["seam"].mkdir()
            results["seam"] = export_tree(args.seam, trees["seam"])
        url = pool.start([("stream", stream, pace)])["stream"]
        clients = {mode: Client(mode, url, trees.get(mode, ROOT)) for mode in modes}
        results["modules"] = {mode: client.module for mode, client in clients.items()}
        cpu: dict[str, list[float]] = {mode: [] for mode in modes}
        ratios: dict[str, list[float]] = {
            name: [] for name, (a, b) in RATIOS.items() if a in modes and b in modes
        }
        loads = [os.getloadavg()[0]]
        try:
            for number in range(rounds):
                medians = {}
                order = modes if number % 2 == 0 else list(reversed(modes))
                for mode in order:
                    reads = clients[mode].reads(per_round)
                    cpu[mode].extend(reads)
                    medians[mode] = statistics.median(reads)
                for name in ratios:
                    mode, against = RATIOS[name]
                    ratios[name].append(medians[mode] / medians[against])
                loads.append(os.getloadavg()[0])
                print(
                    f"{stream} pace {pace}: round {number + 1}/{rounds}: "
                    + ", ".join(f"{m} {medians[m] / chunks * 1e6:.1f} µs" for m in modes),
                    file=sys.stderr,
                )
        finally:
            for client in clients.values():
                client.close()
    results["us_per_chunk"] = {
        mode: statistics.median(values) / chunks * 1e6 for mode, values in cpu.items()
    }
    results["ratios"] = {
        name: {"median": statistics.median(values), "low": min(values), "high": max(values)}
        for name, values in ratios.items()
    }
    results["load"] = loads
    return results


def _table(results: dict[str, Any]) -> list[str]:
    x, dash = X, DASH
    us, ratios = results["us_per_chunk"], results["ratios"]
    lines = [f"| client | µs CPU / chunk | {x} before | range |", "| --- | ---: | ---: | --- |"]
    for mode in MODES:
        if mode not in us:
            continue
        label = LABELS[mode]
        if mode == "before":
            label += f" (`{results['baseline']}`)"
        elif mode == "seam":
            label += f" (`{results['seam']}`)"
        if mode == "before":
            lines.append(f"| {label} | {us[mode]:.1f} | 1 (baseline) | |")
            continue
        r = ratios[mode]
        lines.append(
            f"| {label} | {us[mode]:.1f} | {r['median']:.3f}{x} | "
            f"{r['low']:.3f}{dash}{r['high']:.3f} |"
        )
    return lines


def sdk_record_us() -> float:
    """Microseconds of one OpenTelemetry SDK histogram record with the per-chunk
    histogram's three attributes (measured here, in the parent, apart from the runs)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    histogram = provider.get_meter("bench").create_histogram("h", unit="s")
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
    }
    count = 50_000
    started = time.process_time()
    for _ in range(count):
        histogram.record(0.01, attributes)
    elapsed = time.process_time() - started
    provider.shutdown()
    return elapsed / count * 1e6


def own_chunk_us() -> float:
    """Microseconds per chunk of streamkit's own per-chunk telemetry work: the recorder
    calling the chunk observer, its lookup of the request and the clock read, with the
    SDK's record replaced by a no-op (a recorder with chunk timing, less one without;
    measured here, in the parent, apart from the runs)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider

    from streamkit._lifecycle import Recorder
    from streamkit._models import Chunk
    from streamkit.telemetry import _otel

    class NoRecord:
        def record(self, amount: float, attributes: Any = None, context: Any = None) -> None:
            pass

    tracer = TracerProvider().get_tracer("bench")
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    chunk = Chunk(provider="openai", content="x")
    count = 50_000

    def per_chunk(chunk_timing: bool) -> float:
        instruments = _otel.Instruments(meter_provider.get_meter("bench"))
        instruments.time_per_output_chunk = NoRecord()  # type: ignore[assignment]
        observer = _otel.observer(
            tracer, instruments, capture_content=False, chunk_timing=chunk_timing
        )
        recorder = Recorder("openai", "gpt-4o", observers=(observer,))
        recorder.begin()
        record = recorder.chunk
        best = float("inf")
        for _ in range(5):
            started = time.process_time()
            for _ in range(count):
                record(chunk)
            best = min(best, time.process_time() - started)
        recorder.complete()
        return best / count * 1e6

    off = [per_chunk(False) for _ in range(3)]
    on = [per_chunk(True) for _ in range(3)]
    meter_provider.shutdown()
    return max(0.0, min(on) - min(off))


def request_us() -> float:
    """Microseconds per request that ``instrument()``'s defaults add (the span, its two
    events, the duration, token and first-chunk records; the SDK with a batch span
    processor to an exporter that drops the batches, as in the runs): a request of one
    chunk with the observer, less one without (measured here, in the parent, in a
    loop). Spread over a stream's chunks, it is all that *on* adds per chunk."""
    from streamkit._lifecycle import LifecycleObserver, Recorder
    from streamkit._models import Chunk, Usage
    from streamkit.telemetry import _otel

    tracer_provider, meter_provider = _sdk_providers()
    observer = _otel.observer(
        tracer_provider.get_tracer("bench"),
        _otel.Instruments(meter_provider.get_meter("bench")),
        capture_content=False,
        chunk_timing=False,
    )
    chunk = Chunk(provider="openai", content="x", usage=Usage(input_tokens=5, output_tokens=7))
    count = 2_000

    def per_request(observers: tuple[LifecycleObserver, ...]) -> float:
        best = float("inf")
        for _ in range(5):
            started = time.process_time()
            for _ in range(count):
                recorder = Recorder("openai", "gpt-4o", observers=observers)
                recorder.begin()
                recorder.chunk(chunk)
                recorder.complete()
            best = min(best, time.process_time() - started)
        return best / count * 1e6

    off = [per_request(()) for _ in range(3)]
    on = [per_request((observer,)) for _ in range(3)]
    tracer_provider.shutdown()
    meter_provider.shutdown()
    return max(0.0, min(on) - min(off))


def _load_summary(loads: list[float]) -> str:
    return (
        f"{min(loads):.1f}{DASH}{max(loads):.1f}, median {statistics.median(loads):.1f} "
        f"({len(loads)} readings; the host's other tenants are not in it: see [Noise](#noise))"
    )


def render(runs: dict[str, dict[str, Any]], command: str) -> str:
    """The section of ``docs/performance.md``: one table per stream, then the targets."""
    x = X
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    burst, paced = runs["burst"], runs["paced"]

    def met(value: float, goal: float) -> str:
        return "**yes**" if value <= goal else "**no**"

    def ratio(run: dict[str, Any], name: str) -> str:
        r = run["ratios"][name]
        return f"{r['median']:.3f}{x}"

    out = [
        "## 8. Telemetry",
        "",
        "<!-- Generated by bench/bench_otel.py: do not edit by hand, run it again. -->",
        "",
        "What OpenTelemetry instrumentation (`sk.telemetry.instrument()`) costs, from "
        "`bench/bench_otel.py`, in one run: the realistic pipeline of section 1 read by "
        "clients in processes of their own: streamkit **before** (exported with "
        "`git archive`, so it is the old code, not a switch in today's), the lifecycle "
        "**seam** alone when given (the usage and cost record telemetry is built on, without "
        "telemetry), today's streamkit with telemetry **off** (the default) and **on** "
        "(the OpenTelemetry SDK with a batch span processor and a metric reader: every span, "
        "event and histogram record is really processed), with and without the per-chunk "
        "histogram. Median CPU per chunk (every thread of the process) over "
        f"{burst['rounds']} rounds (burst) and {paced['rounds']} (paced), each one read "
        "per client in turn; each ratio is the median of the per-round ratios (range: "
        "lowest to highest round).",
        "",
        f"### Burst ({burst['chunks']:,} chunks written at once)",
        "",
        *_table(burst),
        "",
        f"### Paced ({paced['chunks']:,} chunks, 1 ms apart, as from a real model)",
        "",
        *_table(paced),
        "",
        "### Targets",
        "",
        "| target | burst | paced | met (burst / paced) |",
        "| --- | ---: | ---: | --- |",
    ]
    for name, goal, title in (
        ("off", 1.01, f"telemetry off {LE} 1.01{x} before"),
        ("on", 1.05, f"telemetry on {LE} 1.05{x} before"),
        ("on-chunk-timing", 1.05, f"on, `chunk_timing=True`, {LE} 1.05{x} before"),
    ):
        out.append(
            f"| {title} | {ratio(burst, name)} | {ratio(paced, name)} | "
            f"{met(burst['ratios'][name]['median'], goal)} / "
            f"{met(paced['ratios'][name]['median'], goal)} |"
        )
    if "off/seam" in burst["ratios"]:
        out.append(
            f"| telemetry off {LE} 1.01{x} the seam alone (what telemetry itself adds when "
            f"off) | {ratio(burst, 'off/seam')} | {ratio(paced, 'off/seam')} | "
            f"{met(burst['ratios']['off/seam']['median'], 1.01)} / "
            f"{met(paced['ratios']['off/seam']['median'], 1.01)} |"
        )

    us = burst["us_per_chunk"]
    gap = us["on-chunk-timing"] - us["on"]

    def verdict(run: dict[str, Any], name: str, goal: float) -> str:
        value = run["ratios"][name]["median"]
        return f"{value:.3f}{x} (**{'met' if value <= goal else 'not met'}**)"

    out += [
        "",
        f"Telemetry **on** against its goal ({LE} 1.05{x} before): "
        f"{verdict(burst, 'on', 1.05)} in a burst, {verdict(paced, 'on', 1.05)} paced. "
        f"Off against its goal ({LE} 1.01{x}): {verdict(burst, 'off', 1.01)} in a burst, "
        f"{verdict(paced, 'off', 1.01)} paced. Against *off* in the same rounds (what "
        f"telemetry itself adds): *on* {ratio(burst, 'on/off')} in a burst and "
        f"{ratio(paced, 'on/off')} paced; with `chunk_timing=True` "
        f"{ratio(burst, 'on-chunk-timing/off')} and {ratio(paced, 'on-chunk-timing/off')}.",
        "",
        "Off, telemetry adds per request one observer call at the start, at the first chunk "
        "and at the end (the DEBUG request log, which returns at once unless DEBUG is "
        "enabled) and nothing per chunk; what off costs over *before* beyond that is the "
        "seam's own per-chunk bookkeeping (usage and cost on every exit path). On, as "
        "`instrument()` does by default, per request: one span with two events and four "
        "histogram records, and nothing per chunk: measured apart from the pipeline, in a "
        f"loop, {runs['request_us']:.0f} µs a request, "
        f"{runs['request_us'] / burst['chunks']:.2f} µs a chunk of the burst and "
        f"{runs['request_us'] / paced['chunks']:.2f} µs a chunk of the paced stream, so "
        "what *on* measures over *off* beyond that is this machine's noise. "
        "With `chunk_timing=True` (opt-in), per "
        "chunk also: one `gen_ai.client.operation.time_per_output_chunk` record (the "
        "times held per request and recorded together, with attributes built once per "
        "request). In the burst it costs "
        f"{gap:.1f} µs a chunk more than *on*. Of that, "
        f"streamkit's own per-chunk work is {runs['own_us']:.1f} µs (the recorder's call "
        "to the observer, its lookup of the request, the clock read, the append) and one "
        f"record costs {runs['record_us']:.1f} µs in the OpenTelemetry SDK alone, both "
        "measured in the same run apart from the pipeline, in a loop; "
        + (
            "the rest is that same record inside the pipeline, where it runs colder and "
            "slows the code around it (see "
            if gap > runs["own_us"] + runs["record_us"]
            else "in the pipeline it cost no more than those, within this run's noise (see "
        )
        + "[Telemetry](telemetry.md#what-telemetry-costs-per-chunk)). The noise floor of "
        "such ratios on this shared machine is a few per cent (see [Noise](#noise)).",
        "",
        f"- Written: {when}; {platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.platform()}; Python {platform.python_version()}",
        "- Load average (1 min) along the runs, after each round: "
        + _load_summary(burst["load"] + paced["load"]),
        f"- Command: `{command}`",
    ]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its section of the page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run")
    parser.add_argument("--baseline", default="main", help="the git ref of 'before'")
    parser.add_argument(
        "--seam", default=None, help="the git ref of the lifecycle seam alone (optional)"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "performance.md", help="the page"
    )
    parser.add_argument("--child", nargs=2, metavar=("MODE", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    import _sections

    burst_chunks, paced_chunks = (500, 200) if args.quick else (2000, 400)
    runs = {
        "burst": measure(args, f"openai:{burst_chunks}", 0.0),
        "paced": measure(args, f"openai:{paced_chunks}", 0.001),
    }
    runs["record_us"] = sdk_record_us()  # type: ignore[assignment]
    runs["own_us"] = own_chunk_us()  # type: ignore[assignment]
    runs["request_us"] = request_us()  # type: ignore[assignment]
    modules = runs["burst"]["modules"]
    assert modules["before"] != modules["off"], f"the baseline is today's code: {modules}"
    command = "python bench/bench_otel.py" + (" --quick" if args.quick else "")
    if args.baseline != "main":
        command += f" --baseline {args.baseline}"
    if args.seam:
        command += f" --seam {args.seam}"
    page = args.out.read_text(encoding="utf-8") if args.out.exists() else "# Performance\n"
    args.out.write_text(
        _sections.replace_section(page, SECTION, render(runs, command)), encoding="utf-8"
    )
    summary = {
        name: {k: run[k] for k in ("us_per_chunk", "ratios")}
        for name, run in runs.items()
        if isinstance(run, dict)
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
