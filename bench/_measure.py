"""Measuring clients in child processes: process CPU (every thread) and wall time.

A :class:`Worker` is one spawned process holding one client, set up once for several
streams (its imports, client objects and event loop are never measured). The parent
asks it for a few reads at a time, going round every worker in turn, so that a slow
drift of the machine's load (others run tests on the same two cores) spreads over all
clients of a table instead of landing on one; each figure is then a median.

No ``gc.collect()`` between reads: after a full collection the next read pays ~1 ms of
page faults re-growing the heap (measured here), a cost no real client pays per
request. Reads follow each other as requests in a long-lived process do, each paying
its share of the collector's ordinary work.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any


@dataclass
class Runs:
    """Repeated reads of one stream by one client: per-read CPU and wall seconds."""

    client: str
    stream: str
    items: int = 0
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def cpu_median(self) -> float:
        """Median CPU seconds of one read (NaN when none ran)."""
        return statistics.median(self.cpu) if self.cpu else float("nan")

    @property
    def wall_median(self) -> float:
        """Median wall seconds of one read (NaN when none ran)."""
        return statistics.median(self.wall) if self.wall else float("nan")


def _worker_main(conn: Connection, client: str, urls: dict[str, str]) -> None:
    """The child: build ``client`` for every stream in ``urls``, then serve commands."""
    import _clients

    runs: dict[str, Any] = {}
    first_text: list[float] = []

    def tap(item: Any) -> None:
        if not first_text and _clients.has_text(item):
            first_text.append(time.perf_counter())

    try:
        for key, url in urls.items():
            is_ttfc = key.startswith("ttfc")
            runs[key] = _clients.CLIENTS[client](url, tap=tap if is_ttfc else None)
        conn.send(("ok", None))
    except BaseException as error:
        conn.send(("error", f"{type(error).__name__}: {error}"))
        return
    while True:
        command, argument = conn.recv()
        if command == "stop":
            conn.send(("ok", None))
            return
        try:
            if command == "read":  # (stream key, reads): CPU and wall of each read
                key, reads = argument
                cpu: list[float] = []
                wall: list[float] = []
                items = 0
                for _ in range(reads):
                    c0, w0 = time.process_time(), time.perf_counter()
                    items = runs[key]()
                    cpu.append(time.process_time() - c0)
                    wall.append(time.perf_counter() - w0)
                conn.send(("ok", (items, cpu, wall)))
            elif command == "ttfc":  # (stream key, reads): seconds from call to first text
                key, reads = argument
                seconds: list[float] = []
                for _ in range(reads):
                    first_text.clear()
                    w0 = time.perf_counter()
                    runs[key]()
                    if not first_text:
                        raise RuntimeError("no item with text was seen")
                    seconds.append(first_text[0] - w0)
                conn.send(("ok", seconds))
            else:
                raise ValueError(f"unknown command {command!r}")
        except BaseException as error:
            detail = traceback.format_exception_only(type(error), error)[-1].strip()
            conn.send(("error", detail))


class Worker:
    """One client in its own spawned process, built for each of ``urls`` (stream key to
    URL). Keys starting with ``ttfc`` get the time-to-first-text tap."""

    def __init__(self, client: str, urls: dict[str, str], *, timeout: float = 120.0) -> None:
        self.client = client
        self.error: str | None = None
        context = mp.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_worker_main, args=(child, client, urls), name=f"bench-{client}"
        )
        self._process.start()
        child.close()
        status, detail = self._receive(timeout)
        if status != "ok":
            self.error = detail

    def _receive(self, timeout: float) -> tuple[str, Any]:
        if not self._conn.poll(timeout):
            return "error", f"no answer within {timeout:.0f} s"
        try:
            status, detail = self._conn.recv()
        except EOFError:
            return "error", f"the worker process died (exit code {self._process.exitcode})"
        return status, detail

    def read(
        self, key: str, reads: int, timeout: float = 900.0
    ) -> tuple[int, list[float], list[float]] | str:
        """``reads`` whole reads of stream ``key``: (items, CPU list, wall list), or an
        error message."""
        if self.error:
            return self.error
        self._conn.send(("read", (key, reads)))
        status, detail = self._receive(timeout)
        if status != "ok":
            return str(detail)
        items, cpu, wall = detail
        return int(items), list(cpu), list(wall)

    def ttfc(self, key: str, reads: int, timeout: float = 300.0) -> list[float] | str:
        """Seconds from the call to the first item with text, for ``reads`` reads."""
        if self.error:
            return self.error
        self._conn.send(("ttfc", (key, reads)))
        status, detail = self._receive(timeout)
        return list(detail) if status == "ok" else str(detail)

    def close(self) -> None:
        """Stop the process."""
        if self._process.is_alive() and self.error is None:
            try:
                self._conn.send(("stop", None))
                self._receive(10)
            except (BrokenPipeError, OSError):
                pass
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)


def in_child(function: Any, *args: Any, timeout: float = 900.0) -> Any:
    """Run ``function(*args)`` in a fresh spawned process and return its result (an
    exception in the child is raised here)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(function, *args).result(timeout=timeout)


def burst_rounds(
    clients: Sequence[str], url: str, chunks: int, rounds: int, load: list[float]
) -> dict[str, list[float]]:
    """CPU seconds per chunk of each client reading the burst stream of ``chunks`` text
    deltas at ``url`` (key ``"burst"``), each client in a worker process of its own: one
    warm read, then one read per round, the clients in an order rotated each round so
    load drifting along the run falls on all of them. The 1-minute load average is
    appended to ``load`` after each round."""
    cpu: dict[str, list[float]] = {name: [] for name in clients}
    workers = {name: Worker(name, {"burst": url}) for name in clients}
    try:
        for name, worker in workers.items():
            if worker.error:
                raise RuntimeError(f"{name}: {worker.error}")
            worker.read("burst", 1)  # warm
        for number in range(rounds):
            shift = number % len(clients)
            for name in [*clients[shift:], *clients[:shift]]:
                outcome = workers[name].read("burst", 1)
                if isinstance(outcome, str):
                    raise RuntimeError(f"{name}: {outcome}")
                cpu[name].append(outcome[1][0] / chunks)
            load.append(os.getloadavg()[0])
            print(f"round {number + 1}/{rounds}", file=sys.stderr)
    finally:
        for worker in workers.values():
            worker.close()
    return cpu
