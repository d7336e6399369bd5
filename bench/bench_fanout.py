"""``share_replay`` fan-out: one request read by 1, 10, 100 and 1,000 subscribers.

Run: ``PYTHONPATH=. python bench/bench_fanout.py`` (``--quick`` for a smaller run,
``--no-write`` to print only). It writes its section of ``docs/performance.md``
(between the ``fanout`` markers, which ``bench/run.py`` keeps when it rewrites the
page).

The stream is a burst (``bench/_streams.py``: every event written at once) served by a
:class:`~streamkit.testing.ReplayServer` in a child process; each client runs in a
process of its own (``_measure.Worker``) and its CPU time (every thread) per text delta
is the figure. Rounds go through every client in turn; each ratio is the median over
rounds of the client's CPU over the raw openai SDK loop's in the same round. Every
subscriber only counts its chunks, so the rows show what handing one chunk to each
subscriber costs; the per-subscriber cost is ``(CPU(n) - CPU(1)) / (n - 1)`` per chunk.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import burst_rounds
from _server import ServerPool

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "performance.md"
SECTION = "fanout"  # its section of docs/performance.md (bench/_sections.py)
CLIENTS = (
    "openai-sync",
    # on the SDK path (fast=False, as these rows have always been measured)
    "sk-share-1",
    "sk-share-10",
    "sk-share-100",
    "sk-share-1000",
    # the same over the fast source (``fast=True``, the default where it runs): the
    # fan-out on a cheaper source
    "sk-fast-share-1",
    "sk-fast-share-100",
    "sk-fast-share-1000",
)
TARGET_100 = 1.3
X = "\u00d7"  # the multiplication sign (spelled out: ruff flags it as ambiguous)
DASH = "\u2013"  # the en dash of ranges
"""Issue 17: 100 subscribers cost at most 1.3x the raw SDK's CPU per chunk."""


def measure(chunks: int, rounds: int) -> tuple[dict[str, list[float]], list[float]]:
    """CPU seconds per chunk of each client, one read per round; the load averages."""
    load = [os.getloadavg()[0]]
    with ServerPool() as pool:
        url = pool.start([("burst", f"openai:{chunks}", 0.0)])["burst"]
        cpu = burst_rounds(CLIENTS, url, chunks, rounds, load)
    return cpu, load


def section(cpu: dict[str, list[float]], load: list[float], chunks: int) -> str:
    """The page's section, in Markdown."""
    raw = cpu["openai-sync"]
    lines = [
        "## `share_replay` fan-out",
        "",
        f"Written by `bench/bench_fanout.py`. One burst stream of {chunks:,} text deltas, "
        f"read {len(raw)} times by each client (one read per round, the rounds going "
        "through the clients in turn), every client in a process of its own: CPU (every "
        f"thread) per text delta, the median; `{X} raw` is the median over rounds of the "
        "ratio to the raw openai SDK loop read in the same round. Each subscriber only "
        "counts its chunks. Load average (1 min) along the run: "
        + ", ".join(f"{x:.1f}" for x in load)
        + ".",
        "",
        f"| client | µs CPU / chunk | {X} raw | range | µs per subscriber per chunk |",
        "| --- | ---: | ---: | --- | ---: |",
    ]
    one = {
        "sk-share": statistics.median(cpu["sk-share-1"]),
        "sk-fast-share": statistics.median(cpu["sk-fast-share-1"]),
    }
    for name in CLIENTS:
        values = cpu[name]
        ratios = [v / r for v, r in zip(values, raw, strict=True)]
        kind, _, count = name.rpartition("-")
        n = 1 if name == "openai-sync" else int(count)
        fast = " over `fast=True`" if kind == "sk-fast-share" else ""
        label = (
            "openai SDK, sync: `for chunk in client.chat.completions.create(stream=True)`"
            if name == "openai-sync"
            else f"`share_replay`{fast}, {n:,} subscriber{'s' if n > 1 else ''}"
        )
        median = statistics.median(values)
        per_subscriber = (
            f"{(median - one[kind]) / (n - 1) * 1e6:.2f}" if kind in one and n > 1 else ""
        )
        ratio = "1 (baseline)" if name == "openai-sync" else f"{statistics.median(ratios):.2f}{X}"
        spread = "" if name == "openai-sync" else f"{min(ratios):.2f}{DASH}{max(ratios):.2f}"
        lines.append(f"| {label} | {median * 1e6:.1f} | {ratio} | {spread} | {per_subscriber} |")

    def ratio_of(name: str) -> float:
        return statistics.median(v / r for v, r in zip(cpu[name], raw, strict=True))

    sdk_100, fast_100 = ratio_of("sk-share-100"), ratio_of("sk-fast-share-100")
    lines += [
        "",
        f"Target (issue 17): 100 subscribers ≤ {TARGET_100}{X} the raw SDK per chunk. "
        f"Over the SDK source: {sdk_100:.2f}{X}, "
        f"{'met' if sdk_100 <= TARGET_100 else 'not met'}; over the fast source: "
        f"{fast_100:.2f}{X}, {'met' if fast_100 <= TARGET_100 else 'not met'}. What "
        "one more subscriber costs per chunk is the last column: the call through "
        "reactivex's observer to the subscriber's function, with no lock held.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller stream, fewer rounds")
    parser.add_argument("--no-write", action="store_true", help="print the section only")
    args = parser.parse_args(argv)
    chunks, rounds = (500, 3) if args.quick else (2_000, 5)
    cpu, load = measure(chunks, rounds)
    text = section(cpu, load, chunks)
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
