"""``Stream``: a cold ``Observable[Chunk]`` that also offers the Mirascope-compatible API.

As an observable, every subscription is one request. Iterating (``for chunk, tool in
stream`` / ``async for``) is the Mirascope-compatible call API: the first iteration
makes the request and folds the text (``stream.content``, ``.tool_calls``, ...;
``construct_call_response()``); a later iteration replays what the first received
without a new request, so nothing is wiped and nothing is billed twice.

The money is counted on every path: ``stream.usage`` / ``.cost`` / ``.end`` are those of
the requests the stream made, by iteration or by any subscription (``.pipe(...).run()``,
a ``break``, an early stop, a timeout, an error), once each has ended; ``on_usage=``
is called once per request with its report.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Iterator,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import Any, Literal, TypeVar

from reactivex import Observable, abc

from streamkit import _pipeline as _pipeline
from streamkit._accumulator import Accumulator
from streamkit._deadlines import Deadlines
from streamkit._errors import StreamError
from streamkit._ledger import UsageReport, requests_of
from streamkit._lifecycle import LifecycleObserver, Recorder, StreamEnd, disposing
from streamkit._messages import Message, normalize_messages
from streamkit._models import CallResponse, Chunk, ToolCall, Usage
from streamkit._source import AsyncPull, SyncPull, async_source, sync_source
from streamkit._tokens import count_input
from streamkit.prices import Cost, cost_of
from streamkit.providers import ProviderAdapter, get_adapter

__all__ = ["Stream", "stream"]

Pair = tuple[Chunk, ToolCall | None]
PullT = TypeVar("PullT", SyncPull, AsyncPull)


class Stream(Observable[Chunk]):
    """A provider stream: an ``Observable[Chunk]`` with the Mirascope-compatible call API.

    Build one with :func:`stream` or the :func:`~streamkit.call` decorator.
    """

    def __init__(
        self,
        provider: str,
        model: str,
        messages: str | Sequence[Mapping[str, Any]],
        *,
        client: Any = None,
        async_: bool | None = None,
        deadlines: Deadlines | None = None,
        on_usage: UsageCallback | None = None,
        **params: Any,
    ) -> None:
        adapter = get_adapter(provider)
        if deadlines is not None and not isinstance(deadlines, Deadlines):
            raise TypeError(f"deadlines must be a sk.Deadlines, not {type(deadlines).__name__}")
        if on_usage is not None and not callable(on_usage):
            raise TypeError(f"on_usage must be callable, not {type(on_usage).__name__}")
        self._on_usage = on_usage
        self.deadlines: Deadlines | None = deadlines
        """The per-attempt budget every subscription is bounded by (``None``: none)."""
        if not isinstance(model, str) or not model:
            raise TypeError(f"model must be a non-empty string, not {model!r}")
        if isinstance(client, type):
            name = f"{client.__module__}.{client.__qualname__}"
            raise TypeError(f"client= got the class {name}, not a client: call it, client={name}()")
        fast = params.get("fast", 0)
        if (fast is None or fast is False) and "fast" not in adapter.own_params:
            # fast=None (auto) or False on a provider with no fast path: its SDK path, its
            # only one, as without fast= (code passing fast= on for any provider works)
            del params["fast"]
        adapter = adapter.adapter_for(params, client)
        adapter.check_params(params)
        if client is None:
            adapter.check_default_credentials()
        self._adapter: ProviderAdapter = adapter
        self._messages: list[Message] = normalize_messages(messages)
        self._client = client
        client_is_async = None if client is None else adapter.is_async_client(client)
        if client_is_async is not None:  # None: a client that serves both, async_ decides
            if async_ is not None and async_ != client_is_async:
                kind = "an async" if client_is_async else "a sync"
                raise TypeError(f"async_={async_} was asked for, but {kind} client was given")
            async_ = client_is_async
        self.is_async: bool = bool(async_)
        self.provider = adapter.name
        self.path: Literal["sdk", "fast"] = adapter.path
        """What reads this stream's responses, chosen when it was built: ``"fast"``,
        streamkit's fast path (the default where the provider has one and it can run,
        or ``fast=True``), or ``"sdk"``, the SDK's own stream (``fast=False``, or where
        the fast path cannot run: see the providers docs)."""
        self.model_name = model
        self._params = dict(params)
        self._request = adapter.build_request(model, self._messages, dict(params))
        self._headers_timeout = deadlines.headers if deadlines is not None else None
        self._accumulator = Accumulator()
        self._pairs: list[Pair] | None = None
        self._error: BaseException | None = None
        self._sync_pull: SyncPull | None = None
        self._async_pull: AsyncPull | None = None
        self._async_iterator: AsyncGenerator[Chunk, None] | None = None
        self._iteration_end: StreamEnd | None = None
        self._billing = _Billing(on_usage)
        source = (
            async_source(self._new_async_pull)
            if self.is_async
            else sync_source(self._new_sync_pull)
        )
        if deadlines is not None:
            source = deadlines.bound()(source)
        super().__init__(source._subscribe_core)

    # -- sources ---------------------------------------------------------------------
    def _resolved_client(self) -> Any:
        if self._client is None:
            self._client = self._adapter.default_client(self.is_async)
        return self._client

    def _pull_of(self, pull_type: type[PullT], *observers: LifecycleObserver) -> PullT:
        """A pull of one request. With a headers deadline the SDK makes it once, its own
        retries off: the deadline bounds one request, and a request the deadline (or a
        cancel) broke must not be sent again behind streamkit's back."""
        client, request = self._resolved_client(), self._request
        if self._headers_timeout is not None:
            client, request = self._adapter.single_attempt(client, request)
        return pull_type(
            self._adapter,
            client,
            request,
            self._headers_timeout,
            recorder=self._recorder(*observers),
        )

    def _recorder(self, *observers: LifecycleObserver) -> Recorder:
        return Recorder(
            self.provider,
            self.model_name,
            estimate_input=self.estimate_input_tokens,
            observers=(*observers, self._billing),
            messages=self._messages,
            params=self._params,
        )

    def _new_sync_pull(self) -> SyncPull:
        return self._pull_of(SyncPull)

    def _new_async_pull(self) -> AsyncPull:
        return self._pull_of(AsyncPull)

    def estimate_input_tokens(self) -> int:
        """streamkit's estimate of this request's input tokens (its messages and tool
        definitions; see the usage-and-cost docs for the method and its error bound)."""
        return count_input(
            self.provider, self.model_name, self._messages, self._params.get("tools")
        )

    # -- retrying --------------------------------------------------------------------
    def continuation(self, delivered: str) -> Stream:
        """A new cold stream asking the model to continue an answer cut after ``delivered``.

        Same provider, model, client and parameters; the messages are extended the
        provider's way (:meth:`ProviderAdapter.continuation_messages`: an assistant
        prefill for Anthropic, the delivered text plus a "continue" request for
        OpenAI-style chat). Used by ``ops.retry_on_error(continuation="continue")`` and
        ``ops.fallback``. Its requests count as this stream's (:attr:`usage`,
        :attr:`cost`, ``on_usage``).
        """
        if not isinstance(delivered, str):
            raise TypeError(f"delivered must be a string, not {type(delivered).__name__}")
        messages = self._adapter.continuation_messages(list(self._messages), delivered)
        continued = Stream(
            self.provider,
            self.model_name,
            messages,
            client=self._client,
            async_=self.is_async,
            deadlines=self.deadlines,
            **self._params,
        )
        # Its requests are this stream's too: counted in its usage and cost, reported
        # to its on_usage.
        continued._on_usage = self._on_usage
        continued._billing = self._billing
        return continued

    def is_transient(self, error: BaseException) -> bool:
        """Whether a new request may succeed after ``error`` (the provider's classification)."""
        return self._adapter.is_transient(error)

    # -- consuming a pipeline --------------------------------------------------------
    def pipe(self, *operators: Any) -> _pipeline.Pipeline[Any]:  # type: ignore[override]
        """Apply operators (reactivex's ``pipe``); the result is a
        :class:`~streamkit._pipeline.Pipeline`: ``.run()`` (sync streams), ``await
        .aresponse()``; iterate with :meth:`iter` / :meth:`aiter`."""
        result: Observable[Any] = Observable.pipe(self, *operators)
        return _pipeline.Pipeline(result, is_async=self.is_async)

    def run(self, scheduler: abc.SchedulerBase | None = None) -> Chunk:
        """reactivex's blocking ``run()`` (the last chunk); over an async client it
        raises :class:`StreamError` naming ``await stream.aresponse()`` instead of hanging."""
        _pipeline.refuse_blocking_run(self.is_async, "stream")
        return _pipeline.run_blocking(self, scheduler)

    async def aresponse(self) -> CallResponse:
        """``await stream.aresponse()``: the :class:`CallResponse` of the whole call, as
        :meth:`construct_call_response` gives it after iterating to the end.

        It iterates the stream (``async for``; a sync client's stream is read on a worker
        thread), so afterwards the totals (``stream.content``, ``.usage``, ``.cost``)
        are there, and a second call replays without a new request. Cancelling the
        awaiting task closes the HTTP response. (The stream's last chunk, the
        observable's result, is ``await sk.arun(stream)``.)
        """
        if self.is_async:
            return await reduce_async(self)
        try:
            return await asyncio.to_thread(reduce_sync, self)
        except asyncio.CancelledError:
            self.close()  # the worker's read ends, and with it the thread
            raise

    def iter(self, *operators: Any) -> Iterator[Any]:
        """``for text in stream.iter(ops.text())``: the values of ``stream.pipe(*operators)``
        as they arrive, one request; ``break`` closes the HTTP response. Sync clients
        only (async: :meth:`aiter`)."""
        if self.is_async:
            raise StreamError(
                "this stream has an async client: use `async for x in stream.aiter(...)`"
            )
        return _pipeline.iterate(self.pipe(*operators))

    def aiter(self, *operators: Any) -> AsyncIterator[Any]:
        """``async for text in stream.aiter(ops.text())``: the async form of :meth:`iter`
        (sync or async clients); leaving the loop early closes the HTTP response."""
        return _pipeline.aiter(self.pipe(*operators))

    # -- the Mirascope-compatible iteration API ---------------------------------------
    def __iter__(self) -> Iterator[Pair]:
        """Yield ``(chunk, tool)`` pairs; ``tool`` is a completed :class:`ToolCall` or None.

        When one chunk completes several tool calls, the chunk comes with the first and
        an empty chunk (same raw event) with each further one.
        """
        if self.is_async:
            raise StreamError("this stream has an async client: iterate it with `async for`")
        if self._pairs is not None:
            yield from self._replay()
            return
        self._pairs = []
        pull = self._sync_pull = self._pull_of(SyncPull, _IterationEnd(self))
        chunks = pull.chunks()
        try:
            for chunk in chunks:
                yield from self._fold(chunk)
            yield from self._finish()
        except BaseException as error:
            self._error = error
            raise
        finally:
            chunks.close()

    async def __aiter__(self) -> AsyncIterator[Pair]:
        """``async for chunk, tool in stream``: the async form of iteration."""
        if not self.is_async:
            raise StreamError("this stream has a sync client: iterate it with `for`")
        if self._pairs is not None:
            for pair in self._replay():
                yield pair
            return
        self._pairs = []
        pull = self._async_pull = self._pull_of(AsyncPull, _IterationEnd(self))
        chunks = self._async_iterator = pull.chunks()
        try:
            async for chunk in chunks:
                for pair in self._fold(chunk):
                    yield pair
            for pair in self._finish():
                yield pair
        except BaseException as error:
            self._error = error
            raise
        finally:
            await _aclose_once(chunks)

    def _fold(self, chunk: Chunk) -> list[Pair]:
        """Fold one chunk into the totals; its pairs, recorded for a later replay."""
        tools = self._accumulator.add(chunk)
        pairs: list[Pair] = [(chunk, tools[0] if tools else None)]
        pairs.extend((_empty_like(chunk), tool) for tool in tools[1:])
        return self._record(pairs)

    def _finish(self) -> list[Pair]:
        """Pairs for the tool calls the stream's end completes, recorded."""
        tools = self._accumulator.finish()
        template = self._pairs[-1][0] if self._pairs else Chunk(provider=self.provider)
        return self._record([(_empty_like(template), tool) for tool in tools])

    def _record(self, pairs: list[Pair]) -> list[Pair]:
        if self._pairs is not None:
            self._pairs.extend(pairs)
        return pairs

    def _replay(self) -> Iterator[Pair]:
        yield from list(self._pairs or ())
        if self._error is not None and not isinstance(self._error, GeneratorExit):
            raise self._error

    # -- closing ---------------------------------------------------------------------
    def close(self) -> None:
        """Close the HTTP response of the current iteration (safe from any thread)."""
        if self._sync_pull is not None:
            self._sync_pull.cancel("close")

    async def aclose(self) -> None:
        """Close the HTTP response of the current async iteration."""
        if self._async_iterator is not None:
            with disposing("close"):
                await _aclose_once(self._async_iterator)

    def __enter__(self) -> Stream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- totals after iteration ------------------------------------------------------
    @property
    def content(self) -> str:
        """The text received so far by iteration."""
        return self._accumulator.content

    @property
    def thinking(self) -> str:
        """The reasoning text received so far by iteration."""
        return self._accumulator.thinking

    @property
    def finish_reasons(self) -> list[str] | None:
        """The provider-native finish reasons, once reported."""
        return self._accumulator.finish_reasons

    @property
    def model(self) -> str | None:
        """The model the provider reported (or ``None`` before any chunk)."""
        return self._accumulator.model

    @property
    def id(self) -> str | None:
        """The response id the provider reported."""
        return self._accumulator.id

    @property
    def end(self) -> StreamEnd | None:
        """How the stream's last ended request ended (by iteration or by any
        subscription; ``None`` before any ended): the outcome, who disposed it, usage
        so far, timings."""
        return self._billing.last

    @property
    def requests(self) -> int:
        """How many of the stream's requests have ended (each subscription is one, the
        iteration one)."""
        return self._billing.count

    @property
    def usage(self) -> Usage | None:
        """What the stream's requests used. Once a request has ended, on any path (the
        iteration completed or left by ``break``; a subscription's ``.pipe(...).run()``,
        ``take_until_match``, timeout, error), the sum of every ended request's usage so
        far, with its ``source`` (reported, estimated or mixed); before that, what the
        iteration has seen reported."""
        usage = self._billing.usage
        if usage is not None:
            return usage
        return self._accumulator.usage

    @property
    def input_tokens(self) -> int | None:
        """Input tokens of the call (see :attr:`usage`)."""
        usage = self.usage
        return None if usage is None else usage.input_tokens

    @property
    def output_tokens(self) -> int | None:
        """Output tokens of the call (see :attr:`usage`)."""
        usage = self.usage
        return None if usage is None else usage.output_tokens

    @property
    def cost(self) -> Cost:
        """What :attr:`usage` costs (:mod:`streamkit.prices`): the sum of every ended
        request's cost, each at the model the provider reported; ``cost.amount`` is
        ``None``, with a ``reason``, when it cannot be known."""
        cost = self._billing.cost
        if cost is not None:
            return cost
        return cost_of(self.provider, self.model, self.usage, requested=self.model_name)

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The tool calls received so far."""
        return self._accumulator.tool_calls

    def construct_call_response(self) -> CallResponse:
        """The :class:`CallResponse` of what iteration received (the whole call once the
        stream is exhausted). Once the iteration's request ended on any path, its usage
        is that request's usage so far, with its source, and its ``requests`` that one
        request."""
        response = self._accumulator.response()
        end = self._iteration_end
        if end is None:
            return response
        update: dict[str, object] = {"requests": requests_of([end])}
        if end.usage is not None and end.usage != response.usage:
            update["usage"] = end.usage
        return response.model_copy(update=update)

    def __repr__(self) -> str:
        kind = "async" if self.is_async else "sync"
        return f"Stream(provider={self.provider!r}, model={self.model_name!r}, {kind})"


async def _aclose_once(chunks: AsyncGenerator[Chunk, None]) -> None:
    """Close an async pull unless a close of it is already under way.

    After ``break`` the loop finalizes the dropped ``async for`` generator in a task of
    its own while ``aclose()`` may be closing the same pull; an SDK whose close awaits
    (httpx's anyio transport) would make the second ``aclose`` raise RuntimeError.
    """
    if not getattr(chunks, "ag_running", False):  # typeshed's AsyncGenerator lacks it
        await chunks.aclose()


UsageCallback = Callable[[UsageReport], object]
"""``on_usage=``: called with the :class:`~streamkit.UsageReport` of one request."""


def _request_report(end: StreamEnd) -> UsageReport:
    """The :class:`~streamkit.UsageReport` of one request: its ``attempts`` the one end;
    its ``outcome`` as :func:`~streamkit.ops.on_usage` names it (a timeout is an
    ``"error"``, an abandoned request ``"disposed"``; the end says which)."""
    outcome: Literal["completed", "error", "disposed"]
    if end.outcome in ("error", "timeout"):
        outcome = "error"
    elif end.outcome == "completed":
        outcome = "completed"
    else:
        outcome = "disposed"
    return UsageReport.of(outcome, end.error, (end,))


class _Billing(LifecycleObserver):
    """Every request of one stream: their totals, and its ``on_usage`` callback.

    Attached to every recorder the stream makes (each subscription, the iteration), so
    it sees each request's one end, on whichever thread ended it. Keeps running totals
    (not the ends: a stream may be subscribed any number of times).
    """

    def __init__(self, on_usage: UsageCallback | None) -> None:
        self._on_usage = on_usage
        self._lock = threading.Lock()
        self.count = 0
        self.last: StreamEnd | None = None
        self.usage: Usage | None = None
        self.cost: Cost | None = None

    def on_end(self, end: StreamEnd) -> None:
        cost = end.cost
        with self._lock:
            self.count += 1
            self.last = end
            if end.usage is not None:
                self.usage = end.usage if self.usage is None else self.usage + end.usage
            self.cost = cost if self.cost is None else self.cost + cost
        if self._on_usage is not None:
            self._on_usage(_request_report(end))  # an exception: sys.unraisablehook


class _IterationEnd(LifecycleObserver):
    """Keeps the end of a stream's own iteration, for ``construct_call_response``."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream

    def on_end(self, end: StreamEnd) -> None:
        self._stream._iteration_end = end


def _empty_like(chunk: Chunk) -> Chunk:
    return type(chunk).model_construct(
        provider=chunk.provider, model=chunk.model, id=chunk.id, chunk=chunk.chunk
    )


def stream(
    provider: str,
    model: str,
    messages: str | Sequence[Mapping[str, Any]],
    *,
    client: Any = None,
    deadlines: Deadlines | None = None,
    on_usage: UsageCallback | None = None,
    **params: Any,
) -> Stream:
    """Stream ``messages`` to ``model`` of ``provider`` as a cold :class:`Stream`.

    ``client`` is the provider SDK's client, sync or async (default: the SDK's default
    sync client from its environment variables, built at the first request). Other
    keyword arguments pass through to the provider's call. Nothing is sent until the
    stream is subscribed or iterated; each subscription is one request.
    ``fast=`` (OpenAI chat completions, Anthropic, Groq, Mistral) chooses what reads the
    responses: ``None`` (the default) streamkit's fast path where it can run, else the
    SDK; ``True`` the fast path (raising before any request where it cannot run);
    ``False`` the SDK. :attr:`Stream.path` tells which (see the providers docs).
    ``deadlines`` (a :class:`~streamkit.Deadlines`) bounds every subscription: the
    response headers (closing the request when they are late, sync and async; the
    SDK's own retries are then off, one request per attempt), the first chunk, the gaps
    between chunks and the whole stream.

    ``on_usage`` is called exactly once per request the stream makes (each
    subscription, the iteration, each attempt of a retry), when it ends on any path
    (completed, stopped early, timed out, failed), with the
    :class:`~streamkit.UsageReport` of that request, as ``ops.on_usage`` reports
    pipelines: its usage so far (with its ``source``) and cost. It is called on the
    thread that ended the request; an exception it raises goes to
    ``sys.unraisablehook`` (the stream is not changed).

    Raises :class:`~streamkit._errors.UnknownProviderError`, ``TypeError`` or
    ``ValueError`` for bad arguments, before any request.
    """
    return Stream(
        provider,
        model,
        messages,
        client=client,
        deadlines=deadlines,
        on_usage=on_usage,
        **params,
    )


def reduce_sync(stream: Stream) -> CallResponse:
    """Iterate ``stream`` to the end and return its response."""
    for _ in stream:
        pass
    return stream.construct_call_response()


async def reduce_async(stream: Stream) -> CallResponse:
    """Iterate an async ``stream`` to the end and return its response."""
    async for _ in stream:
        pass
    return stream.construct_call_response()
