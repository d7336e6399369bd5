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

import contextlib
import http
import json
import selectors
import socket
import socketserver
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, Literal, TypeAlias, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from streamkit.testing.transcripts import Transcript, load_transcript

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

#: The API key given to the clients :meth:`ReplayServer.client` builds.  It is fake.
FAKE_API_KEY = "sk-streamkit-test-key"

#: What recorded credentials are replaced with.
REDACTED = "<redacted>"

#: Providers :meth:`ReplayServer.client` can build an SDK client for.
PROVIDERS: tuple[str, ...] = (
    "openai",
    "azure_openai",
    "anthropic",
    "groq",
    "mistral",
    "google",
    "cohere",
    "litellm",
    "azure",
)

_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key"}
)
_SECRET_QUERY = frozenset({"key", "api_key", "api-key"})

# How long close() waits for each thread; threads are woken by socket shutdown,
# so this is only reached if something is badly stuck.
_JOIN_TIMEOUT = 5.0
# Upper bound of one select() while waiting, so the closing flag is seen even if
# a wake-up were missed.
_WAIT_SLICE = 0.2


# --------------------------------------------------------------------- faults
MalformedKind: TypeAlias = Literal["broken_json", "unknown_event", "foreign_event"]
"""What :attr:`Fault.malformed` inserts (see :func:`malformed_event`)."""

MALFORMED_KINDS: tuple[MalformedKind, ...] = ("broken_json", "unknown_event", "foreign_event")


@dataclass(frozen=True)
class Fault:
    """A way to break a reply on the wire.

    A :class:`Reply` carries at most one ``Fault``, and replies are taken one per
    request, so each attempt of a retry can meet a different fault.  The fields
    combine freely (except ``http_error``, which replaces the stream); each one
    left at its default does nothing.

    **What is sent** (positions count the transcript's own events):

    Attributes:
        end_after_events: send the transcript's first ``n`` events, then end the
            HTTP body properly (the chunked body's last chunk): a stream that ends
            cleanly without its terminal event, the connection still usable.
            Contrast ``close_after_events``, which drops the connection mid-body.
        malformed: ``(n, kind)``: insert a malformed event before the
            transcript's event ``n``; ``kind`` is ``"broken_json"`` (a data line
            cut in the middle of its JSON), ``"unknown_event"`` (a well-formed
            event of a type the provider does not send, as a newer API version
            might) or ``"foreign_event"`` (a text delta in another provider's
            format).  See :func:`malformed_event`.
        error_event_after: send the transcript's first ``n`` events, then the
            provider's mid-stream error event (an overload: Anthropic's
            ``event: error`` with ``overloaded_error``, OpenAI-style
            ``data: {"error": ...}``, Groq's ``event: error``...; see
            :func:`error_event`), then end the body properly.
        large_event: insert a copy of the transcript's first text delta right
            after it, its text replaced by ``large_event`` characters of ASCII
            filler (:func:`large_event_text`): one absurdly large but valid event.
        http_error: answer with this HTTP status and the provider's JSON error
            body (:func:`error_body`) instead of the stream.  Only ``headers``
            and ``stall_before`` (waited before the answer) apply with it.
        headers: extra response headers, e.g. ``{"retry-after": "1"}`` (given as a
            mapping; kept as sorted pairs so a ``Fault`` stays hashable).

    **How it is sent** (positions count events as sent, inserted ones included):

    Attributes:
        close_after_events: send this many events, then close the connection
            cleanly (FIN) without the rest of the body: no further events and no
            end of the chunked body, so the stream is cut without its terminal
            event.  A value at or past the number of events sends them all and
            still drops the connection before the end of the HTTP body.
        reset_after_events: send this many events, then reset the connection
            (``SO_LINGER`` 0, then close: the client gets a TCP RST).
        stall_before: seconds to wait after the response headers and before the
            first event (a slow time-to-first-token).
        stall_after_events: ``(n, seconds)``: after ``n`` events, wait
            ``seconds`` before going on (``n`` equal to the number of events
            stalls before the end of the body).
        trickle: send the body one byte at a time (chunk framing included),
            waiting this many seconds between bytes (0: no wait, but still one
            write per byte).
        trickle_bytes: trickle only the first this many bytes of the body, then
            send the rest as usual (``None``: the whole body).  Each trickled byte
            costs the client a read, so a long body trickled whole is slow.

    While stalling or trickling the server watches the socket and stops as soon
    as the client goes away.  When both a close and a reset are given, the one
    with fewer events happens (a reset on a tie).  :meth:`events_for` gives the
    events a fault sends, so a test can compute what a client should receive.
    """

    close_after_events: int | None = None
    reset_after_events: int | None = None
    stall_before: float = 0.0
    stall_after_events: tuple[int, float] | None = None
    end_after_events: int | None = None
    malformed: tuple[int, MalformedKind] | None = None
    error_event_after: int | None = None
    large_event: int | None = None
    trickle: float | None = None
    trickle_bytes: int | None = None
    http_error: int | None = None
    headers: Mapping[str, str] | tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for name in (
            "close_after_events",
            "reset_after_events",
            "end_after_events",
            "error_event_after",
        ):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"Fault.{name} must be >= 0, got {value}")
        if self.stall_before < 0:
            raise ValueError(f"Fault.stall_before must be >= 0, got {self.stall_before}")
        if self.stall_after_events is not None:
            n, seconds = self.stall_after_events
            if n < 0 or seconds < 0:
                raise ValueError(
                    f"Fault.stall_after_events must be (n >= 0, seconds >= 0), "
                    f"got {self.stall_after_events}"
                )
        if self.malformed is not None:
            at, kind = self.malformed
            if at < 0 or kind not in MALFORMED_KINDS:
                raise ValueError(
                    f"Fault.malformed must be (n >= 0, one of {', '.join(MALFORMED_KINDS)}), "
                    f"got {self.malformed!r}"
                )
        if self.large_event is not None and self.large_event < 1:
            raise ValueError(f"Fault.large_event must be >= 1 characters, got {self.large_event}")
        if self.trickle is not None and self.trickle < 0:
            raise ValueError(f"Fault.trickle must be >= 0 seconds, got {self.trickle}")
        if self.trickle_bytes is not None and self.trickle_bytes < 0:
            raise ValueError(f"Fault.trickle_bytes must be >= 0, got {self.trickle_bytes}")
        if self.http_error is not None:
            if not 400 <= self.http_error <= 599:
                raise ValueError(
                    f"Fault.http_error must be a 4xx or 5xx status, got {self.http_error}"
                )
            stream_faults = [
                name
                for name in (
                    "close_after_events",
                    "reset_after_events",
                    "stall_after_events",
                    "end_after_events",
                    "malformed",
                    "error_event_after",
                    "large_event",
                    "trickle",
                    "trickle_bytes",
                )
                if getattr(self, name) is not None
            ]
            if stream_faults:
                raise ValueError(
                    "Fault.http_error replaces the stream, so it cannot be combined with "
                    + ", ".join(stream_faults)
                )
        pairs = self.headers.items() if isinstance(self.headers, Mapping) else self.headers
        # Frozen: normalize through object.__setattr__, once, at construction.
        object.__setattr__(self, "headers", tuple(sorted((str(k), str(v)) for k, v in pairs)))

    def header_items(self) -> tuple[tuple[str, str], ...]:
        """The extra response headers as ``(name, value)`` pairs."""
        return cast(tuple[tuple[str, str], ...], self.headers)

    def cut(self) -> tuple[int, Literal["close", "reset"]] | None:
        """Where the connection is cut: ``(events sent before, "close" | "reset")``."""
        close, reset = self.close_after_events, self.reset_after_events
        if reset is not None and (close is None or reset <= close):
            return reset, "reset"
        if close is not None:
            return close, "close"
        return None

    def stall_at(self, index: int) -> float:
        """Seconds to stall just before event ``index`` (after ``index`` events)."""
        total = 0.0
        if index == 0:
            total += self.stall_before
        if self.stall_after_events is not None and self.stall_after_events[0] == index:
            total += self.stall_after_events[1]
        return total

    def events_for(self, transcript: Transcript) -> list[str]:
        """The events this fault makes the server send for ``transcript``, in order,
        before any cut, stall or trickle (``[]`` with ``http_error``).

        The transcript's events are kept up to ``end_after_events`` or
        ``error_event_after`` (whichever is smaller), then the error event is
        appended, then the malformed and large events are inserted at their
        positions in the transcript.
        """
        if self.http_error is not None:
            return []
        original = list(transcript.events)
        keep = len(original)
        for limit in (self.end_after_events, self.error_event_after):
            if limit is not None:
                keep = min(keep, limit)
        inserted: dict[int, list[str]] = {}
        if self.large_event is not None:
            found = _first_text_event(transcript)
            if found is None:
                raise ValueError(f"transcript {transcript.name!r} has no text event to enlarge")
            index, event = found
            inserted.setdefault(index + 1, []).append(
                _with_text(event, transcript.api, large_event_text(self.large_event))
            )
        if self.malformed is not None:
            at, kind = self.malformed
            inserted.setdefault(at, []).append(malformed_event(transcript, kind))
        events: list[str] = []
        for index in range(keep + 1):
            events.extend(inserted.get(index, ()))
            if index < keep:
                events.append(original[index])
        if self.error_event_after is not None:
            events.append(error_event(transcript))
        return events


# ------------------------------------------------- what faults send, per API
_FILLER = "streamkit large event 0123456789 "


def large_event_text(size: int) -> str:
    """The text of :attr:`Fault.large_event`: ``size`` characters of ASCII filler."""
    return (_FILLER * (size // len(_FILLER) + 1))[:size]


def _sse(data: Any, event: str | None = None) -> str:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event is not None else ""
    return f"{head}data: {payload}\n\n"


def _data_of(event: str) -> Any:
    """The JSON of an SSE event's data lines, or ``None``."""
    lines = [line[5:].lstrip(" ") for line in event.splitlines() if line.startswith("data:")]
    if not lines:
        return None
    try:
        return json.loads("\n".join(lines))
    except ValueError:
        return None


# Where each API puts a text delta in an event's JSON: (is it one?, read, write).
def _chat_text(data: Any) -> str | None:
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices[0], dict):
        return None
    content = (choices[0].get("delta") or {}).get("content")
    return content if isinstance(content, str) and content else None


def _messages_text(data: Any) -> str | None:
    if isinstance(data, dict) and data.get("type") == "content_block_delta":
        delta = data.get("delta") or {}
        if delta.get("type") == "text_delta" and delta.get("text"):
            return str(delta["text"])
    return None


def _responses_text(data: Any) -> str | None:
    if isinstance(data, dict) and data.get("type") == "response.output_text.delta":
        return str(data.get("delta") or "") or None
    return None


def _google_text(data: Any) -> str | None:
    try:
        parts = data["candidates"][0]["content"]["parts"]
    except (KeyError, IndexError, TypeError):
        return None
    texts = [
        part["text"]
        for part in parts
        if isinstance(part, dict) and isinstance(part.get("text"), str) and not part.get("thought")
    ]
    return "".join(texts) or None


def _cohere_text(data: Any) -> str | None:
    if isinstance(data, dict) and data.get("type") == "content-delta":
        try:
            return str(data["delta"]["message"]["content"]["text"]) or None
        except (KeyError, TypeError):
            return None
    return None


def _set_chat_text(data: Any, text: str) -> None:
    choice = data["choices"][0]
    choice["delta"] = {"content": text}
    choice["finish_reason"] = None
    for key in ("usage", "x_groq"):
        data.pop(key, None)


def _set_messages_text(data: Any, text: str) -> None:
    data["delta"]["text"] = text


def _set_responses_text(data: Any, text: str) -> None:
    data["delta"] = text


def _set_google_text(data: Any, text: str) -> None:
    candidate = data["candidates"][0]
    candidate["content"]["parts"] = [{"text": text}]
    candidate.pop("finishReason", None)


def _set_cohere_text(data: Any, text: str) -> None:
    data["delta"]["message"]["content"]["text"] = text


_TEXT_FIELDS: Mapping[str, tuple[Callable[[Any], str | None], Callable[[Any, str], None]]] = {
    "chat.completions": (_chat_text, _set_chat_text),
    "messages": (_messages_text, _set_messages_text),
    "responses": (_responses_text, _set_responses_text),
    "streamGenerateContent": (_google_text, _set_google_text),
    "v2/chat": (_cohere_text, _set_cohere_text),
}


def event_text(event: str, api: str) -> str:
    """The answer text one raw SSE event of ``api`` carries (``""`` if none).

    A reader of the wire format independent of any SDK, for tests' oracles.
    """
    reader = _TEXT_FIELDS.get(api)
    data = _data_of(event)
    if reader is None or data is None:
        return ""
    return reader[0](data) or ""


def _first_text_event(transcript: Transcript) -> tuple[int, str] | None:
    for index, event in enumerate(transcript.events):
        if event_text(event, transcript.api):
            return index, event
    return None


def _with_text(event: str, api: str, text: str) -> str:
    """``event`` (a text delta of ``api``) with its text replaced, other lines kept."""
    data = _data_of(event)
    _TEXT_FIELDS[api][1](data, text)
    newline = "\r\n" if "\r\n" in event else "\n"
    lines = [line for line in event.splitlines() if line and not line.startswith("data:")]
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return newline.join(lines) + newline + newline


def _stream_identity(transcript: Transcript) -> dict[str, Any]:
    """``id``, ``model`` and ``created`` of the transcript's first chat chunk."""
    for event in transcript.events:
        data = _data_of(event)
        if isinstance(data, dict) and "id" in data:
            return {k: data[k] for k in ("id", "model", "created") if k in data}
    return {}


def _anthropic_text_delta(text: str) -> str:
    delta = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": text},
    }
    return _sse(delta, "content_block_delta")


def _openai_text_chunk(text: str) -> str:
    chunk = {
        "id": "chatcmpl-streamkit-foreign",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    return _sse(chunk)


#: The text a ``"foreign_event"`` carries: it must never reach a client's output.
FOREIGN_TEXT = " [streamkit foreign event]"


def malformed_event(transcript: Transcript, kind: MalformedKind) -> str:
    """The raw SSE event :attr:`Fault.malformed` inserts into ``transcript``'s stream.

    - ``"broken_json"``: an event of the transcript's API (with its ``event:``
      line where the API names events) whose data is JSON cut in the middle.
    - ``"unknown_event"``: well-formed, of a type the API does not define: an
      unknown ``type`` (Anthropic, OpenAI Responses, Cohere), a chunk with an
      unknown ``object`` and no choices (chat completions, same ``id`` and
      ``model`` as the stream), or a chunk with no candidates and an unknown
      field (Gemini).
    - ``"foreign_event"``: a text delta carrying :data:`FOREIGN_TEXT` in another
      provider's format: an Anthropic ``content_block_delta`` for OpenAI-shaped
      and Gemini streams, an OpenAI chat chunk for Anthropic and Cohere ones.
    """
    api = transcript.api
    if kind == "broken_json":
        if api == "messages":
            return (
                'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"del\n\n'
            )
        if api == "responses":
            return 'event: response.output_text.delta\ndata: {"type":"response.output_te\n\n'
        if api == "v2/chat":
            return 'event: content-delta\ndata: {"type":"content-delta","index":0,"delta":{"mes\n\n'
        return 'data: {"id":"streamkit-broken","choices":[{"index":0,"delta":{"cont\n\n'
    if kind == "unknown_event":
        if api == "messages":
            return _sse({"type": "streamkit_unknown", "note": "a newer event"}, "streamkit_unknown")
        if api == "responses":
            return _sse(
                {"type": "response.streamkit_unknown", "sequence_number": 0},
                "response.streamkit_unknown",
            )
        if api == "v2/chat":
            return _sse({"type": "streamkit-unknown", "note": "a newer event"}, "streamkit-unknown")
        if api == "streamGenerateContent":
            return _sse({"streamkitUnknown": {"note": "a newer field"}})
        chunk = {
            **_stream_identity(transcript),
            "object": "chat.completion.streamkit_unknown",
            "choices": [],
        }
        chunk.setdefault("id", "streamkit-unknown")
        chunk.setdefault("model", "streamkit-unknown")
        return _sse(chunk)
    if api in ("messages", "v2/chat"):
        return _openai_text_chunk(FOREIGN_TEXT)
    return _anthropic_text_delta(FOREIGN_TEXT)


_OVERLOADED = "The server is overloaded, please try again later."


def error_event(transcript: Transcript) -> str:
    """The provider's mid-stream error event (an overload) for ``transcript``'s API.

    - Anthropic: ``event: error`` with ``{"type": "error", "error": {"type":
      "overloaded_error", ...}}``.
    - OpenAI Responses: ``event: error`` with ``{"type": "error", "code":
      "server_error", ...}``.
    - Groq: ``event: error`` with ``{"error": {"type": "internal_server_error",
      ...}}`` (the shape of its recorded mid-stream error).
    - OpenAI, Mistral, OpenRouter chat: a data line ``{"error": {"type":
      "server_error", ...}}`` (OpenRouter adds a numeric ``code``).
    - Gemini: a data line ``{"error": {"code": 503, "status": "UNAVAILABLE", ...}}``.
    - Cohere: ``event: error`` with ``{"type": "error", ...}`` (not documented by
      Cohere; the shape its other events use).
    """
    api, provider = transcript.api, transcript.provider
    if api == "messages":
        return _sse(
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            "error",
        )
    if api == "responses":
        body = {"type": "error", "code": "server_error", "message": _OVERLOADED, "param": None}
        return _sse({**body, "sequence_number": 0}, "error")
    if api == "streamGenerateContent":
        return _sse({"error": {"code": 503, "message": _OVERLOADED, "status": "UNAVAILABLE"}})
    if api == "v2/chat":
        return _sse({"type": "error", "message": _OVERLOADED}, "error")
    if provider == "groq":
        groq_error = {"message": _OVERLOADED, "type": "internal_server_error", "code": "overloaded"}
        return _sse({"error": groq_error}, "error")
    error: dict[str, Any] = {
        "message": _OVERLOADED,
        "type": "server_error",
        "param": None,
        "code": None,
    }
    if provider == "openrouter":
        error = {"message": _OVERLOADED, "code": 503}
    return _sse({"error": error})


# status -> (OpenAI-style type, Anthropic type, Google status); 529 is Anthropic's overload.
_ERROR_KINDS: Mapping[int, tuple[str, str, str]] = {
    429: ("rate_limit_exceeded", "rate_limit_error", "RESOURCE_EXHAUSTED"),
    500: ("server_error", "api_error", "INTERNAL"),
    503: ("server_error", "api_error", "UNAVAILABLE"),
    529: ("server_error", "overloaded_error", "UNAVAILABLE"),
}


def error_body(transcript: Transcript, status: int) -> bytes:
    """The JSON error body :attr:`Fault.http_error` sends, in the shape of the
    provider of ``transcript``.

    - OpenAI (chat and Responses) and Groq: ``{"error": {"message", "type",
      "param", "code"}}``; OpenRouter: ``{"error": {"message", "code": status}}``.
    - Anthropic: ``{"type": "error", "error": {"type", "message"}}`` with
      ``rate_limit_error`` (429), ``overloaded_error`` (529), ``api_error`` (5xx)
      or ``invalid_request_error``.
    - Mistral: ``{"object": "error", "message", "type", "param", "code"}``.
    - Gemini: ``{"error": {"code": status, "message", "status"}}`` with
      ``RESOURCE_EXHAUSTED``, ``INTERNAL``, ``UNAVAILABLE``...
    - Cohere: ``{"id", "message"}``.
    """
    kinds = _ERROR_KINDS.get(status)
    message = f"streamkit replay: HTTP {status} injected by Fault(http_error={status})"
    openai_type = kinds[0] if kinds else "invalid_request_error"
    body: dict[str, Any]
    if transcript.api == "messages":
        kind = kinds[1] if kinds else ("api_error" if status >= 500 else "invalid_request_error")
        body = {"type": "error", "error": {"type": kind, "message": message}}
    elif transcript.api == "streamGenerateContent":
        google_status = kinds[2] if kinds else ("INTERNAL" if status >= 500 else "INVALID_ARGUMENT")
        body = {"error": {"code": status, "message": message, "status": google_status}}
    elif transcript.api == "v2/chat":
        body = {"id": "streamkit-replay-error", "message": message}
    elif transcript.provider == "mistral":
        body = {
            "object": "error",
            "message": message,
            "type": openai_type,
            "param": None,
            "code": str(status),
        }
    elif transcript.provider == "openrouter":
        body = {"error": {"message": message, "code": status}}
    else:
        body = {
            "error": {
                "message": message,
                "type": openai_type,
                "param": None,
                "code": openai_type if status == 429 else None,
            }
        }
    return json.dumps(body).encode("utf-8")


# -------------------------------------------------------------------- replies
class Reply:
    """One queued answer: a transcript plus how to send it.

    Args:
        transcript: a :class:`Transcript` or the name of a bundled one.
        pace: seconds between events; ``None`` uses the server's ``pace``.
        fault: how to break the reply on the wire, if at all.
        status: an HTTP status to send instead of the transcript's.
    """

    __slots__ = ("fault", "pace", "status", "transcript")

    transcript: Transcript
    pace: float | None
    fault: Fault | None
    status: int | None

    def __init__(
        self,
        transcript: str | Transcript,
        *,
        pace: float | None = None,
        fault: Fault | None = None,
        status: int | None = None,
    ) -> None:
        if pace is not None and pace < 0:
            raise ValueError(f"pace must be >= 0, got {pace}")
        self.transcript = load_transcript(transcript) if isinstance(transcript, str) else transcript
        self.pace = pace
        self.fault = fault
        self.status = status

    def __repr__(self) -> str:
        return (
            f"Reply({self.transcript.name!r}, pace={self.pace!r}, "
            f"fault={self.fault!r}, status={self.status!r})"
        )

    @classmethod
    def of(cls, reply: ReplyLike) -> Reply:
        """Coerce a transcript name, a :class:`Transcript` or a :class:`Reply`."""
        if isinstance(reply, Reply):
            return reply
        return cls(reply)


#: What every method that takes a reply accepts.
ReplyLike: TypeAlias = "str | Transcript | Reply"


# ------------------------------------------------------------------ recording
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


def _redact_headers(items: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw_name, value in items:
        name = raw_name.lower()
        if name in _SECRET_HEADERS:
            value = REDACTED
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def _redact_path(path: str) -> str:
    parts = urlsplit(path)
    if not parts.query:
        return path
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if not any(k.lower() in _SECRET_QUERY for k, _ in pairs):
        return path
    query = urlencode([(k, REDACTED if k.lower() in _SECRET_QUERY else v) for k, v in pairs])
    return urlunsplit(parts._replace(query=query))


# -------------------------------------------------------------- path matching
_API_PATH_RULES: Mapping[str, tuple[str, Callable[[str], bool]]] = {
    "chat.completions": (
        "a path ending with /chat/completions",
        lambda p: p.endswith("/chat/completions"),
    ),
    "responses": ("a path ending with /responses", lambda p: p.endswith("/responses")),
    "messages": ("a path ending with /messages", lambda p: p.endswith("/messages")),
    "streamGenerateContent": (
        "a path containing :streamGenerateContent or :generateContent",
        lambda p: ":streamGenerateContent" in p or ":generateContent" in p,
    ),
    "v2/chat": ("a path ending with /v2/chat", lambda p: p.endswith("/v2/chat")),
}


def path_fits_api(path: str, api: str) -> bool:
    """Whether a request path (query ignored) is one the ``api`` is served on.

    Unknown ``api`` values accept any path.
    """
    rule = _API_PATH_RULES.get(api)
    if rule is None:
        return True
    bare = urlsplit(path).path.rstrip("/")
    return rule[1](bare)


# ------------------------------------------------------------- socket helpers
_Peer = Literal["alive", "gone", "closing"]


def _peek_gone(sock: socket.socket) -> bool | None:
    """``True`` if the peer closed, ``False`` if data is waiting, ``None`` if nothing."""
    try:
        data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return True
    return data == b""


# ----------------------------------------------------------------- the server
class _TCPServer(socketserver.TCPServer):
    allow_reuse_address = False
    # Room for a thousand clients connecting at once (a concurrency test, the benchmark):
    # past the listen backlog the kernel drops handshakes, and a client that believed
    # itself connected fails later with a read error.
    request_queue_size = 4096

    def __init__(self, owner: ReplayServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.owner._spawn_connection(cast(socket.socket, request), client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client going away mid-request is normal here; stay quiet.
        return


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "streamkit-replay"

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _dispatch(self) -> None:
        cast(_TCPServer, self.server).owner._serve(self)

    do_POST = _dispatch
    do_GET = _dispatch
    do_PUT = _dispatch
    do_PATCH = _dispatch
    do_DELETE = _dispatch
    do_HEAD = _dispatch
    do_OPTIONS = _dispatch


class ReplayServer:
    """Serve transcripts over real HTTP/1.1 on ``127.0.0.1`` (see the module docs).

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
        self._httpd: _TCPServer | None = None
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
        self._httpd = _TCPServer(self)
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

    def _require_httpd(self) -> _TCPServer:
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
            factory = _CLIENT_FACTORIES[provider]
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

    def _serve(self, handler: _Handler) -> None:
        body = _read_body(handler)
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
                path=_redact_path(handler.path),
                headers=_redact_headers(list(handler.headers.items())),
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

    def _respond(self, handler: _Handler, record: RecordedRequest) -> None:
        if handler.command != "POST":
            handler.close_connection = True  # e.g. HEAD: a body would desync keep-alive
            _send_json_error(
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
            _send_json_error(
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
        if not path_fits_api(handler.path, transcript.api):
            expected = _API_PATH_RULES[transcript.api][0]
            _send_json_error(
                handler,
                record,
                404,
                "streamkit_replay_path_mismatch",
                f"transcript {transcript.name!r} answers api {transcript.api!r} "
                f"({expected}), but the request path was {urlsplit(handler.path).path!r}: "
                f"is the client's base URL right?",
                keep_alive=self.keep_alive,
            )
            return
        self._stream(handler, record, reply)

    def _stream(self, handler: _Handler, record: RecordedRequest, reply: Reply) -> None:
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

        head = [f"HTTP/1.1 {status} {_reason(status)}"]
        for name, value in transcript.headers.items():
            if name.lower() not in _HOP_BY_HOP:
                head.append(f"{name}: {value}")
        head.append(f"x-streamkit-transcript: {transcript.name}")
        head.extend(self._extra_headers(fault))
        if chunked:
            head.append("Transfer-Encoding: chunked")
        else:
            head.append(f"Content-Length: {sum(len(e) for e in events)}")
        head_bytes = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")

        cut = fault.cut()
        with _Watcher(sock, self._closing) as watch:

            def stop(state: _Peer, at: int) -> None:
                handler.close_connection = True
                if state == "gone":
                    record.disconnected = True
                    record.disconnected_at_event = at
                else:
                    record.error = "the server closed while streaming"

            send_body = _BodyWriter(watch, fault.trickle, fault.trickle_bytes).send

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
                    _cut_connection(handler, cut[1])
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
        self, handler: _Handler, record: RecordedRequest, transcript: Transcript, fault: Fault
    ) -> None:
        status = cast(int, fault.http_error)
        payload = error_body(transcript, status)
        head = [
            f"HTTP/1.1 {status} {_reason(status)}",
            "content-type: application/json",
            f"Content-Length: {len(payload)}",
            *self._extra_headers(fault),
        ]
        record.status = status
        with _Watcher(handler.connection, self._closing) as watch:
            if fault.stall_before > 0 and not watch.wait(fault.stall_before):
                handler.close_connection = True
                record.disconnected = watch.state == "gone"
                return
            if not watch.send(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload):
                handler.close_connection = True
                return
        record.completed = True


_HOP_BY_HOP = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}
)


def _reason(status: int) -> str:
    if status == 529:
        return "Overloaded"  # Anthropic's, not in the IANA registry
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class _Watcher:
    """Writes to a client socket and waits between writes, watching for the client leaving."""

    def __init__(self, sock: socket.socket, closing: threading.Event) -> None:
        self._sock = sock
        self._closing = closing
        self._selector = selectors.DefaultSelector()
        self._selector.register(sock, selectors.EVENT_READ)
        self.state: _Peer = "alive"

    def __enter__(self) -> _Watcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self._selector.close()

    def _readable(self, timeout: float) -> bool:
        try:
            return bool(self._selector.select(timeout))
        except (OSError, ValueError):
            self.state = "gone"
            return True

    def still_there(self) -> bool:
        """Check without waiting whether the client is still connected."""
        return self.wait(0.0)

    def wait(self, seconds: float) -> bool:
        """Wait ``seconds``; ``False`` as soon as the client leaves or the server closes."""
        deadline = time.monotonic() + seconds
        while True:
            if self._closing.is_set():
                self.state = "closing"
                return False
            remaining = deadline - time.monotonic()
            if self._readable(max(0.0, min(remaining, _WAIT_SLICE))):
                if self.state == "gone":
                    return False
                gone = _peek_gone(self._sock)
                if gone:
                    self.state = "gone"
                    return False
                if gone is False:
                    # The client sent bytes (a pipelined request): no EOF to see
                    # behind them, so just sleep out the slice.
                    time.sleep(max(0.0, min(remaining, 0.01)))
            if remaining <= 0:
                return True

    def send_trickle(self, data: bytes, delay: float) -> bool:
        """Write ``data`` one byte at a time, ``delay`` seconds apart; ``False`` as
        soon as the client is gone (a write to a closed peer fails within a byte or
        two, so the wait is a plain sleep rather than a watch of the socket)."""
        for index in range(len(data)):
            if index and delay > 0:
                time.sleep(delay)
            if not self.send(data[index : index + 1]):
                return False
        return True

    def send(self, data: bytes) -> bool:
        """Write all of ``data``; ``False`` if the client is gone."""
        if self._closing.is_set():
            self.state = "closing"
            return False
        try:
            self._sock.sendall(data)
        except OSError:
            self.state = "closing" if self._closing.is_set() else "gone"
            return False
        return True


class _BodyWriter:
    """Sends body frames, one byte at a time for the first ``budget`` bytes
    (all of them when ``budget`` is ``None``) when a trickle ``delay`` is given."""

    def __init__(self, watch: _Watcher, delay: float | None, budget: int | None) -> None:
        self._watch = watch
        self._delay = delay
        self._left = budget

    def send(self, data: bytes) -> bool:
        """Write ``data``; ``False`` if the client is gone."""
        if self._delay is None:
            return self._watch.send(data)
        if self._left is None:
            return self._watch.send_trickle(data, self._delay)
        slow, fast = data[: self._left], data[self._left :]
        self._left -= len(slow)
        if slow and not self._watch.send_trickle(slow, self._delay):
            return False
        return not fast or self._watch.send(fast)


def _cut_connection(handler: _Handler, how: Literal["close", "reset"]) -> None:
    handler.close_connection = True
    sock = handler.connection
    if how == "reset":
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The handler's rfile holds a reference to the socket: close both so
        # the descriptor really closes now (and the RST goes out).
        sock.close()
        with contextlib.suppress(OSError):
            handler.rfile.close()
    else:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)


def _read_body(handler: _Handler) -> bytes:
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


def _send_json_error(
    handler: _Handler,
    record: RecordedRequest,
    status: int,
    kind: str,
    message: str,
    *,
    keep_alive: bool = True,
) -> None:
    payload = json.dumps(
        {"error": {"type": kind, "message": message, "source": "streamkit.testing.ReplayServer"}}
    ).encode("utf-8")
    close = "" if keep_alive else "Connection: close\r\n"
    head = (
        f"HTTP/1.1 {status} {_reason(status)}\r\n"
        "content-type: application/json\r\n"
        f"{close}Content-Length: {len(payload)}\r\n\r\n"
    ).encode("latin-1")
    record.status = status
    record.error = message
    try:
        handler.connection.sendall(head + payload)
    except OSError:
        handler.close_connection = True


# ------------------------------------------------------------- SDK factories
_Factory = Callable[[str, bool, dict[str, Any]], tuple[Any, bool]]


def _merged(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = dict(defaults)
    out.update(overrides)
    return out


def _openai(url: str, async_: bool, kw: dict[str, Any]) -> tuple[Any, bool]:
    import openai

    opts = _merged({"api_key": FAKE_API_KEY, "base_url": url + "/v1", "max_retries": 0}, kw)
    if async_:
        return openai.AsyncOpenAI(**opts), False
    return openai.OpenAI(**opts), True


def _azure_openai(url: str, async_: bool, kw: dict[str, Any]) -> tuple[Any, bool]:
    import openai

    opts = _merged(
        {
            "api_key": FAKE_API_KEY,
            "azure_endpoint": url,
            "api_version": "2024-10-21",
            "max_retries": 0,
        },
        kw,
    )
    if async_:
        return openai.AsyncAzureOpenAI(**opts), False
    return openai.AzureOpenAI(**opts), True


def _anthropic(url: str, async_: bool, kw: dict[str, Any]) -> tuple[Any, bool]:
    import anthropic

    opts = _merged({"api_key": FAKE_API_KEY, "base_url": url, "max_retries": 0}, kw)
    if async_:
        return anthropic.AsyncAnthropic(**opts), False
    return anthropic.Anthropic(**opts), True


def _groq(url: str, async_: bool, kw: dict[str, Any]) -> tuple[Any, bool]:
    import groq

    opts = _merged({"api_key": FAKE_API_KEY, "base_url": url, "max_retries": 0}, kw)
    if async_:
        return groq.AsyncGroq(**opts), False
    return groq.Groq(**opts), True


def _mistral(url: str, async_: bool, kw: dict[str, Any]) -> tuple[Any, bool]:
    from mistralai.client import Mistral
    from mistralai.client.utils.retries import BackoffStrategy, RetryConfig

    no_retries = RetryConfig("none", BackoffStrategy(1, 1, 1.0, 1), False)
    opts = _merged({"api_key": FAKE_API_KEY, "server_url": url, "retry_config": no_retries}, kw)
    return Mistral(**opts), True


def _google(url: str, async_: bool, kw: dict[str, Any]) -> tuple[Any, bool]:
    from google import genai
    from google.genai import types

    http_options = types.HttpOptions(base_url=url, retry_options=types.HttpRetryOptions(attempts=1))
    opts = _merged({"api_key": FAKE_API_KEY, "vertexai": False, "http_options": http_options}, kw)
    return genai.Client(**opts), True


def _cohere(url: str, async_: bool, kw: dict[str, Any]) -> tuple[Any, bool]:
    import cohere

    opts = _merged({"api_key": FAKE_API_KEY, "base_url": url, "max_retries": 0}, kw)
    if async_:
        return cohere.AsyncClientV2(**opts), False
    return cohere.ClientV2(**opts), True


def _litellm(url: str, async_: bool, kw: dict[str, Any]) -> tuple[Any, bool]:
    import functools
    import os

    # Before the import: litellm fetches its model cost map from GitHub unless told not
    # to, and a client for a local replay server must not touch the network.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    opts = _merged(
        {
            "api_base": url + "/v1",
            "api_key": FAKE_API_KEY,
            "max_retries": 0,
            "custom_llm_provider": "openai",
        },
        kw,
    )
    function = litellm.acompletion if async_ else litellm.completion
    # A completion function holds no connection of its own: nothing to close.
    return functools.partial(function, **opts), False


def _azure(url: str, async_: bool, kw: dict[str, Any]) -> tuple[Any, bool]:
    import azure.ai.inference
    import azure.ai.inference.aio
    from azure.core.credentials import AzureKeyCredential

    # The SDK takes a credential, not a key: ``api_key`` (as the other factories take)
    # becomes the credential's key.
    key = kw.pop("api_key", FAKE_API_KEY)
    # retry_total=0: azure-core's RetryPolicy otherwise retries 429/5xx up to 10 times.
    opts = _merged({"endpoint": url, "credential": AzureKeyCredential(key), "retry_total": 0}, kw)
    if async_:
        return azure.ai.inference.aio.ChatCompletionsClient(**opts), False
    return azure.ai.inference.ChatCompletionsClient(**opts), True


_CLIENT_FACTORIES: Mapping[str, _Factory] = {
    "openai": _openai,
    "azure_openai": _azure_openai,
    "anthropic": _anthropic,
    "groq": _groq,
    "mistral": _mistral,
    "google": _google,
    "cohere": _cohere,
    "litellm": _litellm,
    "azure": _azure,
}


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
