"""OpenAI chat completions (and any OpenAI-compatible server through ``base_url``): the
``"openai"`` provider's default API.

Usage is requested by default (``stream_options={"include_usage": True}``); pass your
own ``stream_options`` to change that. The stream is complete once a finish reason
arrived and then the usage chunk or ``data: [DONE]`` (which the SDK consumes): an
OpenAI-compatible server that sends no usage (llama.cpp, vLLM, Ollama, many proxies)
ends complete, its usage ``None``. A connection dropped after the finish reason and
before either is incomplete.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from openai.types.chat import ChatCompletionChunk

from streamkit._finish_reasons import CHAT_FINISH_REASONS, FinishReason
from streamkit._messages import Message, MessageBuilder
from streamkit._models import Chunk
from streamkit.providers._base import Decoder
from streamkit.providers._chat import ChatChunkDecoder, ChatMessageBuilder
from streamkit.providers.openai._client import OpenAIClientAdapter

__all__ = ["OpenAIChatAdapter", "OpenAIChunk"]


class OpenAIChunk(Chunk):
    """A chunk of an OpenAI chat-completions stream; ``chunk`` is the SDK's own chunk."""

    chunk: ChatCompletionChunk

    finish_reason_table: ClassVar[Mapping[str, FinishReason]] = CHAT_FINISH_REASONS
    """The chat-completions finish reasons (the common values are named after them)."""
    message_builder: ClassVar[type[MessageBuilder]] = ChatMessageBuilder


class OpenAIChatAdapter(OpenAIClientAdapter):
    """Streams ``client.chat.completions.create(stream=True)`` (see the module docs)."""

    sdk_method = "openai.resources.chat.completions:Completions.create"
    terminal_event = "a finish_reason, then the usage chunk when requested or data: [DONE]"

    def build_request(
        self, model: str, messages: list[Message], params: dict[str, Any]
    ) -> dict[str, Any]:
        """Keyword arguments of ``chat.completions.create``, usage requested by default."""
        request: dict[str, Any] = {"model": model, "messages": messages}
        request.update(self.call_params(params))
        request["stream"] = True
        request.setdefault("stream_options", {"include_usage": True})
        return request

    def open(self, client: Any, request: dict[str, Any]) -> Any:
        """Make the request; return the SDK's ``Stream``."""
        return client.chat.completions.create(**request)

    async def open_async(self, client: Any, request: dict[str, Any]) -> Any:
        """Make the request; return the SDK's ``AsyncStream``."""
        return await client.chat.completions.create(**request)

    def expects_usage(self, request: Mapping[str, Any]) -> bool:
        """Whether ``request`` asked for the usage chunk (``stream_options``)."""
        options = request.get("stream_options") or {}
        return bool(options.get("include_usage"))

    def new_decoder(self, request: dict[str, Any]) -> Decoder:
        """A chat-chunk decoder expecting usage if it was requested."""
        return ChatChunkDecoder(
            self.name, chunk_type=OpenAIChunk, expect_usage=self.expects_usage(request)
        )
