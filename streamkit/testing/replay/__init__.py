"""A local HTTP/1.1 server that replays recorded provider streams to real SDK clients.

:class:`ReplayServer` listens on ``127.0.0.1`` (a free port) in a background
thread and answers every POST with a :class:`~streamkit.testing.Transcript`:
the recorded status and content type, and the body sent one SSE event per HTTP
chunk, optionally paced like a real model and optionally broken by a
:class:`Fault`.  Point an official SDK at it (or let :meth:`ReplayServer.client`
build one) and the SDK parses the stream exactly as it would parse the live API::

    from streamkit.testing import ReplayServer, Reply

    with ReplayServer("openai/chat-text-usage", pace=0.01) as server:
        client = server.client("openai")
        stream = client.chat.completions.create(model="gpt-4o", messages=[], stream=True)
        for chunk in stream:
            ...
        request = server.wait_for_request_end()
        assert request.completed

Every request is recorded (:attr:`ReplayServer.requests`), with credentials
redacted, together with how much of the stream was sent and whether the client
went away first: with ``pace > 0`` the server watches the socket between events,
so it notices a client that closes a stream at once and stops sending.

Faults are chosen per request, so each attempt of a retry can meet its own::

    server.push(
        Reply("anthropic/messages-text", fault=Fault(http_error=529)),
        Reply("anthropic/messages-text", fault=Fault(close_after_events=3)),
        Reply("anthropic/messages-text", fault=Fault(error_event_after=4)),
        "anthropic/messages-text",  # the fourth attempt gets the whole stream
    )

A :class:`Fault` cuts or resets the connection, stalls, ends the body early, inserts
a malformed, error or very large event in the provider's own format, answers with an
HTTP error and the provider's error body, or trickles the body byte by byte; see its
fields.  :func:`error_event`, :func:`malformed_event`, :func:`error_body` and
:meth:`Fault.events_for` show exactly what is sent, and :func:`event_text` reads the
text of a raw event, so a test can compute what a client must receive.
"""

from __future__ import annotations

from streamkit.testing.replay._faults import Fault
from streamkit.testing.replay._kit import FAKE_API_KEY
from streamkit.testing.replay._matching import path_fits_api
from streamkit.testing.replay._payloads import (
    FOREIGN_TEXT,
    MALFORMED_KINDS,
    MalformedKind,
    error_body,
    error_event,
    event_text,
    large_event_text,
    malformed_event,
)
from streamkit.testing.replay._providers import PROVIDERS
from streamkit.testing.replay._recording import REDACTED, RecordedRequest
from streamkit.testing.replay._replies import Reply, ReplyLike
from streamkit.testing.replay._server import ReplayServer

__all__ = [
    "FAKE_API_KEY",
    "FOREIGN_TEXT",
    "MALFORMED_KINDS",
    "PROVIDERS",
    "REDACTED",
    "Fault",
    "MalformedKind",
    "RecordedRequest",
    "ReplayServer",
    "Reply",
    "ReplyLike",
    "error_body",
    "error_event",
    "event_text",
    "large_event_text",
    "malformed_event",
    "path_fits_api",
]
