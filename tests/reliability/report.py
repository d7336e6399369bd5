"""Run the reliability suite and write ``docs/reliability.md`` from its results.

    python tests/reliability/report.py            # the full fault matrix (a few minutes)
    python tests/reliability/report.py --quick    # the default, pairwise subset

It runs ``pytest tests/reliability tests/test_bad_input.py`` in a subprocess (with
``STREAMKIT_FULL_MATRIX=1`` unless ``--quick``), reads the JUnit XML that pytest writes
(each matrix cell records its fault, provider, mode, pipeline and what it observed as
test properties), and renders what was tried and what held. The expected outcomes and
the notes on each SDK's behavior come from ``tests/reliability/_matrix.py``, the same
code the tests assert with. Nothing on the page is written by hand: edit the tests, then
regenerate. Exits non-zero when a test failed (the page is written anyway, failures
listed first).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.reliability import _matrix as matrix  # noqa: E402 (needs ROOT on sys.path)

OUTPUT = ROOT / "docs" / "reliability.md"
TEST_PATHS = ["tests/reliability", "tests/test_bad_input.py"]
COMMAND = "python tests/reliability/report.py"
TIMES = "\u00d7"  # the multiplication sign, for "faults x providers"


@dataclass
class Result:
    """One test case of the run."""

    module: str
    name: str
    outcome: str  # passed, failed, error, skipped, xfailed
    seconds: float
    message: str = ""
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def cell(self) -> dict[str, str] | None:
        """The matrix cell this test ran, if it is one."""
        raw = self.properties.get("cell")
        return json.loads(raw) if raw else None

    @property
    def observed(self) -> dict[str, object]:
        """What the cell observed (outcome, requests, seconds), if it got that far."""
        raw = self.properties.get("observed")
        return json.loads(raw) if raw else {}


def run_suite(full: bool, junit: Path) -> tuple[int, float]:
    """Run the tests; return pytest's exit code and the wall time."""
    env = dict(os.environ)
    env.pop(matrix.FULL_MATRIX_ENV, None)
    if full:
        env[matrix.FULL_MATRIX_ENV] = "1"
    command = [
        sys.executable,
        "-m",
        "pytest",
        *TEST_PATHS,
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "junit_family=xunit1",
        f"--junitxml={junit}",
    ]
    started = time.monotonic()
    completed = subprocess.run(command, cwd=ROOT, env=env, check=False)
    return completed.returncode, time.monotonic() - started


def read_results(junit: Path) -> list[Result]:
    """The test cases in pytest's JUnit XML."""
    results = []
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome, message = (
                    ("failed" if child.tag == "failure" else "error"),
                    child.get("message", ""),
                )
            elif child.tag == "skipped":
                xfail = child.get("type") == "pytest.xfail"
                outcome, message = ("xfailed" if xfail else "skipped"), child.get("message", "")
        properties = {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
        module = case.get("classname", "").rsplit(".", 1)[-1]
        results.append(
            Result(
                module,
                case.get("name", ""),
                outcome,
                float(case.get("time", 0)),
                message,
                properties,
            )
        )
    return results


# -- rendering -------------------------------------------------------------------------
def mark(results: list[Result]) -> str:
    """``✓ n`` when every result passed, else what went otherwise."""
    if not results:
        return "—"
    counts = Counter(result.outcome for result in results)
    if counts["passed"] == len(results):
        return f"✓ {len(results)}"
    parts = [f"✓ {counts['passed']}"] if counts["passed"] else []
    for outcome, symbol in (
        ("xfailed", "known gap"),
        ("failed", "✗"),
        ("error", "✗ leak"),
        ("skipped", "skipped"),
    ):
        if counts[outcome]:
            parts.append(f"{symbol} {counts[outcome]}")
    return ", ".join(parts)


def render(results: list[Result], *, full: bool, exit_code: int, wall: float) -> str:
    cells = [
        r
        for r in results
        if r.cell is not None or r.name.startswith(("test_sync_cell", "test_async_cell"))
    ]
    others = [r for r in results if r not in cells]
    matrix_results = [r for r in cells if r.cell is not None]
    skipped_cells = [r for r in cells if r.cell is None]
    counts = Counter(r.outcome for r in results)
    total_cells = len(matrix.all_cells())
    lines: list[str] = []
    add = lines.append

    add("# Reliability: what was tried and what held")
    add("")
    add(
        f"This page is generated by `{COMMAND}{' --quick' if not full else ''}` from a run of "
        "the reliability tests; it is not written by hand. To bring it up to date, run "
        f"`{COMMAND}` (the whole matrix, a few minutes; `--quick` runs the default subset). "
        "The expected outcomes and the notes on each SDK come from "
        "`tests/reliability/_matrix.py`, the code the tests assert with."
    )
    add("")
    add(
        f"Run of {datetime.date.today().isoformat()}: Python {platform.python_version()} on "
        f"{platform.system()} ({os.cpu_count()} CPUs), SDKs {sdk_versions()}. "
        f"{len(results)} tests in {wall:.0f} s: {counts['passed']} passed, "
        f"{counts['xfailed']} known gaps (expected failures), {counts['failed'] + counts['error']} "
        f"failed, {counts['skipped']} skipped."
    )
    add("")
    matrix_seconds = sum(r.seconds for r in cells)
    add(
        f"**The fault matrix**: {len(matrix.FAULT_CASES)} faults {TIMES} "
        f"{len(matrix.PROVIDER_CASES)} providers {TIMES} sync and async {TIMES} "
        f"{len(matrix.PIPELINES)} pipelines = {total_cells} cells. "
        f"This run covered {len(cells)} of them in {matrix_seconds:.0f} s"
        + (" (every cell)." if full else " (the pairwise subset the default test run uses).")
    )
    add(
        "The default `pytest` run covers a pairwise subset "
        f"({len(matrix.pairwise_cells())} cells: every pair of fault, provider, sync/async "
        "and pipeline occurs at least once); `STREAMKIT_FULL_MATRIX=1 python -m pytest "
        "tests/reliability` runs every cell."
    )
    add("")
    failures = [r for r in results if r.outcome in ("failed", "error")]
    if failures:
        add("## Failures")
        add("")
        for result in failures:
            add(f"- `{result.module}::{result.name}`: {one_line(result.message)}")
        add("")

    add("## How each cell is judged")
    add("")
    add(
        "Each cell streams one recorded transcript with the provider's official SDK client "
        "against the replay server, broken by the fault, through "
        "`sk.stream(...).pipe(ops.first_chunk_timeout(t), ops.idle_timeout(t), <pipeline>)` "
        f"(t = {matrix.SHORT_TIMEOUT:g} s in stall cells, {matrix.GUARD_TIMEOUT:g} s elsewhere). "
        "The pipelines: `reduce` (`ops.to_call_response()`), `take_until_match` (a phrase "
        "completed only after the fault's position), `share_replay` (three subscribers, the "
        "third joining late from inside the first one's callback) and `retry_on_error` "
        "(3 attempts; the second attempt meets a different fault, a cut, the third none). "
        "A cell passes when all of these hold:"
    )
    add("")
    for item in (
        "**the outcome**: the whole text on success, or the expected typed error (table "
        "below) reaching every subscriber exactly once, nothing after it; with an async "
        "client, on the event loop's thread;",
        "**nothing lost or duplicated**: the text each subscriber received equals the text "
        "the server sent before the fault (a prefix of it after a reset), or the whole text "
        "on success (a recovered retry: the whole text exactly once); identical across "
        "`share_replay`'s subscribers, which also share one request; the foreign event's "
        "text never appears;",
        "**the requests**: one per cell, three for a recovering retry, and a 429's "
        "`retry-after` honored between the first two;",
        f"**nothing hangs**: the cell ends within 15 s (pytest-timeout bounds the test); a "
        f"{matrix.STALL:g} s stall ends by the library's own timeout in well under half of it;",
        "**nothing leaks**: afterwards the server holds no open connection (it answers "
        "`Connection: close`, so an open connection is a response nobody released), no "
        "`streamkit-source-*` or timer thread is alive, no new non-daemon thread, no asyncio "
        "task pending.",
    ):
        add(f"- {item}")
    add("")

    add(f"## Faults {TIMES} providers")
    add("")
    add(
        "Each cell: the outcome one request must end with (its type, for an error), then how "
        "many of the cells run for that fault and provider (sync and async "
        f"{TIMES} pipelines) held."
    )
    add("")
    by_pair: dict[tuple[str, str], list[Result]] = defaultdict(list)
    for result in matrix_results:
        cell = result.cell or {}
        by_pair[(cell["fault"], cell["provider"])].append(result)
    skipped_by_pair: dict[tuple[str, str], int] = Counter()
    for result in skipped_cells:
        fault_key, provider_name = result.name.split("[", 1)[1].split("-")[:2]
        skipped_by_pair[(fault_key, provider_name)] += 1
    providers = matrix.PROVIDER_CASES
    add("| fault | " + " | ".join(p.name for p in providers) + " |")
    add("|---|" + "---|" * len(providers))
    for fault in matrix.FAULT_CASES:
        row = [fault.title]
        for provider in providers:
            expected = matrix.expected_outcome(fault, provider).label()
            held = mark(by_pair.get((fault.key, provider.name), []))
            skipped = skipped_by_pair.get((fault.key, provider.name))
            if skipped:
                held = f"{held}, skipped {skipped}" if held != "—" else f"skipped {skipped}"
            row.append(f"{expected}: {held}")
        add("| " + " | ".join(row) + " |")
    add("")

    add(f"## Faults {TIMES} pipelines")
    add("")
    add(
        "How the cells of each fault held, per pipeline (all providers, sync and async). "
        "With `retry_on_error` a transient fault recovers (the whole text once, three "
        "requests); with `take_until_match` the fault strikes before the match, so the "
        "outcome is the fault's."
    )
    add("")
    add("| fault | " + " | ".join(matrix.PIPELINES) + " |")
    add("|---|" + "---|" * len(matrix.PIPELINES))
    for fault in matrix.FAULT_CASES:
        row = [fault.title]
        for pipeline in matrix.PIPELINES:
            selected = [
                r
                for r in matrix_results
                if (r.cell or {}).get("fault") == fault.key
                and (r.cell or {}).get("pipeline") == pipeline
            ]
            row.append(mark(selected))
        add("| " + " | ".join(row) + " |")
    add("")
    modes = {
        mode: [r for r in matrix_results if (r.cell or {}).get("mode") == mode]
        for mode in matrix.MODES
    }
    add("By client: " + "; ".join(f"{mode}: {mark(found)}" for mode, found in modes.items()) + ".")
    add("")
    slowest = sorted(matrix_results, key=lambda r: r.seconds, reverse=True)[:3]
    if slowest:
        add(
            "Slowest cells: "
            + ", ".join(
                f"`{r.name.split('[', 1)[1].rstrip(']')}` {r.seconds:.2f} s" for r in slowest
            )
            + "."
        )
        add("")

    notes = sorted(
        {
            (fault.title, provider.name, outcome.note)
            for fault in matrix.FAULT_CASES
            for provider in providers
            if (outcome := matrix.expected_outcome(fault, provider)).note
        }
    )
    if notes:
        add("## What the SDKs do (the expectations' notes)")
        add("")
        for title, provider_name, note in notes:
            add(f"- {title}, {provider_name}: {note}.")
        add("")

    gaps = [r for r in results if r.outcome == "xfailed"]
    add("## Known gaps")
    add("")
    if gaps:
        add(
            "Each is a test that runs, shows the gap (an expected failure), and fails as soon "
            "as the gap is closed, so this list cannot go stale."
        )
        add("")
        for result in gaps:
            add(f"- `{result.module}::{result.name}`: {one_line(result.message)}")
    else:
        add("None.")
    add("")

    if skipped_cells or any(r.outcome == "skipped" for r in others):
        add("## Not run here")
        add("")
        reasons = Counter(one_line(r.message) for r in results if r.outcome == "skipped")
        for reason, count in reasons.items():
            add(f"- {count} test(s): {reason}")
        add("")

    add("## The other reliability tests")
    add("")
    for module, found in group_by_module(others).items():
        add(f"### `{module}`: {mark(found)}")
        add("")
        summary = module_summary(module)
        if summary:
            add(summary)
            add("")
        names = Counter(base_name(r.name) for r in found)
        for name, count in names.items():
            outcomes = [r for r in found if base_name(r.name) == name]
            add(f"- `{name}` ({count} case{'s' if count > 1 else ''}): {mark(outcomes)}")
        add("")
    if exit_code not in (0, 1):
        add(f"pytest exited with code {exit_code}.")
    return "\n".join(lines).rstrip() + "\n"


def group_by_module(results: list[Result]) -> dict[str, list[Result]]:
    grouped: dict[str, list[Result]] = defaultdict(list)
    for result in results:
        grouped[result.module].append(result)
    return dict(grouped)


def base_name(name: str) -> str:
    return name.split("[", 1)[0]


def module_summary(module: str) -> str:
    """The first paragraph of a test module's docstring."""
    for package in ("tests.reliability", "tests"):
        try:
            loaded = importlib.import_module(f"{package}.{module}")
        except ImportError:
            continue
        doc = (loaded.__doc__ or "").strip()
        return " ".join(doc.split("\n\n", 1)[0].split())
    return ""


def one_line(text: str) -> str:
    return " ".join(text.split())[:400]


def sdk_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in (
        "openai",
        "anthropic",
        "mistralai",
        "groq",
        "google-genai",
        "cohere",
        "litellm",
        "azure-ai-inference",
        "azure-core",
        "reactivex",
    ):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            continue
    return ", ".join(found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="the default subset of the matrix")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        junit = Path(folder) / "reliability.xml"
        exit_code, wall = run_suite(not args.quick, junit)
        if not junit.exists():
            print("pytest wrote no results", file=sys.stderr)
            return exit_code or 1
        results = read_results(junit)
    args.output.write_text(render(results, full=not args.quick, exit_code=exit_code, wall=wall))
    print(f"wrote {args.output}")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
