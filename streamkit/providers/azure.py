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
:func:`streamkit._source.shutdown_socket` (:meth:`AzureAdapter.http_response`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

import azure.ai.inference
import azure.ai.inference.aio
from azure.ai.inference.models import StreamingChatCompletionsUpdate
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from streamkit._errors import EndpointError
from streamkit._finish_reasons import CHAT_FINISH_REASONS, FinishReason
from streamkit._messages import Message, MessageBuilder
from streamkit._models import Chunk, ToolCallDelta, Usage
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

REQUEST_OPTIONS = frozenset(
    {
        # ChatCompletionsClient.complete's own
        "headers",
        "params",
        "error_map",
        "content_type",
        # azure-core's per-request options (its policies and transports)
        "timeout",
        "connection_timeout",
        "read_timeout",
        "connection_verify",
        "connection_cert",
        "decompress",
        "enable_cae",
        "logging_enable",
        "permit_redirects",
        "redirect_max",
        "redirect_on_status_codes",
        "redirect_remove_headers",
        "raw_request_hook",
        "raw_response_hook",
        "request_id",
        "response_encoding",
        "retry_total",
        "retry_connect",
        "retry_read",
        "retry_status",
        "retry_mode",
        "retry_backoff_factor",
        "retry_backoff_max",
        "retry_on_methods",
        "retry_on_status_codes",
        "tracing_attributes",
        "network_span_namer",
        "user_agent",
        "user_agent_overwrite",
        "user_agent_use_env",
    }
)
"""What ``complete(**kwargs)`` takes besides its named parameters: per-request options
of the call and of azure-core's pipeline. Anything else would reach the HTTP transport
and fail there (``Session.request() got an unexpected keyword argument``), at the first
request; ``sk.stream`` rejects it instead."""


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
        audio_input_tokens=prompt_details.get("audio_tokens") or None,
        audio_output_tokens=completion_details.get("audio_tokens") or None,
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


def _endpoint_from_environment() -> str:
    """``AZURE_AI_CHAT_ENDPOINT``, checked to be an http(s) URL with a host."""
    endpoint = os.environ.get(ENDPOINT_ENV, "").strip()
    if not endpoint:
        raise EndpointError(f"no endpoint for azure: {_ENDPOINT_FIX}")
    _check_endpoint(endpoint, ENDPOINT_ENV)
    return endpoint


_ENDPOINT_FIX = (
    f"set {ENDPOINT_ENV} to your deployment's URL (https://<resource>.services.ai.azure.com/"
    "models), or pass client=azure.ai.inference.ChatCompletionsClient(endpoint=..., "
    "credential=...)"
)


def _check_endpoint(endpoint: object, what: str) -> None:
    """Raise :class:`EndpointError` unless ``endpoint`` is an http(s) URL with a host
    (``None``, an endpoint that could not be read, passes)."""
    if endpoint is None:
        return
    url = urlsplit(endpoint) if isinstance(endpoint, str) else None
    if url is None or url.scheme not in ("http", "https") or not url.hostname:
        raise EndpointError(f"{what} {endpoint!r} is not an http(s) URL: {_ENDPOINT_FIX}")


def _client_endpoint(client: Any) -> object:
    """The endpoint a ``ChatCompletionsClient`` was built with (azure-core keeps it in
    the client's ``_config``; ``None`` where it is not found)."""
    return getattr(getattr(client, "_config", None), "endpoint", None)


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
    ``ClientPayloadError`` async) is an :class:`~streamkit._errors.IncompleteStreamError`
    raised from it, by the base adapter's ``read_error``.
    """

    name = "azure"
    client_example = "azure.ai.inference.ChatCompletionsClient"
    api_key_env = ("AZURE_AI_CHAT_KEY",)
    sdk_method = "azure.ai.inference:ChatCompletionsClient.complete"
    kwargs_params = REQUEST_OPTIONS
    unknown_param_note = (
        " (a parameter of the model that the SDK does not name goes in model_extras={...})"
    )
    terminal_event = "a finish_reason (and the usage chunk when requested) before data: [DONE]"

    def is_async_client(self, client: Any) -> bool:
        """``azure.ai.inference.aio.ChatCompletionsClient`` is async, the other sync;
        :class:`~streamkit.EndpointError` for one built with an endpoint that is not an
        http(s) URL (the SDK takes any string, and fails only at the first request)."""
        if isinstance(client, azure.ai.inference.aio.ChatCompletionsClient):
            _check_endpoint(_client_endpoint(client), "the client's endpoint")
            return True
        if isinstance(client, azure.ai.inference.ChatCompletionsClient):
            _check_endpoint(_client_endpoint(client), "the client's endpoint")
            return False
        raise TypeError(
            "expected an azure.ai.inference.ChatCompletionsClient or "
            f"azure.ai.inference.aio.ChatCompletionsClient, got {describe_client(client)}"
        )

    def check_default_credentials(self) -> None:
        """Without a client: ``AZURE_AI_CHAT_ENDPOINT`` must be an http(s) URL
        (:class:`~streamkit.EndpointError`) and ``AZURE_AI_CHAT_KEY`` must be set
        (:class:`~streamkit.MissingAPIKeyError`), checked at ``sk.stream`` time rather
        than at the first request."""
        _endpoint_from_environment()
        super().check_default_credentials()

    def default_client(self, async_: bool) -> Any:
        """A client for ``AZURE_AI_CHAT_ENDPOINT`` with the key ``AZURE_AI_CHAT_KEY``
        (the variables of the SDK's samples); :class:`~streamkit.MissingAPIKeyError` or
        :class:`~streamkit.EndpointError` when they are not set or not usable."""
        endpoint = _endpoint_from_environment()
        super().check_default_credentials()
        key = os.environ[KEY_ENV]
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
