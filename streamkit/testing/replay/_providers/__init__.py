"""Every provider the replay server knows: one module each, declaring one ``PROVIDER``.

A module's :class:`~streamkit.testing.replay._kit.ReplayProvider` holds the wire formats
of the APIs the provider defines (where each is served, where its text deltas are, what
its malformed, error and foreign events and its HTTP error bodies look like), its
dialect of another provider's API if it speaks one differently, and the SDK clients
:meth:`ReplayServer.client` builds for it. The SDKs are imported only when a client is
built.

Adding a provider to the replay server:

1. A module here with its ``PROVIDER``: its :class:`WireFormat` if it defines an API
   (and the API's name in ``streamkit.testing.transcripts.API_NAMES``), else its
   :class:`Dialect` if it answers another's API differently, and its :class:`SdkClient`.
2. The module in :data:`MODULES` below (their order is the order of ``PROVIDERS``).
3. Its recordings under ``streamkit/testing/transcripts/<provider>/``.
"""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import TYPE_CHECKING, Any

from streamkit.testing.replay._kit import ClientFactory, Dialect, ReplayProvider, WireFormat
from streamkit.testing.replay._providers import (
    anthropic,
    azure,
    cohere,
    google,
    groq,
    litellm,
    mistral,
    openai,
    openrouter,
)

if TYPE_CHECKING:
    from streamkit.testing.transcripts import Transcript

__all__ = [
    "CLIENTS",
    "DIALECTS",
    "MODULES",
    "PROVIDERS",
    "WIRE_FORMATS",
    "wire_format",
    "wire_format_of",
]

MODULES: tuple[ModuleType, ...] = (
    openai,
    anthropic,
    groq,
    mistral,
    google,
    cohere,
    litellm,
    azure,
    openrouter,
)
"""The provider modules, each with its ``PROVIDER``."""

_DECLARED: tuple[ReplayProvider, ...] = tuple(module.PROVIDER for module in MODULES)

WIRE_FORMATS: dict[str, WireFormat] = {
    wire.api: wire for provider in _DECLARED for wire in provider.wire_formats
}
"""The wire format of each API, by :attr:`Transcript.api`."""

DIALECTS: dict[str, Dialect] = {
    provider.dialect.provider: provider.dialect
    for provider in _DECLARED
    if provider.dialect is not None
}
"""Each provider's dialect of another's API, by :attr:`Transcript.provider`."""

CLIENTS: dict[str, ClientFactory] = {
    client.name: client.build for provider in _DECLARED for client in provider.clients
}
"""The SDK client factories of :meth:`ReplayServer.client`, by provider name."""

PROVIDERS: tuple[str, ...] = tuple(CLIENTS)
"""Providers :meth:`ReplayServer.client` can build an SDK client for."""

# An API named as another's foreign one must be able to write a text delta.
for _wire in WIRE_FORMATS.values():
    if WIRE_FORMATS[_wire.foreign_api].text_event is None:
        raise TypeError(f"{_wire.foreign_api!r} is foreign to {_wire.api!r}: it needs text_event")
del _wire

# The format taken for a transcript whose API has none (an API streamkit does not know).
_FALLBACK = WIRE_FORMATS["chat.completions"]


def wire_format(api: str) -> WireFormat | None:
    """The wire format of ``api``, or ``None`` for an API streamkit does not know."""
    return WIRE_FORMATS.get(api)


def wire_format_of(transcript: Transcript) -> WireFormat:
    """The wire format of ``transcript``'s API in its provider's dialect (chat
    completions for an API streamkit does not know)."""
    wire = WIRE_FORMATS.get(transcript.api, _FALLBACK)
    dialect = DIALECTS.get(transcript.provider)
    if dialect is None:
        return wire
    overrides: dict[str, Any] = {}
    for name in wire.dialect_fields:
        value = getattr(dialect, name)
        if value is not None:
            overrides[name] = value
    return dataclasses.replace(wire, **overrides) if overrides else wire
