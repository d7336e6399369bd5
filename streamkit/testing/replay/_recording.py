"""Recording: what the server keeps of each request (credentials redacted) and of what
it sent back."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from streamkit.testing.replay._faults import Fault

REDACTED = "<redacted>"
"""What recorded credentials are replaced with."""

_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key"}
)
_SECRET_QUERY = frozenset({"key", "api_key", "api-key"})


@dataclass(eq=False)
class RecordedRequest:
    """One request the server received and what it sent back.

    The handler thread fills in the response fields while it streams; call
    :meth:`ReplayServer.wait_for_request_end` before asserting on them.

    Attributes:
        index: position in :attr:`ReplayServer.requests`.
        method: HTTP method.
        path: request path with its query string (credentials in the query redacted).
        headers: request headers, names lower-case, credential values replaced
            by ``"<redacted>"``.
        body: the raw request body.
        json: the body parsed as JSON, or ``None`` if it is not JSON.  Typed
            ``Any`` because it is arbitrary JSON sent by the client.
        transcript: the name of the transcript answered with, or ``None`` when
            the server answered with an error of its own.
        status: the HTTP status sent.
        error: why the server answered with an error of its own (no reply
            queued, path mismatch, method not allowed), else ``None``.
        fault: the fault applied, if any.
        events_total: events in the transcript.
        events_sent: events written to the socket (the client may not have read
            them all: the kernel buffers what it could not take yet).
        bytes_sent: body bytes of the events written (no chunk framing or headers).
        disconnected: the client went away before the last event was sent.
        disconnected_at_event: index of the first event not sent because the
            client had gone.
        completed: every event was sent.
        started_at: ``time.monotonic()`` when the request had been read.
        finished_at: ``time.monotonic()`` when the handler finished the
            response, ``None`` while it runs.
    """

    index: int
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    started_at: float
    transcript: str | None = None
    status: int | None = None
    error: str | None = None
    fault: Fault | None = None
    events_total: int = 0
    events_sent: int = 0
    bytes_sent: int = 0
    disconnected: bool = False
    disconnected_at_event: int | None = None
    completed: bool = False
    finished_at: float | None = None
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def finished(self) -> bool:
        """Whether the handler has finished the response."""
        return self._done.is_set()

    @property
    def duration(self) -> float | None:
        """Seconds from reading the request to finishing the response."""
        if self.finished_at is None:
            return None
        return self.finished_at - self.started_at


def redact_headers(items: list[tuple[str, str]]) -> dict[str, str]:
    """Request headers by lower-case name (repeats joined), credentials redacted."""
    out: dict[str, str] = {}
    for raw_name, value in items:
        name = raw_name.lower()
        if name in _SECRET_HEADERS:
            value = REDACTED
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def redact_path(path: str) -> str:
    """A request path with the credentials of its query string redacted."""
    parts = urlsplit(path)
    if not parts.query:
        return path
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if not any(k.lower() in _SECRET_QUERY for k, _ in pairs):
        return path
    query = urlencode([(k, REDACTED if k.lower() in _SECRET_QUERY else v) for k, v in pairs])
    return urlunsplit(parts._replace(query=query))
