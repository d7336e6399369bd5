"""The mistralai SDK internals the fast path (:mod:`streamkit.providers.mistral.fast`)
uses, in one place.

mistralai (a Speakeasy-generated SDK, not a Stainless one) has no ``with_streaming_response``:
``chat.stream`` makes the request (authentication, ``server_url``, retries, hooks, HTTP
status errors) and returns an ``EventStream`` (``EventStreamAsync``) over the unread HTTP
response, whose generator (``mistralai.client.utils.eventstreaming.stream_events``) starts
reading only on the first ``next``. The fast path relies on:

- ``EventStream.response`` / ``EventStreamAsync.response``: the HTTP response it reads
  itself (the SDK's generator is never started; ``close()`` closes the response);
- the SSE rules of ``stream_events`` and ``_parse_event`` (the event boundaries
  ``MESSAGE_BOUNDARIES``, a UTF-8 BOM dropped, the sentinel ``[DONE]``, data-less events
  skipped, the last event id carried over), mirrored in
  :class:`~streamkit.providers.mistral.fast.MistralEventReader`;
- how each event becomes its ``CompletionEvent``: the event's fields as JSON text,
  validated by ``unmarshal_json_response`` (which raises ``ResponseValidationError`` with
  that text as ``body``), done here by :class:`MistralChunkBuilder`.

With a mistralai SDK whose internals differ, :func:`require_sdk_internals` says so, with
its version, before any request.
"""

from __future__ import annotations

import inspect
import json
from functools import cache
from typing import Any

from mistralai.client import _version
from mistralai.client.models import CompletionChunk, CompletionEvent
from mistralai.client.utils import eventstreaming
from mistralai.client.utils.unmarshal_json_response import unmarshal_json_response

from streamkit.providers._stainless import SDKObjectBuilder

__all__ = [
    "MESSAGE_BOUNDARIES",
    "SENTINEL",
    "UTF8_BOM",
    "MistralChunkBuilder",
    "require_sdk_internals",
    "sdk_version",
]

MESSAGE_BOUNDARIES: tuple[bytes, ...] = (
    b"\r\n\r\n",
    b"\r\n\r",
    b"\r\n\n",
    b"\r\r\n",
    b"\n\r\n",
    b"\r\r",
    b"\n\r",
    b"\n\n",
)
"""The event boundaries of mistralai 3.x's ``stream_events``, tried in this order."""
UTF8_BOM = b"\xef\xbb\xbf"
"""Dropped from a chunk read while nothing is buffered, as ``stream_events`` does."""
SENTINEL = b"[DONE]"
"""The data that ends ``chat.stream``'s event stream (the rest is not read)."""

# What the fast path calls or mirrors, checked before any request.
_EVENTSTREAMING = ("EventStream", "EventStreamAsync", "stream_events", "_parse_event")
_STREAM_PARAMETERS = ("response", "decoder", "sentinel", "client_ref", "data_required")
_PARSE_PARAMETERS = ("raw", "decoder", "sentinel", "event_id", "data_required")


def sdk_version() -> str:
    """The installed mistralai's version."""
    return str(_version.__version__)


def _changed_internals() -> list[str]:
    """What the fast path needs of the installed mistralai and does not find there."""
    return list(
        _changed(
            _EVENTSTREAMING, _STREAM_PARAMETERS, _PARSE_PARAMETERS, MESSAGE_BOUNDARIES, UTF8_BOM
        )
    )


# Cached by what it compares: every stream checks (fast=None decides by it), the
# signatures take ~40 µs to read, and the installed SDK does not change under a process.
@cache
def _changed(
    names: tuple[str, ...],
    stream_parameters: tuple[str, ...],
    parse_parameters: tuple[str, ...],
    boundaries: tuple[bytes, ...],
    bom: bytes,
) -> tuple[str, ...]:
    missing = [f"eventstreaming.{name}" for name in names if not hasattr(eventstreaming, name)]
    if missing:
        return tuple(missing)
    for cls in (eventstreaming.EventStream, eventstreaming.EventStreamAsync):
        parameters = tuple(inspect.signature(cls.__init__).parameters)[1:]
        if parameters != stream_parameters or "response" not in cls.__annotations__:
            missing.append(f"{cls.__qualname__}(response, decoder, sentinel, ...)")
    if tuple(inspect.signature(eventstreaming._parse_event).parameters) != parse_parameters:
        missing.append("eventstreaming._parse_event(raw, decoder, sentinel, event_id, ...)")
    if tuple(getattr(eventstreaming, "MESSAGE_BOUNDARIES", ())) != boundaries:
        missing.append("eventstreaming.MESSAGE_BOUNDARIES (the event boundaries)")
    if getattr(eventstreaming, "UTF8_BOM", None) != bom:
        missing.append("eventstreaming.UTF8_BOM")
    if "data" not in CompletionEvent.model_fields:
        missing.append("CompletionEvent.data")
    return tuple(missing)


def require_sdk_internals() -> None:
    """Raise ``ImportError`` (before any request) when the installed mistralai SDK lacks
    the internals the fast path uses, or has changed the SSE rules it mirrors."""
    missing = _changed_internals()
    if missing:
        raise ImportError(
            f"fast=True needs the mistralai SDK's {', '.join(missing)}, which mistralai "
            f"{sdk_version()} lacks or has changed (the fast path was built against "
            "mistralai 3.x): use fast=False, or a mistralai release that has them"
        )


class MistralChunkBuilder(SDKObjectBuilder):
    """Builds the SDK's ``CompletionChunk`` of one event (the ``data`` of its
    ``CompletionEvent``) exactly as ``chat.stream``'s event stream does: the event's
    fields as JSON text, validated by ``unmarshal_json_response``.

    ``fields`` are the event's other fields (``id``, ``event``, ``retry``) when it has
    any: they change nothing in the object, but are in the text a validation error
    carries as its ``body``.
    """

    __slots__ = ("fields",)

    def __init__(self, client: Any, response: Any, fields: dict[str, Any] | None = None) -> None:
        super().__init__(client, response)
        self.fields = fields

    def with_fields(self, fields: dict[str, Any]) -> MistralChunkBuilder:
        """The builder of an event with ``fields`` besides its data."""
        return MistralChunkBuilder(self.client, self.response, fields)

    def __call__(self, data: Any) -> CompletionChunk:
        """The SDK's ``CompletionChunk`` of ``data`` (``ResponseValidationError`` as the SDK
        raises it when ``data`` is not one)."""
        return self.event(data).data

    def event(self, data: Any) -> CompletionEvent:
        """The SDK's ``CompletionEvent`` of an event whose data is ``data``."""
        fields = self.fields
        if fields is None:
            text = json.dumps({"data": data})
        else:  # in _parse_event's order: id, event, data, retry
            ordered: dict[str, Any] = {k: fields[k] for k in ("id", "event") if k in fields}
            ordered["data"] = data
            if "retry" in fields:
                ordered["retry"] = fields["retry"]
            text = json.dumps(ordered)
        event: CompletionEvent = unmarshal_json_response(CompletionEvent, self.response, text)
        return event
