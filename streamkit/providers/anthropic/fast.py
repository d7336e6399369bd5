"""The fast path for Anthropic Messages, the default where it can run (``fast=None``;
``fast=True`` asks for it, ``fast=False`` for the SDK path).

As the OpenAI one (:mod:`streamkit.providers.openai.fast`), on the shared core of the
Stainless SDKs (:mod:`streamkit.providers._stainless`):

- the request is the anthropic SDK's own
  (``client.messages.with_streaming_response.create(stream=True, ...)``):
  authentication, ``base_url``, retries, headers, HTTP status errors and the SDK's
  request-time warnings are exactly the SDK's;
- the SSE bytes of its response are split by :class:`~streamkit.providers._sse.SSESplitter`
  and each event's JSON is decoded with orjson, under the rules of anthropic's ``Stream``
  (:class:`AnthropicEventReader`): ``ping`` events and events without an ``event:``
  name are skipped, events with empty data too, an ``event: error`` raises the SDK's
  ``APIStatusError`` (the subclass its ``_make_status_error`` picks, with the event's
  JSON as ``body``), and a failed read of the body becomes the SDK's
  ``APITimeoutError`` / ``APIConnectionError`` (raised ``from`` the HTTP library's
  error). The body is read to its end, as the SDK reads it;
- each event becomes a :class:`LazyAnthropicChunk` straight from the JSON
  (:class:`FastAnthropicDecoder`): text, thinking and tool-argument deltas, a thinking
  block's signature, the end of a block and ``message_stop``. Its ``chunk`` (the SDK's
  ``RawMessageStreamEvent``) is built only when read, by the SDK's own
  ``client._process_response_data``, so it equals the SDK path's object. The few other
  events of a message (``message_start``, ``content_block_start``, ``message_delta``,
  citation deltas, anything unexpected) are built at once and decoded by
  :class:`~streamkit.providers.anthropic.AnthropicDecoder`, as on the SDK path; so are
  all of them for a strict client (``_strict_response_validation``) and for a traced
  one, whose tracing observer the fast stream tells of every event as the SDK's
  ``Stream`` does. :class:`~streamkit.providers.anthropic.AnthropicMessageBuilder` reads
  a lazy delta's JSON, so the reducer builds no SDK object for it either.

A client whose stream is not server-sent events (``AnthropicBedrock``: AWS event-stream
frames) is read by the SDK's own ``Stream``, decoded as on the SDK path: ``fast=True``
changes nothing there.

The anthropic SDK internals this uses are confined to
:mod:`streamkit.providers.anthropic._sdk`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from streamkit._messages import Message
from streamkit._models import Chunk, ToolCallDelta
from streamkit.providers._stainless import (
    AsyncFastStream,
    Built,
    EventReader,
    FastStream,
    LazyChunk,
    RawEvent,
    construct_lazy,
    loads,
    require_orjson,
)
from streamkit.providers.anthropic import AnthropicAdapter, AnthropicChunk, AnthropicDecoder
from streamkit.providers.anthropic._sdk import (
    AnthropicEventBuilder,
    make_status_error,
    read_error,
    reads_sse,
    require_sdk_internals,
    stream_observer,
)

__all__ = [
    "AnthropicEventReader",
    "AnthropicFastAdapter",
    "FastAnthropicDecoder",
    "LazyAnthropicChunk",
    "open_stream",
    "open_stream_async",
]


class LazyAnthropicChunk(AnthropicChunk, LazyChunk):
    """A chunk of Anthropic's fast path: every field as on the SDK path, with ``chunk``
    (the SDK's ``RawMessageStreamEvent``) built on its first read from the event's JSON
    (``raw_json``; see :class:`~streamkit.providers._stainless.LazyChunk`)."""


_DELTA_TEXT = {
    "text_delta": "text",
    "thinking_delta": "thinking",
    "input_json_delta": "partial_json",
    "signature_delta": "signature",  # nothing normalized; the message builder reads it
}


class FastAnthropicDecoder(AnthropicDecoder):
    """Decodes Anthropic's fast stream: the frequent events straight from their JSON into
    :class:`LazyAnthropicChunk`, every other (and every event of a strict or traced
    client) through the SDK object and :meth:`AnthropicDecoder.decode`. An event that is
    the SDK's object already (a client read by the SDK's ``Stream``) is decoded as on
    the SDK path."""

    def decode(self, event: Any) -> list[Chunk]:
        """One event in, one chunk out."""
        if type(event) is not tuple:
            return super().decode(event)
        data, build = event
        if not build.eager and type(data) is dict:
            chunk = self._decode_json(data, event)
            if chunk is not None:
                return [chunk]
        return super().decode(build(data))

    def _decode_json(self, data: dict[str, Any], event: RawEvent) -> LazyAnthropicChunk | None:
        # Mirrors AnthropicDecoder.decode on the JSON for the events it reads; None (the
        # SDK object decides) for every other event and any unexpected shape.
        kind = data.get("type")
        content = thinking = ""
        tool_calls: list[ToolCallDelta] = []
        if kind == "content_block_delta":
            index = data.get("index")
            delta = data.get("delta")
            if type(index) is not int or type(delta) is not dict:
                return None
            delta_kind = delta.get("type")
            field = _DELTA_TEXT.get(delta_kind) if type(delta_kind) is str else None
            if field is None:
                return None  # citation deltas, unknown ones: the SDK object decides
            value = delta.get(field)
            if type(value) is not str:
                return None
            if delta_kind == "text_delta":
                content = value
            elif delta_kind == "thinking_delta":
                thinking = value
            elif delta_kind == "input_json_delta" and index in self._tools:
                if value:
                    self._tools[index] = (self._tools[index][0], True)
                tool_calls.append(ToolCallDelta(index=index, arguments=value))
        elif kind == "content_block_stop":
            index = data.get("index")
            if type(index) is not int:
                return None
            tool = self._tools.pop(index, None)
            if tool is not None:
                start_input, received_json = tool
                # A block whose input came whole at its start (no deltas) still has arguments.
                arguments = json.dumps(start_input) if start_input and not received_json else ""
                tool_calls.append(ToolCallDelta(index=index, arguments=arguments, complete=True))
        elif kind == "message_stop":
            self.complete = True
        else:
            return None
        self.events += 1
        return construct_lazy(
            LazyAnthropicChunk,
            event,
            {
                "provider": self.provider,
                "content": content,
                "thinking": thinking,
                "refusal": "",
                "finish_reasons": None,
                "model": self._model,
                "id": self._id,
                "usage": None,
                "tool_calls": tool_calls,
                "audio": None,
                "audio_transcript": None,
            },
        )


class AnthropicEventReader(EventReader):
    """anthropic's ``Stream`` rules (see the module docs), and its tracing observer's
    calls when the client traces."""

    __slots__ = ("client", "observer")

    def __init__(self, client: Any, response: Any) -> None:
        self.client = client
        self.observer = stream_observer(response)
        # A traced client's observer gets each event's object as it arrives.
        eager = self.observer is not None
        super().__init__(AnthropicEventBuilder(client, response, eager=eager), response)

    def events(self, chunk: bytes) -> Iterator[RawEvent]:
        """The events completed by ``chunk``."""
        for name, raw in self.splitter.feed(chunk):
            if name == "ping" or name is None:
                raw.decode("utf-8")  # as the SDK, which decodes every line: bad UTF-8 raises
                continue
            if name == "error":
                raise self._error_event(raw)
            if not raw:
                continue
            data = loads(raw)
            observer = self.observer
            if observer is None:
                yield data, self.build
                continue
            built = self.build(data)
            observer.item(built)
            yield data, Built(built)

    def _error_event(self, raw: bytes) -> Exception:
        text = raw.decode("utf-8")
        body: Any = text
        try:
            body = loads(raw)
            message = f"{body}"
        except Exception:
            message = text or f"Error code: {self.response.status_code}"
        return make_status_error(self.client, message, body, self.response)

    def read_error(self, error: Exception) -> Exception | None:
        """The SDK's ``APITimeoutError`` / ``APIConnectionError`` for a failed read."""
        return read_error(self.client, self.response.request, error)

    def begin(self) -> None:
        """Tell the tracing observer (if any) the events are being read."""
        if self.observer is not None:
            self.observer.begin()

    def end(self, error: Exception | None) -> None:
        """Tell the tracing observer (if any) how reading ended."""
        if self.observer is not None:
            if error is None:
                self.observer.end("read")
            else:
                self.observer.end("failed", error)


def open_stream(client: Any, request: dict[str, Any]) -> Any:
    """Make the request through the anthropic SDK (its status errors and retries
    included) and return the fast stream over its response; for a client whose stream is
    not server-sent events, the SDK's own ``Stream``."""
    if not reads_sse(client):
        return client.messages.create(**request)
    api_response = client.messages.with_streaming_response.create(**request).__enter__()
    return FastStream(api_response, AnthropicEventReader(client, api_response.http_response))


async def open_stream_async(client: Any, request: dict[str, Any]) -> Any:
    """The async form of :func:`open_stream`."""
    if not reads_sse(client):
        return await client.messages.create(**request)
    api_response = await client.messages.with_streaming_response.create(**request).__aenter__()
    return AsyncFastStream(api_response, AnthropicEventReader(client, api_response.http_response))


class AnthropicFastAdapter(AnthropicAdapter):
    """Streams Anthropic Messages on the fast path (the default where it can run, or
    ``fast=True``): the Anthropic adapter's request, read through :func:`open_stream` and
    decoded by :class:`FastAnthropicDecoder` (see the module docs); needs orjson."""

    path = "fast"

    def require_runnable(self) -> None:
        """Raise ``ImportError`` when the fast path cannot run here: orjson missing, or an
        anthropic SDK without the internals it uses."""
        require_orjson()
        require_sdk_internals()

    def build_request(
        self, model: str, messages: list[Message], params: dict[str, Any]
    ) -> dict[str, Any]:
        """The Anthropic adapter's request; raises ``ImportError`` first when the fast
        path cannot run here (:meth:`require_runnable`)."""
        request = super().build_request(model, messages, params)
        self.require_runnable()
        return request

    def open(self, client: Any, request: dict[str, Any]) -> Any:
        """Make the request through the SDK; return the fast stream over its response."""
        return open_stream(client, request)

    async def open_async(self, client: Any, request: dict[str, Any]) -> Any:
        """Make the request through the SDK; return the async fast stream."""
        return await open_stream_async(client, request)

    def new_decoder(self, request: dict[str, Any]) -> FastAnthropicDecoder:
        """A fresh fast decoder for one stream."""
        return FastAnthropicDecoder(self.name)
