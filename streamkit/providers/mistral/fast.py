"""The fast path for Mistral chat completions, the default where it can run (``fast=None``;
``fast=True`` asks for it, ``fast=False`` for the SDK path).

As the others (:mod:`streamkit.providers.openai.fast`, :mod:`streamkit.providers.groq.fast`),
with the SDK-independent pieces of :mod:`streamkit.providers._stainless` (the lazy chunk,
the object builder, orjson):

- the request is the mistralai SDK's own (``client.chat.stream(...)`` /
  ``client.chat.stream_async(...)``): authentication, ``server_url``, retries, hooks and
  HTTP status errors (``SDKError``, ``HTTPValidationError``) are exactly the SDK's. It
  returns an ``EventStream`` over the unread response; the fast path reads that response
  itself (the SDK's generator is never started) and closes it through the
  ``EventStream``;
- the bytes are split into events by :class:`MistralEventReader` under the rules of
  mistralai's ``stream_events`` (not the Stainless SDKs' ``SSEDecoder``: an event ends at
  any blank line, a UTF-8 BOM is dropped, data-less events are skipped, what is left at
  the end of the body is one more event, ``data: [DONE]`` ends the stream and nothing
  after it is read, the HTTP library's errors are raised as they are), and each event's
  data is decoded with orjson;
- each event becomes a :class:`LazyMistralChunk` straight from the JSON
  (:class:`FastMistralDecoder`). mistralai *validates* every event (a pydantic
  ``CompletionEvent``; an error event fails as ``ResponseValidationError``), so the
  decoder reads an event itself only when its JSON has a shape that surely validates and
  that it reads as the SDK object reads; every other event (usage, list content, an
  unexpected type, an error event) is built at once by the SDK's own code and decoded as
  on the SDK path, raising where the SDK raises. The lazy chunk's ``chunk`` (mistralai's
  ``CompletionChunk``) is built only when read, by the same code, so it equals the SDK
  path's object.

The mistralai internals this uses are confined to :mod:`streamkit.providers.mistral._sdk`.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

from streamkit._messages import Message
from streamkit._models import Chunk, ToolCallDelta
from streamkit.providers._chat import ChatChunkDecoder
from streamkit.providers._stainless import (
    Built,
    LazyChunk,
    RawEvent,
    construct_lazy,
    require_orjson,
)
from streamkit.providers.mistral import (
    _ABSENT_ID,
    MistralAdapter,
    MistralChunk,
    MistralChunkDecoder,
)
from streamkit.providers.mistral._sdk import (
    MESSAGE_BOUNDARIES,
    SENTINEL,
    UTF8_BOM,
    MistralChunkBuilder,
    require_sdk_internals,
)

try:
    import orjson
except ImportError:  # fast=True says so before any request (require_orjson)
    orjson = None  # type: ignore[assignment]

__all__ = [
    "FastMistralDecoder",
    "LazyMistralChunk",
    "MistralEventReader",
    "MistralFastAdapter",
    "MistralFastStream",
    "MistralFastStreamAsync",
]

_LINE_ENDS = re.compile(r"\r?\n|\r")  # _parse_event's line split
_LOOKBACK = max(len(boundary) for boundary in MESSAGE_BOUNDARIES) - 1


class LazyMistralChunk(MistralChunk, LazyChunk):
    """A chunk of Mistral's fast path: every field as on the SDK path, with ``chunk``
    (mistralai's ``CompletionChunk``) built on its first read from the event's JSON
    (``raw_json``; see :class:`~streamkit.providers._stainless.LazyChunk`)."""

    # Mistral streams carry no audio: the message builder need not build `chunk` to look.
    holds_no_audio: ClassVar[bool] = True


class MistralEventReader:
    """The rules of mistralai's ``stream_events`` over the bytes of one response: each
    :meth:`feed` returns the :data:`~streamkit.providers._stainless.RawEvent` pairs the
    bytes complete, :meth:`finish` the one left at the end of the body; :attr:`done` is
    set at ``data: [DONE]``.

    The common body (LF line ends, one ``data:`` line an event) is split with
    ``bytes.find``; a body with a CR in it is scanned as ``stream_events`` scans it,
    boundary by boundary, and an event of several lines (or whose data orjson refuses) is
    read as ``_parse_event`` reads it.
    """

    __slots__ = ("_buffer", "_event_id", "build", "done")

    def __init__(self, build: MistralChunkBuilder) -> None:
        self.build = build
        self.done = False
        self._buffer = b""
        self._event_id: str | None = None

    def feed(self, chunk: bytes) -> list[RawEvent]:
        """The events completed by ``chunk`` (stops at the sentinel, as the SDK does)."""
        buffer = self._buffer
        if not buffer and chunk.startswith(UTF8_BOM):
            chunk = chunk[len(UTF8_BOM) :]
        start = max(0, len(buffer) - _LOOKBACK)  # a boundary may straddle two reads
        buffer = buffer + chunk if buffer else chunk
        events: list[RawEvent] = []
        if buffer.find(b"\r", start) == -1:
            # LF only: the one boundary that can match is b"\n\n". As the SDK, a match is
            # looked for at every position, overlapping ones included (their block is empty).
            position = 0
            i = buffer.find(b"\n\n", start)
            while i != -1:
                if i > position:
                    self._block(buffer[position:i], events)
                    if self.done:
                        return events
                position = i + 2
                i = buffer.find(b"\n\n", i + 1)
        else:
            position = self._scan(buffer, start, events)
            if self.done:
                return events
        self._buffer = buffer[position:]
        return events

    def finish(self) -> list[RawEvent]:
        """What is left at the end of the body, read as one more event (the SDK does)."""
        events: list[RawEvent] = []
        if not self.done:
            self._block(self._buffer, events)
            self._buffer = b""
        return events

    def _scan(self, buffer: bytes, start: int, events: list[RawEvent]) -> int:
        # stream_events' own scan, position by position; returns the new position.
        position = 0
        for i in range(start, len(buffer)):
            if buffer[i] not in (10, 13):
                continue
            for boundary in MESSAGE_BOUNDARIES:
                if buffer.startswith(boundary, i):
                    self._block(buffer[position:i], events)
                    position = i + len(boundary)
                    if self.done:
                        return position
                    break
        return position

    def _block(self, block: bytes, events: list[RawEvent]) -> None:
        # One event's lines. The common one, a single `data:` line, is read here.
        if block.startswith(b"data:") and block.find(b"\n") == -1 and block.find(b"\r") == -1:
            value = block[6:] if block[5:6] == b" " else block[5:]
            if value == SENTINEL:
                self.done = True
                return
            try:
                data = orjson.loads(value)
            except orjson.JSONDecodeError:
                self._parse_event(block, events)
                return
            build = self.build
            if self._event_id is not None:
                build = build.with_fields({"id": self._event_id})
            events.append((data, build))
            return
        if block:
            self._parse_event(block, events)

    def _parse_event(self, block: bytes, events: list[RawEvent]) -> None:
        # mistralai's _parse_event, line by line (data_required, sentinel "[DONE]").
        text = block.decode()
        fields: dict[str, Any] = {}
        parts: list[str] = []
        for line in _LINE_ENDS.split(text):
            if not line:
                continue
            delim = line.find(":")
            if delim == 0:
                continue
            name, value = line, ""
            if delim > 0:
                name = line[:delim]
                value = line[delim + 1 :] if delim < len(line) - 1 else ""
                if value and value[0] == " ":
                    value = value[1:]
            if name == "event":
                fields["event"] = value
            elif name == "data":
                parts.append(value)
            elif name == "id":
                if "\x00" not in value:
                    self._event_id = value
            elif name == "retry" and value.isdigit():
                fields["retry"] = int(value)
        if not parts:
            return  # no data: nothing is published (the id is kept)
        joined = "\n".join(parts)
        if joined == SENTINEL.decode():
            self.done = True
            return
        if self._event_id is not None:
            fields["id"] = self._event_id
        build = self.build.with_fields(fields) if fields else self.build
        try:
            data: Any = json.loads(joined)
        except json.JSONDecodeError:
            data = joined
        try:
            exact = orjson.loads(joined.encode()) == data
        except (orjson.JSONDecodeError, UnicodeEncodeError):
            exact = False
        if exact:
            events.append((data, build))
        else:
            # A value orjson refuses (NaN, a lone surrogate, not JSON): built now, by the
            # SDK's code, raising as the SDK raises for this event.
            events.append((data, Built(build(data))))


class MistralFastStream:
    """The fast path's sync stream over the SDK's ``EventStream``: iterates the
    :data:`~streamkit.providers._stainless.RawEvent` pairs of its response's bytes;
    ``close()`` closes the response. ``response`` is the HTTP response (for
    :func:`streamkit._source.shutdown_socket`)."""

    def __init__(self, sdk_stream: Any, reader: MistralEventReader) -> None:
        self.sdk_stream = sdk_stream  # holds the client alive, as the SDK's stream does
        self.response = sdk_stream.response
        self.reader = reader

    def __iter__(self) -> Iterator[RawEvent]:
        reader = self.reader
        for chunk in self.response.iter_bytes():
            yield from reader.feed(chunk)
            if reader.done:
                return  # the SDK reads nothing after the sentinel
        yield from reader.finish()

    def close(self) -> None:
        """Close the HTTP response (the SDK's ``EventStream.close``)."""
        self.sdk_stream.close()


class MistralFastStreamAsync:
    """The async form of :class:`MistralFastStream`; ``aclose()`` closes the response."""

    def __init__(self, sdk_stream: Any, reader: MistralEventReader) -> None:
        self.sdk_stream = sdk_stream
        self.response = sdk_stream.response
        self.reader = reader

    async def __aiter__(self) -> AsyncIterator[RawEvent]:
        reader = self.reader
        chunks = self.response.aiter_bytes()
        try:
            async for chunk in chunks:
                for event in reader.feed(chunk):
                    yield event
                if reader.done:
                    return
        finally:
            # Closed here, on the running loop: left to the garbage collector, an async
            # generator stopped at the sentinel is finalized by a task of its own.
            await chunks.aclose()
        for event in reader.finish():
            yield event

    async def aclose(self) -> None:
        """Close the HTTP response (the SDK's ``EventStreamAsync.close``)."""
        await self.sdk_stream.close()


def _text_or_none(value: Any) -> bool:
    return value is None or type(value) is str


class FastMistralDecoder(MistralChunkDecoder):
    """Decodes Mistral's fast stream into :class:`LazyMistralChunk`; an event whose JSON
    might not validate as the SDK's ``CompletionChunk``, or that the decoder does not
    read itself (usage, list content, ``arguments`` given as an object), goes through
    the SDK object and the SDK path's decoding (into a :class:`MistralChunk`)."""

    def decode(self, event: RawEvent) -> list[Chunk]:
        """One event's JSON in, one normalized chunk out."""
        data, build = event
        chunk = None if build.eager else self._decode_json(data, event)
        if chunk is None:
            return ChatChunkDecoder.decode(self, build(data))
        return [chunk]

    def _decode_json(self, data: Any, event: RawEvent) -> LazyMistralChunk | None:
        # Reads the event as MistralChunkDecoder reads the SDK's object, and checks every
        # field CompletionChunk validates: None (build the SDK object) when in doubt.
        if type(data) is not dict:
            return None
        chunk_id = data.get("id")
        model = data.get("model")
        choices = data.get("choices")
        if type(chunk_id) is not str or type(model) is not str or type(choices) is not list:
            return None
        if data.get("usage") is not None:
            return None  # once a stream: read from the SDK object, as on the SDK path
        created = data.get("created")
        if not _text_or_none(data.get("object")) or (
            created is not None and type(created) is not int
        ):
            return None
        content = ""
        finish_reasons: list[str] | None = None
        tool_calls: list[ToolCallDelta] = []
        last_index = self._last_index
        for choice in choices:
            if type(choice) is not dict or "finish_reason" not in choice:
                return None
            index = choice.get("index")
            delta = choice.get("delta")
            finish_reason = choice["finish_reason"]
            if type(index) is not int or type(delta) is not dict:
                return None
            if not _text_or_none(finish_reason):
                return None
            if choice.get("logprobs") is not None or choice.get("prompt_logprobs") is not None:
                return None
            raw_content = delta.get("content")
            delta_index = delta.get("index")
            metadata = delta.get("metadata")
            if not (
                _text_or_none(raw_content)
                and _text_or_none(delta.get("role"))
                and _text_or_none(delta.get("tool_call_id"))
                and (delta_index is None or type(delta_index) is int)
                and (metadata is None or type(metadata) is dict)
            ):
                return None
            calls = delta.get("tool_calls")
            read: list[ToolCallDelta] = []
            if calls is not None:
                if type(calls) is not list:
                    return None
                for call in calls:
                    call_delta = _tool_call_delta(call, last_index if index == 0 else None)
                    if call_delta is None:
                        return None
                    if index == 0:
                        last_index = max(last_index, call_delta.index)
                        read.append(call_delta)
            if index == 0:
                content = raw_content or ""
                tool_calls.extend(read)
            if finish_reason:
                finish_reasons = [*(finish_reasons or ()), finish_reason]
        self._last_index = last_index
        self.advance(finish_reasons, None)  # events with usage go through the SDK object
        return construct_lazy(
            LazyMistralChunk,
            event,
            {
                "provider": self.provider,
                "content": content,
                "thinking": "",  # only list content (built by the SDK) carries thinking
                "refusal": "",
                "finish_reasons": finish_reasons,
                "model": model,
                "id": chunk_id,
                "usage": None,
                "tool_calls": tool_calls,
                "audio": None,
                "audio_transcript": None,
            },
        )


def _tool_call_delta(call: Any, last_index: int | None) -> ToolCallDelta | None:
    """A ``delta.tool_calls`` item as :meth:`MistralChunkDecoder.tool_call_delta` reads the
    SDK's ``ToolCall`` after the last index ``last_index``, or None if its shape is one
    the SDK object should decide. ``last_index`` None: a choice other than the first,
    only checked (it validates) and not read."""
    if type(call) is not dict:
        return None
    function = call.get("function")
    if type(function) is not dict:
        return None
    name = function.get("name")
    arguments = function.get("arguments")
    if type(name) is not str or type(arguments) is not str:
        return None  # absent (fails to validate) or an object (re-serialized by the SDK)
    raw_id = call.get("id")
    raw_index = call.get("index")
    if not (_text_or_none(raw_id) and _text_or_none(call.get("type"))):
        return None
    if raw_index is not None and type(raw_index) is not int:
        return None
    if last_index is None:
        return ToolCallDelta(index=0, arguments=arguments)
    call_id = raw_id if raw_id and raw_id != _ABSENT_ID else None
    if raw_index is not None:
        index = raw_index
    else:  # absent or null: as the SDK path, a new call if it has an id
        index = last_index + 1 if call_id is not None else max(last_index, 0)
    return ToolCallDelta(index=index, id=call_id, name=name or None, arguments=arguments)


def _reader(sdk_stream: Any, client: Any) -> MistralEventReader:
    return MistralEventReader(MistralChunkBuilder(client, sdk_stream.response))


class MistralFastAdapter(MistralAdapter):
    """Streams Mistral chat completions on the fast path (the default where it can run,
    or ``fast=True``): the Mistral adapter's request, read by :class:`MistralFastStream`
    and decoded by :class:`FastMistralDecoder` (see the module docs); needs orjson."""

    path = "fast"

    def require_runnable(self) -> None:
        """Raise ``ImportError`` when the fast path cannot run here: orjson missing, or a
        mistralai SDK without the internals it uses."""
        require_orjson()
        require_sdk_internals()

    def build_request(
        self, model: str, messages: list[Message], params: dict[str, Any]
    ) -> dict[str, Any]:
        """The Mistral adapter's request; raises ``ImportError`` first when the fast path
        cannot run here (:meth:`require_runnable`)."""
        request = super().build_request(model, messages, params)
        self.require_runnable()
        return request

    def open(self, client: Any, request: dict[str, Any]) -> MistralFastStream:
        """Make the request through the SDK; return the fast stream over its response."""
        sdk_stream = client.chat.stream(**request)
        return MistralFastStream(sdk_stream, _reader(sdk_stream, client))

    async def open_async(self, client: Any, request: dict[str, Any]) -> MistralFastStreamAsync:
        """Make the request through the SDK; return the async fast stream."""
        sdk_stream = await client.chat.stream_async(**request)
        return MistralFastStreamAsync(sdk_stream, _reader(sdk_stream, client))

    def new_decoder(self, request: dict[str, Any]) -> FastMistralDecoder:
        """A fast Mistral decoder (a finish reason is what ends the stream)."""
        return FastMistralDecoder(self.name)
