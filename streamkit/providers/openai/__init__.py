"""The ``"openai"`` provider: three adapters, one per way of streaming from OpenAI, chosen
once when the stream is built.

- chat completions (the default): :class:`~streamkit.providers.openai.chat.OpenAIChatAdapter`,
  chunks :class:`~streamkit.providers.openai.chat.OpenAIChunk`;
- ``fast=True``: the same chat completions read by streamkit's own SSE reader
  (:mod:`streamkit.providers.openai.fast`, imported only then; needs orjson, the
  ``fast`` extra): the same chunks for several times less CPU per chunk;
- ``api="responses"``: OpenAI's Responses API
  (:mod:`streamkit.providers.openai.responses`), chunks
  :class:`~streamkit.providers.openai.responses.OpenAIResponsesChunk`.

::

    sk.stream("openai", "gpt-4o", prompt)                   # chat completions
    sk.stream("openai", "gpt-4o", prompt, fast=True)        # chat completions, fast path
    sk.stream("openai", "gpt-5", prompt, api="responses")   # the Responses API

:func:`select_adapter` makes the choice (``OpenAIAdapter.adapter_for`` calls it). The
modules: ``chat`` and ``responses`` (one adapter each), ``fast`` (the fast adapter, its
lazy chunks and streams, on the core the Stainless SDKs' fast paths share:
:mod:`streamkit.providers._stainless`), ``sse`` (the SSE splitter, under its former name:
it is :mod:`streamkit.providers._sse`), ``_sdk`` (the SDK internals the fast path
relies on) and ``_client`` (the clients and key the three share).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from streamkit.providers._base import ProviderAdapter
from streamkit.providers.openai.chat import OpenAIChatAdapter, OpenAIChunk
from streamkit.providers.openai.responses import OpenAIResponsesAdapter, OpenAIResponsesChunk

__all__ = [
    "OpenAIAdapter",
    "OpenAIChatAdapter",
    "OpenAIChunk",
    "OpenAIResponsesAdapter",
    "OpenAIResponsesChunk",
    "select_adapter",
]

_RESPONSES = OpenAIResponsesAdapter()


def select_adapter(params: Mapping[str, Any]) -> ProviderAdapter:
    """The adapter for a stream with keyword arguments ``params``: ``api="chat"`` (the
    default) or ``"responses"``, ``fast=False`` (the default) or ``True`` (chat only).

    Raises ``TypeError`` / ``ValueError`` for other values, and ``ImportError`` for
    ``fast=True`` where the fast path cannot run, all before any request.
    """
    api = params.get("api", "chat")
    fast = params.get("fast", False)
    if not isinstance(fast, bool):
        raise TypeError(f"fast must be a bool, not {fast!r}")
    if api == "responses":
        if fast:
            raise ValueError("fast=True streams chat completions only, not api='responses'")
        return _RESPONSES
    if api != "chat":
        raise ValueError(f"api must be 'chat' or 'responses', not {api!r}")
    return _fast_chat_adapter() if fast else _CHAT


class OpenAIAdapter(OpenAIChatAdapter):
    """The ``"openai"`` provider's adapter, as :func:`streamkit.providers.get_adapter`
    returns it: chat completions, and :meth:`adapter_for` picks the adapter of each
    stream (:func:`select_adapter`)."""

    def adapter_for(self, params: Mapping[str, Any]) -> ProviderAdapter:
        """The chat, fast chat or Responses adapter, by ``api=`` and ``fast=``."""
        return select_adapter(params)


_CHAT = OpenAIAdapter()


@cache
def _fast_chat_adapter() -> ProviderAdapter:
    from streamkit.providers.openai.fast import OpenAIFastChatAdapter  # needs orjson

    return OpenAIFastChatAdapter()
