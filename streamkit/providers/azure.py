"""Azure AI Inference: the ``"azure"`` provider (``azure-ai-inference``).

``"azure"`` means the Azure AI model inference API through
``azure.ai.inference.ChatCompletionsClient`` (sync) or
``azure.ai.inference.aio.ChatCompletionsClient`` (async), i.e. models deployed in Azure AI
Foundry / GitHub Models, streamed with ``client.complete(stream=True)``, which posts to
``{endpoint}/chat/completions?api-version=...``::

    client = ChatCompletionsClient(endpoint=..., credential=AzureKeyCredential(key))
    sk.stream("azure", "Phi-4", "Hello", client=client)

**Azure OpenAI** through the openai SDK's ``AzureOpenAI`` / ``AsyncAzureOpenAI`` client is
the ``"openai"`` provider: pass that client to ``sk.stream("openai", deployment, ...)``
(it posts to ``/openai/deployments/{deployment}/chat/completions?api-version=...``).

The updates are OpenAI-shaped, so the shared chat decoder reads them; what differs is
the SDK's model objects: a tool-call fragment has no ``index`` attribute (it is read from
the update's JSON), the finish reason is an enum, ``refusal`` and ``reasoning_content``
exist only as JSON keys, and usage details are plain dicts. The SDK has no
``stream_options`` parameter; pass ``model_extras={"stream_options": {"include_usage":
True}}`` to ask for a usage chunk (the stream is then complete only once it arrived).
A chunk with a top-level ``error`` object, which the SDK passes on silently when it also
has choices or usage (as OpenRouter's does), raises
``azure.core.exceptions.HttpResponseError``; the SDK drops a bare ``{"error": ...}``
chunk, and the stream then ends without its finish reason (``IncompleteStreamError``).

Cancelling a stream closes its connection at once, sync and async: the sync SDK reads
through ``requests``, whose response the adapter hands to
:func:`streamkit.source.shutdown_socket` (:meth:`AzureAdapter.http_response`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

import azure.ai.inference
import azure.ai.inference.aio
from azure.ai.inference.models import StreamingChatCompletionsUpdate
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from streamkit.finish_reasons import CHAT_FINISH_REASONS, FinishReason
from streamkit.messages import Message, MessageBuilder
from streamkit.models import Chunk, ToolCallDelta, Usage
from streamkit.providers._base import (
    ProviderAdapter,
    describe_client,
    is_connection_cut,
    is_transient_error,
)
from streamkit.providers._chat import ChatChunkDecoder, ChatMessageBuilder

__all__ = ["AzureAdapter", "AzureChunk", "AzureChunkDecoder"]

ENDPOINT_ENV = "AZURE_AI_CHAT_ENDPOINT"
KEY_ENV = "AZURE_AI_CHAT_KEY"


class AzureChunk(Chunk):
    """A chunk of an Azure AI Inference stream; ``chunk`` is the SDK's update."""

    chunk: StreamingChatCompletionsUpdate

    finish_reason_table: ClassVar[Mapping[str, FinishReason]] = CHAT_FINISH_REASONS
    """The chat-completions finish reasons, as OpenAI's."""
    message_builder: ClassVar[type[MessageBuilder]] = ChatMessageBuilder


def _usage(raw: Any) -> Usage | None:
    """Usage from the SDK's ``CompletionsUsage`` (a mapping; details as plain dicts)."""
    if raw is None:
        return None
    prompt = raw.get("prompt_tokens") or 0
    completion = raw.get("completion_tokens") or 0
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=prompt,
        output_tokens=completion,
        total_tokens=raw.get("total_tokens") or prompt + completion,
        cached_tokens=prompt_details.get("cached_tokens"),
        reasoning_tokens=completion_details.get("reasoning_tokens"),
    )


class AzureChunkDecoder(ChatChunkDecoder):
    """The chat decoder over the SDK's mapping-based model objects."""

    def usage_of(self, event: Any) -> Usage | None:
        """``event.usage``, details included."""
        return _usage(event.get("usage"))

    def tool_call_delta(self, call: Any) -> ToolCallDelta:
        """A tool-call fragment; its ``index`` is only in the JSON."""
        function = call.get("function") or {}
        index = call.get("index")
        return ToolCallDelta(
            index=index if index is not None else 0,
            id=call.get("id"),
            name=function.get("name"),
            arguments=function.get("arguments") or "",
        )

    def decode(self, event: Any) -> list[Chunk]:
        """One update in, one chunk out (with the JSON-only ``refusal`` and
        ``reasoning_content``); raises ``HttpResponseError`` for an error chunk."""
        error = event.get("error")
        if error:
            self.events += 1
            raise _error_chunk(error)
        chunks = super().decode(event)
        extra = _json_only_fields(event)
        if extra:
            return [chunk.model_copy(update=extra) for chunk in chunks]
        return chunks


def _json_only_fields(event: Any) -> dict[str, str]:
    """``refusal`` and ``reasoning_content`` of the first choice's delta: keys the SDK
    keeps in the JSON without attributes."""
    for choice in event.get("choices") or ():
        if choice.get("index") != 0:
            continue
        delta = choice.get("delta") or {}
        fields = {}
        if delta.get("refusal"):
            fields["refusal"] = str(delta["refusal"])
        thinking = delta.get("reasoning_content") or delta.get("reasoning")
        if thinking:
            fields["thinking"] = str(thinking)
        return fields
    return {}


def _error_chunk(error: Any) -> HttpResponseError:
    """The SDK's error type for an error object sent inside a 200 stream."""
    message = error.get("message") if isinstance(error, Mapping) else None
    return HttpResponseError(
        message=f"error event in the stream: {message or error!r}",
        model=dict(error) if isinstance(error, Mapping) else error,
    )


class AzureAdapter(ProviderAdapter):
    """Streams ``ChatCompletionsClient.complete(stream=True)`` of ``azure-ai-inference``.

    The stream is complete once a finish reason (and the usage chunk, when asked for
    through ``model_extras``) arrived: the SDK ends quietly on a body cut before
    ``[DONE]``. A dropped connection (``HttpResponseError`` over requests'
    ``ChunkedEncodingError`` sync, ``IncompleteReadError`` over aiohttp's
    ``ClientPayloadError`` async) is an :class:`~streamkit.errors.IncompleteStreamError`
    raised from it, by the base adapter's ``read_error``.
    """

    name = "azure"
    api_key_env = ("AZURE_AI_CHAT_KEY",)
    terminal_event = "a finish_reason (and the usage chunk when requested) before data: [DONE]"

    def is_async_client(self, client: Any) -> bool:
        """``azure.ai.inference.aio.ChatCompletionsClient`` is async, the other sync."""
        if isinstance(client, azure.ai.inference.aio.ChatCompletionsClient):
            return True
        if isinstance(client, azure.ai.inference.ChatCompletionsClient):
            return False
        raise TypeError(
            "expected an azure.ai.inference.ChatCompletionsClient or "
            f"azure.ai.inference.aio.ChatCompletionsClient, got {describe_client(client)}"
        )

    def default_client(self, async_: bool) -> Any:
        """A client for ``AZURE_AI_CHAT_ENDPOINT`` with the key ``AZURE_AI_CHAT_KEY``
        (the variables of the SDK's samples); ``ValueError`` when they are not set."""
        endpoint = os.environ.get(ENDPOINT_ENV)
        key = os.environ.get(KEY_ENV)
        if not endpoint or not key:
            raise ValueError(
                f"no client given for 'azure' and {ENDPOINT_ENV} / {KEY_ENV} are not set: "
                "pass client=azure.ai.inference.ChatCompletionsClient(endpoint=..., credential=...)"
            )
        module = azure.ai.inference.aio if async_ else azure.ai.inference
        # retry_total=0: azure-core retries 429/5xx up to 10 times; streamkit's operators retry.
        return module.ChatCompletionsClient(
            endpoint=endpoint, credential=AzureKeyCredential(key), retry_total=0
        )

    def build_request(
        self, model: str, messages: list[Message], params: dict[str, Any]
    ) -> dict[str, Any]:
        """Keyword arguments of ``complete`` (``stream=True`` always)."""
        request: dict[str, Any] = {"messages": messages, "model": model, **params}
        request["stream"] = True
        return request

    def single_attempt(self, client: Any, request: Any) -> tuple[Any, Any]:
        """``request`` with azure-core's per-request ``retry_total=0``."""
        return client, {**request, "retry_total": 0}

    def open(self, client: Any, request: dict[str, Any]) -> Any:
        """Make the request; return the SDK's ``StreamingChatCompletions``."""
        return client.complete(**request)

    async def open_async(self, client: Any, request: dict[str, Any]) -> Any:
        """Make the request; return the SDK's ``AsyncStreamingChatCompletions``."""
        return await client.complete(**request)

    def http_response(self, sdk_stream: Any) -> Any:
        """The ``requests`` response under a sync ``StreamingChatCompletions`` (for
        shutting its socket down from another thread), or ``None``.

        azure-core keeps it at ``_response.internal_response``: the SDK offers no public
        way to it, and without it a cancelled read stays blocked until the next event.
        """
        return getattr(getattr(sdk_stream, "_response", None), "internal_response", None)

    def is_transient(self, exc: BaseException) -> bool:
        """azure-core's transport errors are transient too: ``ServiceRequestError`` (no
        connection), ``ServiceResponseError`` (no response) and a connection dropped
        before any event (``HttpResponseError`` over requests' ``ChunkedEncodingError``,
        ``IncompleteReadError`` over aiohttp's ``ClientPayloadError``, with no status:
        after an event it is an ``IncompleteStreamError``). Others as
        :func:`~streamkit.providers.is_transient_error`."""
        if isinstance(exc, ServiceRequestError | ServiceResponseError) or is_connection_cut(exc):
            return True
        return is_transient_error(exc)

    def new_decoder(self, request: dict[str, Any]) -> AzureChunkDecoder:
        """A decoder expecting usage when ``model_extras`` asked for it."""
        extras = request.get("model_extras") or {}
        options = extras.get("stream_options") or {}
        return AzureChunkDecoder(
            self.name, chunk_type=AzureChunk, expect_usage=bool(options.get("include_usage"))
        )
