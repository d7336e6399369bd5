"""The fast path for Groq chat completions, the default where it can run (``fast=None``;
``fast=True`` asks for it, ``fast=False`` for the SDK path).

As the OpenAI one (:mod:`streamkit.providers.openai.fast`), on the shared core of the
Stainless SDKs (:mod:`streamkit.providers._stainless`):

- the request is the groq SDK's own
  (``client.chat.completions.with_streaming_response.create(...)``): authentication,
  ``base_url``, retries, headers and HTTP status errors are exactly the SDK's;
- the SSE bytes of its response are split by :class:`~streamkit.providers._sse.SSESplitter`
  and each event's JSON is decoded with orjson, under the rules of groq's ``Stream``
  (:class:`GroqEventReader`): ``data: [DONE]`` ends the stream (the rest of the body is
  still read, as the SDK reads it), a data-only event with a top-level ``error`` and an
  ``event: error`` whose data has one raise ``groq.APIError`` with the error object as
  ``body``, another named event is handed on as ``{"data": ..., "event": name}``, and
  the HTTP library's errors are raised as they are (groq's ``Stream`` wraps none);
- each event becomes a :class:`LazyGroqChunk` straight from the JSON
  (:class:`~streamkit.providers._fast_chat.FastChatChunkDecoder`). Its ``chunk`` (groq's
  ``ChatCompletionChunk``) is built only when read, by the SDK's own
  ``client._process_response_data``, so it equals the SDK path's object. Events the
  decoder does not read itself (the one carrying usage in ``x_groq.usage`` or
  ``usage``, audio, anything unexpected) are built at once and decoded as on the SDK
  path; a strict client (``_strict_response_validation``) gets every object at once.

The groq SDK internals this uses are confined to :mod:`streamkit.providers.groq._sdk`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, ClassVar

import groq

from streamkit._messages import Message
from streamkit.providers._fast_chat import FastChatChunkDecoder
from streamkit.providers._stainless import (
    AsyncFastStream,
    EventReader,
    FastStream,
    LazyChunk,
    RawEvent,
    loads,
    require_orjson,
)
from streamkit.providers.groq import GroqAdapter, GroqChunk, GroqChunkDecoder
from streamkit.providers.groq._sdk import GroqChunkBuilder, require_sdk_internals

__all__ = [
    "FastGroqDecoder",
    "GroqEventReader",
    "GroqFastAdapter",
    "LazyGroqChunk",
    "open_stream",
    "open_stream_async",
]


class LazyGroqChunk(GroqChunk, LazyChunk):
    """A chunk of Groq's fast path: every field as on the SDK path, with ``chunk`` (groq's
    ``ChatCompletionChunk``) built on its first read from the event's JSON
    (``raw_json``; see :class:`~streamkit.providers._stainless.LazyChunk`)."""

    # Events with audio are decoded through the SDK object (an eager GroqChunk).
    holds_no_audio: ClassVar[bool] = True


class FastGroqDecoder(FastChatChunkDecoder, GroqChunkDecoder):
    """Decodes Groq's fast stream into :class:`LazyGroqChunk`; the event that reports
    usage (``x_groq.usage`` or ``usage``) and any event of a shape it does not read
    itself go through the SDK object and :class:`GroqChunkDecoder`."""

    lazy_type = LazyGroqChunk

    def reports_usage(self, data: dict[str, Any]) -> bool:
        """Whether ``usage`` or ``x_groq.usage`` may be set (or ``x_groq`` is not an
        object, whose reading the SDK object decides)."""
        if data.get("usage") is not None:
            return True
        x_groq = data.get("x_groq")
        return x_groq is not None and (type(x_groq) is not dict or x_groq.get("usage") is not None)


def _api_error(data: Mapping[str, Any], request: Any) -> groq.APIError:
    """groq's ``Stream``: the error event's ``error`` as ``body``, its message if any."""
    error = data["error"]
    message = error.get("message") if isinstance(error, Mapping) else None
    if not message or not isinstance(message, str):
        message = "An error occurred during streaming"
    return groq.APIError(message=message, request=request, body=error)


class GroqEventReader(EventReader):
    """groq's ``Stream`` rules (see the module docs)."""

    __slots__ = ()

    def events(self, chunk: bytes) -> Iterator[RawEvent]:
        """The events completed by ``chunk``."""
        for name, raw in self.splitter.feed(chunk):
            if raw.startswith(b"[DONE]"):
                self.done = True
                return
            data = loads(raw)
            if name is None:
                if isinstance(data, Mapping) and data.get("error"):
                    raise _api_error(data, self.response.request)
                yield data, self.build
            else:
                if name == "error" and isinstance(data, Mapping) and data.get("error"):
                    raise _api_error(data, self.response.request)
                yield {"data": data, "event": name}, self.build

    def read_error(self, error: Exception) -> Exception | None:
        """groq's ``Stream`` raises the HTTP library's errors unchanged."""
        return None

    def rest(self, chunks: Iterator[bytes]) -> None:
        """As groq's ``Stream``: the rest of the body is read (then httpx closes it)."""
        for chunk in chunks:
            self.splitter.feed(chunk)

    async def arest(self, chunks: AsyncIterator[bytes]) -> None:
        """The async form of :meth:`rest`."""
        async for chunk in chunks:
            self.splitter.feed(chunk)


def _reader(api_response: Any, client: Any) -> GroqEventReader:
    response = api_response.http_response
    return GroqEventReader(GroqChunkBuilder(client, response), response)


def open_stream(client: Any, request: dict[str, Any]) -> FastStream:
    """Make the request through the groq SDK (its status errors and retries included)
    and return the fast stream over its response."""
    api_response = client.chat.completions.with_streaming_response.create(**request).__enter__()
    return FastStream(api_response, _reader(api_response, client))


async def open_stream_async(client: Any, request: dict[str, Any]) -> AsyncFastStream:
    """The async form of :func:`open_stream`."""
    manager = client.chat.completions.with_streaming_response.create(**request)
    api_response = await manager.__aenter__()
    return AsyncFastStream(api_response, _reader(api_response, client))


class GroqFastAdapter(GroqAdapter):
    """Streams Groq chat completions on the fast path (the default where it can run, or
    ``fast=True``): the Groq adapter's request, read through :func:`open_stream` and
    decoded by :class:`FastGroqDecoder` (see the module docs); needs orjson."""

    path = "fast"

    def require_runnable(self) -> None:
        """Raise ``ImportError`` when the fast path cannot run here: orjson missing, or a
        groq SDK without the internals it uses."""
        require_orjson()
        require_sdk_internals()

    def build_request(
        self, model: str, messages: list[Message], params: dict[str, Any]
    ) -> dict[str, Any]:
        """The Groq adapter's request; raises ``ImportError`` first when the fast path
        cannot run here (:meth:`require_runnable`)."""
        request = super().build_request(model, messages, params)
        self.require_runnable()
        return request

    def open(self, client: Any, request: dict[str, Any]) -> FastStream:
        """Make the request through the SDK; return the fast stream over its response."""
        return open_stream(client, request)

    async def open_async(self, client: Any, request: dict[str, Any]) -> AsyncFastStream:
        """Make the request through the SDK; return the async fast stream."""
        return await open_stream_async(client, request)

    def new_decoder(self, request: dict[str, Any]) -> FastGroqDecoder:
        """A fast Groq decoder (a finish reason is what ends the stream)."""
        return FastGroqDecoder(self.name, chunk_type=GroqChunk)
