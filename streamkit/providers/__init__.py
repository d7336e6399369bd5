"""Provider adapters, imported lazily so that only the SDKs in use must be installed.

Which providers exist is the table of :mod:`streamkit.providers._registry`; each
provider's module declares the rest (its adapter and chunk type).
"""

from __future__ import annotations

import difflib
import importlib
from functools import cache

from streamkit._errors import UnknownProviderError
from streamkit._messages import MessageBuilder
from streamkit.providers._base import Decoder, ProviderAdapter, is_transient_error
from streamkit.providers._chat import ChatMessageBuilder
from streamkit.providers._registry import REGISTRY, ProviderEntry

__all__ = [
    "ALIASES",
    "PROVIDERS",
    "ChatMessageBuilder",
    "Decoder",
    "MessageBuilder",
    "ProviderAdapter",
    "ProviderEntry",
    "canonical_provider",
    "get_adapter",
    "is_transient_error",
    "provider_entry",
]

_ENTRIES: dict[str, ProviderEntry] = {entry.name: entry for entry in REGISTRY}

PROVIDERS: tuple[str, ...] = tuple(_ENTRIES)
"""The provider names ``sk.stream`` accepts (any case; see also :data:`ALIASES`)."""

ALIASES: dict[str, str] = {alias: entry.name for entry in REGISTRY for alias in entry.aliases}
"""Common other names of the providers (matched in any case)."""


def provider_entry(provider: str) -> ProviderEntry | None:
    """The registry entry of the provider named ``provider`` exactly, or ``None``."""
    return _ENTRIES.get(provider)


def canonical_provider(provider: object) -> str:
    """The provider name ``provider`` means (``"OpenAI"`` -> ``"openai"``, ``"claude"`` ->
    ``"anthropic"``); raises :class:`UnknownProviderError`, with a "did you mean", for
    others."""
    if isinstance(provider, str):
        key = provider.strip().lower().replace("_", "-")
        if key in _ENTRIES:
            return key
        if key in ALIASES:
            return ALIASES[key]
        close = difflib.get_close_matches(key, [*_ENTRIES, *ALIASES], n=1, cutoff=0.6)
        if close:
            raise UnknownProviderError(
                provider, list(PROVIDERS), suggestion=ALIASES.get(close[0], close[0])
            )
    raise UnknownProviderError(provider, list(PROVIDERS))


@cache
def _adapter(provider: str) -> ProviderAdapter:
    module_name, _, class_name = _ENTRIES[provider].adapter.partition(":")
    module = importlib.import_module(module_name)
    adapter: ProviderAdapter = getattr(module, class_name)()
    return adapter


def get_adapter(provider: str) -> ProviderAdapter:
    """The adapter for ``provider`` (any case, or an alias: :func:`canonical_provider`);
    raises :class:`UnknownProviderError` for others. A provider with several APIs
    gives its default one; :meth:`ProviderAdapter.adapter_for` picks a stream's."""
    if isinstance(provider, str) and provider in _ENTRIES:
        return _adapter(provider)
    return _adapter(canonical_provider(provider))
