"""Mistral chat completions (``mistralai.client.Mistral``: ``chat.stream`` / ``chat.stream_async``).

One ``Mistral`` client serves both ways, so a stream with a Mistral client is sync
unless it is asked for ``async_=True`` (or made by ``@sk.call`` on an ``async def``).
Each SDK event is a ``CompletionEvent`` whose ``data`` is an OpenAI-shaped
``CompletionChunk``; ``Chunk.chunk`` holds that ``CompletionChunk``. Quirks of the
mistralai SDK the decoder handles:

- ``delta.content`` is a string, or (thinking models) a list of parts: ``thinking``
  parts are read as ``thinking``, ``text`` parts as content; absent fields are the
  SDK's falsy ``UNSET``.
- a tool call without an ``id`` gets the string ``"null"`` from the SDK, and one
  without an ``index`` gets ``0``; ``function.arguments`` may be a JSON object rather
  than a string.
- usage arrives in the chunk with the finish reason; unknown usage fields
  (``prompt_tokens_details``) stay plain dicts.

By default (``fast=None``) the fast path (:mod:`streamkit.providers.mistral.fast`; needs
orjson) reads the stream where it can run: the same chunks for several times less CPU
per chunk. Where it cannot (orjson missing, an SDK whose internals ``_sdk`` does not
recognize) the SDK reads it, and a DEBUG line on this module's logger says why;
``fast=True`` insists on the fast path (``ImportError`` before any request where it
cannot run), ``fast=False`` asks for the SDK path. The modules: this one (the adapter,
chunk type and decoder), ``fast`` and ``_sdk`` (the SDK internals the fast path relies
on).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

from mistralai.client import Mistral
from mistralai.client.models import CompletionChunk
from mistralai.client.utils.retries import BackoffStrategy, RetryConfig

from streamkit._finish_reasons import CHAT_FINISH_REASONS, FinishReason
from streamkit._messages import Message, MessageBuilder
from streamkit._models import Chunk, ToolCallDelta
from streamkit.providers._base import ProviderAdapter, describe_client, is_transient_error
from streamkit.providers._chat import ChatChunkDecoder, ChatMessageBuilder
from streamkit.providers._stainless import choose_fast

if TYPE_CHECKING:
    from streamkit.providers.mistral.fast import MistralFastAdapter

__all__ = ["MistralAdapter", "MistralChunk", "MistralChunkDecoder"]

_log = logging.getLogger(__name__)
"""Where ``fast=None`` says why a stream takes the SDK path (DEBUG)."""

_ABSENT_ID = "null"  # what mistralai's ToolCall.id defaults to when the API sent none


class MistralChunk(Chunk):
    """A chunk of a Mistral stream; ``chunk`` is the SDK's ``CompletionChunk``
    (the ``data`` of its ``CompletionEvent``)."""

    chunk: CompletionChunk

    finish_reason_table: ClassVar[Mapping[str, FinishReason]] = {
        **CHAT_FINISH_REASONS,
        "model_length": "length",
    }
    """The chat-completions finish reasons, and Mistral's ``model_length``."""
    message_builder: ClassVar[type[MessageBuilder]] = ChatMessageBuilder


class MistralChunkDecoder(ChatChunkDecoder):
    """The chat-chunk decoder over ``CompletionEvent.data``, with Mistral's tool calls."""

    def __init__(self, provider: str) -> None:
        super().__init__(provider, chunk_type=MistralChunk)
        self._last_index = -1

    def decode(self, event: Any) -> list[Chunk]:
        """Decode the ``CompletionChunk`` a ``CompletionEvent`` carries."""
        return super().decode(event.data)

    def tool_call_delta(self, call: Any) -> ToolCallDelta:
        """A tool-call fragment, with the SDK's placeholders read as absent.

        Without an explicit ``index``, a fragment with an id starts a new call and one
        without continues the last (the SDK's default of 0 would merge parallel calls).
        """
        call_id = call.id if call.id and call.id != _ABSENT_ID else None
        if "index" in call.model_fields_set and call.index is not None:
            index = call.index
        else:
            index = self._last_index + 1 if call_id is not None else max(self._last_index, 0)
        self._last_index = max(self._last_index, index)
        function = call.function
        arguments = function.arguments
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        name = function.name or None
        return ToolCallDelta(index=index, id=call_id, name=name, arguments=arguments)


def _no_retries() -> RetryConfig:
    """mistralai's retry configuration that retries nothing."""
    return RetryConfig("none", BackoffStrategy(1, 1, 1.0, 1), False)


class MistralAdapter(ProviderAdapter):
    """Streams ``client.chat.stream(...)`` / ``await client.chat.stream_async(...)``.

    The stream is complete once a finish reason arrived (usage comes in the same
    chunk); a body that ends, or a connection that drops, before it is an
    :class:`~streamkit._errors.IncompleteStreamError`. HTTP errors are the SDK's own
    (``mistralai.client.errors.SDKError``, ``HTTPValidationError`` for 422).
    """

    name = "mistral"
    client_example = "Mistral"
    api_key_env = ("MISTRAL_API_KEY",)
    sdk_method = "mistralai.client.chat:Chat.stream"
    terminal_event = "a chunk with a finish_reason (and usage) before data: [DONE]"
    own_params = frozenset({"fast"})

    def adapter_for(self, params: Mapping[str, Any], client: Any = None) -> ProviderAdapter:
        """The fast adapter
        (:class:`~streamkit.providers.mistral.fast.MistralFastAdapter`) for ``fast=None`` (the
        default) where it can run and for ``fast=True``, else this one
        (:func:`~streamkit.providers._stainless.choose_fast`); ``TypeError`` for a
        ``fast`` that is not a bool or ``None``, before any request."""
        if choose_fast(params.get("fast"), _fast_adapter, _log):
            return _fast_adapter()
        return self

    def is_async_client(self, client: Any) -> None:
        """``None``: one ``Mistral`` client serves both ways (``async_`` decides)."""
        if not isinstance(client, Mistral):
            raise TypeError(
                f"expected a mistralai.client.Mistral client, got {describe_client(client)}"
            )
        return None

    def default_client(self, async_: bool) -> Any:
        """``Mistral()``, which reads ``MISTRAL_API_KEY`` (it serves sync and async), its
        retries off (streamkit's operators retry)."""
        return Mistral(retry_config=_no_retries())

    def build_request(
        self, model: str, messages: list[Message], params: dict[str, Any]
    ) -> dict[str, Any]:
        """Keyword arguments of ``chat.stream`` / ``chat.stream_async`` (``fast=`` chose
        the adapter and is not sent)."""
        request: dict[str, Any] = {"model": model, "messages": messages, **params}
        request.pop("fast", None)
        request["stream"] = True
        return request

    def single_attempt(self, client: Any, request: Any) -> tuple[Any, Any]:
        """``request`` with mistralai's per-request ``retries`` off."""
        return client, {**request, "retries": _no_retries()}

    def open(self, client: Any, request: dict[str, Any]) -> Any:
        """Make the request; return the SDK's ``EventStream``."""
        return client.chat.stream(**request)

    async def open_async(self, client: Any, request: dict[str, Any]) -> Any:
        """Make the request; return the SDK's ``EventStreamAsync``."""
        return await client.chat.stream_async(**request)

    def new_decoder(self, request: dict[str, Any]) -> MistralChunkDecoder:
        """A Mistral chunk decoder (a finish reason is what ends the stream)."""
        return MistralChunkDecoder(self.name)

    def is_transient(self, exc: BaseException) -> bool:
        """As :func:`~streamkit.providers.is_transient_error`; for an error event in the
        stream (``data: {"error": {...}}``), which mistralai fails to validate as a chunk
        and raises as ``ResponseValidationError`` with the event as its ``body``, the
        error the event carries decides (an overload or server error is transient)."""
        carried = _event_error(exc)
        return is_transient_error(exc if carried is None else carried)


class _ErrorEvent(Exception):
    """The error object of a mid-stream error event (``body``), for classification."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.body = body


def _event_error(exc: BaseException) -> _ErrorEvent | None:
    """The error event a mistralai validation error was raised for, if it was one."""
    body = getattr(exc, "body", None)
    if not isinstance(body, str) or '"error"' not in body:
        return None
    try:
        data = json.loads(body).get("data")
    except (ValueError, AttributeError):
        return None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return _ErrorEvent(data)
    return None


@cache
def _fast_adapter() -> MistralFastAdapter:
    from streamkit.providers.mistral.fast import MistralFastAdapter

    return MistralFastAdapter()
