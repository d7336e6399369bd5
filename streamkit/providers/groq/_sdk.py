"""The groq SDK internals the fast path (:mod:`streamkit.providers.groq.fast`) uses, in
one place.

The fast path keeps the SDK's behaviour by calling parts of it that are not public API:
``client._process_response_data`` and ``client._strict_response_validation``, how the
SDK's ``Stream`` builds (and, for a strict client, validates) each chunk object. Its
other rules (which events raise ``groq.APIError``, reading the rest of the body after
``data: [DONE]``, no wrapping of the HTTP library's errors) are those of groq 1.x's
``groq._streaming.Stream``, mirrored in :class:`~streamkit.providers.groq.fast.GroqEventReader`.

With a groq SDK that lacks these internals, :func:`require_sdk_internals` says so, with
its version, before any request.
"""

from __future__ import annotations

from typing import Any

import groq
from groq.types.chat import ChatCompletionChunk

from streamkit.providers._stainless import SDKObjectBuilder, missing_internals

__all__ = ["GroqChunkBuilder", "require_sdk_internals"]

_CLIENT_INTERNALS = ("_process_response_data", "_strict_response_validation")


def require_sdk_internals() -> None:
    """Raise ``ImportError`` (before any request) when the installed groq SDK lacks the
    internals the fast path uses."""
    missing = missing_internals((groq.Groq, groq.AsyncGroq), _CLIENT_INTERNALS)
    if missing:
        raise ImportError(
            f"fast=True needs the groq SDK's client internals {', '.join(missing)}, which "
            f"groq {groq.__version__} lacks (the fast path was built against groq 1.x): "
            "use fast=False, or a groq release that has them"
        )


class GroqChunkBuilder(SDKObjectBuilder):
    """Builds the groq SDK's ``ChatCompletionChunk`` from an event's decoded JSON
    exactly as its ``Stream`` does (``client._process_response_data``)."""

    __slots__ = ()

    def __init__(self, client: Any, response: Any) -> None:
        # A strict client validates every chunk as it arrives: build them all at once
        # so a validation error is raised where the SDK raises it.
        strict = bool(client._strict_response_validation)
        super().__init__(client, response, eager=strict)

    def __call__(self, data: Any) -> ChatCompletionChunk:
        """The SDK's ``ChatCompletionChunk`` of ``data``."""
        built: ChatCompletionChunk = self.client._process_response_data(
            data=data, cast_to=ChatCompletionChunk, response=self.response
        )
        return built
