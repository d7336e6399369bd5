"""The HTTP side of the server: the listener, the request handler (which hands every
request to :class:`ReplayServer`), reading request bodies and answering errors."""

from __future__ import annotations

import contextlib
import http
import json
import socket
import socketserver
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, cast

from streamkit.testing.replay._recording import RecordedRequest

if TYPE_CHECKING:
    from streamkit.testing.replay._server import ReplayServer


class TCPServer(socketserver.TCPServer):
    """The listener on ``127.0.0.1``: each connection is handed to its :class:`ReplayServer`,
    which serves it in a thread of its own."""

    allow_reuse_address = False
    # Room for a thousand clients connecting at once (a concurrency test, the benchmark):
    # past the listen backlog the kernel drops handshakes, and a client that believed
    # itself connected fails later with a read error.
    request_queue_size = 4096

    def __init__(self, owner: ReplayServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.owner._spawn_connection(cast(socket.socket, request), client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client going away mid-request is normal here; stay quiet.
        return


class Handler(BaseHTTPRequestHandler):
    """Reads HTTP/1.1 requests off one connection and hands each to the server's
    ``_serve`` (whatever the method: the server answers what it does not serve)."""

    protocol_version = "HTTP/1.1"
    server_version = "streamkit-replay"

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _dispatch(self) -> None:
        cast(TCPServer, self.server).owner._serve(self)

    do_POST = _dispatch
    do_GET = _dispatch
    do_PUT = _dispatch
    do_PATCH = _dispatch
    do_DELETE = _dispatch
    do_HEAD = _dispatch
    do_OPTIONS = _dispatch


HOP_BY_HOP = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}
)


def reason(status: int) -> str:
    """The reason phrase of an HTTP status."""
    if status == 529:
        return "Overloaded"  # Anthropic's, not in the IANA registry
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def read_body(handler: Handler) -> bytes:
    """The request body, by ``Content-Length`` or chunked (trailers skipped)."""
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        parts: list[bytes] = []
        while True:
            line = handler.rfile.readline(65537)
            if not line:
                break
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                # trailers, up to the blank line
                while handler.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                break
            parts.append(handler.rfile.read(size))
            handler.rfile.readline(65537)
        return b"".join(parts)
    length = int(handler.headers.get("Content-Length", "0") or "0")
    return handler.rfile.read(length) if length > 0 else b""


def send_json_error(
    handler: Handler,
    record: RecordedRequest,
    status: int,
    kind: str,
    message: str,
    *,
    keep_alive: bool = True,
) -> None:
    """Answer with a JSON error of the server's own (not a provider's), and record it."""
    payload = json.dumps(
        {"error": {"type": kind, "message": message, "source": "streamkit.testing.ReplayServer"}}
    ).encode("utf-8")
    close = "" if keep_alive else "Connection: close\r\n"
    head = (
        f"HTTP/1.1 {status} {reason(status)}\r\n"
        "content-type: application/json\r\n"
        f"{close}Content-Length: {len(payload)}\r\n\r\n"
    ).encode("latin-1")
    record.status = status
    record.error = message
    try:
        handler.connection.sendall(head + payload)
    except OSError:
        handler.close_connection = True
