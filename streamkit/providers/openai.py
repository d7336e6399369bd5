"""OpenAI chat completions (and any OpenAI-compatible server through ``base_url``).

``api="responses"`` selects OpenAI's Responses API for one call instead
(:mod:`streamkit.providers.openai_responses`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import openai
from openai.types.chat import ChatCompletionChunk

from streamkit.errors import IncompleteStreamError
from streamkit.messages import Message
from streamkit.models import Chunk
from streamkit.providers import openai_responses as responses
from streamkit.providers._base import Decoder, ProviderAdapter, describe_client
from streamkit.providers._chat import ChatChunkDecoder

__all__ = ["FastChatRequest", "OpenAIAdapter", "OpenAIChunk"]


class OpenAIChunk(Chunk):
    """A chunk of an OpenAI chat-completions stream; ``chunk`` is the SDK's own chunk."""

    chunk: ChatCompletionChunk


class FastChatRequest(dict[str, Any]):
    """The keyword arguments of ``chat.completions.create`` for ``fast=True``.

    Its type tells the adapter to read the response's bytes itself
    (:mod:`streamkit.providers.openai_fast`, imported only then).
    """


class OpenAIAdapter(ProviderAdapter):
    """Streams ``client.chat.completions.create(stream=True)``.

    Usage is requested by default (``stream_options={"include_usage": True}``); pass
    your own ``stream_options`` to change that. The stream is complete once a finish
    reason arrived and then the usage chunk or ``data: [DONE]`` (which the SDK
    consumes): an OpenAI-compatible server that sends no usage (llama.cpp, vLLM,
    Ollama, many proxies) ends complete, its usage ``None``. A connection dropped
    after the finish reason and before either is incomplete.

    ``api="responses"`` streams ``client.responses.create(stream=True)`` instead: the
    request is then a :class:`~streamkit.providers.openai_responses.ResponsesRequest`,
    whose type selects the endpoint, the decoder and the error message below.

    ``fast=True`` (chat completions only; needs orjson, the ``fast`` extra) reads the
    SSE bytes of the SDK's own response and builds each chunk's SDK object only when
    ``chunk.chunk`` is read (:mod:`streamkit.providers.openai_fast`): the same chunks,
    several times less CPU per chunk. The request is then a :class:`FastChatRequest`.
    """

    name = "openai"
    sdk_method = "openai.resources.chat.completions:Completions.create"
    own_params = frozenset({"api", "fast"})
    api_key_env = ("OPENAI_API_KEY",)
    terminal_event = "a finish_reason, then the usage chunk when requested or data: [DONE]"

    def sdk_method_for(self, params: Mapping[str, Any]) -> str | None:
        """``chat.completions.create``, or ``responses.create`` for ``api="responses"``."""
        if params.get("api") == "responses":
            return "openai.resources.responses:Responses.create"
        return self.sdk_method

    def is_async_client(self, client: Any) -> bool:
        """``AsyncOpenAI`` (and ``AsyncAzureOpenAI``) are async, ``OpenAI`` is sync."""
        if isinstance(client, openai.AsyncOpenAI):
            return True
        if isinstance(client, openai.OpenAI):
            return False
        raise TypeError(
            f"expected an openai.OpenAI or openai.AsyncOpenAI client, got {describe_client(client)}"
        )

    def default_client(self, async_: bool) -> Any:
        """``OpenAI()`` / ``AsyncOpenAI()`` from ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``."""
        return openai.AsyncOpenAI() if async_ else openai.OpenAI()

    def build_request(
        self, model: str, messages: list[Message], params: dict[str, Any]
    ) -> dict[str, Any]:
        """Keyword arguments of ``chat.completions.create`` (``api="chat"``, the default)
        or of ``responses.create`` (``api="responses"``)."""
        api = params.pop("api", "chat")
        fast = params.pop("fast", False)
        if not isinstance(fast, bool):
            raise TypeError(f"fast must be a bool, not {fast!r}")
        if api == "responses":
            if fast:
                raise ValueError("fast=True streams chat completions only, not api='responses'")
            return responses.build_request(model, messages, params)
        if api != "chat":
            raise ValueError(f"api must be 'chat' or 'responses', not {api!r}")
        request: dict[str, Any] = {"model": model, "messages": messages, **params}
        request["stream"] = True
        request.setdefault("stream_options", {"include_usage": True})
        if fast:
            from streamkit.providers import openai_fast

            openai_fast.require_orjson()
            return FastChatRequest(request)
        return request

    def open(self, client: Any, request: dict[str, Any]) -> Any:
        """Make the request; return the SDK's ``Stream``."""
        if isinstance(request, responses.ResponsesRequest):
            return client.responses.create(**request)
        if isinstance(request, FastChatRequest):
            from streamkit.providers import openai_fast

            return openai_fast.open_stream(client, request)
        return client.chat.completions.create(**request)

    async def open_async(self, client: Any, request: dict[str, Any]) -> Any:
        """Make the request; return the SDK's ``AsyncStream``."""
        if isinstance(request, responses.ResponsesRequest):
            return await client.responses.create(**request)
        if isinstance(request, FastChatRequest):
            from streamkit.providers import openai_fast

            return await openai_fast.open_stream_async(client, request)
        return await client.chat.completions.create(**request)

    def new_decoder(self, request: dict[str, Any]) -> Decoder:
        """A chat-chunk decoder expecting usage if it was requested (or a Responses one)."""
        if isinstance(request, responses.ResponsesRequest):
            return responses.ResponsesDecoder()
        options = request.get("stream_options") or {}
        if isinstance(request, FastChatRequest):
            from streamkit.providers import openai_fast

            return openai_fast.FastChatDecoder(
                self.name, chunk_type=OpenAIChunk, expect_usage=bool(options.get("include_usage"))
            )
        return ChatChunkDecoder(
            self.name, chunk_type=OpenAIChunk, expect_usage=bool(options.get("include_usage"))
        )

    def message_builder(self) -> responses.OpenAIMessageBuilder:
        """Chat-format messages, or the output items of a Responses stream."""
        return responses.OpenAIMessageBuilder()

    def incomplete(self, decoder: Decoder) -> IncompleteStreamError:
        """The error for a stream cut before its terminal event (of either API)."""
        if isinstance(decoder, responses.ResponsesDecoder):
            return IncompleteStreamError(self.name, responses.TERMINAL_EVENT, events=decoder.events)
        return super().incomplete(decoder)
