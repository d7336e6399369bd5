"""Provider adapters, imported lazily so that only the SDKs in use must be installed."""

from __future__ import annotations

import difflib
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
    "ALIASES",
    "PROVIDERS",
    "ChatMessageBuilder",
    "Decoder",
    "MessageBuilder",
    "ProviderAdapter",
    "canonical_provider",
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
"""The provider names ``sk.stream`` accepts (any case; see also :data:`ALIASES`)."""

ALIASES: dict[str, str] = {
    "claude": "anthropic",
    "gemini": "google",
    "google-genai": "google",
    "genai": "google",
    "mistralai": "mistral",
    "azure-ai-inference": "azure",
    "azureai": "azure",
    "gpt": "openai",
}
"""Common other names of the providers (matched in any case)."""


def canonical_provider(provider: object) -> str:
    """The provider name ``provider`` means (``"OpenAI"`` -> ``"openai"``, ``"claude"`` ->
    ``"anthropic"``); raises :class:`UnknownProviderError`, with a "did you mean", for
    others."""
    if isinstance(provider, str):
        key = provider.strip().lower().replace("_", "-")
        if key in _ADAPTERS:
            return key
        if key in ALIASES:
            return ALIASES[key]
        close = difflib.get_close_matches(key, [*_ADAPTERS, *ALIASES], n=1, cutoff=0.6)
        if close:
            raise UnknownProviderError(
                provider, list(PROVIDERS), suggestion=ALIASES.get(close[0], close[0])
            )
    raise UnknownProviderError(provider, list(PROVIDERS))


@cache
def _adapter(provider: str) -> ProviderAdapter:
    target = _ADAPTERS[provider]
    module_name, _, class_name = target.partition(":")
    module = importlib.import_module(module_name)
    adapter: ProviderAdapter = getattr(module, class_name)()
    return adapter


def get_adapter(provider: str) -> ProviderAdapter:
    """The adapter for ``provider`` (any case, or an alias: :func:`canonical_provider`);
    raises :class:`UnknownProviderError` for others."""
    if isinstance(provider, str) and provider in _ADAPTERS:
        return _adapter(provider)
    return _adapter(canonical_provider(provider))


def message_builder(provider: str) -> MessageBuilder:
    """A message-param builder for ``provider`` (OpenAI chat format if unknown)."""
    if provider in _ADAPTERS:
        return get_adapter(provider).message_builder()
    return ChatMessageBuilder()
