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
import logging
import socket
import sys
import threading
import time
from asyncio.trsock import TransportSocket
from collections.abc import AsyncGenerator, Callable, Generator, Iterator
from types import CodeType, FrameType
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable

from streamkit._errors import StreamError, StreamTimeoutError
from streamkit._lifecycle import DisposeReason, Recorder, current_reason
from streamkit._models import Chunk
from streamkit._timers import event_loop_of, on_loop_thread
from streamkit.providers import Decoder, ProviderAdapter
from streamkit.providers._base import is_connection_cut

__all__ = [
    "AsyncPull",
    "SyncPull",
    "async_source",
    "shutdown_socket",
    "sync_source",
]

logger = logging.getLogger(__name__)

_thread_numbers = itertools.count(1)
THREAD_NAME_PREFIX = "streamkit-source-"
"""Every thread streamkit starts has a name beginning with this."""


def _source_thread(target: Callable[[], None]) -> threading.Thread:
    return threading.Thread(
        target=target, name=f"{THREAD_NAME_PREFIX}{next(_thread_numbers)}", daemon=True
    )


def _start_source_thread(action: Callable[[], None]) -> abc.DisposableBase:
    """Run ``action`` (a subscription's pull loop) on a short-lived thread of its own;
    disposing the result before the thread runs it skips it.

    A plain thread, not reactivex's ``NewThreadScheduler``: that one builds an
    ``EventLoopScheduler`` (a condition, a queue, a run loop) per subscription, ~35 µs
    more before the request is sent, all of it on the time to the first chunk.
    """
    skipped: list[bool] = []  # a flag set from any thread (list.append is atomic)

    def target() -> None:
        if not skipped:
            action()

    _source_thread(target).start()
    return Disposable(lambda: skipped.append(True))


def shutdown_socket(http_response: Any) -> bool:
    """Shut down the socket under an HTTP response; True if it was found.

    This wakes a reader blocked in ``recv`` on another thread at once. It knows an httpx
    (or httpx2) response, through the transport's ``network_stream`` extension
    (httpcore internals), and a ``requests`` response, through urllib3's connection
    (the socket under ``response.raw``). Any failure falls back to doing nothing: the
    caller still closes the response normally.
    """
    sock = _httpx_socket(http_response) or _requests_socket(http_response)
    if not isinstance(sock, socket.socket | TransportSocket):  # the latter: asyncio's
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
    from any thread.

    The request is *opening* from the call into the SDK until its response headers are
    in: when the SDK returns its stream, or, for an SDK whose stream makes the request at
    its first read (:attr:`ProviderAdapter.request_on_first_read`: cohere, google-genai),
    once an HTTP response is seen under it. An opening request has no response to reach
    its socket through, so a cancel and the headers deadline shut down the socket the
    reading thread is blocked on, found in that thread's frames (:func:`blocked_socket`),
    and go on doing so while the request stays opening (a connect not yet done when the
    cancel came, an SDK that retries the broken request).
    """

    def __init__(
        self,
        adapter: ProviderAdapter,
        client: Any,
        request: Any,
        headers_timeout: float | None = None,
        *,
        recorder: Recorder | None = None,
        on_timeout: Callable[[Exception], None] | None = None,
    ) -> None:
        self.adapter = adapter
        self.client = client
        self.request = request
        self.headers_timeout = headers_timeout
        """Seconds of ``Deadlines.headers`` (the request's opening), if set."""
        self.recorder = recorder if recorder is not None else Recorder(adapter.name, None)
        self.on_timeout = on_timeout
        """Called on the timer's thread with the headers deadline's error when it passes
        (the pull then ends silently); ``None``: the reading thread raises it."""
        self.timed_out: StreamTimeoutError | None = None
        """The headers deadline's error, once it passed."""
        self._lock = threading.Lock()
        self._sdk_stream: Any = None
        self._reader: threading.Thread | None = None
        self._opening = False
        self._interrupting = False
        self._timer: threading.Timer | None = None
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
            self._opening = True
        self._arm_headers_deadline()
        try:
            yield from self._read(adapter, recorder)
        finally:
            with self._lock:
                self._opening = False
                timer, self._timer = self._timer, None
            if timer is not None:
                timer.cancel()

    def _read(self, adapter: ProviderAdapter, recorder: Recorder) -> Generator[Chunk, None, None]:
        try:
            decoder = adapter.new_decoder(self.request)
            try:
                sdk_stream = adapter.open(self.client, self.request)
            except Exception as error:
                self._raise_if_timed_out(error)
                raise
        except Exception as error:
            if not self.cancelled:
                recorder.fail(error)
            raise
        except BaseException as stop:
            recorder.dispose(_stopped(stop))
            raise
        with self._lock:
            self._sdk_stream = sdk_stream
            if not adapter.request_on_first_read:
                self._headers_in()
        try:
            decoder.opened(sdk_stream)
            if self.cancelled:
                return
            self._raise_if_timed_out(None)
            decode, record = decoder.decode, recorder.chunk  # looked up once, not per event
            for event in sdk_stream:
                if self._opening:
                    with self._lock:
                        self._headers_in()
                for chunk in decode(event):
                    if self.cancelled:  # read while a cancel was closing the socket
                        return
                    record(chunk)
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
            if self.timed_out is not None:
                recorder.fail(self.timed_out)
                if error is self.timed_out:
                    raise
                raise self.timed_out from error
            _fail(recorder, adapter, decoder, error)
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

    def _raise_if_timed_out(self, error: Exception | None) -> None:
        if self.timed_out is not None:
            raise self.timed_out from error

    def _headers_in(self) -> None:
        """Under the lock: the response headers are in; the headers deadline is met."""
        if not self._opening:
            return
        self._opening = False
        self.recorder.headers()
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _arm_headers_deadline(self) -> None:
        if self.headers_timeout is None:
            return
        timer = threading.Timer(self.headers_timeout, self._on_headers_deadline)
        timer.name = f"{THREAD_NAME_PREFIX}{next(_thread_numbers)}-headers-deadline"
        timer.daemon = True
        with self._lock:
            if not self._opening:
                return
            self._timer = timer
        timer.start()

    def _on_headers_deadline(self) -> None:
        """The headers deadline passed: unless the headers are in after all, fail the pull
        (through :attr:`on_timeout`, or the reading thread once woken) and wake the read."""
        assert self.headers_timeout is not None
        error = StreamTimeoutError("headers", self.headers_timeout, "attempt")
        with self._lock:
            if not self._opening or self.cancelled or self.timed_out is not None:
                return
            if self._response_seen():
                self._headers_in()
                return
            self.timed_out = error
            deliver = self.on_timeout
            if deliver is not None:
                self.cancelled = True
        logger.debug("headers timeout after %.3f s: closing the request", self.headers_timeout)
        if deliver is not None:
            # Delivered before the read is woken: the SDK's handling of the broken read
            # (litellm's is heavy) must not delay the error.
            self.recorder.fail(error)
            deliver(error)
        self._interrupt_opening()

    def _response_seen(self) -> bool:
        """Under the lock: whether the request's HTTP response (so its headers) is in
        while the SDK has not returned its stream, or its stream has not read its first
        event: a stream that makes its request at its first read, an SDK that reads the
        first event before it returns (litellm's sync ``completion``)."""
        sdk_stream = self._sdk_stream
        if sdk_stream is not None and self.adapter.http_response(sdk_stream) is not None:
            return True
        return holds_response(self._reader_frames())

    def _reader_frames(self) -> list[FrameType]:
        reader = self._reader
        if reader is None or reader.ident is None:
            return []
        return pull_frames(reader.ident, _READ_CODE)

    def _interrupt_opening(self) -> None:
        """Shut down the socket the reading thread is blocked on while the request is
        opening: now, then every :data:`INTERRUPT_EVERY` seconds on a thread of its own
        until the request is no longer opening (at most :data:`INTERRUPT_FOR` seconds)."""
        with self._lock:
            if self._interrupting or not self._opening:
                return
            self._interrupting = True
            self._shut_blocked_socket()

        def keep_interrupting() -> None:
            until = time.monotonic() + INTERRUPT_FOR
            while time.monotonic() < until:
                time.sleep(INTERRUPT_EVERY)
                with self._lock:
                    if not self._opening:
                        return
                    self._shut_blocked_socket()
            logger.warning(
                "a %s request stayed blocked before its response %.0f s after it was "
                "cancelled: its thread is left to end by itself",
                self.adapter.name,
                INTERRUPT_FOR,
            )

        _source_thread(keep_interrupting).start()

    def _shut_blocked_socket(self) -> None:
        """Under the lock: shut down the socket the (opening) reader is blocked on."""
        sock = blocked_socket(self._reader_frames())
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self, reason: DisposeReason | None = None) -> None:
        """Stop the pull; from another thread, wake a blocked read by shutting the socket
        (before the response headers: the one the reading thread is blocked on).

        The end is recorded at once as disposed: for the active
        :func:`~streamkit._lifecycle.disposing` reason, else ``reason``, else ``"take"``
        when called from the reading thread (a downstream operator stopping on a chunk),
        else ``"unknown"``. It is recorded once the socket is shut down, so the
        observers of the end (a ledger, telemetry, ``on_usage`` callbacks) never keep
        the connection open.
        """
        on_reader = self._reader is threading.current_thread()
        why = current_reason() or reason or ("take" if on_reader else "unknown")
        opening = False
        with self._lock:
            self.cancelled = True
            sdk_stream = self._sdk_stream
            if on_reader:
                if sdk_stream is not None:
                    # Stopped on a chunk: the pull closes its stream only once it
                    # unwinds, after the end below is recorded, and the end's observers
                    # can take long (the first cost looked up imports the price table):
                    # the provider must not go on sending meanwhile.
                    shutdown_socket(self.adapter.http_response(sdk_stream))
            else:
                opening = self._opening
                if (
                    sdk_stream is not None
                    and not opening
                    and not shutdown_socket(self.adapter.http_response(sdk_stream))
                    and self.adapter.request_on_first_read
                ):
                    # No response to reach it through before the first event
                    # (google-genai's sync stream): the socket the reader is blocked on.
                    self._shut_blocked_socket()
        self.recorder.dispose(why)
        if opening:
            self._interrupt_opening()


class AsyncPull:
    """One request of an async SDK client, as an async iterator of chunks.

    The headers deadline (the request's opening, as for :class:`SyncPull`) is a timer
    on the event loop that cancels the reading task; the pull raises
    :class:`~streamkit._errors.StreamTimeoutError` instead of the cancellation.
    """

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
        """Seconds of ``Deadlines.headers`` (the request's opening), if set."""
        self.recorder = recorder if recorder is not None else Recorder(adapter.name, None)
        self.timed_out: StreamTimeoutError | None = None
        """The headers deadline's error, once it passed."""
        self._opening = False
        self._sdk_stream: Any = None
        self._timer: asyncio.TimerHandle | None = None

    async def chunks(self) -> AsyncGenerator[Chunk, None]:
        """Make the request and yield its chunks; the SDK stream is closed on every exit,
        cancellation included."""
        adapter = self.adapter
        recorder = self.recorder
        recorder.begin(self)
        if recorder.refused is not None:  # an observer (ops.budget) refused the request
            raise recorder.refused
        self._opening = True
        task = asyncio.current_task()
        if self.headers_timeout is not None and task is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.headers_timeout, self._on_headers_deadline, task)
        try:
            try:
                decoder = adapter.new_decoder(self.request)
                try:
                    sdk_stream = await adapter.open_async(self.client, self.request)
                except asyncio.CancelledError:
                    self._raise_if_timed_out(task)
                    raise
            except Exception as error:
                recorder.fail(error)
                raise
            except BaseException as stop:
                recorder.dispose(_stopped(stop))
                raise
            self._sdk_stream = sdk_stream
            if not adapter.request_on_first_read:
                self._headers_in()
            try:
                decoder.opened(sdk_stream)
                decode, record = decoder.decode, recorder.chunk  # looked up once
                async for event in sdk_stream:
                    if self._opening:
                        self._headers_in()
                    for chunk in decode(event):
                        record(chunk)
                        yield chunk
                decoder.end()
                if not decoder.complete:
                    raise adapter.incomplete(decoder)
                recorder.complete()
            except Exception as error:
                _fail(recorder, adapter, decoder, error)
            except asyncio.CancelledError as stop:
                try:
                    self._raise_if_timed_out(task)
                except StreamTimeoutError as timeout:
                    recorder.fail(timeout)
                    raise
                recorder.dispose(_stopped(stop))
                raise
            except BaseException as stop:  # GeneratorExit
                recorder.dispose(_stopped(stop))
                raise
            finally:
                self._sdk_stream = None
                await adapter.close_async(sdk_stream)
        finally:
            self._opening = False
            if self._timer is not None:
                self._timer.cancel()

    def _raise_if_timed_out(self, task: asyncio.Task[Any] | None) -> None:
        """On a cancellation: raise the headers deadline's error when the deadline's own
        cancel caused it (and no other cancel of the task is pending)."""
        if self.timed_out is None:
            return
        uncancel = getattr(task, "uncancel", None)  # Python 3.11+
        if uncancel is not None and uncancel() > 0:
            return  # cancelled by someone else too: that cancellation goes on
        raise self.timed_out from None

    def _headers_in(self) -> None:
        if not self._opening:
            return
        self._opening = False
        self.recorder.headers()
        if self._timer is not None:
            self._timer.cancel()

    def _on_headers_deadline(self, task: asyncio.Task[Any]) -> None:
        if not self._opening or self.timed_out is not None:
            return
        sdk_stream = self._sdk_stream
        if sdk_stream is not None and self.adapter.http_response(sdk_stream) is not None:
            self._headers_in()
            return
        assert self.headers_timeout is not None
        logger.debug("headers timeout after %.3f s: closing the request", self.headers_timeout)
        self.timed_out = StreamTimeoutError("headers", self.headers_timeout, "attempt")
        task.cancel()

    def cancel(
        self, reason: DisposeReason | None = None, *, inline: bool = False, on_loop: bool = False
    ) -> None:
        """Record the dispose of this pull (its task is cancelled by the source): for the
        active :func:`~streamkit._lifecycle.disposing` reason, else ``reason``, else
        ``"take"`` when ``inline`` (disposed from inside the pull's own task, by a
        downstream operator on a chunk), else ``"unknown"``.

        ``on_loop``: called on the pull's event loop, so its task is not running: the
        response's socket is shut down first, since the task closes the response only
        after this returns, and the end's observers can take long (the first cost looked
        up imports the price table) while the provider would go on sending.
        """
        if on_loop and self._sdk_stream is not None:
            shutdown_socket(self.adapter.http_response(self._sdk_stream))
        self.recorder.dispose(current_reason() or reason or ("take" if inline else "unknown"))


_READ_CODE = SyncPull._read.__code__
"""The frame a sync pull reads in: a reader's frames inside it are the request's."""

INTERRUPT_EVERY = 0.02
"""Seconds between two shutdowns of an opening request's socket after a cancel."""

INTERRUPT_FOR = 30.0
"""Seconds an opening request is interrupted for before its thread is left to itself."""


def pull_frames(thread_id: int, stop_code: CodeType) -> list[FrameType]:
    """The frames of thread ``thread_id`` inside the frame running ``stop_code``,
    innermost first (``[]`` when the thread is not running it)."""
    frame: FrameType | None = sys._current_frames().get(thread_id)
    frames: list[FrameType] = []
    while frame is not None:
        if frame.f_code is stop_code:
            return frames
        frames.append(frame)
        frame = frame.f_back
    return []


def _frame_values(frames: list[FrameType]) -> Iterator[Any]:
    for frame in frames:
        try:
            values = list(frame.f_locals.values())
        except Exception:  # a frame finishing under us
            continue
        yield from values


def blocked_socket(frames: list[FrameType]) -> socket.socket | None:
    """The socket a thread is blocked on, from its ``frames`` (innermost first): the
    first local that is a socket or holds one as ``_sock`` (httpcore's and httpcore2's
    sync streams, ``socket.SocketIO`` under ``http.client``).

    This reads the frames of a running thread, as a debugger does: only for a request
    that is still waiting for its response headers, where no response object leads to
    the socket yet. ``None`` when none is found (a read still connecting, say)."""
    for value in _frame_values(frames):
        if isinstance(value, socket.socket):
            return value
        try:
            attributes = object.__getattribute__(value, "__dict__")
        except Exception:
            continue
        sock = attributes.get("_sock") if isinstance(attributes, dict) else None
        if isinstance(sock, socket.socket):
            return sock
    return None


_RESPONSE_MODULES = frozenset({"httpx", "httpx2", "requests", "aiohttp"})


def holds_response(frames: list[FrameType]) -> bool:
    """Whether ``frames`` hold an HTTP response of httpx, httpx2 or requests: the
    response headers of the request they make are in."""
    for value in _frame_values(frames):
        kind = type(value)
        if kind.__name__ in ("Response", "ClientResponse") and (
            kind.__module__.partition(".")[0] in _RESPONSE_MODULES
        ):
            return True
    return False


def _stopped(stop: BaseException) -> DisposeReason:
    """Why a pull ended on a ``BaseException`` no dispose had recorded: the active
    ``disposing`` reason, ``"break"`` for a closed iteration (``GeneratorExit``), else
    ``"unknown"`` (a cancelled task, ``KeyboardInterrupt``)."""
    reason = current_reason()
    if reason is not None:
        return reason
    return "break" if isinstance(stop, GeneratorExit) else "unknown"


def _fail(recorder: Recorder, adapter: ProviderAdapter, decoder: Decoder, error: Exception) -> None:
    """Record and raise what a read error means (:func:`_raise_read_failure`), or
    record the completion it does not prevent."""
    try:
        _raise_read_failure(adapter, decoder, error)
    except Exception as raised:
        recorder.fail(raised)
        raise
    recorder.complete()


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
        pull.on_timeout = observer.on_error  # the headers deadline, from its timer

        def run() -> None:
            chunks = pull.chunks()
            on_next = observer.on_next
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
                    on_next(chunk)
                    if pull.cancelled:
                        return
            finally:
                chunks.close()
            if not pull.cancelled:
                observer.on_completed()

        def scheduled_run(_scheduler: abc.SchedulerBase, _state: Any = None) -> None:
            run()

        if scheduler is None:
            scheduled = _start_source_thread(run)
        else:
            scheduled = scheduler.schedule(scheduled_run)
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
            next_chunk, on_next = chunks.__anext__, observer.on_next
            try:
                while True:
                    try:
                        chunk = await next_chunk()
                    except StopAsyncIteration:
                        break
                    except Exception as error:
                        if not disposed.is_set():
                            observer.on_error(error)
                        return
                    on_next(chunk)
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
            pull.cancel(inline=inline, on_loop=on_loop_thread(loop))
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
