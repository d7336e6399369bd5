"""The fast path for OpenAI chat completions, the default where it can run (``fast=None``;
``fast=True`` asks for it, ``fast=False`` for the SDK path).

The openai SDK spends most of its time per chunk building its pydantic objects
(``openai._models.construct_type``, ~80 µs a chunk here) and splitting the stream line by
line. The fast path keeps everything else of the SDK and skips that:

- the request is the SDK's own (``client.chat.completions.with_streaming_response
  .create(...)``), so authentication, ``base_url``, retries of the request, headers and
  HTTP status errors are exactly the SDK's;
- the SSE bytes of that response are split by
  :class:`~streamkit.providers._sse.SSESplitter` (the same rules as the SDK's
  ``SSEDecoder``) and each event's JSON is decoded with ``orjson`` (falling back
  to ``json.loads`` for what orjson refuses, so the outcome, error included, is the
  SDK's); ``data: [DONE]`` and an event with a top-level ``error`` behave as in the SDK's
  ``Stream`` (the latter raises ``openai.APIError``), and transport errors are wrapped in
  ``APIConnectionError`` / ``APITimeoutError`` as the SDK does (:class:`OpenAIEventReader`);
- each event becomes a :class:`LazyOpenAIChunk` straight from the decoded JSON. Its
  ``chunk`` (the SDK's ``ChatCompletionChunk``) is built only when it is read, by the
  SDK's own ``client._process_response_data``, so it equals the SDK path's object.

The SDK internals this needs (its transport errors, its async drain, how it builds a
chunk object) are used through :mod:`streamkit.providers.openai._sdk` only. The streams,
the lazy chunk's mechanics and the chat decoder are shared with the other Stainless
SDKs' fast paths (:mod:`streamkit.providers._stainless`,
:mod:`streamkit.providers._fast_chat`); this module holds what is openai's.

Events the fast decoder does not read itself (usage reports, audio, list content, any
unexpected shape) are built into the SDK's object at once and decoded by
:class:`~streamkit.providers._chat.ChatChunkDecoder`, as on the SDK path: the normalized
chunks are the SDK path's, field for field (``tests/test_fast_path.py`` checks that on
every chat transcript). A client with ``_strict_response_validation`` gets every object
built at once too, so validation errors surface where the SDK raises them. Why ``chunk``
is lazy through ``__getattr__``: see :class:`~streamkit.providers._stainless.LazyChunk`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import openai

from streamkit._messages import Message
from streamkit.providers._base import Decoder
from streamkit.providers._fast_chat import FastChatChunkDecoder
from streamkit.providers._stainless import (
    AsyncFastStream,
    EventReader,
    FastStream,
    LazyChunk,
    RawEvent,
    loads,
)
from streamkit.providers._stainless import require_orjson as _require_orjson
from streamkit.providers.openai._sdk import (
    SDKChunkBuilder,
    drain_response_async,
    read_error,
    require_sdk_internals,
)
from streamkit.providers.openai.chat import OpenAIChatAdapter, OpenAIChunk

__all__ = [
    "AsyncFastChatStream",
    "FastChatDecoder",
    "FastChatStream",
    "LazyOpenAIChunk",
    "OpenAIEventReader",
    "OpenAIFastChatAdapter",
    "RawChatEvent",
    "open_stream",
    "open_stream_async",
    "require_orjson",
]


def require_orjson() -> None:
    """Raise ``ImportError`` (before any request) when the fast path cannot run here:
    orjson is not installed, or the installed openai SDK lacks the internals it uses."""
    _require_orjson()
    require_sdk_internals()


RawChatEvent = RawEvent
"""What a fast stream yields per event: the decoded JSON and how to build its SDK object."""


class LazyOpenAIChunk(OpenAIChunk, LazyChunk):
    """A chunk of the fast path: every field as on the SDK path, with ``chunk`` (the
    SDK's ``ChatCompletionChunk``) built on its first read from the event's JSON
    (``raw_json``; see :class:`~streamkit.providers._stainless.LazyChunk`)."""

    # Events with audio are decoded through the SDK object (an eager OpenAIChunk), so a
    # lazy chunk never holds an audio delta: ChatMessageBuilder need not look for its id.
    holds_no_audio: ClassVar[bool] = True


class FastChatDecoder(FastChatChunkDecoder):
    """Decodes the fast stream's events into :class:`LazyOpenAIChunk`; those of a shape
    it does not read itself (usage, audio, list content, anything unexpected) go through
    the SDK object, so every chunk is the SDK path's."""

    lazy_type = LazyOpenAIChunk


class OpenAIEventReader(EventReader):
    """The openai SDK ``Stream``'s rules: ``[DONE]`` ends the stream, an event with a
    top-level ``error`` raises ``openai.APIError``, every other event is yielded as its
    decoded JSON (an Assistants ``thread.*`` event wrapped with its name); the HTTP
    library's read errors become ``APIConnectionError`` / ``APITimeoutError``."""

    __slots__ = ()

    def events(self, chunk: bytes) -> Iterator[RawEvent]:
        """The events completed by ``chunk``."""
        for name, raw in self.splitter.feed(chunk):
            if raw.startswith(b"[DONE]"):
                self.done = True
                return
            if name is not None and name.startswith("thread."):  # as the SDK (Assistants)
                yield {"data": loads(raw), "event": name}, self.build
                continue
            data = loads(raw)
            if type(data) is dict and data.get("error"):
                error = data["error"]
                message = error.get("message") if isinstance(error, dict) else None
                if not message or not isinstance(message, str):
                    message = "An error occurred during streaming"
                raise openai.APIError(message=message, request=self.response.request, body=error)
            yield data, self.build

    def read_error(self, error: Exception) -> Exception | None:
        """``APITimeoutError`` / ``APIConnectionError`` for the HTTP library's errors."""
        return read_error(self.response.request, error)

    async def arest(self, chunks: AsyncIterator[bytes]) -> None:
        """As the SDK: an HTTP/1.1 connection is reusable once the body is read."""
        if self.response.http_version == "HTTP/1.1":
            await drain_response_async(self.response)


class FastChatStream(FastStream):
    """The fast path's sync stream: iterates :data:`RawChatEvent` pairs read from the
    SDK's own HTTP response; ``close()`` releases the connection."""

    def __init__(self, api_response: Any, client: Any) -> None:
        response = api_response.http_response
        super().__init__(
            api_response, OpenAIEventReader(SDKChunkBuilder(client, response), response)
        )


class AsyncFastChatStream(AsyncFastStream):
    """The fast path's async stream (see :class:`FastChatStream`)."""

    def __init__(self, api_response: Any, client: Any) -> None:
        response = api_response.http_response
        super().__init__(
            api_response, OpenAIEventReader(SDKChunkBuilder(client, response), response)
        )


def open_stream(client: Any, request: dict[str, Any]) -> FastChatStream:
    """Make the request through the SDK (its status errors and retries included) and
    return the fast stream over its response."""
    manager = client.chat.completions.with_streaming_response.create(**request)
    return FastChatStream(manager.__enter__(), client)


async def open_stream_async(client: Any, request: dict[str, Any]) -> AsyncFastChatStream:
    """The async form of :func:`open_stream`."""
    manager = client.chat.completions.with_streaming_response.create(**request)
    return AsyncFastChatStream(await manager.__aenter__(), client)


class OpenAIFastChatAdapter(OpenAIChatAdapter):
    """Streams chat completions on the fast path (the default where it can run, or
    ``fast=True``): the chat adapter's request, read through :func:`open_stream` and
    decoded by :class:`FastChatDecoder` (see the module docs); needs orjson."""

    path = "fast"

    def require_runnable(self) -> None:
        """Raise ``ImportError`` when the fast path cannot run here: orjson missing, or an
        openai SDK without the internals it uses (:func:`require_orjson`)."""
        require_orjson()

    def build_request(
        self, model: str, messages: list[Message], params: dict[str, Any]
    ) -> dict[str, Any]:
        """The chat adapter's request; raises ``ImportError`` first when the fast path
        cannot run here (:meth:`require_runnable`)."""
        request = super().build_request(model, messages, params)
        self.require_runnable()
        return request

    def open(self, client: Any, request: dict[str, Any]) -> FastChatStream:
        """Make the request through the SDK; return the fast stream over its response."""
        return open_stream(client, request)

    async def open_async(self, client: Any, request: dict[str, Any]) -> AsyncFastChatStream:
        """Make the request through the SDK; return the async fast stream."""
        return await open_stream_async(client, request)

    def new_decoder(self, request: dict[str, Any]) -> Decoder:
        """A fast decoder expecting usage if it was requested."""
        return FastChatDecoder(
            self.name, chunk_type=OpenAIChunk, expect_usage=self.expects_usage(request)
        )
