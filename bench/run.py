"""streamkit's benchmarks, in one run, written to ``docs/performance.md``.

Run from the repository root, in the benchmark environment (``bench/requirements.txt``:
streamkit with every SDK, orjson, pyinstrument and the peers)::

    python3 -m venv .venv-bench && .venv-bench/bin/pip install -r bench/requirements.txt
    .venv-bench/bin/python bench/run.py            # ~12 minutes
    .venv-bench/bin/python bench/run.py --quick    # ~3 minutes, smaller streams
    .venv-bench/bin/python bench/run.py --scenario fast-paths  # one part alone (_plan.SCENARIOS)
    .venv-bench/bin/python bench/run.py --only ttft  # time to first text alone, printed
    .venv-bench/bin/python bench/run.py --only ttft --baseline /tmp/base  # before/after

``--scenario NAME`` runs only that scenario's rows of the CPU table (with the raw SDK
rows they are set against, in the same rounds) and writes only its own section of the
page, leaving the rest as it is.

Every figure is taken on streams served by streamkit's ReplayServer from a child
process (so the server's CPU is never counted as the client's), on 127.0.0.1, and every
client runs in a child process of its own. Each figure is set against the raw SDK
measured in the same run, on the same stream.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import _scenarios  # noqa: E402
from _measure import Runs, Worker, in_child  # noqa: E402
from _plan import (  # noqa: E402
    BY_NAME,
    FULL,
    LONG,
    MATCH_CLIENTS,
    QUICK,
    SCENARIOS,
    TABLE,
    TTFC,
    Plan,
    Scenario,
)
from _server import ServerPool  # noqa: E402


# -- running ----------------------------------------------------------------------------
def log(message: str) -> None:
    """Progress on stderr, with the seconds since the start."""
    print(f"[{time.perf_counter() - START:7.1f}s] {message}", file=sys.stderr, flush=True)


START = time.perf_counter()


@dataclass
class Results:
    """Everything one run measured, for the report."""

    plan: Plan
    table: dict[tuple[str, str], Runs] = field(default_factory=dict)  # (client, mode)
    ttfc: dict[str, list[float] | str] = field(default_factory=dict)
    long: dict[str, Runs] = field(default_factory=dict)
    memory: dict[str, dict[str, Any] | str] = field(default_factory=dict)
    match: dict[str, list[dict[str, Any]] | str] = field(default_factory=dict)
    concurrent: dict[str, dict[str, Any] | str] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any] | str] = field(default_factory=dict)
    load: list[tuple[float, float, float]] = field(default_factory=list)
    seconds: float = 0.0


def _record(runs: Runs, outcome: tuple[int, list[float], list[float]] | str) -> None:
    if isinstance(outcome, str):
        runs.error = runs.error or outcome
        return
    items, cpu, wall = outcome
    runs.items = items
    runs.cpu.extend(cpu)
    runs.wall.extend(wall)


def start_workers(
    names: Iterable[str], urls_of: Callable[[str], dict[str, str]]
) -> dict[str, Worker]:
    """One worker per client, started two at a time (imports take a second or two)."""
    names = list(names)
    with ThreadPoolExecutor(2) as pool:
        workers = list(pool.map(lambda name: Worker(name, urls_of(name)), names))
    for worker in workers:
        if worker.error:
            log(f"{worker.client}: cannot run: {worker.error}")
    return {worker.client: worker for worker in workers}


def _urls_of(
    urls: dict[str, str], modes: Iterable[str] = ("burst", "paced", "ttfc")
) -> Callable[[str], dict[str, str]]:
    def urls_of(name: str) -> dict[str, str]:
        provider = BY_NAME[name].provider
        mine = {mode: urls[f"{mode}-{provider}"] for mode in modes}
        if name in LONG and "long-openai" in urls:
            mine["long"] = urls["long-openai"]
        return mine

    return urls_of


def run_cpu_tables(
    plan: Plan,
    workers: dict[str, Worker],
    results: Results,
    modes: tuple[str, ...] = ("burst", "paced"),
) -> None:
    """The CPU tables: one warm read of each stream, then ``plan.rounds`` rounds going
    through every worker in turn (the order rotated each round)."""
    for name, worker in workers.items():  # one warm read of each stream
        for mode in modes:
            results.table[(name, mode)] = Runs(name, mode)
            if worker.error:
                results.table[(name, mode)].error = worker.error
                continue
            outcome = worker.read(mode, 1)
            if isinstance(outcome, str):
                results.table[(name, mode)].error = outcome
    log("warm; CPU tables")
    order = list(workers)
    for round_ in range(plan.rounds):
        # Rotate the order so that no client always runs right after the same one.
        rotated = order[round_ % len(order) :] + order[: round_ % len(order)]
        for mode in modes:
            for name in rotated:
                runs = results.table[(name, mode)]
                if runs.error is None:
                    _record(runs, workers[name].read(mode, 1))
        results.load.append(os.getloadavg())
        log(f"round {round_ + 1}/{plan.rounds} done (load {os.getloadavg()[0]:.1f})")


def measure_ttfc(plan: Plan, workers: dict[str, Worker], results: Results, rounds: int = 3) -> None:
    """Time to first text: ``plan.ttfc_reads`` reads of each client per round, the
    rounds going through every worker in turn."""
    for name in workers:
        results.ttfc[name] = []
    for _round in range(rounds):
        for name, worker in workers.items():
            got = results.ttfc[name]
            if isinstance(got, str):
                continue
            outcome = worker.ttfc("ttfc", plan.ttfc_reads)
            if isinstance(outcome, str):
                results.ttfc[name] = outcome
            else:
                got.extend(outcome)


TTFT_AB = (
    "openai-sync",
    "openai-async",
    "anthropic-sync",
    "sk-source",
    "sk-pipeline",
    "sk-async-source",
    "sk-async-pipeline",
    "sk-anthropic-source",
    "sk-anthropic-pipeline",
    "sk-default-pipeline",
    "sk-default-anthropic-pipeline",
)
"""``--only ttft --baseline DIR``: the raw SDKs, the SDK path's rows (``fast=False``) and
the default's (no ``fast=``: the SDK path before the fast path became the default)."""


def run_ttfc_only(plan: Plan, warm_rounds: int, rounds: int, baseline: Path | None = None) -> int:
    """``--only ttft``: the time-to-first-text clients alone, printed (the page is not
    written). ``warm_rounds`` burst reads per client first, as the full run's CPU
    tables leave each worker before it measures time to first text.

    With ``baseline`` (a directory holding another streamkit package, such as a
    ``git archive`` of an earlier commit), each streamkit row runs twice in the same
    rounds, once on each streamkit: a before/after of one run."""
    import statistics

    names = TTFT_AB if baseline is not None else TTFC
    providers = sorted({BY_NAME[name].provider for name in names})
    configs = [(f"ttfc-{p}", f"{p}:{plan.ttfc_chunks}", 0.0) for p in providers]
    configs += [(f"burst-{p}", f"{p}:{plan.table_chunks}", 0.0) for p in providers]
    results = Results(plan)
    with ServerPool() as pool:
        urls = pool.start(configs)
        urls_of = _urls_of(urls, ("ttfc", "burst"))
        log(f"time to first text alone: {len(names)} clients, {warm_rounds} warm rounds")
        workers = start_workers(names, urls_of)
        if baseline is not None:
            # A spawned worker starts with this process's sys.path: the baseline's
            # streamkit first, for the workers started now only.
            sys.path.insert(0, str(baseline))
            try:
                for name in names:
                    if BY_NAME[name].kind != "raw":
                        workers[f"{name}@baseline"] = Worker(name, urls_of(name))
            finally:
                sys.path.remove(str(baseline))
        try:
            for worker in workers.values():
                if worker.error is None:
                    for _ in range(warm_rounds):
                        worker.read("burst", 1)
                    worker.read("ttfc", 1)
            measure_ttfc(plan, workers, results, rounds)
        finally:
            for worker in workers.values():
                worker.close()
    medians: dict[str, float] = {}
    for name, got in results.ttfc.items():
        if isinstance(got, list) and got:
            medians[name] = statistics.median(got) * 1e3
    for name, got in results.ttfc.items():
        if name not in medians:
            print(f"{name:34s} {got}")
            continue
        client = BY_NAME[name.split("@")[0]]
        raw = "openai-async" if "async" in name else "openai-sync"
        raw = "anthropic-sync" if client.provider == "anthropic" else raw
        added = medians[name] - medians.get(raw, float("nan"))
        reads = len(got) if isinstance(got, list) else 0
        print(
            f"{name:34s} {medians[name]:6.2f} ms  added {added:+6.2f} ms vs {raw} ({reads} reads)"
        )
    return 0


def run_tables(plan: Plan, urls: dict[str, str], results: Results) -> None:
    """Burst and paced tables, time to first text and the flatness test: every client's
    worker is set up once, then the reads go round the workers."""
    log(f"starting {len(TABLE)} client workers")
    workers = start_workers((c.name for c in TABLE), _urls_of(urls))
    try:
        run_cpu_tables(plan, workers, results)

        log("time to first text")
        measure_ttfc(plan, {name: workers[name] for name in TTFC}, results)

        log(f"flatness: {plan.long_chunks} chunks")
        spent = dict.fromkeys(LONG, 0.0)
        for name in LONG:
            results.long[name] = Runs(name, "long")
            if workers[name].error:
                results.long[name].error = workers[name].error
        for round_ in range(plan.long_rounds):
            for name in LONG:
                runs = results.long[name]
                if runs.error is not None or (round_ > 0 and spent[name] >= plan.long_budget):
                    continue
                t0 = time.perf_counter()
                _record(runs, workers[name].read("long", 1))
                spent[name] += time.perf_counter() - t0
            log(f"flatness round {round_ + 1}/{plan.long_rounds} done")
    finally:
        for worker in workers.values():
            worker.close()


def run_memory(plan: Plan, urls: dict[str, str], results: Results) -> None:
    """The flat and the reducing pipeline over the same very long stream, in two
    children at once (their CPU is not the figure here, their memory is)."""
    log(f"memory: {plan.memory_chunks} chunks, flat and reducer; iteration")

    def one(pipeline: str) -> dict[str, Any] | str:
        # Stream iteration keeps every chunk (kilobytes each): the long stream is enough.
        url, chunks = (
            (urls["long-openai"], plan.long_chunks)
            if pipeline == "iteration"
            else (urls["memory"], plan.memory_chunks)
        )
        try:
            result: dict[str, Any] = in_child(
                _scenarios.memory,
                url,
                urls["burst-openai"],
                pipeline,
                chunks,
                plan.memory_samples,
                timeout=1800,
            )
            return result
        except Exception as error:
            return f"{type(error).__name__}: {error}"

    pipelines = ("flat", "reducer", "iteration")
    with ThreadPoolExecutor(2) as pool:
        for pipeline, result in zip(pipelines, pool.map(one, pipelines), strict=True):
            results.memory[pipeline] = result


def run_match(plan: Plan, pool: ServerPool, urls: dict[str, str], results: Results) -> None:
    """Early termination: how many events the paced server sent after the match."""
    log("early termination")
    workers = start_workers(
        (name for name, _ in MATCH_CLIENTS), lambda _name: {"match": urls["match"]}
    )
    try:
        for name, worker in workers.items():
            if worker.error:
                results.match[name] = worker.error
                continue
            records: list[dict[str, Any]] = []
            for _ in range(plan.match_reads):
                outcome = worker.read("match", 1)
                if isinstance(outcome, str):
                    results.match[name] = outcome
                    break
                record = pool.last_request("match", timeout=60)
                record["items"] = outcome[0]
                records.append(record)
            else:
                results.match[name] = records
    finally:
        for worker in workers.values():
            worker.close()


def run_concurrent(plan: Plan, urls: dict[str, str], results: Results) -> None:
    """Many async streams on one event loop, one client kind after the other."""
    for client in plan.concurrent_clients:
        log(f"{plan.concurrent_streams} concurrent streams: {client}")
        try:
            results.concurrent[client] = in_child(
                _scenarios.concurrent,
                urls["concurrent"],
                client,
                plan.concurrent_streams,
                plan.concurrent_chunks,
                plan.concurrent_stagger,
                timeout=600,
            )
        except Exception as error:
            results.concurrent[client] = f"{type(error).__name__}: {error}"


def run_profile(urls: dict[str, str], results: Results) -> None:
    """pyinstrument over the realistic pipeline, the SDK path and the fast path."""
    for fast in (False, True):
        key = "fast" if fast else "sdk"
        log(f"profile: realistic pipeline, {key} path")
        try:
            results.profiles[key] = in_child(_scenarios.profile, urls["profile"], fast, timeout=600)
        except Exception as error:
            results.profiles[key] = f"{type(error).__name__}: {error}"


def run_scenario(plan: Plan, scenario: Scenario, out: Path, command: str) -> int:
    """Measure one scenario's rows and their raw SDK rows in the same rounds; write its
    section of the page (the rest of the page is kept as it is)."""
    import _report
    import _sections

    names: list[str] = []
    for name in scenario.clients:
        baseline = BY_NAME[name].baseline
        for client in (baseline, name):
            if client is not None and client not in names:
                names.append(client)
    providers = sorted({BY_NAME[name].provider for name in names})
    chunks = {"burst": plan.table_chunks, "paced": plan.paced_chunks}
    paces = {"burst": 0.0, "paced": plan.pace}
    configs = [
        (f"{mode}-{provider}", f"{provider}:{chunks[mode]}", paces[mode])
        for mode in scenario.modes
        for provider in providers
    ]
    results = Results(plan)
    results.load.append(os.getloadavg())
    with ServerPool() as pool:
        log(f"scenario {scenario.name}: {len(names)} clients, {', '.join(scenario.modes)}")
        urls = pool.start(configs)
        workers = start_workers(names, _urls_of(urls, scenario.modes))
        try:
            run_cpu_tables(plan, workers, results, scenario.modes)
        finally:
            for worker in workers.values():
                worker.close()
    results.load.append(os.getloadavg())
    results.seconds = time.perf_counter() - START
    body = _report.render_scenario(
        results, scenario, names, command=command, environment=environment()
    )
    page = out.read_text(encoding="utf-8") if out.exists() else ""
    out.write_text(_sections.replace_section(page, scenario.name, body), encoding="utf-8")
    log(f"wrote section {scenario.name} of {out}")
    print(_report.scenario_summary(results, scenario, names))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smaller streams, fewer reads (~3 min)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "docs" / "performance.md",
        help="where to write the report (default: docs/performance.md)",
    )
    parser.add_argument(
        "--scenario",
        choices=sorted(SCENARIOS),
        help="run only this scenario and write only its section of the page",
    )
    parser.add_argument(
        "--only",
        choices=["ttft"],
        help="ttft: only the time-to-first-text table, printed (the page is not written)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="with --only ttft: a directory holding another streamkit package, measured "
        "in the same rounds (before/after)",
    )
    parser.add_argument(
        "--ttft-rounds",
        type=int,
        default=3,
        help="with --only ttft: rounds of reads (default 3)",
    )
    parser.add_argument(
        "--warm-rounds",
        type=int,
        default=3,
        help="with --only ttft: burst reads per client before measuring (default 3)",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.only == "ttft":
        return run_ttfc_only(plan, args.warm_rounds, args.ttft_rounds, args.baseline)
    if args.scenario:
        return run_scenario(plan, SCENARIOS[args.scenario], args.out, _command(args))
    results = Results(plan)
    results.load.append(os.getloadavg())
    configs = [
        ("burst-openai", f"openai:{plan.table_chunks}", 0.0),
        ("burst-anthropic", f"anthropic:{plan.table_chunks}", 0.0),
        ("burst-groq", f"groq:{plan.table_chunks}", 0.0),
        ("burst-mistral", f"mistral:{plan.table_chunks}", 0.0),
        ("paced-openai", f"openai:{plan.paced_chunks}", plan.pace),
        ("paced-anthropic", f"anthropic:{plan.paced_chunks}", plan.pace),
        ("paced-groq", f"groq:{plan.paced_chunks}", plan.pace),
        ("paced-mistral", f"mistral:{plan.paced_chunks}", plan.pace),
        ("ttfc-openai", f"openai:{plan.ttfc_chunks}", 0.0),
        ("ttfc-anthropic", f"anthropic:{plan.ttfc_chunks}", 0.0),
        ("ttfc-groq", f"groq:{plan.ttfc_chunks}", 0.0),
        ("ttfc-mistral", f"mistral:{plan.ttfc_chunks}", 0.0),
        ("long-openai", f"openai:{plan.long_chunks}", 0.0),
        ("match", f"openai:{plan.match_chunks}:match={plan.match_at}", plan.match_pace),
        ("concurrent", f"openai:{plan.concurrent_chunks}", plan.concurrent_pace),
        ("profile", f"openai:{plan.profile_chunks}", 0.0),
        ("memory", f"openai:{plan.memory_chunks}", 0.0),
    ]
    with ServerPool() as pool:
        log("building the streams and starting the servers")
        urls = pool.start(configs)
        run_tables(plan, urls, results)
        run_match(plan, pool, urls, results)
        run_concurrent(plan, urls, results)
        run_profile(urls, results)
        run_memory(plan, urls, results)
    results.load.append(os.getloadavg())
    results.seconds = time.perf_counter() - START
    import _report
    import _sections

    text = _report.render(results, command=_command(args), environment=environment())
    # sections other scripts write (bench_serve.py, bench_multistream.py, bench_redis.py,
    # bench_otel.py) survive this rewrite
    args.out.write_text(_sections.kept_sections(args.out, text))
    log(f"wrote {args.out} ({results.seconds / 60:.1f} min)")
    print(_report.summary(results))
    return 0


def _command(args: argparse.Namespace) -> str:
    python = sys.executable
    relative = os.path.relpath(python, Path.cwd())
    if not relative.startswith(".."):  # a venv in the checkout: .venv-bench/bin/python
        python = relative
    script = os.path.relpath(__file__, Path.cwd())
    return shlex.join([python, script, *sys.argv[1:]])


def environment() -> dict[str, Any]:
    """Where and with what this run was made."""
    versions = {}
    for package in (
        "streamkit",
        "openai",
        "anthropic",
        "groq",
        "mistralai",
        "litellm",
        "langchain-openai",
        "langchain-core",
        "mirascope",
        "pydantic-ai-slim",
        "orjson",
        "pydantic",
        "pydantic-core",
        "reactivex",
        "httpx2",
        "httpx",
        "pyinstrument",
    ):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    commit = ""
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if dirty:
            commit += " + uncommitted changes"
    except OSError:
        pass
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "versions": versions,
        "commit": commit,
    }


if __name__ == "__main__":
    sys.exit(main())
