"""What faults send, in the format of the transcript's API: malformed, error and large
events, HTTP error bodies; and :func:`event_text`, a reader of a raw event's text.

Each API's own shapes are declared by its provider module (``_providers/``); these
functions pick the one of a transcript.
"""

from __future__ import annotations

import json
from typing import Literal, TypeAlias

from streamkit.testing.replay._providers import WIRE_FORMATS, wire_format, wire_format_of
from streamkit.testing.replay._sse import data_of, with_data
from streamkit.testing.transcripts import Transcript

MalformedKind: TypeAlias = Literal["broken_json", "unknown_event", "foreign_event"]
"""What :attr:`Fault.malformed` inserts (see :func:`malformed_event`)."""

MALFORMED_KINDS: tuple[MalformedKind, ...] = ("broken_json", "unknown_event", "foreign_event")
"""Every :data:`MalformedKind`."""

_FILLER = "streamkit large event 0123456789 "


def large_event_text(size: int) -> str:
    """The text of :attr:`Fault.large_event`: ``size`` characters of ASCII filler."""
    return (_FILLER * (size // len(_FILLER) + 1))[:size]


def event_text(event: str, api: str) -> str:
    """The answer text one raw SSE event of ``api`` carries (``""`` if none).

    A reader of the wire format independent of any SDK, for tests' oracles.
    """
    wire = wire_format(api)
    data = data_of(event)
    if wire is None or data is None:
        return ""
    return wire.read_text(data) or ""


def first_text_event(transcript: Transcript) -> tuple[int, str] | None:
    """The index and the event of ``transcript``'s first text delta, if any."""
    for index, event in enumerate(transcript.events):
        if event_text(event, transcript.api):
            return index, event
    return None


def with_text(event: str, api: str, text: str) -> str:
    """``event`` (a text delta of ``api``) with its text replaced, other lines kept."""
    data = data_of(event)
    WIRE_FORMATS[api].write_text(data, text)
    return with_data(event, data)


FOREIGN_TEXT = " [streamkit foreign event]"
"""The text a ``"foreign_event"`` carries: it must never reach a client's output."""


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
    wire = wire_format_of(transcript)
    if kind == "broken_json":
        return wire.broken_json
    if kind == "unknown_event":
        return wire.unknown_event(transcript)
    foreign = WIRE_FORMATS[wire.foreign_api].text_event
    assert foreign is not None  # checked when the providers are gathered
    return foreign(FOREIGN_TEXT)


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
    return wire_format_of(transcript).error_event(transcript)


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
    message = f"streamkit replay: HTTP {status} injected by Fault(http_error={status})"
    body = wire_format_of(transcript).error_body(status, message)
    return json.dumps(body).encode("utf-8")
