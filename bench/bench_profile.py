"""Where each microsecond of streamkit's per-chunk cost goes, and its time to first text,
before and after a change (issue 17, performance round 2), on the SDK path (``fast=False``).

Run by hand from the repository root, with a copy of the baseline's ``streamkit/``
package (``git archive``: no worktree needed)::

    mkdir -p /tmp/base && git archive <baseline commit> streamkit | tar -x -C /tmp/base
    PYTHONPATH=. python bench/bench_profile.py --baseline /tmp/base --label <commit>

It writes its section of ``docs/performance.md`` (between the ``profile-round2``
markers, which ``bench/run.py`` keeps when it rewrites the page); ``--no-write`` prints
it only.

Each round runs one child process per side (the baseline's streamkit, then this
checkout's, by ``PYTHONPATH``), so both sides see the same machine load; every figure
is the median over rounds. In each child:

- **components**: each per-chunk step timed alone (``timeit``) over the events the SDK
  itself decoded from the bench stream (``bench/_streams.py``, 2,000 text deltas): the
  adapter's ``decode`` (``construct_chunk`` inside it), the lifecycle ``Recorder.chunk``,
  the reducer's ``Accumulator.add`` (the message builder inside it) and ``snapshot``;
- **streamkit alone**: the source, and the realistic pipeline of ``bench/run.py``, over a
  fake SDK client that hands out the same event objects (no HTTP, no SSE, no JSON), on
  the calling thread (``ImmediateScheduler``): all of streamkit's own per-chunk work and
  nothing else. What the components do not account for is the remainder rows (the
  pull loop and its dispatch; the operators and their reactivex hops);
- **live**: process CPU per text delta reading the bench stream from a ReplayServer in
  another process: the raw SDK loop, the source, the realistic pipeline (reads
  interleaved; the ratio of each read to the raw read next to it, median);
- **time to first text**: from the call to the first item carrying text, on a burst
  stream of 30 deltas, raw SDK / source / realistic pipeline reads interleaved;
- a cProfile of the realistic pipeline over the fake client: self time per function,
  scaled so that its sum is the uninstrumented per-chunk figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

PAGE = ROOT / "docs" / "performance.md"
SECTION = "profile-round2"
CHUNKS = 2_000
TTFT_CHUNKS = 30
PROVIDERS = ("openai", "anthropic")
MU = "\u00b5"
X = "\u00d7"


# -- the child: one side's measurements ------------------------------------------------
class _FakeStream:
    """What the SDK's ``create(stream=True)`` returns, over events decoded beforehand."""

    response = None

    def __init__(self, events: list[Any]) -> None:
        self._events = iter(events)

    def __iter__(self) -> Any:
        return self._events

    def close(self) -> None:
        return None


def _events_and_fake(provider: str, url: str) -> tuple[list[Any], Any, str, dict[str, Any]]:
    """The SDK's own event objects of the stream at ``url``, and a client whose
    ``create`` hands them out again without any I/O."""
    import _clients

    if provider == "openai":
        client = _clients._openai(url)
        events = list(
            client.chat.completions.create(
                model=_clients.MODEL,
                messages=_clients.MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        fake = _clients._openai("http://127.0.0.1:9")
        fake.chat.completions.create = lambda **_: _FakeStream(events)
        # fast=False: the fake replaces the SDK's own stream, which the fast path skips
        return events, fake, _clients.MODEL, {"fast": False}
    client = _clients._anthropic(url)
    events = list(
        client.messages.create(
            model=_clients.ANTHROPIC_MODEL, max_tokens=1024, messages=_clients.MESSAGES, stream=True
        )
    )
    fake = _clients._anthropic("http://127.0.0.1:9")
    fake.messages.create = lambda **_: _FakeStream(events)
    return events, fake, _clients.ANTHROPIC_MODEL, {"max_tokens": 1024, "fast": False}


def _best(function: Callable[[], Any], repeat: int = 15) -> float:
    """The least CPU seconds of this thread over ``repeat`` calls (timeit's rule: the
    rest is noise). CPU time, not wall time: on a shared machine the time this thread
    spends preempted is not its cost."""
    times = []
    for _ in range(repeat):
        t0 = time.thread_time()
        function()
        times.append(time.thread_time() - t0)
    return min(times)


def _components(
    provider: str, events: list[Any], fake: Any, model: str, params: dict[str, Any]
) -> dict[str, float]:
    import _clients
    from reactivex.scheduler import ImmediateScheduler

    import streamkit as sk
    from streamkit._accumulator import Accumulator
    from streamkit._lifecycle import Recorder
    from streamkit._models import construct_chunk
    from streamkit.providers import get_adapter

    n = len(events)
    adapter = get_adapter(provider)
    request = adapter.build_request(model, [{"role": "user", "content": "x"}], dict(params))
    # decode with one decoder per pass, as a stream does (its state: model, id, tools)
    decoded = []
    decoder = adapter.new_decoder(request)
    for event in events:
        decoded.extend(decoder.decode(event))
    chunks = decoded
    kinds = [(type(chunk), dict(chunk.__dict__)) for chunk in chunks]

    def decode() -> None:
        decoder = adapter.new_decoder(request)
        for event in events:
            decoder.decode(event)

    try:  # the decoders' builder since round 2; construct_chunk before it
        from streamkit._models import CHUNK_FIELDS, chunk_builder

        builders = {kind: chunk_builder(kind, CHUNK_FIELDS) for kind, _values in kinds}

        def construct() -> None:
            for kind, values in kinds:
                builders[kind](dict(values))  # a fresh dict, as a decoder's literal

    except ImportError:

        def construct() -> None:
            for kind, values in kinds:
                construct_chunk(kind, **values)

    def record() -> None:
        recorder = Recorder(provider, model)
        recorder.begin()
        for chunk in chunks:
            recorder.chunk(chunk)

    def add() -> None:
        accumulator = Accumulator()
        for chunk in chunks:
            accumulator.add(chunk)

    def builder() -> None:
        built = type(chunks[0]).message_builder()
        for chunk in chunks:
            built.add(chunk)

    full = Accumulator()
    for chunk in chunks:
        full.add(chunk)

    def snapshot() -> None:
        for _ in range(n):
            full.snapshot()

    def run(pipeline: bool) -> Callable[[], None]:
        def go() -> None:
            stream = sk.stream(provider, model, _clients.MESSAGES, client=fake, **params)
            observable = _clients.realistic(stream) if pipeline else stream
            failure: list[BaseException] = []
            observable.subscribe(lambda _item: None, failure.append, scheduler=ImmediateScheduler())
            if failure:
                raise failure[0]

        return go

    figures = {
        "decode": _best(decode),
        "construct_chunk": _best(construct),
        "recorder": _best(record),
        "add": _best(add),
        "message_builder": _best(builder),
        "snapshot": _best(snapshot),
        "source": _best(run(False), 21),
        "pipeline": _best(run(True), 21),
    }
    return {name: seconds / n * 1e6 for name, seconds in figures.items()}


def _profile(
    provider: str, fake: Any, model: str, params: dict[str, Any], n: int, per_chunk: float
) -> list[tuple[str, float]]:
    """cProfile self time per function of the realistic pipeline over the fake client,
    in µs per event, scaled to the uninstrumented figure ``per_chunk``."""
    import cProfile
    import pstats

    import _clients
    from _scenarios import _where
    from reactivex.scheduler import ImmediateScheduler

    import streamkit as sk

    def go() -> None:
        stream = sk.stream(provider, model, _clients.MESSAGES, client=fake, **params)
        _clients.realistic(stream).subscribe(lambda _item: None, scheduler=ImmediateScheduler())

    go()
    profiler = cProfile.Profile()
    reads = 5
    profiler.enable()
    for _ in range(reads):
        go()
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows: dict[str, float] = {}
    for (path, line, name), (_cc, _nc, tottime, _ct, _callers) in stats.items():
        if name == "go" or "bench_profile" in path:
            continue
        where = f"{name} ({_where(path, line)})" if path != "~" else name
        rows[where] = rows.get(where, 0.0) + tottime
    total = sum(rows.values())
    scale = per_chunk / (total / (reads * n) * 1e6) if total else 0.0
    ranked = sorted(rows.items(), key=lambda kv: -kv[1])[:14]
    return [(where, seconds / (reads * n) * 1e6 * scale) for where, seconds in ranked]


def _live(provider: str, url: str, reads: int) -> dict[str, list[float]]:
    """CPU µs per text delta: raw SDK, source, realistic pipeline, reads interleaved."""
    import _clients

    names = (
        ("openai-sync", "sk-source", "sk-pipeline")
        if provider == "openai"
        else ("anthropic-sync", "sk-anthropic-source", "sk-anthropic-pipeline")
    )
    runs = [_clients.CLIENTS[name](url) for name in names]
    for run in runs:
        run()
    cpu: dict[str, list[float]] = {"raw": [], "source": [], "pipeline": []}
    for _ in range(reads):
        for key, run in zip(cpu, runs, strict=True):
            c0 = time.process_time()
            run()
            cpu[key].append((time.process_time() - c0) / CHUNKS * 1e6)
    return cpu


def _ttft(provider: str, url: str, reads: int) -> dict[str, list[float]]:
    """Milliseconds from the call to the first item with text, reads interleaved."""
    import _clients

    names = (
        ("openai-sync", "sk-source", "sk-pipeline")
        if provider == "openai"
        else ("anthropic-sync", "sk-anthropic-source", "sk-anthropic-pipeline")
    )
    first: list[float] = []

    def tap(item: Any) -> None:
        if not first and _clients.has_text(item):
            first.append(time.perf_counter())

    runs = [_clients.CLIENTS[name](url, tap=tap) for name in names]
    for run in runs:
        run()
    seconds: dict[str, list[float]] = {"raw": [], "source": [], "pipeline": []}
    for _ in range(reads):
        for key, run in zip(seconds, runs, strict=True):
            first.clear()
            t0 = time.perf_counter()
            run()
            seconds[key].append((first[0] - t0) * 1e3)
    return seconds


def _own_ttft(
    provider: str, fake: Any, model: str, params: dict[str, Any], reads: int
) -> dict[str, list[float]]:
    """Microseconds from the call to the first text over the fake client (no HTTP: what
    streamkit itself adds before the first text), on the default scheduler (the
    source's own thread), source and realistic pipeline reads interleaved."""
    import threading

    import _clients

    import streamkit as sk

    first: list[float] = []

    def tap(item: Any) -> None:
        if not first and _clients.has_text(item):
            first.append(time.perf_counter())

    def read(pipeline: bool) -> float:
        first.clear()
        done = threading.Event()
        t0 = time.perf_counter()
        stream = sk.stream(provider, model, _clients.MESSAGES, client=fake, **params)
        if pipeline:
            _clients.realistic(stream, tap).subscribe(
                lambda _item: None, lambda _error: done.set(), done.set
            )
        else:
            stream.subscribe(tap, lambda _error: done.set(), done.set)
        done.wait()
        return (first[0] - t0) * 1e6

    for _ in range(20):
        read(False)
        read(True)
    micros: dict[str, list[float]] = {"source": [], "pipeline": []}
    for _ in range(reads):
        micros["source"].append(read(False))
        micros["pipeline"].append(read(True))
    return micros


def child(urls: dict[str, str], profile: bool, reads: int) -> dict[str, Any]:
    """One side's figures (this process imports whichever streamkit PYTHONPATH names)."""
    import streamkit

    out: dict[str, Any] = {"streamkit": str(Path(streamkit.__file__).parent.parent)}
    for provider in PROVIDERS:
        events, fake, model, params = _events_and_fake(provider, urls[f"burst-{provider}"])
        figures: dict[str, Any] = {"events": len(events)}
        figures["components"] = _components(provider, events, fake, model, params)
        if profile:
            figures["profile"] = _profile(
                provider, fake, model, params, len(events), figures["components"]["pipeline"]
            )
        figures["live"] = _live(provider, urls[f"burst-{provider}"], reads)
        figures["ttft"] = _ttft(provider, urls[f"ttft-{provider}"], 8 * reads)
        figures["own_ttft"] = _own_ttft(provider, fake, model, params, 100 * reads)
        out[provider] = figures
    return out


# -- the parent: rounds, both sides, the page section -----------------------------------
def _run_child(root: Path, urls: dict[str, str], profile: bool, reads: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(HERE)])}
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            json.dumps({"urls": urls, "profile": profile, "reads": reads}),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"child for {root} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if Path(result["streamkit"]).resolve() != root.resolve():
        raise RuntimeError(f"the child imported streamkit from {result['streamkit']}, not {root}")
    return result


def measure(
    baseline: Path, rounds: int, reads: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[float]]:
    """``rounds`` children per side, alternating; the load averages along the run."""
    from _server import ServerPool

    before: list[dict[str, Any]] = []
    after: list[dict[str, Any]] = []
    load = [os.getloadavg()[0]]
    with ServerPool() as pool:
        configs = [(f"burst-{p}", f"{p}:{CHUNKS}", 0.0) for p in PROVIDERS]
        configs += [(f"ttft-{p}", f"{p}:{TTFT_CHUNKS}", 0.0) for p in PROVIDERS]
        urls = pool.start(configs)
        for round_ in range(rounds):
            for side, root in (("before", baseline), ("after", ROOT)):
                result = _run_child(root, urls, profile=round_ == 0, reads=reads)
                (before if side == "before" else after).append(result)
            load.append(os.getloadavg()[0])
            print(f"round {round_ + 1}/{rounds} (load {load[-1]:.1f})", file=sys.stderr)
    return before, after, load


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


_COMPONENTS = (
    (
        "decode",
        "adapter `decode` (SDK event → `Chunk`), whole",
        "_chat.py `ChatChunkDecoder.decode` / anthropic `AnthropicDecoder.decode`",
    ),
    (
        "construct_chunk",
        "of which building the chunk",
        "_models.py `construct_chunk` (before), `chunk_builder` (after)",
    ),
    ("recorder", "lifecycle `Recorder.chunk`", "_lifecycle.py"),
    (
        "loop",
        "pull loop and delivery (remainder: source - decode - recorder)",
        "_source.py `SyncPull._read`, `sync_source.run`, reactivex `AutoDetachObserver`",
    ),
    ("source", "**streamkit source alone**", "fake SDK client, `ImmediateScheduler`"),
    ("add", "reducer `Accumulator.add`, whole", "_accumulator.py"),
    (
        "message_builder",
        "of which the message builder's `add`",
        "_chat.py `ChatMessageBuilder` / anthropic `AnthropicMessageBuilder`",
    ),
    ("snapshot", "reducer `snapshot()`", "_accumulator.py `ResponseSnapshot`"),
    (
        "operators",
        "operators and reactivex hops (remainder: pipeline - source - add - snapshot)",
        "ops/ (take_until_match, accumulate, do_action, to_call_response)",
    ),
    ("pipeline", "**realistic pipeline**", "fake SDK client, `ImmediateScheduler`"),
)


def _component_medians(results: list[dict[str, Any]], provider: str) -> dict[str, float]:
    keys = results[0][provider]["components"]
    medians = {key: _median([r[provider]["components"][key] for r in results]) for key in keys}
    medians["loop"] = medians["source"] - medians["decode"] - medians["recorder"]
    medians["operators"] = (
        medians["pipeline"] - medians["source"] - medians["add"] - medians["snapshot"]
    )
    return medians


def _ratios(results: list[dict[str, Any]], provider: str, key: str) -> tuple[float, float, float]:
    """Median per-read ratio to the raw read beside it; and the medians of raw and key."""
    ratios = []
    raw_all: list[float] = []
    key_all: list[float] = []
    for result in results:
        live = result[provider]["live"]
        raw_all += live["raw"]
        key_all += live[key]
        ratios += [k / r for k, r in zip(live[key], live["raw"], strict=True)]
    return _median(ratios), _median(raw_all), _median(key_all)


def _ttft_medians(results: list[dict[str, Any]], provider: str) -> dict[str, float]:
    pooled: dict[str, list[float]] = {}
    for result in results:
        for key, values in result[provider]["ttft"].items():
            pooled.setdefault(key, []).extend(values)
    return {key: _median(values) for key, values in pooled.items()}


def _own_ttft_figures(
    results: list[dict[str, Any]], provider: str
) -> dict[str, tuple[float, float]]:
    """(10th percentile, median) of every read of each client over the rounds."""
    figures = {}
    for key in ("source", "pipeline"):
        pooled = sorted(x for r in results for x in r[provider]["own_ttft"][key])
        figures[key] = (pooled[len(pooled) // 10], _median(pooled))
    return figures


def render(
    before: list[dict[str, Any]],
    after: list[dict[str, Any]],
    load: list[float],
    label: str,
    rounds: int,
    reads: int,
) -> str:
    """The page section."""
    lines = [
        "## Where each microsecond goes (per chunk, SDK path), before and after round 2",
        "",
        "<!-- Generated by bench/bench_profile.py: do not edit by hand. -->",
        "",
        f"Written by `bench/bench_profile.py` ({rounds} rounds, each one child process per "
        f"side; load average along the run: {', '.join(f'{x:.1f}' for x in load)}). "
        f"**before**: streamkit at {label}; **after**: this checkout. Component and "
        "streamkit-alone figures are the least thread CPU time of 15 to 21 passes over the "
        f"SDK's own event objects of the {CHUNKS:,}-delta bench stream ({MU}s per SDK "
        "event), median over rounds: streamkit's own work only (see the script's "
        "docstring). The live rows read the stream from a ReplayServer in another "
        "process: process CPU per text delta, the ratio taken per read against the raw "
        "SDK read next to it, median over reads.",
        "",
        "The 3.9 ms that section 2 of an earlier run showed as added to the time to first "
        "text by the realistic pipeline was the bench's own tap, not streamkit: it "
        "watched the subscriber, which sees only the `CallResponse` emitted at the end of "
        "the 30-delta stream, so it counted the rest of the stream's parsing (fixed in "
        "`bench/_clients.py` by c4970e1: the tap is now the `do_action` render). What the "
        "first text waits for in streamkit itself is the source's thread (one per "
        "request, so that `subscribe` returns at once: thread creation plus, on a busy "
        "machine, the wait for a core) and ~0.1 ms of per-request set-up (the stream, "
        "the operators' subscriptions, the lifecycle record).",
        "",
    ]
    for provider in PROVIDERS:
        b, a = _component_medians(before, provider), _component_medians(after, provider)
        lines += [
            f"### {provider}",
            "",
            f"| step | where | before {MU}s | after {MU}s |",
            "| --- | --- | ---: | ---: |",
        ]
        for key, label_, where in _COMPONENTS:
            lines.append(f"| {label_} | {where} | {b[key]:.2f} | {a[key]:.2f} |")
        lines += [
            "",
            f"Live ({CHUNKS:,} deltas, burst):",
            "",
            f"| client | before {MU}s | before {X} raw | after {MU}s | after {X} raw |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        rb_raw = _ratios(before, provider, "raw")
        ra_raw = _ratios(after, provider, "raw")
        lines.append(f"| raw SDK | {rb_raw[2]:.1f} | 1 | {ra_raw[2]:.1f} | 1 |")
        for key, name in (("source", "streamkit source alone"), ("pipeline", "realistic pipeline")):
            rb, ra = _ratios(before, provider, key), _ratios(after, provider, key)
            lines.append(
                f"| {name} | {rb[2]:.1f} | {rb[0]:.3f}{X} | {ra[2]:.1f} | {ra[0]:.3f}{X} |"
            )
        tb, ta = _ttft_medians(before, provider), _ttft_medians(after, provider)
        lines += [
            "",
            f"Time to first text ({TTFT_CHUNKS} deltas, burst; median ms, and added to the "
            "raw SDK's median of the same side):",
            "",
            "| client | before ms | before added | after ms | after added |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for key, name in (
            ("raw", "raw SDK"),
            ("source", "streamkit source alone"),
            ("pipeline", "realistic pipeline"),
        ):
            before_ms, after_ms = tb[key], ta[key]
            lines.append(
                f"| {name} | {before_ms:.2f} | {before_ms - tb['raw']:+.2f} "
                f"| {after_ms:.2f} | {after_ms - ta['raw']:+.2f} |"
            )
        own_b, own_a = _own_ttft_figures(before, provider), _own_ttft_figures(after, provider)
        lines += [
            "",
            "What streamkit itself adds before the first text: from the call to the first "
            f"text over the fake client (no HTTP), on the source's own thread ({MU}s, the "
            "10th percentile and the median of every read of the side):",
            "",
            "| client | before p10 | before median | after p10 | after median |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for key, name in (("source", "streamkit source alone"), ("pipeline", "realistic pipeline")):
            lines.append(
                f"| {name} | {own_b[key][0]:.0f} | {own_b[key][1]:.0f} "
                f"| {own_a[key][0]:.0f} | {own_a[key][1]:.0f} |"
            )
        lines += [
            "",
            "Top frames of the realistic pipeline over the fake client (cProfile self "
            f"time, {MU}s per event, scaled to the uninstrumented total):",
            "",
        ]
        pb = before[0][provider].get("profile", [])
        pa = after[0][provider].get("profile", [])
        lines += [
            f"| before: function | {MU}s | after: function | {MU}s |",
            "| --- | ---: | --- | ---: |",
        ]
        for i in range(max(len(pb), len(pa))):
            left = f"`{pb[i][0]}` | {pb[i][1]:.2f}" if i < len(pb) else " | "
            right = f"`{pa[i][0]}` | {pa[i][1]:.2f}" if i < len(pa) else " | "
            lines.append(f"| {left} | {right} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument(
        "--baseline", type=Path, help="a directory holding the baseline's streamkit/"
    )
    parser.add_argument("--label", default="the baseline", help="what the baseline is (a commit)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reads", type=int, default=3, help="live reads per client per round")
    parser.add_argument("--no-write", action="store_true", help="print the section only")
    args = parser.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(child(spec["urls"], spec["profile"], spec["reads"])))
        return 0
    if args.baseline is None:
        parser.error("--baseline is required")
    before, after, load = measure(args.baseline, args.rounds, args.reads)
    body = render(before, after, load, args.label, args.rounds, args.reads)
    print(body)
    if not args.no_write:
        import _sections

        page = PAGE.read_text(encoding="utf-8") if PAGE.exists() else ""
        PAGE.write_text(_sections.replace_section(page, SECTION, body), encoding="utf-8")
        print(f"wrote section {SECTION} of {PAGE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
