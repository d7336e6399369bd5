"""Operator fusion: what each streamkit operator after the source costs per chunk, fused
and unfused, as a share of the raw openai SDK's own CPU per chunk, in one run.

Run: ``PYTHONPATH=. python bench/bench_fusion.py`` (``--quick`` for a smaller run,
``--no-write`` to print only). It writes its section of ``docs/performance.md``
(between the ``fusion`` markers, which ``bench/run.py`` keeps when it rewrites the
page).

Two measures, both in processes of their own (``_measure``), both set against the raw
SDK loop read in the same run:

- **end to end**: one burst stream (``bench/_streams.py``) from a
  :class:`~streamkit.testing.ReplayServer` in a child process, read by the raw openai
  SDK loop, by the streamkit source alone, by the source followed by 1, 2, 4, 8 and 16
  streamkit operators (each a ``take_until_match`` that never matches: it reads every
  chunk's text and passes the chunk on), fused and unfused, and by the realistic
  pipeline of section 1, fused and unfused. Rounds go through every client in turn;
  the cost of one more operator is the slope of a least-squares line through the
  round's CPU per chunk against the number of operators (the source alone at 0);
  each figure is the median over rounds.
- **in memory**: the same stream's chunks, read once from the server and then replayed
  from a list (no HTTP, no SDK, no thread), through the same operators: the operators'
  cost alone, without the SDK's noise around it; and the same with the bench's own
  do-nothing fusable operator (``_fusion.fusable``), the floor of any operator: the
  fusion machinery itself. Also what building and subscribing the realistic pipeline
  costs per request.

Fusion is switched off with ``streamkit.ops._fusion.ENABLED = False`` (in each
"unfused" client's process): every operator then builds its own observable, as before
fusion.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import burst_rounds, in_child
from _server import ServerPool

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "performance.md"
SECTION = "fusion"  # its section of docs/performance.md (bench/_sections.py)
COUNTS = (1, 2, 4, 8, 16)
KINDS = ("unfused", "fused")
CLIENTS = (
    "openai-sync",
    "sk-source",
    *(f"sk-stages-{count}-{kind}" for count in COUNTS for kind in KINDS),
    "sk-pipeline-unfused",
    "sk-pipeline-fused",
)
GOAL = 0.01
"""Issue 17: each extra fused stage costs at most 1% of the raw SDK's CPU per chunk."""
X = "\u00d7"  # the multiplication sign (spelled out: ruff flags it as ambiguous)
DASH = "\u2013"  # the en dash of ranges
LE = "\u2264"


def slope(points: Sequence[tuple[float, float]]) -> float:
    """The least-squares slope of ``(x, y)`` points."""
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    num = sum((x - mean_x) * (y - mean_y) for x, y in points)
    den = sum((x - mean_x) ** 2 for x, _ in points)
    return num / den


# -- end to end ----------------------------------------------------------------------------
def end_to_end(chunks: int, rounds: int) -> dict[str, Any]:
    """CPU seconds per chunk of each client, one read per round; the load averages."""
    load = [os.getloadavg()[0]]
    with ServerPool() as pool:
        url = pool.start([("burst", f"openai:{chunks}", 0.0)])["burst"]
        cpu = burst_rounds(CLIENTS, url, chunks, rounds, load)
        replay = in_child(in_memory, url, chunks, 5 if rounds < 5 else 15)
    return {"cpu": cpu, "load": load, "memory": replay, "chunks": chunks, "rounds": rounds}


def per_stage(cpu: dict[str, list[float]], kind: str) -> tuple[float, list[float]]:
    """The cost of one more operator (seconds per chunk) for ``kind``: the slope through
    each client's median over rounds, and each round's own slope."""

    def line(values: Callable[[str], float]) -> float:
        points = [(0.0, values("sk-source"))]
        points += [(float(n), values(f"sk-stages-{n}-{kind}")) for n in COUNTS]
        return slope(points)

    overall = line(lambda name: statistics.median(cpu[name]))
    rounds = [line(lambda name, i=i: cpu[name][i]) for i in range(len(cpu["sk-source"]))]
    return overall, rounds


# -- in memory -----------------------------------------------------------------------------
def in_memory(url: str, chunks: int, reads: int) -> dict[str, Any]:
    """In a child: the stream's chunks replayed from a list through the operators, fused
    and unfused; per-chunk CPU seconds by series and operator count, and the CPU of
    building and subscribing the realistic pipeline once."""
    import threading

    import _clients
    from reactivex import Observable, abc
    from reactivex import operators as rx_ops
    from reactivex.disposable import Disposable

    from streamkit import ops
    from streamkit.ops import _fusion

    received: list[Any] = []
    done = threading.Event()
    _clients._sk_factory(url)().subscribe(received.append, lambda _e: done.set(), done.set)
    done.wait(60)

    def replay(observer: abc.ObserverBase[Any], _scheduler: Any = None) -> abc.DisposableBase:
        for chunk in received:
            observer.on_next(chunk)
        observer.on_completed()
        return Disposable()

    source: Observable[Any] = Observable(replay)
    empty: Observable[Any] = Observable(lambda observer, _s=None: _completed(observer))

    def identity() -> Callable[[Observable[Any]], Observable[Any]]:
        def stage(observer: Any, subscribe_upstream: Any) -> abc.DisposableBase:
            def on_next(item: Any) -> None:
                observer.on_next(item)

            return subscribe_upstream(on_next, observer.on_error, observer.on_completed)

        return _fusion.fusable(stage)

    def realistic(upstream: Observable[Any]) -> Observable[Any]:
        return upstream.pipe(
            ops.take_until_match(_clients.NEVER),
            ops.accumulate(),
            rx_ops.do_action(_clients._render),
            ops.to_call_response(),
        )

    series: dict[str, Callable[[], Callable[[Observable[Any]], Observable[Any]]]] = {
        "take_until_match": lambda: ops.take_until_match(_clients.NEVER),
        "identity": identity,
    }

    def read(observable: Observable[Any]) -> None:
        observable.subscribe(lambda _item: None)

    cpu: dict[str, list[float]] = {}
    for _ in range(reads):
        for fused in (False, True):
            _fusion.ENABLED = fused
            kind = "fused" if fused else "unfused"
            for name, make in series.items():
                for count in (0, *COUNTS):
                    started = time.process_time()
                    read(source.pipe(*(make() for _ in range(count))))
                    elapsed = time.process_time() - started
                    cpu.setdefault(f"{name}-{count}-{kind}", []).append(elapsed / chunks)
            started = time.process_time()
            read(realistic(source))
            cpu.setdefault(f"realistic-{kind}", []).append((time.process_time() - started) / chunks)
            requests = 200
            started = time.process_time()
            for _ in range(requests):
                read(realistic(empty))
            cpu.setdefault(f"subscribe-{kind}", []).append(
                (time.process_time() - started) / requests
            )
    _fusion.ENABLED = True
    medians = {key: statistics.median(values) for key, values in cpu.items()}
    slopes = {
        f"{name}-{kind}": slope([(float(n), medians[f"{name}-{n}-{kind}"]) for n in (0, *COUNTS)])
        for name in series
        for kind in KINDS
    }
    return {"medians": medians, "slopes": slopes, "reads": reads, "items": len(received)}


def _completed(observer: Any) -> Any:
    from reactivex.disposable import Disposable

    observer.on_completed()
    return Disposable()


# -- the page ------------------------------------------------------------------------------
def section(run: dict[str, Any], command: str) -> str:
    """The page's section, in Markdown."""
    cpu, chunks, memory = run["cpu"], run["chunks"], run["memory"]
    raw = cpu["openai-sync"]
    raw_us = statistics.median(raw) * 1e6

    def us(name: str) -> float:
        return statistics.median(cpu[name]) * 1e6

    def ratios(name: str) -> list[float]:
        return [v / r for v, r in zip(cpu[name], raw, strict=True)]

    def ratio_cell(name: str) -> str:
        values = ratios(name)
        return f"{statistics.median(values):.3f}{X} | {min(values):.2f}{DASH}{max(values):.2f}"

    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Operator fusion",
        "",
        "<!-- Written by bench/bench_fusion.py (bench/run.py keeps this section): "
        "run it again. -->",
        "",
        "Consecutive streamkit operators subscribe upstream once, as one observer: a chunk "
        "goes through them as plain function calls, not through one reactivex observer "
        "per operator (see [operators](operators/index.md#fusion)). The goal (issue 17): "
        f"each extra fused operator costs {LE} 1% of the raw openai SDK's CPU per chunk. "
        "**Unfused** is the same code with `streamkit.ops._fusion.ENABLED = False`: every "
        "operator builds its own observable, as before fusion.",
        "",
        f"### End to end ({chunks:,} chunks in one burst)",
        "",
        f"Each client in a process of its own, one read per round, {run['rounds']} rounds "
        "going through every client in turn: median CPU (every thread) per text delta; "
        f"`{X} raw` is the median over rounds of the ratio to the raw SDK loop read in the "
        "same round. The `take_until_match` stages never match: each reads a chunk's text "
        "and passes the chunk on.",
        "",
        f"| client | µs CPU / chunk | {X} raw | range |",
        "| --- | ---: | ---: | --- |",
        "| openai SDK, sync: `for chunk in client.chat.completions.create(stream=True)` | "
        f"{raw_us:.1f} | 1 (baseline) | |",
        f"| streamkit source alone | {us('sk-source'):.1f} | {ratio_cell('sk-source')} |",
    ]
    for count in COUNTS:
        for kind in KINDS:
            name = f"sk-stages-{count}-{kind}"
            label = f"source + {count} {X} `take_until_match`, {kind}"
            lines.append(f"| {label} | {us(name):.1f} | {ratio_cell(name)} |")
    for kind in KINDS:
        name = f"sk-pipeline-{kind}"
        label = (
            "realistic pipeline (`take_until_match` + `accumulate` + `do_action` + "
            f"`to_call_response`), {kind}"
        )
        lines.append(f"| {label} | {us(name):.1f} | {ratio_cell(name)} |")

    e2e = {kind: per_stage(cpu, kind) for kind in KINDS}
    slopes = memory["slopes"]
    medians = memory["medians"]
    lines += [
        "",
        "### What one more operator costs per chunk",
        "",
        "End to end: the slope of a least-squares line through each client's median CPU "
        "per chunk against its number of operators (0, the source alone, to 16); in "
        "brackets the lowest and highest slope of a single round, which shows how much "
        "of it is this machine's noise. "
        f"In memory: the stream's {memory['items']:,} chunks replayed from a list through "
        "the same operators (no HTTP, no SDK, no thread), the slope through the medians "
        f"of {memory['reads']} reads; `identity` is a fusable operator that only passes "
        "each item on (the bench's own): what an operator costs before it does anything, "
        "which is what fusion changes. `% of raw`: the cost over the raw SDK's CPU per "
        f"chunk of the end-to-end run ({raw_us:.1f} µs).",
        "",
        "| measure | unfused µs | unfused % of raw | fused µs | fused % of raw |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]

    def e2e_cell(kind: str) -> str:
        overall, rounds = e2e[kind]
        share = [s / r for s, r in zip(rounds, raw, strict=True)]
        return (
            f"{overall * 1e6:.2f} | {overall * 1e6 / raw_us * 100:.2f}% "
            f"({min(share) * 100:.1f}{DASH}{max(share) * 100:.1f}%)"
        )

    lines.append(
        f"| end to end, `take_until_match` | {e2e_cell('unfused')} | {e2e_cell('fused')} |"
    )
    for name in ("take_until_match", "identity"):
        cells = []
        for kind in KINDS:
            value = slopes[f"{name}-{kind}"] * 1e6
            cells.append(f"{value:.3f} | {value / raw_us * 100:.2f}%")
        lines.append(f"| in memory, `{name}` | {' | '.join(cells)} |")

    subscribe = {kind: medians[f"subscribe-{kind}"] * 1e6 for kind in KINDS}
    realistic = {kind: medians[f"realistic-{kind}"] * 1e6 for kind in KINDS}
    fused_e2e = e2e["fused"][0] * 1e6 / raw_us
    fused_memory = slopes["take_until_match-fused"] * 1e6 / raw_us
    unfused_memory = slopes["take_until_match-unfused"] * 1e6 / raw_us
    saved = (slopes["identity-unfused"] - slopes["identity-fused"]) * 1e6
    met = fused_memory <= GOAL
    lines += [
        "",
        "In memory, the realistic pipeline's operators (the source's chunks replayed, no "
        f"SDK) cost {realistic['unfused']:.2f} µs per chunk unfused and "
        f"{realistic['fused']:.2f} µs fused; building and subscribing it costs "
        f"{subscribe['unfused']:.1f} µs per request unfused and {subscribe['fused']:.1f} µs "
        "fused (an empty stream: no chunk).",
        "",
        f"Goal: each extra fused operator {LE} 1% of the raw SDK's CPU per chunk. "
        "Measured in memory, where the figure is exact enough to judge: "
        f"{fused_memory * 100:.2f}% for a `take_until_match` "
        f"(**{'met' if met else 'not met'}**; unfused {unfused_memory * 100:.2f}%: "
        f"{'met' if unfused_memory <= GOAL else 'not met'} before fusion too); end to end "
        f"{fused_e2e * 100:.2f}%, whose single rounds spread over several per cent on "
        "this machine. What fusion itself saves is one call per operator and chunk "
        f"(`identity`): {saved:.3f} µs, {saved / raw_us * 100:.3f}% of the raw SDK's CPU "
        "per chunk. An operator's cost is what it does with each chunk (a "
        "`take_until_match` reads its text and searches it); next to the SDK's own "
        "parsing, the call fusion removes is below the noise of any end-to-end figure: "
        "**no measurable gain end to end**.",
        "",
        f"- Written: {when}; {platform.machine()}, {os.cpu_count()} cores; Python "
        f"{platform.python_version()}; {_versions()}",
        "- Load average (1 min) along the run: "
        + ", ".join(f"{x:.1f}" for x in run["load"])
        + " (a shared machine: see [Noise](#noise))",
        f"- Command: `{command}`",
    ]
    return "\n".join(lines)


def _versions() -> str:
    import importlib.metadata

    names = ("openai", "reactivex", "pydantic")
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} not installed")
    return ", ".join(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller stream, fewer rounds")
    parser.add_argument("--no-write", action="store_true", help="print the section only")
    args = parser.parse_args(argv)
    chunks, rounds = (500, 3) if args.quick else (2_000, 21)
    run = end_to_end(chunks, rounds)
    command = "PYTHONPATH=. python bench/bench_fusion.py" + (" --quick" if args.quick else "")
    text = section(run, command)
    print(text)
    if not args.no_write:
        import _sections

        PAGE.write_text(
            _sections.replace_section(PAGE.read_text(encoding="utf-8"), SECTION, text),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
