"""What one provider module of the replay server declares (see ``_providers/``).

The replay server itself knows no provider: it asks the :class:`WireFormat` of a
transcript's API where the API is served, where a text delta is in an event, and what a
malformed event, a mid-stream error and an HTTP error body look like; a provider that
speaks another's API in its own :class:`Dialect` changes some of these; and an
:class:`SdkClient` builds the provider's official client for :meth:`ReplayServer.client`.
A provider module gathers its declarations in one :class:`ReplayProvider`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

if TYPE_CHECKING:
    from streamkit.testing.transcripts import Transcript

FAKE_API_KEY = "sk-streamkit-test-key"
"""The API key given to the clients :meth:`ReplayServer.client` builds.  It is fake."""

OVERLOADED = "The server is overloaded, please try again later."
"""The message of the overload errors the faults send mid-stream."""

ErrorBody: TypeAlias = Callable[[int, str], dict[str, Any]]
"""Builds the JSON error body of an HTTP status, given the status and a message."""

ClientFactory: TypeAlias = Callable[[str, bool, dict[str, Any]], tuple[Any, bool]]
"""``(server url, async_, keyword overrides) -> (client, closed with the server?)``."""

DialectField: TypeAlias = Literal["error_event", "error_body"]


@dataclass(frozen=True)
class WireFormat:
    """How the stream of one API (a :attr:`Transcript.api` value) looks on the wire."""

    api: str
    """The :attr:`Transcript.api` value (one of ``transcripts.API_NAMES``)."""
    path_rule: str
    """The paths the API is served on, in words, for the 404 of a wrong base URL."""
    fits_path: Callable[[str], bool]
    """Whether a request path (no query, no trailing slash) is one of the API's."""
    read_text: Callable[[Any], str | None]
    """The text delta in an event's JSON data, or ``None`` if it carries none."""
    write_text: Callable[[Any, str], None]
    """Replace, in place, the text of an event's JSON data that carries one."""
    broken_json: str
    """An event of the API whose data is JSON cut in the middle."""
    unknown_event: Callable[[Transcript], str]
    """A well-formed event of a type the API does not define (for this transcript)."""
    foreign_api: str
    """The API whose text delta is foreign to this one's clients."""
    error_event: Callable[[Transcript], str]
    """The API's mid-stream error event (an overload)."""
    error_body: ErrorBody
    """The API's JSON error body for an HTTP error status."""
    text_event: Callable[[str], str] | None = None
    """A minimal text delta of this API carrying a text (needed when another API names
    this one as its :attr:`foreign_api`)."""
    dialect_fields: frozenset[DialectField] = frozenset()
    """Which fields of a provider's :class:`Dialect` replace this format's own for that
    provider's transcripts (servers speaking OpenAI's APIs each answer errors their own
    way)."""


@dataclass(frozen=True)
class Dialect:
    """How a provider's streams differ from the API's owner's (``None``: no difference).

    Only the fields the :class:`WireFormat` lists in ``dialect_fields`` apply.
    """

    provider: str
    """The :attr:`Transcript.provider` value."""
    error_event: Callable[[Transcript], str] | None = None
    error_body: ErrorBody | None = None


@dataclass(frozen=True)
class SdkClient:
    """An official SDK client :meth:`ReplayServer.client` can build."""

    name: str
    """The name given to :meth:`ReplayServer.client` (one of ``PROVIDERS``)."""
    build: ClientFactory
    """Builds the client pointed at the server; imports the SDK only when called."""


@dataclass(frozen=True)
class ReplayProvider:
    """Everything the replay server knows of one provider (a module's ``PROVIDER``)."""

    wire_formats: tuple[WireFormat, ...] = ()
    """The APIs the provider defines."""
    dialect: Dialect | None = None
    """How it speaks another provider's API differently, if it does."""
    clients: tuple[SdkClient, ...] = ()
    """The SDK clients that talk to it."""


def merged(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` updated with ``overrides``, as a new dict."""
    out = dict(defaults)
    out.update(overrides)
    return out
