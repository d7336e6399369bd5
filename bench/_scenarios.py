"""The measurements that are not "read a whole stream again and again": each function
here runs in a fresh spawned child (``_measure.in_child``) and returns plain data.

- :func:`memory`: resident memory while one very long stream goes through a pipeline;
- :func:`concurrent`: many async streams at once on one event loop (CPU, loop lag);
- :func:`profile`: where the realistic pipeline's time goes (pyinstrument, else cProfile).
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import statistics
import threading
import time
from collections import defaultdict
from typing import Any

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    """This process's resident memory now, in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


def memory(url: str, warm_url: str, pipeline: str, chunks: int, samples: int) -> dict[str, Any]:
    """Stream ``url`` (``chunks`` text deltas) and sample the resident memory
    ``samples`` times along the way (from the subscriber, on the source thread).

    ``pipeline``: ``"flat"`` or ``"reducer"`` (see ``_clients``), or ``"iteration"``:
    ``for chunk, tool in stream``, which keeps every chunk so that a second iteration
    replays them without a new request.
    """
    import _clients

    new_stream = _clients._sk_factory(url)
    warm_stream = _clients._sk_factory(warm_url)
    every = max(1, chunks // samples)
    points: list[tuple[int, int]] = []
    count = 0
    last: list[Any] = []

    def sample(_item: Any) -> None:
        nonlocal count
        count += 1
        if count % every == 0:
            points.append((count, _rss()))

    def on_next(item: Any) -> None:
        if pipeline == "reducer":
            last.append(item)  # the CallResponse, its one item (sampled at render)
        else:
            sample(item)

    def read(stream: Any) -> None:
        if pipeline == "iteration":
            for pair in stream:
                sample(pair)
            return
        # The reducer emits one item, at the end: it is sampled at each snapshot (its
        # render), the flat pipeline at each text it emits.
        observable = (
            _clients.flat(stream) if pipeline == "flat" else _clients.realistic(stream, sample)
        )
        done = threading.Event()
        failure: list[BaseException] = []

        def on_error(error: BaseException) -> None:
            failure.append(error)
            done.set()

        observable.subscribe(on_next, on_error, done.set)
        done.wait()
        if failure:
            raise failure[0]

    read(warm_stream())  # imports, first-call caches
    gc.collect()
    points.clear()
    last.clear()
    count = 0
    baseline = _rss()
    c0, w0 = time.process_time(), time.perf_counter()
    stream = new_stream()
    read(stream)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    end = _rss()
    text_chars = len(last[-1].content) if last else None
    return {
        "pipeline": pipeline,
        "chunks": chunks,
        "items": count,
        "baseline": baseline,
        "points": points,
        "end": end,
        # ru_maxrss (the kernel's high-water mark) is updated lazily and counts pages
        # differently from statm: it came out below the end's RSS; a peak is at least that
        "peak": max(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            end,
            *(rss for _count, rss in points),
        ),
        "text_chars": text_chars,
        "cpu": cpu,
        "wall": wall,
    }


class _FullCollections:
    """A ``gc.callbacks`` entry recording how long each full (generation 2) collection
    took: the collector stops the loop for that long, one cause of its lag."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.durations.append(time.perf_counter() - self._started)


async def _lag_monitor(stop: asyncio.Event, interval: float, lags: list[float]) -> None:
    """How late the loop runs a callback due ``interval`` seconds after the last one."""
    while not stop.is_set():
        due = time.perf_counter() + interval
        await asyncio.sleep(interval)
        lags.append(max(0.0, time.perf_counter() - due))


def concurrent(url: str, client: str, streams: int, chunks: int, stagger: float) -> dict[str, Any]:
    """``streams`` async streams of ``url`` at once on one loop, started ``stagger``
    seconds apart in all (a service taking requests as they come, not in lockstep).

    ``client``: ``openai-async`` (the raw SDK), ``sk-async-source``,
    ``sk-async-pipeline`` (realistic), ``sk-fast-async-source`` or
    ``sk-fast-async-pipeline``. One SDK client (one connection pool) serves every
    stream, as in a server process.
    """
    import _clients
    import openai

    sdk = openai.AsyncOpenAI(base_url=url + "/v1", api_key=_clients.KEY, max_retries=0)
    fast = "fast" in client
    pipeline = client.endswith("pipeline")

    async def one_raw() -> int:
        n = 0
        stream = await sdk.chat.completions.create(
            model=_clients.MODEL,
            messages=_clients.MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        async for _chunk in stream:
            n += 1
        return n

    async def one_sk() -> int:
        import streamkit as sk

        stream = sk.stream("openai", _clients.MODEL, _clients.MESSAGES, client=sdk, fast=fast)
        observable = _clients.realistic(stream) if pipeline else stream
        return await _clients._subscribe_and_await(observable)

    one = one_raw if client == "openai-async" else one_sk

    async def delayed(i: int) -> int:
        await asyncio.sleep(stagger * i / streams)
        return await one()

    async def main() -> dict[str, Any]:
        await one()  # warm: imports, the first connection
        gc.collect()
        stop = asyncio.Event()
        lags: list[float] = []
        monitor = asyncio.ensure_future(_lag_monitor(stop, 0.01, lags))
        pauses = _FullCollections()
        gc.callbacks.append(pauses)
        c0, w0 = time.process_time(), time.perf_counter()
        results = await asyncio.gather(
            *(delayed(i) for i in range(streams)), return_exceptions=True
        )
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        gc.callbacks.remove(pauses)
        stop.set()
        await monitor
        errors = [r for r in results if isinstance(r, BaseException)]
        lags.sort()
        return {
            "client": client,
            "streams": streams,
            "chunks": chunks,
            "ok": streams - len(errors),
            "errors": sorted({_describe(e) for e in errors}),
            "cpu": cpu,
            "wall": wall,
            "lag_p50": statistics.median(lags) if lags else float("nan"),
            "lag_p99": lags[int(len(lags) * 0.99)] if lags else float("nan"),
            "lag_max": lags[-1] if lags else float("nan"),
            "full_gc": pauses.durations,
        }

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.run_until_complete(sdk.close())
        loop.close()


def _describe(error: BaseException) -> str:
    """An error and its causes, one line (an SDK's "Connection error." says little)."""
    parts = []
    seen: BaseException | None = error
    while seen is not None and len(parts) < 4:
        parts.append(f"{type(seen).__name__}: {seen}"[:120])
        seen = seen.__cause__ or seen.__context__
    return " <- ".join(parts)


# -- where the time goes ------------------------------------------------------------------
_GROUPS = (
    ("streamkit", "/streamkit/"),
    ("reactivex", "/reactivex/"),
    ("openai SDK", "/openai/"),
    ("pydantic", "/pydantic"),
    ("HTTP (httpx2/httpx, httpcore, h11)", ("/httpx", "/httpcore", "/h11/", "/anyio/")),
    ("json (stdlib)", "/json/"),
    ("typing / inspect (stdlib)", ("/typing.py", "/inspect.py", "typing_extensions")),
    ("socket, ssl, selectors (stdlib)", ("/socket.py", "/ssl.py", "/selectors.py")),
)


def _where(path: str, line: int) -> str:
    """``path:line`` as a module's file within its top package (``openai/_models.py:608``,
    ``typing.py:2424``): no machine's directories on the page."""
    if not path.startswith("/"):
        return f"{path}:{line}"
    parts = [os.path.basename(path)]
    folder = os.path.dirname(path)
    while os.path.exists(os.path.join(folder, "__init__.py")):
        parts.append(os.path.basename(folder))
        folder = os.path.dirname(folder)
    return f"{'/'.join(reversed(parts))}:{line}"


def _group(path: str | None) -> str:
    if not path or not path.startswith("/"):
        return "other"
    for name, marks in _GROUPS:
        for mark in (marks,) if isinstance(marks, str) else marks:
            if mark in path:
                return name
    return "other"


def profile(url: str, fast: bool) -> dict[str, Any]:
    """Profile the realistic pipeline over ``url``'s stream, the whole pipeline on the
    calling thread (``ImmediateScheduler``), so one thread's profile is all of it.

    pyinstrument (statistical: little distortion) when installed, else cProfile.
    Returns self time grouped by package, the top functions by self time, and (for
    pyinstrument) its text rendering of the call tree.
    """
    import _clients
    from reactivex.scheduler import ImmediateScheduler

    new_stream = _clients._sk_factory(url, **({"fast": True} if fast else {}))

    def run() -> None:
        failure: list[BaseException] = []
        _clients.realistic(new_stream()).subscribe(
            lambda _item: None, failure.append, scheduler=ImmediateScheduler()
        )
        if failure:
            raise failure[0]

    run()  # warm
    try:
        from pyinstrument import Profiler
    except ImportError:
        return {**_cprofile(run), "construct": _construct_costs()}
    profiler = Profiler(interval=0.0002)
    profiler.start()
    run()
    session = profiler.stop()
    root = session.root_frame()
    by_group: dict[str, float] = defaultdict(float)
    by_function: dict[tuple[str, str], float] = defaultdict(float)
    stack = [root]
    while stack:
        frame = stack.pop()
        stack.extend(frame.children)
        if frame.is_synthetic:  # "[self]" and await markers: in the parent's self time
            continue
        own = frame.total_self_time
        if own <= 0:
            continue
        path = frame.file_path or ""
        # A built-in's time (isinstance, orjson.loads, a socket read) goes to the package
        # of the Python code that called it.
        owner = frame
        while owner.parent is not None and not (owner.file_path or "").startswith("/"):
            owner = owner.parent
        by_group[_group(owner.file_path)] += own
        by_function[(frame.function or "?", _where(path, frame.line_no))] += own
    total = sum(by_group.values())
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    return {
        "tool": "pyinstrument",
        "total": total,
        "groups": sorted(by_group.items(), key=lambda kv: -kv[1]),
        "functions": sorted(
            ((name, where, t) for (name, where), t in by_function.items()), key=lambda x: -x[2]
        )[:15],
        "text": text,
        "construct": _construct_costs(),
    }


def _construct_costs() -> dict[str, float]:
    """Seconds to build one normalized chunk: pydantic's ``model_construct`` against
    ``streamkit._models.construct_chunk`` (what the decoders call), same fields."""
    import timeit

    from streamkit.providers.openai import OpenAIChunk

    fields: dict[str, Any] = {
        "provider": "openai",
        "content": " fox",
        "thinking": "",
        "refusal": "",
        "finish_reasons": None,
        "model": "gpt-4o",
        "id": "chatcmpl-1",
        "usage": None,
        "tool_calls": [],
        "audio": None,
        "audio_transcript": None,
        "chunk": None,
    }
    costs = {
        "model_construct": min(
            timeit.repeat(lambda: OpenAIChunk.model_construct(**fields), number=20_000, repeat=5)
        )
        / 20_000
    }
    try:
        from streamkit._models import construct_chunk
    except ImportError:
        return costs
    costs["construct_chunk"] = (
        min(timeit.repeat(lambda: construct_chunk(OpenAIChunk, **fields), number=20_000, repeat=5))
        / 20_000
    )
    return costs


def _cprofile(run: Any) -> dict[str, Any]:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    by_group: dict[str, float] = defaultdict(float)
    functions = []
    for (path, line, name), (_cc, _nc, tottime, _ct, _callers) in stats.items():
        by_group[_group(path if path != "~" else None)] += tottime
        functions.append((name, _where(path, line), tottime))
    functions.sort(key=lambda x: -x[2])
    return {
        "tool": "cProfile",
        "total": sum(by_group.values()),
        "groups": sorted(by_group.items(), key=lambda kv: -kv[1]),
        "functions": functions[:15],
        "text": "",
    }
