"""Groq chat completions (``groq.Groq`` / ``groq.AsyncGroq``).

Groq streams OpenAI-shaped ``chat.completion.chunk`` objects with two differences the
decoder cares about: reasoning models send their reasoning as ``delta.reasoning``
(read as ``thinking``), and usage arrives in ``x_groq.usage`` of the chunk that carries
the finish reason (newer API versions repeat it in the top-level ``usage`` of the same
chunk: it is read once, never added). A mid-stream ``event: error`` makes the groq SDK
(1.7) raise its own ``groq.APIError`` whose ``body`` is the error object
(``{"message", "type", "code", ...}``); streamkit lets it through unchanged.

By default (``fast=None``) the fast path (:mod:`streamkit.providers.groq.fast`; needs
orjson) reads the stream where it can run: the same chunks for several times less CPU
per chunk. Where it cannot (orjson missing, an SDK whose internals ``_sdk`` does not
recognize) the SDK reads it, and a DEBUG line on this module's logger says why;
``fast=True`` insists on the fast path (``ImportError`` before any request where it
cannot run), ``fast=False`` asks for the SDK path. The modules: this one (the adapter,
chunk type and decoder), ``fast`` and ``_sdk`` (the SDK internals the fast path relies
on).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

import groq
from groq.types.chat import ChatCompletionChunk

from streamkit._finish_reasons import CHAT_FINISH_REASONS, FinishReason
from streamkit._messages import Message, MessageBuilder
from streamkit._models import Chunk, Usage
from streamkit.providers._base import ProviderAdapter, describe_client
from streamkit.providers._chat import ChatChunkDecoder, ChatMessageBuilder, chat_usage
from streamkit.providers._stainless import choose_fast

if TYPE_CHECKING:
    from streamkit.providers.groq.fast import GroqFastAdapter

__all__ = ["GroqAdapter", "GroqChunk", "GroqChunkDecoder"]

_log = logging.getLogger(__name__)
"""Where ``fast=None`` says why a stream takes the SDK path (DEBUG)."""


class GroqChunk(Chunk):
    """A chunk of a Groq stream; ``chunk`` is the groq SDK's own ``ChatCompletionChunk``."""

    chunk: ChatCompletionChunk

    finish_reason_table: ClassVar[Mapping[str, FinishReason]] = CHAT_FINISH_REASONS
    """The chat-completions finish reasons, as OpenAI's."""
    message_builder: ClassVar[type[MessageBuilder]] = ChatMessageBuilder


class GroqChunkDecoder(ChatChunkDecoder):
    """The chat-chunk decoder reading usage from ``x_groq.usage`` (or ``usage``)."""

    def usage_of(self, event: Any) -> Usage | None:
        """Usage from ``x_groq.usage``, else the top-level ``usage``: one report per chunk."""
        x_groq = getattr(event, "x_groq", None)
        raw = getattr(x_groq, "usage", None) or getattr(event, "usage", None)
        return chat_usage(raw)


class GroqAdapter(ProviderAdapter):
    """Streams ``client.chat.completions.create(stream=True)`` of the groq SDK.

    The stream is complete once a finish reason arrived (Groq sends its usage in the
    same chunk); a body that ends, or a connection that drops, before it is an
    :class:`~streamkit._errors.IncompleteStreamError`.
    """

    name = "groq"
    client_example = "groq.Groq"
    sdk_method = "groq.resources.chat.completions:Completions.create"
    api_key_env = ("GROQ_API_KEY",)
    terminal_event = "a chunk with a finish_reason (and x_groq.usage) before data: [DONE]"
    own_params = frozenset({"fast"})

    def adapter_for(self, params: Mapping[str, Any], client: Any = None) -> ProviderAdapter:
        """The fast adapter
        (:class:`~streamkit.providers.groq.fast.GroqFastAdapter`) for ``fast=None`` (the
        default) where it can run and for ``fast=True``, else this one
        (:func:`~streamkit.providers._stainless.choose_fast`); ``TypeError`` for a
        ``fast`` that is not a bool or ``None``, before any request."""
        if choose_fast(params.get("fast"), _fast_adapter, _log):
            return _fast_adapter()
        return self

    def is_async_client(self, client: Any) -> bool:
        """``groq.AsyncGroq`` is async, ``groq.Groq`` is sync."""
        if isinstance(client, groq.AsyncGroq):
            return True
        if isinstance(client, groq.Groq):
            return False
        raise TypeError(
            f"expected a groq.Groq or groq.AsyncGroq client, got {describe_client(client)}"
        )

    def default_client(self, async_: bool) -> Any:
        """``Groq()`` / ``AsyncGroq()`` from ``GROQ_API_KEY`` and ``GROQ_BASE_URL``, their
        retries off (streamkit's operators retry)."""
        return groq.AsyncGroq(max_retries=0) if async_ else groq.Groq(max_retries=0)

    def build_request(
        self, model: str, messages: list[Message], params: dict[str, Any]
    ) -> dict[str, Any]:
        """Keyword arguments of ``chat.completions.create`` (``stream=True`` always;
        ``fast=`` chose the adapter and is not sent)."""
        request: dict[str, Any] = {"model": model, "messages": messages, **params}
        request.pop("fast", None)
        request["stream"] = True
        return request

    def open(self, client: Any, request: dict[str, Any]) -> Any:
        """Make the request; return the SDK's ``Stream``."""
        return client.chat.completions.create(**request)

    async def open_async(self, client: Any, request: dict[str, Any]) -> Any:
        """Make the request; return the SDK's ``AsyncStream``."""
        return await client.chat.completions.create(**request)

    def new_decoder(self, request: dict[str, Any]) -> GroqChunkDecoder:
        """A Groq chunk decoder (a finish reason is what ends the stream)."""
        return GroqChunkDecoder(self.name, chunk_type=GroqChunk)


@cache
def _fast_adapter() -> GroqFastAdapter:
    from streamkit.providers.groq.fast import GroqFastAdapter

    return GroqFastAdapter()
