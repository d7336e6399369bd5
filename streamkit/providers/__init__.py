"""Provider adapters, imported lazily so that only the SDKs in use must be installed."""

from __future__ import annotations

import importlib
from functools import cache

from streamkit.errors import UnknownProviderError
from streamkit.providers._base import (
    ChatMessageBuilder,
    Decoder,
    MessageBuilder,
    ProviderAdapter,
    is_transient_error,
)

__all__ = [
    "PROVIDERS",
    "ChatMessageBuilder",
    "Decoder",
    "MessageBuilder",
    "ProviderAdapter",
    "get_adapter",
    "is_transient_error",
    "message_builder",
]

# provider name -> "module:AdapterClass"
_ADAPTERS: dict[str, str] = {
    "openai": "streamkit.providers.openai:OpenAIAdapter",
    "anthropic": "streamkit.providers.anthropic:AnthropicAdapter",
    "mistral": "streamkit.providers.mistral:MistralAdapter",
    "groq": "streamkit.providers.groq:GroqAdapter",
    "google": "streamkit.providers.google:GoogleAdapter",
    "cohere": "streamkit.providers.cohere:CohereAdapter",
    "litellm": "streamkit.providers.litellm:LiteLLMAdapter",
    "azure": "streamkit.providers.azure:AzureAdapter",
}

PROVIDERS: tuple[str, ...] = tuple(_ADAPTERS)
"""The provider names ``sk.stream`` accepts."""


@cache
def get_adapter(provider: str) -> ProviderAdapter:
    """The adapter for ``provider``; raises :class:`UnknownProviderError` for others."""
    target = _ADAPTERS.get(provider) if isinstance(provider, str) else None
    if target is None:
        raise UnknownProviderError(provider, list(PROVIDERS))
    module_name, _, class_name = target.partition(":")
    module = importlib.import_module(module_name)
    adapter: ProviderAdapter = getattr(module, class_name)()
    return adapter


def message_builder(provider: str) -> MessageBuilder:
    """A message-param builder for ``provider`` (OpenAI chat format if unknown)."""
    if provider in _ADAPTERS:
        return get_adapter(provider).message_builder()
    return ChatMessageBuilder()
