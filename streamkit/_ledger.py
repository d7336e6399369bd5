"""Usage reports and the :class:`Ledger`: what a pipeline's requests cost, on every path.

Both read the one record the source makes of each request's end
(:class:`~streamkit._lifecycle.StreamEnd`): a pipeline's report sums the requests it
made (every attempt of a retry), a ledger sums every request of the streams that report
into it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from streamkit._lifecycle import LifecycleObserver, StreamEnd, StreamStart, observing
from streamkit._models import RequestUsage, Usage
from streamkit.prices import Cost

__all__ = ["Ledger", "UsageReport", "requests_of", "total_cost", "total_usage"]


def total_usage(ends: Iterable[StreamEnd]) -> Usage | None:
    """The sum of the requests' usage (``None`` if none had any)."""
    total: Usage | None = None
    for end in ends:
        if end.usage is not None:
            total = end.usage if total is None else total + end.usage
    return total


def requests_of(ends: Iterable[StreamEnd]) -> list[RequestUsage]:
    """Each request's provider, models and usage, for a response's ``requests``."""
    return [
        RequestUsage(
            provider=end.provider,
            model=end.response_model,
            requested_model=end.request_model,
            usage=end.usage,
        )
        for end in ends
    ]


def total_cost(ends: Iterable[StreamEnd]) -> Cost:
    """The sum of the requests' cost (unknown if any request's is)."""
    total: Cost | None = None
    for end in ends:
        cost = end.cost
        total = cost if total is None else total + cost
    return total if total is not None else Cost(Decimal(0), usage_source=None)


@dataclass(frozen=True)
class UsageReport:
    """What a pipeline's subscription used, reported once at its end, whatever the end.

    ``attempts`` are the requests it made, in order (several under
    ``ops.retry_on_error``; none for a subscriber of ``share_replay`` that did not
    connect it, as the one request is billed once). ``usage`` and ``cost`` are their
    total: what was billed, aborted attempts included.
    """

    outcome: Literal["completed", "error", "disposed"]
    """How the pipeline's subscription ended (each attempt has its own ``outcome``)."""
    error: BaseException | None
    attempts: tuple[StreamEnd, ...]
    usage: Usage | None
    cost: Cost

    @classmethod
    def of(
        cls,
        outcome: Literal["completed", "error", "disposed"],
        error: BaseException | None,
        attempts: Iterable[StreamEnd],
    ) -> UsageReport:
        """A report of ``attempts`` with their totals."""
        ends = tuple(attempts)
        return cls(outcome, error, ends, total_usage(ends), total_cost(ends))


class EndCollector(LifecycleObserver):
    """Collects the ends of the requests started under it (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._starts: list[StreamStart] = []
        self._ends: list[StreamEnd] = []

    def on_start(self, start: StreamStart) -> None:
        """Remember the request."""
        with self._lock:
            self._starts.append(start)

    def on_end(self, end: StreamEnd) -> None:
        """Keep its end."""
        with self._lock:
            self._ends.append(end)

    @property
    def starts(self) -> list[StreamStart]:
        """The requests started so far."""
        with self._lock:
            return list(self._starts)

    @property
    def ends(self) -> list[StreamEnd]:
        """The ends recorded so far, in the order they ended."""
        with self._lock:
            return sorted(self._ends, key=lambda end: end.start.id)


class Ledger(LifecycleObserver):
    """Totals of every request that reports into it: a per-user or per-request account.

    Streams report into a ledger when subscribed (or iterated) inside
    ``with ledger.track():``, or through ``ops.budget(..., ledger=ledger)``. Safe from
    any number of threads and asyncio tasks at once (``track`` is scoped to the thread
    or task that enters it, and to the subscriptions made there).

    Example:
        ```python
        ledger = sk.Ledger()
        with ledger.track():
            response = stream.pipe(ops.to_call_response()).run()
        ledger.cost.amount
        ```
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ends: list[StreamEnd] = []
        self._usage: Usage | None = None
        self._cost = Decimal(0)
        self._unpriced: list[StreamEnd] = []
        self._output_tokens = 0
        self._in_flight: dict[int, tuple[int, Decimal]] = {}

    @contextlib.contextmanager
    def track(self) -> Iterator[Ledger]:
        """Report the requests started inside the block (this thread or task) here."""
        with observing(self):
            yield self

    def on_end(self, end: StreamEnd) -> None:
        """Add a request's end (called by the source, exactly once per request)."""
        cost = end.cost
        with self._lock:
            self._ends.append(end)
            if end.usage is not None:
                self._usage = end.usage if self._usage is None else self._usage + end.usage
                self._output_tokens += end.usage.output_tokens
            if cost.amount is None:
                if end.usage is not None and (end.usage.input_tokens or end.usage.output_tokens):
                    self._unpriced.append(end)
            else:
                self._cost += cost.amount

    @property
    def requests(self) -> int:
        """Requests ended so far."""
        with self._lock:
            return len(self._ends)

    @property
    def ends(self) -> list[StreamEnd]:
        """Every request's end so far (a copy)."""
        with self._lock:
            return list(self._ends)

    @property
    def usage(self) -> Usage | None:
        """The total usage of the ended requests."""
        with self._lock:
            return self._usage

    @property
    def output_tokens(self) -> int:
        """The total output tokens of the ended requests."""
        with self._lock:
            return self._output_tokens

    @property
    def cost(self) -> Cost:
        """The total cost of the ended requests; ``amount`` is ``None`` (with a
        ``reason``) when some request's model has no known price."""
        with self._lock:
            unpriced = list(self._unpriced)
            amount = self._cost
            usage = self._usage
        if unpriced:
            models = sorted({str(end.response_model or end.request_model) for end in unpriced})
            return Cost(None, reason=f"no price for {', '.join(models)}")
        return Cost(amount, usage_source=None if usage is None else usage.source)

    # -- in-flight figures, for budgets shared by concurrent streams ------------------
    def _hold(self, key: int, output_tokens: int, cost: Decimal) -> tuple[int, Decimal]:
        """Record a running stream's figures under ``key``; return everyone's total
        (ended requests plus every running stream, this one included)."""
        with self._lock:
            self._in_flight[key] = (output_tokens, cost)
            tokens = self._output_tokens + sum(t for t, _ in self._in_flight.values())
            spent = self._cost + sum(c for _, c in self._in_flight.values())
        return tokens, spent

    def _release(self, key: int) -> None:
        with self._lock:
            self._in_flight.pop(key, None)

    def __repr__(self) -> str:
        return f"Ledger(requests={self.requests}, cost={self.cost.amount})"
