"""The providers streamkit speaks to: one :class:`ProviderEntry` each, in one table.

An entry holds what must be known before the provider's module (and so its SDK) is
imported: the name and aliases ``sk.stream`` accepts, where the adapter class lives, and
how others name it (OpenTelemetry's ``gen_ai.provider.name``, genai-prices' provider
id). Everything else is declared by the provider's module itself,
next to the code it describes: the adapter (``api_key_env``, the SDK method, the
terminal event...) and the chunk type (its finish-reason table and message builder).

Adding a provider: its module under ``streamkit/providers/``, one entry here, and its
SDK as an extra in ``pyproject.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["REGISTRY", "ProviderEntry"]


@dataclass(frozen=True)
class ProviderEntry:
    """What streamkit knows of a provider without importing its SDK."""

    name: str
    """The provider name of ``sk.stream(name, ...)`` and of ``Chunk.provider``."""
    adapter: str
    """The adapter class, as ``"module:Class"`` (imported on first use)."""
    aliases: tuple[str, ...] = ()
    """Other names ``sk.stream`` accepts for it (matched in any case)."""
    semconv_name: str | None = None
    """OpenTelemetry's ``gen_ai.provider.name`` value (default: :attr:`name`)."""
    prices_by_model_name: bool = False
    """Whether genai-prices finds the provider from the model name alone (a router to
    many providers, as litellm's ``"provider/model"`` names); otherwise :attr:`name`
    is genai-prices' provider id."""


REGISTRY: tuple[ProviderEntry, ...] = (
    ProviderEntry("openai", "streamkit.providers.openai:OpenAIAdapter", aliases=("gpt",)),
    ProviderEntry(
        "anthropic", "streamkit.providers.anthropic:AnthropicAdapter", aliases=("claude",)
    ),
    ProviderEntry(
        "mistral",
        "streamkit.providers.mistral:MistralAdapter",
        aliases=("mistralai",),
        semconv_name="mistral_ai",
    ),
    ProviderEntry("groq", "streamkit.providers.groq:GroqAdapter"),
    ProviderEntry(
        "google",
        "streamkit.providers.google:GoogleAdapter",
        aliases=("gemini", "google-genai", "genai"),
        # google-genai serves both the Gemini API and Vertex AI: "any Google endpoint".
        semconv_name="gcp.gen_ai",
    ),
    ProviderEntry("cohere", "streamkit.providers.cohere:CohereAdapter"),
    ProviderEntry(
        "litellm",
        "streamkit.providers.litellm:LiteLLMAdapter",
        # a router to many providers: no well-known semconv value applies
        prices_by_model_name=True,
    ),
    ProviderEntry(
        "azure",
        "streamkit.providers.azure:AzureAdapter",
        aliases=("azure-ai-inference", "azureai"),
        semconv_name="azure.ai.inference",
    ),
)
"""Every provider, in the order ``sk.PROVIDERS`` lists them."""
