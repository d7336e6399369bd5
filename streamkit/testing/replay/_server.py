"""The server: :class:`ReplayServer`, its reply queue, its threads and what it sends."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from types import TracebackType
from typing import Any, cast

from streamkit.testing.replay._faults import Fault
from streamkit.testing.replay._http import (
    HOP_BY_HOP,
    Handler,
    TCPServer,
    read_body,
    reason,
    send_json_error,
)
from streamkit.testing.replay._matching import path_mismatch
from streamkit.testing.replay._pacing import BodyWriter, Peer, Watcher, cut_connection
from streamkit.testing.replay._payloads import error_body
from streamkit.testing.replay._providers import CLIENTS, PROVIDERS
from streamkit.testing.replay._recording import RecordedRequest, redact_headers, redact_path
from streamkit.testing.replay._replies import Reply, ReplyLike
from streamkit.testing.transcripts import Transcript

# How long close() waits for each thread; threads are woken by socket shutdown,
# so this is only reached if something is badly stuck.
_JOIN_TIMEOUT = 5.0


class ReplayServer:
    """Serve transcripts over real HTTP/1.1 on ``127.0.0.1`` (see :mod:`streamkit.testing.replay`).

    Args:
        default: the reply used when nothing is queued (a transcript name, a
            :class:`Transcript` or a :class:`Reply`); without one such a request
            gets a 500 with a JSON error saying no reply was queued.
        pace: default seconds between events (a :class:`Reply` can override it).
        keep_alive: ``False`` makes every response say ``Connection: close``, so a
            client closes its connection once it has released the response,
            rather than keeping it in its pool.  The server still waits for the
            client to close, so :attr:`open_connections` then counts exactly the
            responses a client has not released: ``0`` after a test proves that
            nothing leaked.

    Use it as a context manager, or call :meth:`start` and :meth:`close`.
    :meth:`close` stops the listener, drops every connection, joins every
    thread the server started (their names start with ``streamkit-replay``) and
    closes the sync SDK clients that :meth:`client` built.
    """

    def __init__(
        self, default: ReplyLike | None = None, *, pace: float = 0.0, keep_alive: bool = True
    ) -> None:
        if pace < 0:
            raise ValueError(f"pace must be >= 0, got {pace}")
        self.default: Reply | None = Reply.of(default) if default is not None else None
        self.pace = pace
        self.keep_alive = keep_alive
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._connections: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._clients: list[Any] = []
        self._closing = threading.Event()
        self._httpd: TCPServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._conn_counter = 0
        self._closed = False

    # ------------------------------------------------------------- lifecycle
    def start(self) -> ReplayServer:
        """Bind ``127.0.0.1`` on a free port and start serving in a background thread."""
        if self._closed:
            raise RuntimeError("ReplayServer was closed; make a new one")
        if self._httpd is not None:
            raise RuntimeError("ReplayServer already started")
        self._httpd = TCPServer(self)
        self._serve_thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"streamkit-replay-serve-{self.port}",
            daemon=True,
        )
        self._serve_thread.start()
        return self

    def close(self) -> None:
        """Stop serving, drop every connection and join every server thread.

        Idempotent.  Sync SDK clients built by :meth:`client` are closed first;
        async ones are the caller's to close.
        """
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        clients, self._clients = self._clients, []
        for c in clients:
            _close_sync_client(c)
        httpd = self._httpd
        if httpd is not None:
            httpd.shutdown()  # returns once serve_forever has stopped accepting
            httpd.server_close()
        with self._lock:
            connections = list(self._connections)
            threads = list(self._threads)
        for sock in connections:
            # Wakes a handler blocked in a read (keep-alive) or a write.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._serve_thread is not None:
            self._serve_thread.join(_JOIN_TIMEOUT)
        for t in threads:
            t.join(_JOIN_TIMEOUT)
        with self._changed:
            self._changed.notify_all()

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------ properties
    @property
    def host(self) -> str:
        """The address listened on: always ``127.0.0.1``."""
        return self._require_httpd().server_address[0]  # type: ignore[return-value]

    @property
    def port(self) -> int:
        """The port listened on (chosen by the OS)."""
        return int(self._require_httpd().server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    @property
    def open_connections(self) -> int:
        """Client connections the server currently holds open."""
        with self._lock:
            return len(self._connections)

    @property
    def threads(self) -> list[threading.Thread]:
        """Threads this server started that are still alive."""
        with self._lock:
            candidates = [*self._threads]
        if self._serve_thread is not None:
            candidates.append(self._serve_thread)
        return [t for t in candidates if t.is_alive()]

    @property
    def queued(self) -> int:
        """Replies pushed and not consumed yet."""
        with self._lock:
            return len(self._queue)

    def _require_httpd(self) -> TCPServer:
        if self._httpd is None:
            raise RuntimeError("ReplayServer is not started; use start() or `with`")
        return self._httpd

    # ---------------------------------------------------------------- queue
    def push(self, *replies: ReplyLike) -> None:
        """Queue replies; the next requests take them in order (FIFO)."""
        coerced = [Reply.of(r) for r in replies]
        with self._lock:
            self._queue.extend(coerced)

    def _next_reply(self) -> Reply | None:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return self.default

    # ------------------------------------------------------------ recording
    def wait_for_request_end(self, index: int = -1, timeout: float = 5.0) -> RecordedRequest:
        """Block until request ``index`` exists and its handler has finished.

        ``index=-1`` means the latest request (waiting for a first one if none
        came yet).  Raises :class:`TimeoutError` after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                n = len(self.requests)
                if (0 <= index < n) or (index < 0 and n >= -index):
                    record = self.requests[index]
                    if record.finished:
                        return record
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"request {index} did not finish within {timeout}s "
                        f"({n} request(s) received)"
                    )
                self._changed.wait(remaining)

    def wait_until_idle(self, timeout: float = 5.0) -> bool:
        """Block until the server holds no open connection; ``False`` after ``timeout``.

        A request's record ends when its handler has sent the last byte, a moment
        before the connection is closed: wait here before asserting that a client
        released its connection (``open_connections == 0``).
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._connections:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    # -------------------------------------------------------------- clients
    def client(self, provider: str, *, async_: bool = False, **kwargs: Any) -> Any:
        """Build an official SDK client pointed at this server.

        The client gets the fake key :data:`FAKE_API_KEY` and its retries
        disabled; ``kwargs`` are passed to the constructor and override those
        defaults.  The SDK is imported only now.  The return type is ``Any``
        because each provider's SDK is an optional dependency with its own class.

        ``provider`` is one of :data:`PROVIDERS`:

        - ``openai``: ``OpenAI(base_url=url + "/v1")`` / ``AsyncOpenAI``.
        - ``azure_openai``: ``AzureOpenAI(azure_endpoint=url,
          api_version="2024-10-21")`` / ``AsyncAzureOpenAI``.
        - ``anthropic``: ``Anthropic(base_url=url)`` / ``AsyncAnthropic``.
        - ``groq``: ``Groq(base_url=url)`` / ``AsyncGroq``.
        - ``mistral``: ``mistralai.client.Mistral(server_url=url)`` with
          ``retry_config`` strategy ``"none"``.  mistralai has one class for
          both: ``async_`` returns the same kind; use its ``*_async`` methods.
        - ``google``: ``genai.Client(api_key=..., vertexai=False,
          http_options=HttpOptions(base_url=url,
          retry_options=HttpRetryOptions(attempts=1)))``.  One class for both:
          with ``async_`` use ``client.aio``.  Setting ``retry_options`` also
          switches off the SDK's implicit retry of aiohttp connection errors.
        - ``cohere``: ``cohere.ClientV2(base_url=url, max_retries=0)`` /
          ``cohere.AsyncClientV2``.
        - ``litellm``: ``functools.partial(litellm.completion,
          api_base=url + "/v1", api_key=..., max_retries=0,
          custom_llm_provider="openai")`` / the same of ``litellm.acompletion``
          (litellm has no client object: its completion function is the client
          of ``sk.stream("litellm", ...)``).  ``custom_llm_provider`` sends any
          model name over litellm's OpenAI route, which the recorded OpenAI
          chat streams answer.  ``LITELLM_LOCAL_MODEL_COST_MAP`` is set to
          ``True`` (unless set) before litellm is imported, so the import does
          not fetch the model cost map from the network.  Nothing to close.
        - ``azure``: ``azure.ai.inference.ChatCompletionsClient(endpoint=url,
          credential=AzureKeyCredential(...), retry_total=0)`` /
          ``azure.ai.inference.aio.ChatCompletionsClient``.  An ``api_key``
          keyword is taken as the key of that credential.

        Sync clients (and the sync side of google's and mistral's) are closed
        when the server closes.  Async clients are not (closing needs their
        event loop): close them yourself, e.g. ``async with`` or ``await
        client.close()`` (``await client.aio.aclose()`` for google).
        """
        try:
            factory = CLIENTS[provider]
        except KeyError:
            raise ValueError(
                f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}"
            ) from None
        sdk_client, closable = factory(self.url, async_, dict(kwargs))
        if closable:
            with self._lock:
                self._clients.append(sdk_client)
        return sdk_client

    # ------------------------------------------------------------ internals
    def _spawn_connection(self, sock: socket.socket, address: Any) -> None:
        with self._lock:
            self._conn_counter += 1
            self._connections.add(sock)
            self._threads = [t for t in self._threads if t.is_alive()]
            thread = threading.Thread(
                target=self._run_connection,
                args=(sock, address),
                name=f"streamkit-replay-conn-{self.port}-{self._conn_counter}",
                daemon=True,
            )
            self._threads.append(thread)
        if self._closing.is_set():
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        thread.start()

    def _run_connection(self, sock: socket.socket, address: Any) -> None:
        httpd = self._require_httpd()
        try:
            httpd.finish_request(sock, address)
        except Exception:
            pass  # a client that vanished mid-request; nothing to report
        finally:
            httpd.shutdown_request(sock)
            with self._changed:
                self._connections.discard(sock)
                self._changed.notify_all()

    def _serve(self, handler: Handler) -> None:
        body = read_body(handler)
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        with self._changed:
            record = RecordedRequest(
                index=len(self.requests),
                method=handler.command,
                path=redact_path(handler.path),
                headers=redact_headers(list(handler.headers.items())),
                body=body,
                json=parsed,
                started_at=time.monotonic(),
            )
            self.requests.append(record)
            self._changed.notify_all()
        try:
            self._respond(handler, record)
        finally:
            record.finished_at = time.monotonic()
            with self._changed:
                record._done.set()
                self._changed.notify_all()

    def _respond(self, handler: Handler, record: RecordedRequest) -> None:
        if handler.command != "POST":
            handler.close_connection = True  # e.g. HEAD: a body would desync keep-alive
            send_json_error(
                handler,
                record,
                405,
                "streamkit_replay_method_not_allowed",
                f"the replay server answers POST only, got {handler.command}",
                keep_alive=self.keep_alive,
            )
            return
        reply = self._next_reply()
        if reply is None:
            send_json_error(
                handler,
                record,
                500,
                "streamkit_replay_no_reply",
                "ReplayServer had no reply queued and no default reply",
                keep_alive=self.keep_alive,
            )
            return
        transcript = reply.transcript
        record.transcript = transcript.name
        record.fault = reply.fault
        mismatch = path_mismatch(handler.path, transcript.name, transcript.api)
        if mismatch is not None:
            send_json_error(
                handler,
                record,
                404,
                "streamkit_replay_path_mismatch",
                mismatch,
                keep_alive=self.keep_alive,
            )
            return
        self._stream(handler, record, reply)

    def _stream(self, handler: Handler, record: RecordedRequest, reply: Reply) -> None:
        transcript = reply.transcript
        sock = handler.connection
        fault = reply.fault or Fault()
        pace = self.pace if reply.pace is None else reply.pace
        if fault.http_error is not None:
            self._send_http_error(handler, record, transcript, fault)
            return
        status = transcript.status if reply.status is None else reply.status
        events = [e.encode("utf-8") for e in fault.events_for(transcript)]
        chunked = transcript.is_stream
        record.status = status
        record.events_total = len(events)

        head = [f"HTTP/1.1 {status} {reason(status)}"]
        for name, value in transcript.headers.items():
            if name.lower() not in HOP_BY_HOP:
                head.append(f"{name}: {value}")
        head.append(f"x-streamkit-transcript: {transcript.name}")
        head.extend(self._extra_headers(fault))
        if chunked:
            head.append("Transfer-Encoding: chunked")
        else:
            head.append(f"Content-Length: {sum(len(e) for e in events)}")
        head_bytes = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")

        cut = fault.cut()
        with Watcher(sock, self._closing) as watch:

            def stop(state: Peer, at: int) -> None:
                handler.close_connection = True
                if state == "gone":
                    record.disconnected = True
                    record.disconnected_at_event = at
                else:
                    record.error = "the server closed while streaming"

            send_body = BodyWriter(watch, fault.trickle, fault.trickle_bytes).send

            if not watch.send(head_bytes):
                stop(watch.state, 0)
                return
            for i in range(len(events) + 1):
                delay = (pace if 0 < i < len(events) else 0.0) + fault.stall_at(i)
                if delay > 0 and not watch.wait(delay):
                    stop(watch.state, i)
                    return
                if cut is not None and min(cut[0], len(events)) == i:
                    record.completed = record.events_sent == record.events_total
                    cut_connection(handler, cut[1])
                    return
                if i == len(events):
                    break
                data = events[i]
                if data:
                    frame = b"%x\r\n%s\r\n" % (len(data), data) if chunked else data
                    if not (watch.still_there() and send_body(frame)):
                        stop(watch.state, i)
                        return
                record.events_sent += 1
                record.bytes_sent += len(data)
            if chunked and not send_body(b"0\r\n\r\n"):
                # Every event went out; only the end of the body did not.
                handler.close_connection = True
            record.completed = True

    def _extra_headers(self, fault: Fault) -> list[str]:
        lines = [f"{name}: {value}" for name, value in fault.header_items()]
        if not self.keep_alive:
            lines.append("Connection: close")
        return lines

    def _send_http_error(
        self, handler: Handler, record: RecordedRequest, transcript: Transcript, fault: Fault
    ) -> None:
        status = cast(int, fault.http_error)
        payload = error_body(transcript, status)
        head = [
            f"HTTP/1.1 {status} {reason(status)}",
            "content-type: application/json",
            f"Content-Length: {len(payload)}",
            *self._extra_headers(fault),
        ]
        record.status = status
        with Watcher(handler.connection, self._closing) as watch:
            if fault.stall_before > 0 and not watch.wait(fault.stall_before):
                handler.close_connection = True
                record.disconnected = watch.state == "gone"
                return
            if not watch.send(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload):
                handler.close_connection = True
                return
        record.completed = True


def _close_sync_client(sdk_client: Any) -> None:
    try:
        close = getattr(sdk_client, "close", None)
        if callable(close) and not _is_coroutine_function(close):
            close()
            return
        exit_ = getattr(sdk_client, "__exit__", None)
        if callable(exit_):
            exit_(None, None, None)
    except Exception:
        pass  # closing a test client must never mask the test's own outcome


def _is_coroutine_function(fn: object) -> bool:
    import inspect

    return inspect.iscoroutinefunction(fn)
