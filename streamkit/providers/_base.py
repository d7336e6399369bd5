"""The adapter protocol: what a provider module supplies, and nothing more.

An adapter opens the SDK's stream (sync or async), decodes each SDK event into zero or
more :class:`~streamkit.models.Chunk` (through a per-stream :class:`Decoder`, which also
knows whether the provider's terminal event arrived), classifies errors as transient or
not, and builds the assistant ``message_param`` of a response. Lifetimes, threads and
cancellation belong to :mod:`streamkit.source`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from streamkit.errors import IncompleteStreamError
from streamkit.messages import Message
from streamkit.models import Chunk, ToolCall

__all__ = [
    "ChatMessageBuilder",
    "Decoder",
    "MessageBuilder",
    "ProviderAdapter",
    "is_transient_error",
]


class Decoder(ABC):
    """Per-stream state that turns SDK events into chunks.

    ``complete`` becomes true once the provider's terminal event has been decoded; a
    stream that ends before that is reported as :class:`IncompleteStreamError`.
    """

    def __init__(self) -> None:
        self.complete = False
        self.events = 0

    @abstractmethod
    def decode(self, event: Any) -> list[Chunk]:
        """Decode one SDK event (may yield no chunk, e.g. a ping)."""


class MessageBuilder:
    """Builds the assistant message of a response in the provider's own format.

    ``add`` sees every chunk (for provider-specific parts such as Anthropic's thinking
    signatures); ``build`` gets the reduced response fields.
    """

    def add(self, chunk: Chunk) -> None:
        """Observe one chunk (default: nothing to keep)."""

    def build(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Return the assistant message param."""
        raise NotImplementedError


class ChatMessageBuilder(MessageBuilder):
    """The OpenAI chat-completions assistant message (also Groq, Mistral, LiteLLM, Azure)."""

    def __init__(self) -> None:
        self.audio_id: str | None = None

    def add(self, chunk: Chunk) -> None:
        """Remember the audio id, which the next turn refers to."""
        if chunk.audio is not None or chunk.audio_transcript:
            raw = chunk.chunk
            for choice in getattr(raw, "choices", None) or ():
                audio = getattr(choice.delta, "audio", None)
                audio_id = getattr(audio, "id", None)
                if audio_id:
                    self.audio_id = audio_id

    def build(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """``{"role": "assistant", "content": ..., "tool_calls": [...], "audio": {...}}``."""
        message: dict[str, Any] = {"role": "assistant", "content": fields["content"] or None}
        tool_calls: list[ToolCall] = fields["tool_calls"]
        if tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in tool_calls
            ]
        if fields.get("refusal"):
            message["refusal"] = fields["refusal"]
        if self.audio_id is not None:
            message["audio"] = {"id": self.audio_id}
        return message


_TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
_TRANSIENT_TYPES = frozenset(
    {
        "overloaded_error",
        "api_error",
        "rate_limit_error",
        "server_error",
        "timeout_error",
        "internal_server_error",
        "service_unavailable",
    }
)
_TRANSPORT_ERROR_NAMES = frozenset(
    {
        "ReadError",
        "WriteError",
        "ConnectError",
        "RemoteProtocolError",
        "ReadTimeout",
        "ConnectTimeout",
        "PoolTimeout",
        "APIConnectionError",
        "APITimeoutError",
    }
)


def _error_type(exc: BaseException) -> str | None:
    """The provider's error type (``overloaded_error``...) carried by an SDK exception."""
    for attr in ("type", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, str):
            return value
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping):
            for key in ("type", "code", "status"):
                value = error.get(key)
                if isinstance(value, str):
                    return value
    return None


def is_transient_error(exc: BaseException) -> bool:
    """Whether a new request may succeed where this error failed.

    Transient: connection and read errors, a stream cut before its terminal event, HTTP
    408/409/429/5xx/529, and error events whose type is an overload, rate limit or
    server error (these arrive with the 200 status of the stream that carried them, so
    they are classified by type, not status). Everything else (400, 401, 403, 404, 422,
    a malformed request) is not.
    """
    if isinstance(exc, IncompleteStreamError):
        return True
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, json.JSONDecodeError):
        return False
    names = {cls.__name__ for cls in type(exc).__mro__}
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        status = getattr(getattr(exc, "response", None), "status_code", None)
    error_type = _error_type(exc)
    if error_type is not None and error_type in _TRANSIENT_TYPES:
        return True
    if isinstance(status, int) and status != 200:
        return status in _TRANSIENT_STATUS
    return bool(names & _TRANSPORT_ERROR_NAMES)


class ProviderAdapter(ABC):
    """What a provider module supplies. One instance serves every stream of a provider."""

    name: ClassVar[str]
    """The provider name used in ``sk.stream(name, ...)`` and ``Chunk.provider``."""
    terminal_event: ClassVar[str]
    """A description of the event that ends a whole stream, for error messages."""

    @abstractmethod
    def is_async_client(self, client: Any) -> bool | None:
        """Whether ``client`` is the SDK's async client (raises TypeError if foreign).

        ``None`` means the client serves both (one class for sync and async calls, such
        as ``genai.Client`` or mistralai's ``Mistral``): the stream's ``async_`` decides.
        """

    @abstractmethod
    def default_client(self, async_: bool) -> Any:
        """The SDK's default client, configured from its usual environment variables."""

    @abstractmethod
    def build_request(self, model: str, messages: list[Message], params: dict[str, Any]) -> Any:
        """The arguments of the SDK's streaming call (provider-native messages)."""

    @abstractmethod
    def open(self, client: Any, request: Any) -> Any:
        """Make the request with a sync client; return the SDK's stream (iterable)."""

    @abstractmethod
    async def open_async(self, client: Any, request: Any) -> Any:
        """Make the request with an async client; return the SDK's async stream."""

    @abstractmethod
    def new_decoder(self, request: Any) -> Decoder:
        """A fresh decoder for one stream of ``request``."""

    def message_builder(self) -> MessageBuilder:
        """A builder of the assistant message param (default: OpenAI chat format)."""
        return ChatMessageBuilder()

    def http_response(self, sdk_stream: Any) -> Any:
        """The httpx response under ``sdk_stream`` (for closing its socket), if reachable."""
        return getattr(sdk_stream, "response", None)

    def close(self, sdk_stream: Any) -> None:
        """Close a sync SDK stream, releasing its connection."""
        close = getattr(sdk_stream, "close", None)
        if close is not None:
            close()

    async def close_async(self, sdk_stream: Any) -> None:
        """Close an async SDK stream, releasing its connection."""
        for name in ("aclose", "close"):
            close = getattr(sdk_stream, name, None)
            if close is not None:
                result = close()
                if hasattr(result, "__await__"):
                    await result
                return

    def is_transient(self, exc: BaseException) -> bool:
        """Whether a retry may succeed after ``exc`` (see :func:`is_transient_error`)."""
        return is_transient_error(exc)

    def incomplete(self, decoder: Decoder) -> IncompleteStreamError:
        """The error for a stream that ended before its terminal event."""
        return IncompleteStreamError(self.name, self.terminal_event, events=decoder.events)
