"""The ``"openai"`` provider: three adapters, one per way of streaming from OpenAI, chosen
once when the stream is built.

- chat completions (the default), chunks
  :class:`~streamkit.providers.openai.chat.OpenAIChunk`: read by the fast path
  (:mod:`streamkit.providers.openai.fast`, imported only then; needs orjson), the SDK
  path's chunks for several times less CPU per chunk, wherever it can run (``fast=None``,
  the default; ``fast=True`` insists on it), else by the SDK
  (:class:`~streamkit.providers.openai.chat.OpenAIChatAdapter`; ``fast=False`` asks for
  it);
- ``api="responses"``: OpenAI's Responses API
  (:mod:`streamkit.providers.openai.responses`), chunks
  :class:`~streamkit.providers.openai.responses.OpenAIResponsesChunk`.

::

    sk.stream("openai", "gpt-4o", prompt)                   # chat completions (fast path)
    sk.stream("openai", "gpt-4o", prompt, fast=False)       # chat completions, SDK path
    sk.stream("openai", "gpt-5", prompt, api="responses")   # the Responses API

:func:`select_adapter` makes the choice (``OpenAIAdapter.adapter_for`` calls it). The
modules: ``chat`` and ``responses`` (one adapter each), ``fast`` (the fast adapter, its
lazy chunks and streams, on the core the Stainless SDKs' fast paths share:
:mod:`streamkit.providers._stainless`), ``sse`` (the SSE splitter, under its former name:
it is :mod:`streamkit.providers._sse`), ``_sdk`` (the SDK internals the fast path
relies on) and ``_client`` (the clients and key the three share).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from streamkit.providers._base import ProviderAdapter
from streamkit.providers._stainless import check_fast, choose_fast
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

if TYPE_CHECKING:
    from streamkit.providers.openai.fast import OpenAIFastChatAdapter

_log = logging.getLogger(__name__)
"""Where ``fast=None`` says why a stream takes the SDK path (DEBUG)."""
_RESPONSES = OpenAIResponsesAdapter()


def select_adapter(params: Mapping[str, Any], client: Any = None) -> ProviderAdapter:
    """The adapter for a stream with keyword arguments ``params``: ``api="chat"`` (the
    default) or ``"responses"``; ``fast=None`` (the default: the fast path for chat
    completions where it can run, see :func:`~streamkit.providers._stainless.choose_fast`),
    ``True`` (the fast path, chat only) or ``False`` (the SDK path). ``client`` is not
    read: the fast path reads the response of every openai client (Azure's included).

    Raises ``TypeError`` / ``ValueError`` for other values, and ``ImportError`` for
    ``fast=True`` where the fast path cannot run, all before any request.
    """
    api = params.get("api", "chat")
    fast = check_fast(params.get("fast"))
    if api == "responses":
        if fast:
            raise ValueError("fast=True streams chat completions only, not api='responses'")
        if fast is None:
            _log.debug("fast=None (auto) takes the SDK path: the Responses API has no fast path")
        return _RESPONSES
    if api != "chat":
        raise ValueError(f"api must be 'chat' or 'responses', not {api!r}")
    return _fast_chat_adapter() if choose_fast(fast, _fast_chat_adapter, _log) else _CHAT


class OpenAIAdapter(OpenAIChatAdapter):
    """The ``"openai"`` provider's adapter, as :func:`streamkit.providers.get_adapter`
    returns it: chat completions, and :meth:`adapter_for` picks the adapter of each
    stream (:func:`select_adapter`)."""

    def adapter_for(self, params: Mapping[str, Any], client: Any = None) -> ProviderAdapter:
        """The chat, fast chat or Responses adapter, by ``api=`` and ``fast=``."""
        return select_adapter(params, client)


_CHAT = OpenAIAdapter()


@cache
def _fast_chat_adapter() -> OpenAIFastChatAdapter:
    from streamkit.providers.openai.fast import OpenAIFastChatAdapter

    return OpenAIFastChatAdapter()
