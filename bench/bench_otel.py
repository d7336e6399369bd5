"""What telemetry costs: the realistic pipeline with telemetry off, on, and in streamkit
before telemetry existed, in one run. Writes its section of ``docs/performance.md``.

Run from the repository root (any environment with streamkit's ``[dev]`` extra)::

    python bench/bench_otel.py                 # ~3 minutes
    python bench/bench_otel.py --quick         # ~1 minute
    python bench/bench_otel.py --baseline REF  # "before" = that git ref (default: main)

Three clients, each in a child process of its own, read the same stream (generated
OpenAI chat deltas, served in one burst by a ReplayServer in a fourth process, so no
server work is counted) through the realistic pipeline of ``bench/run.py``
(``take_until_match`` never matching + ``accumulate`` + ``do_action`` +
``to_call_response``):

- **before**: streamkit as of ``--baseline`` (exported with ``git archive`` into a
  temporary directory, so it is the code before this work, not a switch in today's);
- **off**: today's streamkit, not instrumented (the default);
- **on**: today's streamkit with ``sk.telemetry.instrument()`` on the OpenTelemetry
  SDK: a ``TracerProvider`` with a ``BatchSpanProcessor`` (to an exporter that drops
  the batches: no I/O measured) and a ``MeterProvider`` with a reader, so the spans,
  events and every histogram record are really processed and aggregated.

Each round asks every client for a few reads, in turn; a client's figure is the median
CPU time (every thread of its process) per chunk, and each ratio is the median over
rounds of the ratio within the round, so load drifting on the shared machine lands on
all three alike.
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
MODES = ("before", "off", "on")


# -- the child -----------------------------------------------------------------------------
def _instrument() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    import streamkit as sk

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Drop()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    sk.telemetry.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)


def child(mode: str, url: str) -> None:
    """Serve reads: each stdin line ``n`` -> a JSON line of n (cpu seconds, chunks)."""
    import _clients

    import streamkit

    if mode == "on":
        _instrument()
    run = _clients.make_sk_pipeline(url)
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


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the three clients round after round; the figures of the run."""
    from _server import ServerPool

    chunks = 500 if args.quick else 2000
    rounds = 5 if args.quick else 9
    per_round = 2 if args.quick else 3
    results: dict[str, Any] = {"chunks": chunks, "rounds": rounds, "reads": per_round}
    with tempfile.TemporaryDirectory() as tmp, ServerPool() as pool:
        results["baseline"] = export_tree(args.baseline, Path(tmp))
        url = pool.start([("burst", f"openai:{chunks}", 0.0)])["burst"]
        clients = {
            "before": Client("before", url, Path(tmp)),
            "off": Client("off", url, ROOT),
            "on": Client("on", url, ROOT),
        }
        results["modules"] = {mode: client.module for mode, client in clients.items()}
        cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
        ratios: dict[str, list[float]] = {"off": [], "on": [], "on/off": []}
        loads = [os.getloadavg()[0]]
        try:
            for number in range(rounds):
                medians = {}
                order = MODES if number % 2 == 0 else tuple(reversed(MODES))
                for mode in order:
                    reads = clients[mode].reads(per_round)
                    cpu[mode].extend(reads)
                    medians[mode] = statistics.median(reads)
                ratios["off"].append(medians["off"] / medians["before"])
                ratios["on"].append(medians["on"] / medians["before"])
                ratios["on/off"].append(medians["on"] / medians["off"])
                loads.append(os.getloadavg()[0])
                print(
                    f"round {number + 1}/{rounds}: "
                    + ", ".join(f"{m} {medians[m] / chunks * 1e6:.1f} µs" for m in MODES),
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


def render(results: dict[str, Any], command: str) -> str:
    """The section of ``docs/performance.md``."""
    us, ratios = results["us_per_chunk"], results["ratios"]
    off, on = ratios["off"], ratios["on"]
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{value:.1f}" for value in results["load"])

    def span(ratio: dict[str, float]) -> str:
        return f"{ratio['low']:.3f}{dash}{ratio['high']:.3f}"

    def met(value: float, goal: float) -> str:
        return "**yes**" if value <= goal else "**no**"

    x, dash = X, DASH
    return f"""
## 7. Telemetry

<!-- Generated by bench/bench_otel.py: do not edit by hand, run it again. -->

What OpenTelemetry instrumentation (`sk.telemetry.instrument()`) costs, measured by
`bench/bench_otel.py` in one run: the realistic pipeline of section 1 over one burst
stream of {results["chunks"]:,} OpenAI chat deltas, read by three clients in processes of
their own: streamkit **before** telemetry existed (`{results["baseline"]}`, exported with
`git archive`), today's streamkit with telemetry **off** (the default), and **on** (the
OpenTelemetry SDK with a batch span processor and a metric reader: every span, event and
histogram record is really processed). Median CPU per chunk over {results["rounds"]}
rounds of {results["reads"]} reads; each ratio is the median of the per-round ratios
(range: lowest to highest round).

| client | µs CPU / chunk | {x} before | range |
| --- | ---: | ---: | --- |
| before (`{results["baseline"]}`) | {us["before"]:.1f} | 1 (baseline) | |
| telemetry off | {us["off"]:.1f} | {off["median"]:.3f}{x} | {span(off)} |
| telemetry on | {us["on"]:.1f} | {on["median"]:.3f}{x} | {span(on)} |

| target | measured | met |
| --- | --- | --- |
| off ≤ 1.01{x} before | {off["median"]:.3f}{x} | {met(off["median"], 1.01)} |
| on ≤ 1.05{x} before | {on["median"]:.3f}{x} | {met(on["median"], 1.05)} |

On is {ratios["on/off"]["median"]:.3f}{x} off (range {ratios["on/off"]["low"]:.3f}{dash}\
{ratios["on/off"]["high"]:.3f}). Off costs, per request, one observer call at the start,
at the first chunk and at the end (the DEBUG request log, which returns at once unless
DEBUG is enabled) and nothing per chunk; on adds, per chunk, one
`gen_ai.client.operation.time_per_output_chunk` record with attributes built once per
request. The noise floor of such ratios on this shared machine is a few per cent (see
[Noise](#noise)): a ratio within it is not a measured difference.

- Written: {when}; machine: {platform.machine()}, {os.cpu_count()} cores,
  {platform.platform()}; Python {platform.python_version()}
- Load average (1 min) along the run: {load}
- Command: `{command}`
"""


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its section of the page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run")
    parser.add_argument("--baseline", default="main", help="the git ref of 'before'")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "performance.md", help="the page"
    )
    parser.add_argument("--child", nargs=2, metavar=("MODE", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    import _sections

    results = measure(args)
    modules = results["modules"]
    assert modules["before"] != modules["off"], f"the baseline is today's code: {modules}"
    command = "python bench/bench_otel.py" + (" --quick" if args.quick else "")
    if args.baseline != "main":
        command += f" --baseline {args.baseline}"
    page = args.out.read_text(encoding="utf-8") if args.out.exists() else "# Performance\n"
    args.out.write_text(
        _sections.replace_section(page, SECTION, render(results, command)), encoding="utf-8"
    )
    print(json.dumps({k: results[k] for k in ("us_per_chunk", "ratios")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
