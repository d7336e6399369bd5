"""The opt-in fast path for OpenAI chat completions: ``sk.stream("openai", ..., fast=True)``.

The openai SDK spends most of its time per chunk building its pydantic objects
(``openai._models.construct_type``, ~80 µs a chunk here) and splitting the stream line by
line. The fast path keeps everything else of the SDK and skips that:

- the request is the SDK's own (``client.chat.completions.with_streaming_response
  .create(...)``), so authentication, ``base_url``, retries of the request, headers and
  HTTP status errors are exactly the SDK's;
- the SSE bytes of that response are split by
  :class:`~streamkit.providers.openai.sse.SSESplitter` (the same rules as the SDK's
  ``SSEDecoder``) and each event's JSON is decoded with ``orjson`` (falling back
  to ``json.loads`` for what orjson refuses, so the outcome, error included, is the
  SDK's); ``data: [DONE]`` and an event with a top-level ``error`` behave as in the SDK's
  ``Stream`` (the latter raises ``openai.APIError``), and transport errors are wrapped in
  ``APIConnectionError`` / ``APITimeoutError`` as the SDK does;
- each event becomes a :class:`LazyOpenAIChunk` straight from the decoded JSON. Its
  ``chunk`` (the SDK's ``ChatCompletionChunk``) is built only when it is read, by the
  SDK's own ``client._process_response_data``, so it equals the SDK path's object.

The SDK internals this needs (its transport errors, its async drain, how it builds a
chunk object) are used through :mod:`streamkit.providers.openai._sdk` only.

Events the fast decoder does not read itself (usage reports, audio, list content, any
unexpected shape) are built into the SDK's object at once and decoded by
:class:`~streamkit.providers._chat.ChatChunkDecoder`, as on the SDK path: the normalized
chunks are the SDK path's, field for field (``tests/test_fast_path.py`` checks that on
every chat transcript). A client with ``_strict_response_validation`` gets every object
built at once too, so validation errors surface where the SDK raises them.

Why ``chunk`` is lazy through ``__getattr__``: ``Chunk`` is a frozen pydantic model and
``chunk`` one of its fields. A ``functools.cached_property`` of that name on a subclass
is taken by pydantic as the field's new default, so it cannot be used. Instead the field
is simply left unset (pydantic's ``model_construct`` leaves a field without default
unset), and Python calls ``__getattr__`` only for an attribute that is not there: the
first read of ``chunk`` builds the object and stores it in the instance's ``__dict__``,
where later reads find it directly. No other name is handled (everything else goes to
pydantic's own ``__getattr__``), nothing is forwarded to another object.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import openai
from pydantic import PrivateAttr, SerializationInfo, SerializerFunctionWrapHandler, model_serializer

from streamkit.messages import Message
from streamkit.models import Chunk, ToolCallDelta, construct_chunk
from streamkit.providers._base import Decoder
from streamkit.providers._chat import ChatChunkDecoder
from streamkit.providers.openai._sdk import (
    SDKChunkBuilder,
    drain_response_async,
    request_exceptions,
    require_sdk_internals,
    timeout_exceptions,
)
from streamkit.providers.openai.chat import OpenAIChatAdapter, OpenAIChunk
from streamkit.providers.openai.sse import SSESplitter

try:
    import orjson
except ImportError:  # the ``fast`` extra is not installed: fast=True explains that
    orjson = None  # type: ignore[assignment]

__all__ = [
    "AsyncFastChatStream",
    "FastChatDecoder",
    "FastChatStream",
    "LazyOpenAIChunk",
    "OpenAIFastChatAdapter",
    "RawChatEvent",
    "open_stream",
    "open_stream_async",
    "require_orjson",
]


def require_orjson() -> None:
    """Raise ``ImportError`` (before any request) when the fast path cannot run here:
    orjson is not installed, or the installed openai SDK lacks the internals it uses."""
    if orjson is None:
        raise ImportError(
            "fast=True decodes with orjson, which is not installed: "
            "pip install 'streamkit[fast]' (or pip install orjson)"
        )
    require_sdk_internals()


RawChatEvent = tuple[Any, SDKChunkBuilder]
"""What a fast stream yields per event: the decoded JSON and how to build its SDK object."""


class LazyOpenAIChunk(OpenAIChunk):
    """A chunk of the fast path: every field as on the SDK path, with ``chunk`` (the
    SDK's ``ChatCompletionChunk``) built on its first read from the event's JSON.

    ``raw_json`` is that JSON, as decoded (read it to get a raw field without building
    the SDK object). Serializing (``model_dump``) builds ``chunk`` first, so a dump
    is the SDK path's. Two threads reading ``chunk`` at once may both build it; they
    build equal objects and one is kept.
    """

    # Events with audio are decoded through the SDK object (an eager OpenAIChunk), so a
    # lazy chunk never holds an audio delta: ChatMessageBuilder need not look for its id.
    holds_no_audio: ClassVar[bool] = True

    _event: RawChatEvent = PrivateAttr()

    @property
    def raw_json(self) -> Any:
        """The event's JSON as decoded (a dict for every chat chunk)."""
        return self._event[0]

    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            if name != "chunk":
                return super().__getattr__(name)
            data, build = self._event
            built = build(data)
            self.__dict__["chunk"] = built  # later reads find it without this hook
            self.__pydantic_fields_set__.add("chunk")  # as on the SDK path: it is set
            return built

        def __getstate__(self) -> dict[Any, Any]:
            # Pickled with the SDK object built; the builder (client, response) stays.
            self.chunk  # noqa: B018 - build it
            state = super().__getstate__()
            state["__pydantic_private__"] = {"_event": (self._event[0], None)}
            return state

    @model_serializer(mode="wrap")
    def _serialize_built(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> Any:
        self.chunk  # noqa: B018 - build it, so the dump holds the SDK path's object
        return handler(self)


def _text_or_none(value: Any) -> bool:
    return value is None or type(value) is str


def _tool_call_delta(call: Any) -> ToolCallDelta | None:
    """A ``delta.tool_calls`` item as the SDK path reads it, or None if its shape is
    one the SDK object should decide (then the caller falls back to it)."""
    if type(call) is not dict or "index" not in call:
        return None
    index = call["index"]
    call_id = call.get("id")
    function = call.get("function")
    if (index is not None and type(index) is not int) or not _text_or_none(call_id):
        return None
    name: Any = None
    arguments: Any = None
    if function is not None:
        if type(function) is not dict:
            return None
        name = function.get("name")
        arguments = function.get("arguments")
        if not (_text_or_none(name) and _text_or_none(arguments)):
            return None
    return ToolCallDelta(
        index=index if index is not None else 0, id=call_id, name=name, arguments=arguments or ""
    )


class FastChatDecoder(ChatChunkDecoder):
    """Decodes the fast stream's events; those of a shape it does not read itself
    (usage, audio, list content, anything unexpected) go through the SDK object and
    :meth:`ChatChunkDecoder.decode`, so every chunk is the SDK path's."""

    def decode(self, event: RawChatEvent) -> list[Chunk]:
        """One event's JSON in, one normalized chunk out."""
        data, build = event
        chunk = None if build.eager else self._decode_json(data, event)
        if chunk is None:
            return super().decode(build(data))
        return [chunk]

    def _decode_json(self, data: Any, event: RawChatEvent) -> LazyOpenAIChunk | None:
        # Mirrors ChatChunkDecoder.decode on the JSON; returns None (fall back to the
        # SDK object) on any shape where reading the JSON could differ from reading it.
        if type(data) is not dict or data.get("usage") is not None:
            return None
        choices = data.get("choices")
        if type(choices) is not list:
            return None
        content = thinking = refusal = ""
        finish_reasons: list[str] | None = None
        tool_calls: list[ToolCallDelta] = []
        for choice in choices:
            if type(choice) is not dict or "delta" not in choice or "index" not in choice:
                return None
            delta = choice["delta"]
            if delta is not None and choice["index"] == 0:
                if type(delta) is not dict or delta.get("audio") is not None:
                    return None
                raw_content = delta.get("content")
                reasoning = delta.get("reasoning")
                reasoning_content = delta.get("reasoning_content")
                raw_refusal = delta.get("refusal")
                if not (
                    _text_or_none(raw_content)
                    and _text_or_none(reasoning)
                    and _text_or_none(reasoning_content)
                    and _text_or_none(raw_refusal)
                ):
                    return None
                content = raw_content or ""
                thinking = reasoning or reasoning_content or ""
                refusal = raw_refusal or ""
                calls = delta.get("tool_calls")
                if calls is not None:
                    if type(calls) is not list:
                        return None
                    for call in calls:
                        call_delta = _tool_call_delta(call)
                        if call_delta is None:
                            return None
                        tool_calls.append(call_delta)
            finish_reason = choice.get("finish_reason")
            if finish_reason:
                if type(finish_reason) is not str:
                    return None
                finish_reasons = [*(finish_reasons or ()), finish_reason]
        self.advance(finish_reasons, None)  # events with usage go through the SDK object
        chunk = construct_chunk(
            LazyOpenAIChunk,
            provider=self.provider,
            content=content,
            thinking=thinking,
            refusal=refusal,
            finish_reasons=finish_reasons,
            model=data.get("model"),
            id=data.get("id"),
            usage=None,
            tool_calls=tool_calls,
            audio=None,
            audio_transcript=None,
        )
        chunk._event = event
        return chunk


def _loads(raw: bytes) -> Any:
    """orjson, or ``json.loads`` of the text for what orjson refuses (NaN, huge
    integers, lone surrogates, bad UTF-8): the value or the error is then the SDK's."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw.decode("utf-8"))


class _EventReader:
    """The part of the SDK ``Stream``'s loop shared by the sync and async fast streams:
    ``[DONE]`` ends the stream, an event with a top-level ``error`` raises
    ``openai.APIError``, every other event is yielded as its decoded JSON."""

    __slots__ = ("_build", "_request", "_splitter", "done")

    def __init__(self, build: SDKChunkBuilder, request: Any) -> None:
        self._splitter = SSESplitter()
        self._build = build
        self._request = request
        self.done = False

    def events(self, chunk: bytes) -> Iterator[RawChatEvent]:
        for name, raw in self._splitter.feed(chunk):
            if raw.startswith(b"[DONE]"):
                self.done = True
                return
            if name is not None and name.startswith("thread."):  # as the SDK (Assistants)
                yield {"data": _loads(raw), "event": name}, self._build
                continue
            data = _loads(raw)
            if type(data) is dict and data.get("error"):
                error = data["error"]
                message = error.get("message") if isinstance(error, dict) else None
                if not message or not isinstance(message, str):
                    message = "An error occurred during streaming"
                raise openai.APIError(message=message, request=self._request, body=error)
            yield data, self._build


class FastChatStream:
    """The fast path's sync stream: iterates :data:`RawChatEvent` pairs read from the
    SDK's own HTTP response; ``close()`` releases the connection."""

    def __init__(self, api_response: Any, client: Any) -> None:
        self.api_response = api_response
        self.response = api_response.http_response  # for source.shutdown_socket
        self._build = SDKChunkBuilder(client, self.response)

    def __iter__(self) -> Iterator[RawChatEvent]:
        reader = _EventReader(self._build, self.response.request)
        try:
            for chunk in self.response.iter_bytes():
                yield from reader.events(chunk)
                if reader.done:
                    return
        except timeout_exceptions() as err:
            raise openai.APITimeoutError(request=self.response.request) from err
        except request_exceptions() as err:
            raise openai.APIConnectionError(request=self.response.request) from err

    def close(self) -> None:
        """Close the HTTP response."""
        self.api_response.close()


class AsyncFastChatStream:
    """The fast path's async stream (see :class:`FastChatStream`)."""

    def __init__(self, api_response: Any, client: Any) -> None:
        self.api_response = api_response
        self.response = api_response.http_response
        self._build = SDKChunkBuilder(client, self.response)

    async def __aiter__(self) -> AsyncIterator[RawChatEvent]:
        reader = _EventReader(self._build, self.response.request)
        try:
            async for chunk in self.response.aiter_bytes():
                for event in reader.events(chunk):
                    yield event
                if reader.done:
                    # As the SDK: an HTTP/1.1 connection is reusable once the body is read.
                    if self.response.http_version == "HTTP/1.1":
                        await drain_response_async(self.response)
                    return
        except timeout_exceptions() as err:
            raise openai.APITimeoutError(request=self.response.request) from err
        except request_exceptions() as err:
            raise openai.APIConnectionError(request=self.response.request) from err

    async def aclose(self) -> None:
        """Close the HTTP response."""
        await self.api_response.close()


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
    """Streams chat completions for ``fast=True``: the chat adapter's request, read
    through :func:`open_stream` and decoded by :class:`FastChatDecoder` (see the module
    docs); needs orjson (the ``fast`` extra)."""

    def build_request(
        self, model: str, messages: list[Message], params: dict[str, Any]
    ) -> dict[str, Any]:
        """The chat adapter's request; raises ``ImportError`` first when the fast path
        cannot run here (:func:`require_orjson`)."""
        request = super().build_request(model, messages, params)
        require_orjson()
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
