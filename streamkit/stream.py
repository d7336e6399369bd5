"""``Stream``: a cold ``Observable[Chunk]`` that also offers the seed document's API.

As an observable, every subscription is one request, and subscribing never touches the
totals below. Iterating (``for chunk, tool in stream`` / ``async for``) is the seed's
call API: the first iteration makes the request and folds the totals
(``stream.content``, ``.usage``, ...; ``construct_call_response()``); a later iteration
replays what the first received without a new request, so nothing is wiped and nothing
is billed twice.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

from reactivex import Observable, abc

from streamkit import pipeline as _pipeline
from streamkit._lifecycle import LifecycleObserver, Recorder, StreamEnd, disposing
from streamkit._tokens import count_input
from streamkit.accumulator import Accumulator
from streamkit.deadlines import Deadlines
from streamkit.errors import StreamError
from streamkit.messages import Message, normalize_messages
from streamkit.models import CallResponse, Chunk, ToolCall, Usage
from streamkit.prices import Cost, cost_of
from streamkit.providers import ProviderAdapter, get_adapter
from streamkit.source import AsyncPull, SyncPull, async_source, sync_source

__all__ = ["Stream", "stream"]

Pair = tuple[Chunk, ToolCall | None]
PullT = TypeVar("PullT", SyncPull, AsyncPull)


class Stream(Observable[Chunk]):
    """A provider stream: an ``Observable[Chunk]`` with the seed document's call API.

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
        **params: Any,
    ) -> None:
        adapter = get_adapter(provider)
        if deadlines is not None and not isinstance(deadlines, Deadlines):
            raise TypeError(f"deadlines must be a sk.Deadlines, not {type(deadlines).__name__}")
        self.deadlines: Deadlines | None = deadlines
        """The per-attempt budget every subscription is bounded by (``None``: none)."""
        if not isinstance(model, str) or not model:
            raise TypeError(f"model must be a non-empty string, not {model!r}")
        if isinstance(client, type):
            name = f"{client.__module__}.{client.__qualname__}"
            raise TypeError(f"client= got the class {name}, not a client: call it, client={name}()")
        adapter = adapter.adapter_for(params)
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
        self._end: StreamEnd | None = None
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
            observers=observers,
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
        OpenAI-style chat). Used by ``ops.retry_on_error(continuation="continue")``.
        """
        if not isinstance(delivered, str):
            raise TypeError(f"delivered must be a string, not {type(delivered).__name__}")
        messages = self._adapter.continuation_messages(list(self._messages), delivered)
        return Stream(
            self.provider,
            self.model_name,
            messages,
            client=self._client,
            async_=self.is_async,
            deadlines=self.deadlines,
            **self._params,
        )

    def is_transient(self, error: BaseException) -> bool:
        """Whether a new request may succeed after ``error`` (the provider's classification)."""
        return self._adapter.is_transient(error)

    # -- consuming a pipeline --------------------------------------------------------
    def pipe(self, *operators: Any) -> _pipeline.Pipeline[Any]:  # type: ignore[override]
        """Apply operators (reactivex's ``pipe``); the result is a
        :class:`~streamkit.pipeline.Pipeline`: ``.run()`` (sync streams), ``await
        .aresponse()``; iterate with :meth:`iter` / :meth:`aiter`."""
        result: Observable[Any] = Observable.pipe(self, *operators)
        return _pipeline.Pipeline(result, is_async=self.is_async)

    def run(self, scheduler: abc.SchedulerBase | None = None) -> Chunk:
        """reactivex's blocking ``run()`` (the last chunk); over an async client it
        raises :class:`StreamError` naming ``await stream.aresponse()`` instead of hanging."""
        _pipeline.refuse_blocking_run(self.is_async, "stream")
        return super().run(scheduler)

    async def aresponse(self) -> Chunk:
        """``await stream.aresponse()``: the last chunk (see :func:`streamkit.arun`)."""
        return await _pipeline.arun(self)

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

    # -- the seed's iteration API ----------------------------------------------------
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
        pull = self._sync_pull = self._pull_of(SyncPull, _EndKeeper(self))
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
        pull = self._async_pull = self._pull_of(AsyncPull, _EndKeeper(self))
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
        """How the iteration's request ended (``None`` before its end): the outcome,
        who disposed it, usage so far, timings."""
        return self._end

    @property
    def usage(self) -> Usage | None:
        """The call's usage: as reported while iterating; once the iteration has ended
        on any path, its usage so far, with its ``source`` (reported, estimated or
        mixed)."""
        end = self._end
        if end is not None and end.usage is not None:
            return end.usage
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
        """What :attr:`usage` costs at the model's price (:mod:`streamkit.prices`);
        ``cost.amount`` is ``None``, with a ``reason``, when it cannot be known."""
        return cost_of(self.provider, self.model, self.usage, requested=self.model_name)

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The tool calls received so far."""
        return self._accumulator.tool_calls

    def construct_call_response(self) -> CallResponse:
        """The :class:`CallResponse` of what iteration received (the whole call once the
        stream is exhausted). Its usage is :attr:`usage`: once the iteration ended on
        any path, the usage so far with its source."""
        response = self._accumulator.response()
        usage = self.usage
        if usage is not None and usage != response.usage:
            response = response.model_copy(update={"usage": usage})
        return response

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


class _EndKeeper(LifecycleObserver):
    """Keeps the end of a stream's own iteration on the stream."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream

    def on_end(self, end: StreamEnd) -> None:
        self._stream._end = end


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
    **params: Any,
) -> Stream:
    """Stream ``messages`` to ``model`` of ``provider`` as a cold :class:`Stream`.

    ``client`` is the provider SDK's client, sync or async (default: the SDK's default
    sync client from its environment variables, built at the first request). Other
    keyword arguments pass through to the provider's call. Nothing is sent until the
    stream is subscribed or iterated; each subscription is one request.
    ``deadlines`` (a :class:`~streamkit.Deadlines`) bounds every subscription: the
    response headers (closing the request when they are late, sync and async; the
    SDK's own retries are then off, one request per attempt), the first chunk, the gaps
    between chunks and the whole stream.

    Raises :class:`~streamkit.errors.UnknownProviderError`, ``TypeError`` or
    ``ValueError`` for bad arguments, before any request.
    """
    return Stream(provider, model, messages, client=client, deadlines=deadlines, **params)


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
