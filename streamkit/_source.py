"""Cold, cancellable sources: one request per subscription, closed on every exit.

``reactivex.from_iterable`` cannot be used over an SDK stream: disposing it only sets a
flag and never closes the iterator, so the HTTP response stays open (RxPY #546). Here
the pull loop runs in a scheduled action (a background thread for sync SDKs, an asyncio
task for async ones), checks for disposal after every chunk, and closes the SDK stream
in ``finally``. A sync read blocked in the socket is not woken by ``close()`` from
another thread, so disposal first shuts the socket down (:func:`shutdown_socket`).

Each pull owns a :class:`~streamkit._lifecycle.Recorder`: it records the subscription's
start, every chunk and its one end (completed, error, disposed and by whom, timeout,
abandoned), which it reports to the lifecycle observers exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import threading
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.scheduler import NewThreadScheduler

from streamkit._errors import StreamError, StreamTimeoutError
from streamkit._lifecycle import DisposeReason, Recorder, current_reason
from streamkit._models import Chunk
from streamkit._timers import event_loop_of, on_loop_thread
from streamkit.providers import Decoder, ProviderAdapter
from streamkit.providers._base import is_connection_cut, is_timeout_error

__all__ = [
    "AsyncPull",
    "SyncPull",
    "async_source",
    "shutdown_socket",
    "sync_source",
]

_thread_numbers = itertools.count(1)
THREAD_NAME_PREFIX = "streamkit-source-"
"""Every thread streamkit starts has a name beginning with this."""


def _source_thread(target: Callable[[], None]) -> threading.Thread:
    return threading.Thread(
        target=target, name=f"{THREAD_NAME_PREFIX}{next(_thread_numbers)}", daemon=True
    )


def default_sync_scheduler() -> abc.SchedulerBase:
    """A scheduler that runs each subscription's pull loop on its own short-lived thread."""
    return NewThreadScheduler(thread_factory=_source_thread)


def shutdown_socket(http_response: Any) -> bool:
    """Shut down the socket under an HTTP response; True if it was found.

    This wakes a reader blocked in ``recv`` on another thread at once. It knows an httpx
    (or httpx2) response, through the transport's ``network_stream`` extension
    (httpcore internals), and a ``requests`` response, through urllib3's connection
    (the socket under ``response.raw``). Any failure falls back to doing nothing: the
    caller still closes the response normally.
    """
    sock = _httpx_socket(http_response) or _requests_socket(http_response)
    if not isinstance(sock, socket.socket):
        return False
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    return True


def _httpx_socket(http_response: Any) -> Any:
    try:
        return http_response.extensions["network_stream"].get_extra_info("socket")
    except Exception:
        return None


def _requests_socket(http_response: Any) -> Any:
    # The socket the body is read from: urllib3's HTTPResponse wraps http.client's,
    # whose buffered reader wraps a SocketIO. http.client may already have dropped the
    # connection's own reference (a `Connection: close` response), but the reader
    # keeps the socket's descriptor open until the body is closed, and shutting it
    # down still wakes the reader.
    raw: Any = getattr(http_response, "raw", None)
    try:
        return raw._fp.fp.raw._sock
    except Exception:
        return getattr(getattr(raw, "connection", None), "sock", None)


class SyncPull:
    """One request of a sync SDK client, as an iterator of chunks that can be cancelled
    from any thread."""

    def __init__(
        self,
        adapter: ProviderAdapter,
        client: Any,
        request: Any,
        headers_timeout: float | None = None,
        *,
        recorder: Recorder | None = None,
    ) -> None:
        self.adapter = adapter
        self.client = client
        self.request = request
        self.headers_timeout = headers_timeout
        """Seconds of the SDK's per-request timeout (``Deadlines.headers``), if set."""
        self.recorder = recorder if recorder is not None else Recorder(adapter.name, None)
        self._lock = threading.Lock()
        self._sdk_stream: Any = None
        self._reader: threading.Thread | None = None
        self.cancelled = False

    def chunks(self) -> Generator[Chunk, None, None]:
        """Make the request and yield its chunks; the SDK stream is closed on every exit."""
        adapter = self.adapter
        recorder = self.recorder
        recorder.begin(self)
        if recorder.refused is not None:  # an observer (ops.budget) refused the request
            raise recorder.refused
        with self._lock:
            if self.cancelled:
                return
            self._reader = threading.current_thread()
        events = 0
        try:
            decoder = adapter.new_decoder(self.request)
            try:
                sdk_stream = adapter.open(self.client, self.request)
            except Exception as error:
                _raise_timeout(self.headers_timeout, events, error)
                raise
        except Exception as error:
            if not self.cancelled:
                recorder.fail(error)
            raise
        except BaseException as stop:
            recorder.dispose(_stopped(stop))
            raise
        recorder.headers()
        with self._lock:
            self._sdk_stream = sdk_stream
        try:
            decoder.opened(sdk_stream)
            if self.cancelled:
                return
            for event in sdk_stream:
                events += 1
                for chunk in decoder.decode(event):
                    if self.cancelled:  # read while a cancel was closing the socket
                        return
                    recorder.chunk(chunk)
                    yield chunk
                if self.cancelled:
                    return
            decoder.end()
            if not decoder.complete:
                raise adapter.incomplete(decoder)
            recorder.complete()
        except Exception as error:
            if self.cancelled:
                return  # the read error our own socket shutdown caused
            _fail(recorder, adapter, decoder, error, self.headers_timeout, events)
        except BaseException as stop:  # GeneratorExit: the iteration was stopped
            recorder.dispose(_stopped(stop))
            raise
        finally:
            # Forget the stream before closing it: once closed, its connection may go
            # back to the pool and serve another request, whose socket a late cancel()
            # must not shut down (cancel shuts down under the same lock).
            with self._lock:
                self._sdk_stream = None
            adapter.close(sdk_stream)

    def cancel(self, reason: DisposeReason | None = None) -> None:
        """Stop the pull; from another thread, wake a blocked read by shutting the socket.

        The end is recorded at once as disposed: for the active
        :func:`~streamkit._lifecycle.disposing` reason, else ``reason``, else ``"take"``
        when called from the reading thread (a downstream operator stopping on a chunk),
        else ``"unknown"``. It is recorded once the socket is shut down, so the
        observers of the end (a ledger, telemetry, ``on_usage`` callbacks) never keep
        the connection open.
        """
        on_reader = self._reader is threading.current_thread()
        why = current_reason() or reason or ("take" if on_reader else "unknown")
        with self._lock:
            self.cancelled = True
            if self._sdk_stream is not None and not on_reader:
                shutdown_socket(self.adapter.http_response(self._sdk_stream))
        self.recorder.dispose(why)


class AsyncPull:
    """One request of an async SDK client, as an async iterator of chunks."""

    def __init__(
        self,
        adapter: ProviderAdapter,
        client: Any,
        request: Any,
        headers_timeout: float | None = None,
        *,
        recorder: Recorder | None = None,
    ) -> None:
        self.adapter = adapter
        self.client = client
        self.request = request
        self.headers_timeout = headers_timeout
        """Seconds of the SDK's per-request timeout (``Deadlines.headers``), if set."""
        self.recorder = recorder if recorder is not None else Recorder(adapter.name, None)

    async def chunks(self) -> AsyncGenerator[Chunk, None]:
        """Make the request and yield its chunks; the SDK stream is closed on every exit,
        cancellation included."""
        adapter = self.adapter
        recorder = self.recorder
        recorder.begin(self)
        if recorder.refused is not None:  # an observer (ops.budget) refused the request
            raise recorder.refused
        events = 0
        try:
            decoder = adapter.new_decoder(self.request)
            try:
                sdk_stream = await adapter.open_async(self.client, self.request)
            except Exception as error:
                _raise_timeout(self.headers_timeout, events, error)
                raise
        except Exception as error:
            recorder.fail(error)
            raise
        except BaseException as stop:
            recorder.dispose(_stopped(stop))
            raise
        recorder.headers()
        try:
            decoder.opened(sdk_stream)
            async for event in sdk_stream:
                events += 1
                for chunk in decoder.decode(event):
                    recorder.chunk(chunk)
                    yield chunk
            decoder.end()
            if not decoder.complete:
                raise adapter.incomplete(decoder)
            recorder.complete()
        except Exception as error:
            _fail(recorder, adapter, decoder, error, self.headers_timeout, events)
        except BaseException as stop:  # GeneratorExit, or its task was cancelled
            recorder.dispose(_stopped(stop))
            raise
        finally:
            await adapter.close_async(sdk_stream)

    def cancel(self, reason: DisposeReason | None = None, *, inline: bool = False) -> None:
        """Record the dispose of this pull (its task is cancelled by the source): for the
        active :func:`~streamkit._lifecycle.disposing` reason, else ``reason``, else
        ``"take"`` when ``inline`` (disposed from inside the pull's own task, by a
        downstream operator on a chunk), else ``"unknown"``."""
        self.recorder.dispose(current_reason() or reason or ("take" if inline else "unknown"))


def _stopped(stop: BaseException) -> DisposeReason:
    """Why a pull ended on a ``BaseException`` no dispose had recorded: the active
    ``disposing`` reason, ``"break"`` for a closed iteration (``GeneratorExit``), else
    ``"unknown"`` (a cancelled task, ``KeyboardInterrupt``)."""
    reason = current_reason()
    if reason is not None:
        return reason
    return "break" if isinstance(stop, GeneratorExit) else "unknown"


def _fail(
    recorder: Recorder,
    adapter: ProviderAdapter,
    decoder: Decoder,
    error: Exception,
    headers_timeout: float | None,
    events: int,
) -> None:
    """Record and raise what a read error means (the headers deadline's
    :func:`_raise_timeout`, else :func:`_raise_read_failure`), or record the completion
    it does not prevent."""
    try:
        _raise_timeout(headers_timeout, events, error)
        _raise_read_failure(adapter, decoder, error)
    except Exception as raised:
        recorder.fail(raised)
        raise
    recorder.complete()


def _raise_timeout(headers_timeout: float | None, events: int, error: Exception) -> None:
    """Raise :class:`StreamTimeoutError` when ``error`` is the SDK's per-request timeout
    set from ``Deadlines.headers``: ``"headers"`` before the first event, else
    ``"idle"`` (the same read timeout bounds the gaps of the body); else return."""
    if headers_timeout is None or isinstance(error, StreamTimeoutError):
        return
    if is_timeout_error(error):
        kind = "headers" if events == 0 else "idle"
        raise StreamTimeoutError(kind, headers_timeout, "attempt") from error


def _raise_read_failure(adapter: ProviderAdapter, decoder: Decoder, error: Exception) -> None:
    """Raise what an error while reading means, or return when the stream is complete:
    its terminal event arrived and only the connection dropped after it (a lost
    ``data: [DONE]`` or end of the chunked body costs no part of the response).

    Called from the ``except`` block that caught ``error`` (sync and async alike).
    """
    if decoder.complete and is_connection_cut(error):
        return
    replacement = adapter.read_error(decoder, error)
    if replacement is error:
        raise error
    raise replacement from error


def sync_source(make_pull: Callable[[], SyncPull]) -> Observable[Chunk]:
    """A cold observable: each subscription makes one request on a scheduler.

    The pull loop runs on the scheduler given to ``subscribe`` (default: a new thread per
    subscription), never inline, so ``subscribe`` returns at once and the disposable it
    returns can stop the request from any thread.
    """

    def subscribe(
        observer: abc.ObserverBase[Chunk], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        pull = make_pull()
        pull.recorder.begin(pull)

        def run(_scheduler: abc.SchedulerBase, _state: Any = None) -> None:
            chunks = pull.chunks()
            try:
                while True:
                    try:
                        chunk = next(chunks)
                    except StopIteration:
                        break
                    except Exception as error:
                        if not pull.cancelled:
                            observer.on_error(error)
                        return
                    observer.on_next(chunk)
                    if pull.cancelled:
                        return
            finally:
                chunks.close()
            if not pull.cancelled:
                observer.on_completed()

        scheduled = (scheduler or default_sync_scheduler()).schedule(run)
        return CompositeDisposable(Disposable(pull.cancel), scheduled)

    return Observable(subscribe)


def _event_loop(scheduler: abc.SchedulerBase | None) -> asyncio.AbstractEventLoop:
    """The loop an async source runs on (:func:`event_loop_of`: the same rule as the
    timers'); ``StreamError`` when there is none."""
    loop = event_loop_of(scheduler)
    if loop is None:
        raise StreamError(
            "a stream with an async client runs on an asyncio event loop: subscribe to it "
            "inside a running loop, or pass subscribe(scheduler=AsyncIOThreadSafeScheduler(loop))"
        )
    return loop


def async_source(make_pull: Callable[[], AsyncPull]) -> Observable[Chunk]:
    """A cold observable over an async client: each subscription runs one request as a
    task on the event loop (the running one, or the loop of an ``AsyncIOScheduler``
    passed to ``subscribe``). Disposing cancels the task from any thread, which closes
    the HTTP response at once."""

    def subscribe(
        observer: abc.ObserverBase[Chunk], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        loop = _event_loop(scheduler)
        pull = make_pull()
        pull.recorder.begin(pull)
        disposed = threading.Event()

        async def run() -> None:
            chunks = pull.chunks()
            try:
                while True:
                    try:
                        chunk = await chunks.__anext__()
                    except StopAsyncIteration:
                        break
                    except Exception as error:
                        if not disposed.is_set():
                            observer.on_error(error)
                        return
                    observer.on_next(chunk)
                    if disposed.is_set():
                        return
            finally:
                await chunks.aclose()
            if not disposed.is_set():
                observer.on_completed()

        task_holder: list[asyncio.Future[None]] = []

        def start() -> None:
            if not disposed.is_set():
                task_holder.append(loop.create_task(run()))

        def dispose() -> None:
            inline = any(task is _current_task(loop) for task in task_holder)
            pull.cancel(inline=inline)
            disposed.set()

            def cancel() -> None:
                for task in task_holder:
                    # Disposed from inside the task (an on_next, as take(n) does): it
                    # stops at its own disposed check; a pending cancel would interrupt
                    # the close in its finally (httpx's anyio close awaits first).
                    if task is not asyncio.current_task():
                        task.cancel()

            if on_loop_thread(loop):
                cancel()
            else:
                with contextlib.suppress(RuntimeError):  # the loop is already closed
                    loop.call_soon_threadsafe(cancel)

        if on_loop_thread(loop):
            start()
        else:
            loop.call_soon_threadsafe(start)
        return Disposable(dispose)

    return Observable(subscribe)


def _current_task(loop: asyncio.AbstractEventLoop) -> asyncio.Task[Any] | None:
    if not on_loop_thread(loop):
        return None
    return asyncio.current_task(loop)
