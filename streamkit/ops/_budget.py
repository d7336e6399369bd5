"""``budget``: stop a stream before it spends more than allowed, closing its response."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from decimal import Decimal

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SingleAssignmentDisposable

from streamkit._errors import BudgetError, BudgetExceededError
from streamkit._ledger import Ledger
from streamkit._lifecycle import (
    LifecycleObserver,
    StreamEnd,
    StreamStart,
    disposing,
    observing,
)
from streamkit._models import Chunk, Usage
from streamkit._tokens import approximate_tokens, count_input
from streamkit.ops._fusion import Sink, SubscribeUpstream, fusable
from streamkit.prices import Cost, cost_of

__all__ = ["budget"]

_keys = itertools.count(1)


def budget(
    *,
    max_cost: float | Decimal | None = None,
    max_output_tokens: int | None = None,
    ledger: Ledger | None = None,
) -> Callable[[Observable[Chunk]], Observable[Chunk]]:
    """Stop the stream once its spending reaches ``max_cost`` (USD) or
    ``max_output_tokens``: upstream is disposed (the HTTP response is closed, so the
    provider stops generating) and the stream completes with what it delivered.

    Spending is counted as the chunks arrive: input tokens estimated from the request
    when the stream starts (the provider's own figure once it reports one, as
    Anthropic does at the start), output tokens from each chunk's text (the provider's
    own figure where it reports a running total), priced at the model's price
    (:mod:`streamkit.prices`). The chunk that reaches the limit is delivered, then the
    stream stops; what the provider generated meanwhile (at most the chunks in flight)
    is billed too, so the final usage may pass the limit by that much.

    With ``ledger``, the limit applies to the ledger's total: every ended request in
    it plus every stream running under a budget with the same ledger (each stream
    reports its running figures into it), and this stream's requests are recorded in
    it.

    A request the budget cannot afford is never sent: before each request (every
    attempt of a retry or fallback included), its input is estimated from the request;
    when that alone, with what is already spent (the earlier attempts, the ledger),
    reaches ``max_cost``, or the ledger is already at a limit, the stream fails with
    :class:`~streamkit.BudgetExceededError` before any HTTP request.

    Raises ``ValueError`` / ``TypeError`` for limits that are not positive numbers, and
    ``TypeError`` for a ``ledger`` that is not a :class:`~streamkit.Ledger`. With
    ``max_cost`` and a model of unknown price, the stream fails with
    :class:`BudgetError` before its request is sent (register a price with
    ``sk.prices.register``).
    """
    cost_limit = _checked_cost(max_cost)
    token_limit = _checked_tokens(max_output_tokens)
    if cost_limit is None and token_limit is None:
        raise ValueError("budget needs max_cost=, max_output_tokens= or both")
    if ledger is not None and not isinstance(ledger, Ledger):
        raise TypeError(f"ledger must be an sk.Ledger, not {type(ledger).__name__}")

    def stage(
        observer: Sink[Chunk], subscribe_upstream: SubscribeUpstream[Chunk]
    ) -> abc.DisposableBase:
        meter = _Meter(cost_limit, token_limit, ledger)
        spent = meter.over()
        if spent is not None:  # the ledger is spent already: no request
            observer.on_error(spent)
            return Disposable()
        upstream = SingleAssignmentDisposable()
        lock = threading.Lock()
        stopped = False

        def stop() -> bool:
            nonlocal stopped
            with lock:
                if stopped:
                    return False
                stopped = True
            meter.release()
            return True

        def on_next(chunk: Chunk) -> None:
            if stopped:
                return
            try:
                over = meter.add(chunk)
            except BudgetError as error:
                if stop():
                    with disposing("budget"):
                        upstream.dispose()
                    observer.on_error(error)
                return
            observer.on_next(chunk)
            if over and stop():
                with disposing("budget"):
                    upstream.dispose()
                observer.on_completed()

        def on_error(error: Exception) -> None:
            if stop():
                observer.on_error(error)

        def on_completed() -> None:
            if stop():
                observer.on_completed()

        def dispose() -> None:
            upstream.dispose()
            stop()

        observers: list[LifecycleObserver] = [meter]
        if ledger is not None:
            observers.append(ledger)
        with observing(*observers):
            upstream.disposable = subscribe_upstream(on_next, on_error, on_completed)
        return Disposable(dispose)

    return fusable(stage)


def _checked_cost(value: float | Decimal | None) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise TypeError(f"max_cost must be a number of USD, not {value!r}")
    number = Decimal(str(value))
    if not number.is_finite() or number <= 0:
        raise ValueError(f"max_cost must be finite and > 0, got {value!r}")
    return number


def _checked_tokens(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_output_tokens must be an int, not {value!r}")
    if value < 1:
        raise ValueError(f"max_output_tokens must be >= 1, got {value}")
    return value


class _Meter(LifecycleObserver):
    """One budgeted subscription's running spending (its current request's)."""

    def __init__(self, cost: Decimal | None, tokens: int | None, ledger: Ledger | None) -> None:
        self._cost_limit = cost
        self._token_limit = tokens
        self._ledger = ledger
        self._key = next(_keys)
        self._start: StreamStart | None = None
        self._input_tokens = 0
        self._estimated_output = 0
        self._earlier_output = 0  # earlier attempts (retry_on_error), ended
        self._earlier_cost = Decimal(0)
        self._rates: tuple[Decimal, Decimal] | None = None
        self._ends: dict[int, StreamEnd] = {}

    def admit(self, start: StreamStart) -> BaseException | None:
        """A request is about to be sent under this budget: estimate its input, and
        refuse it (:class:`BudgetExceededError`, or :class:`BudgetError` for a price it
        cannot know) when it cannot be afforded."""
        previous = self._start
        if previous is not None:  # a new attempt: the last one's spending stays
            try:
                self._add_earlier(previous)
            except BudgetError as error:
                return error
        self._start = start
        self._rates = None  # a fallback may ask another model
        self._estimated_output = 0
        self._input_tokens = count_input(
            start.provider, start.request_model, start.messages or (), _tools(start)
        )
        try:
            tokens, spent = self._totals_with(0)
        except BudgetError as error:
            return error
        if self._token_limit is not None and tokens >= self._token_limit:
            return BudgetExceededError(
                "max_output_tokens",
                tokens,
                self._token_limit,
                input_tokens=self._input_tokens,
                why="the output tokens already spent reach the limit",
            )
        if self._cost_limit is not None and spent >= self._cost_limit:
            return BudgetExceededError(
                "max_cost",
                spent,
                self._cost_limit,
                input_tokens=self._input_tokens,
                why=(
                    f"the estimated input of the request to {start.request_model!r} "
                    f"({self._input_tokens} tokens), with what is already spent, reaches "
                    "the limit"
                ),
            )
        return None

    def on_end(self, end: StreamEnd) -> None:
        """A request under this budget ended: keep its record, to count what it was
        billed (its final usage and cost) once the next attempt starts."""
        self._ends[end.start.id] = end

    def _add_earlier(self, previous: StreamStart) -> None:
        """Count the last attempt as spent: as billed when its end is known, else as
        counted while it ran."""
        end = self._ends.pop(previous.id, None)
        if end is not None and end.usage is not None:
            self._earlier_output += end.usage.output_tokens
            if self._cost_limit is not None:
                amount = end.cost.amount
                self._earlier_cost += (
                    amount if amount is not None else self._request_cost(end.usage.output_tokens)
                )
            return
        self._earlier_output += self._estimated_output
        self._earlier_cost += self._request_cost(self._estimated_output)

    def _prices(self) -> tuple[Decimal, Decimal]:
        """USD per input token and per output token of the current model."""
        if self._rates is None:
            start = self._start
            provider = start.provider if start else ""
            model = start.request_model if start else None
            per_input = cost_of(provider, model, Usage(input_tokens=1_000_000))
            per_output = cost_of(provider, model, Usage(output_tokens=1_000_000))
            if per_input.amount is None or per_output.amount is None:
                raise BudgetError(
                    f"ops.budget(max_cost=...) cannot price {model!r}: "
                    f"{per_input.reason or per_output.reason}"
                )
            million = Decimal(1_000_000)
            self._rates = (per_input.amount / million, per_output.amount / million)
        return self._rates

    def _request_cost(self, output_tokens: int) -> Decimal:
        if self._cost_limit is None:
            return Decimal(0)
        per_input, per_output = self._prices()
        return self._input_tokens * per_input + output_tokens * per_output

    def add(self, chunk: Chunk) -> bool:
        """Count a chunk; whether the limit is reached."""
        text = chunk.content + chunk.thinking + chunk.refusal
        for delta in chunk.tool_calls:
            text += (delta.name or "") + delta.arguments
        if text:
            self._estimated_output += approximate_tokens(text)
        usage = chunk.usage
        if usage is not None:
            if usage.input_tokens:  # the provider's own input figure (Anthropic's first)
                self._input_tokens = usage.input_tokens
            if usage.output_tokens > self._estimated_output:
                self._estimated_output = usage.output_tokens
        return self._over_with(self._estimated_output)

    def _totals_with(self, output_tokens: int) -> tuple[int, Decimal]:
        """The output tokens and USD counted against the limit with ``output_tokens``
        of the current request: its own, the earlier attempts', the ledger's."""
        tokens = self._earlier_output + output_tokens
        cost = self._earlier_cost + self._request_cost(output_tokens)
        if self._ledger is not None:
            return self._ledger._hold(self._key, tokens, cost)
        return tokens, cost

    def _over_with(self, output_tokens: int) -> bool:
        tokens, spent = self._totals_with(output_tokens)
        if self._token_limit is not None and tokens >= self._token_limit:
            return True
        return self._cost_limit is not None and spent >= self._cost_limit

    def over(self) -> BudgetExceededError | None:
        """The error to fail with when the ledger is at a limit before this stream
        starts (``None``: it may start)."""
        if self._ledger is None:
            return None
        tokens = self._ledger.output_tokens
        cost: Cost = self._ledger.cost
        if self._token_limit is not None and tokens >= self._token_limit:
            return BudgetExceededError(
                "max_output_tokens",
                tokens,
                self._token_limit,
                why="the ledger's output tokens already reach the limit",
            )
        if (
            self._cost_limit is not None
            and cost.amount is not None
            and cost.amount >= self._cost_limit
        ):
            return BudgetExceededError(
                "max_cost",
                cost.amount,
                self._cost_limit,
                why="the ledger's spending already reaches the limit",
            )
        return None

    def release(self) -> None:
        """The stream ended: its requests are in the ledger now."""
        if self._ledger is not None:
            self._ledger._release(self._key)


def _tools(start: StreamStart) -> object:
    params = start.params or {}
    return params.get("tools")
