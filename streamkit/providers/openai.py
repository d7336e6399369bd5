"""OpenAI chat completions (and any OpenAI-compatible server through ``base_url``)."""

from __future__ import annotations

from typing import Any

import openai
from openai.types.chat import ChatCompletionChunk

from streamkit.messages import Message
from streamkit.models import Chunk
from streamkit.providers._base import ProviderAdapter
from streamkit.providers._chat import ChatChunkDecoder

__all__ = ["OpenAIAdapter", "OpenAIChunk"]


class OpenAIChunk(Chunk):
    """A chunk of an OpenAI chat-completions stream; ``chunk`` is the SDK's own chunk."""

    chunk: ChatCompletionChunk


class OpenAIAdapter(ProviderAdapter):
    """Streams ``client.chat.completions.create(stream=True)``.

    Usage is requested by default (``stream_options={"include_usage": True}``); pass
    your own ``stream_options`` to change that. The stream is complete once a finish
    reason and (when requested) the usage chunk arrived: the SDK ends quietly on a
    stream cut before ``[DONE]``, so those are what prove the response is whole.
    """

    name = "openai"
    terminal_event = "a finish_reason and the usage chunk before data: [DONE]"

    def is_async_client(self, client: Any) -> bool:
        """``AsyncOpenAI`` (and ``AsyncAzureOpenAI``) are async, ``OpenAI`` is sync."""
        if isinstance(client, openai.AsyncOpenAI):
            return True
        if isinstance(client, openai.OpenAI):
            return False
        raise TypeError(f"expected an openai.OpenAI or openai.AsyncOpenAI client, got {client!r}")

    def default_client(self, async_: bool) -> Any:
        """``OpenAI()`` / ``AsyncOpenAI()`` from ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``."""
        return openai.AsyncOpenAI() if async_ else openai.OpenAI()

    def build_request(
        self, model: str, messages: list[Message], params: dict[str, Any]
    ) -> dict[str, Any]:
        """Keyword arguments of ``chat.completions.create``."""
        request: dict[str, Any] = {"model": model, "messages": messages, **params}
        request["stream"] = True
        request.setdefault("stream_options", {"include_usage": True})
        return request

    def open(self, client: Any, request: dict[str, Any]) -> Any:
        """Make the request; return the SDK's ``Stream``."""
        return client.chat.completions.create(**request)

    async def open_async(self, client: Any, request: dict[str, Any]) -> Any:
        """Make the request; return the SDK's ``AsyncStream``."""
        return await client.chat.completions.create(**request)

    def new_decoder(self, request: dict[str, Any]) -> ChatChunkDecoder:
        """A chat-chunk decoder expecting usage if it was requested."""
        options = request.get("stream_options") or {}
        return ChatChunkDecoder(
            self.name, chunk_type=OpenAIChunk, expect_usage=bool(options.get("include_usage"))
        )
