"""The openai SDK internals the fast path (:mod:`streamkit.providers.openai.fast`) uses,
in one place.

The fast path keeps the SDK's behaviour by calling parts of it that are not public API:

- ``openai._httpx2.request_exceptions`` / ``timeout_exceptions``: the HTTP library's
  errors the SDK wraps in ``APIConnectionError`` / ``APITimeoutError``;
- ``openai._streaming_cleanup.drain_response_async``: how the SDK's async stream reads
  the rest of an HTTP/1.1 body so its connection can be reused;
- ``client._process_response_data`` and ``client._strict_response_validation``: how the
  SDK's ``Stream`` builds (and, for a strict client, validates) each chunk object.

They are internals of recent openai releases (3.x): with an older one,
:func:`require_sdk_internals` says so before any request.
"""

from __future__ import annotations

from typing import Any

import openai
from openai.types.chat import ChatCompletionChunk

from streamkit.providers._stainless import SDKObjectBuilder

_missing_sdk_internals: ImportError | None = None
try:
    from openai._httpx2 import request_exceptions, timeout_exceptions
    from openai._streaming_cleanup import drain_response_async
except ImportError as error:
    _missing_sdk_internals = error

__all__ = [
    "SDKChunkBuilder",
    "drain_response_async",
    "read_error",
    "request_exceptions",
    "require_sdk_internals",
    "timeout_exceptions",
]


def require_sdk_internals() -> None:
    """Raise ``ImportError`` (before any request) when the installed openai SDK lacks
    the internals the fast path uses."""
    if _missing_sdk_internals is not None:
        raise ImportError(
            f"fast=True needs a recent openai SDK (3.57 or newer); openai "
            f"{openai.__version__} lacks {_missing_sdk_internals.name}: "
            "pip install -U 'streamkit[fast]'"
        ) from _missing_sdk_internals


def read_error(request: Any, error: Exception) -> Exception | None:
    """What the SDK's ``Stream`` raises for ``error``, raised while reading the body:
    ``APITimeoutError`` / ``APIConnectionError`` for the HTTP library's timeouts and
    request errors (raised ``from`` it), ``None`` (itself) for any other."""
    if isinstance(error, timeout_exceptions()):
        return openai.APITimeoutError(request=request)
    if isinstance(error, request_exceptions()):
        return openai.APIConnectionError(request=request)
    return None


class SDKChunkBuilder(SDKObjectBuilder):
    """Builds the SDK's ``ChatCompletionChunk`` from an event's decoded JSON exactly as
    the SDK's ``Stream`` does (``client._process_response_data``)."""

    __slots__ = ()

    def __init__(self, client: Any, response: Any) -> None:
        # A strict client validates every chunk as it arrives: build them all at once
        # so a validation error is raised where the SDK raises it.
        strict = bool(getattr(client, "_strict_response_validation", False))
        super().__init__(client, response, eager=strict)

    def __call__(self, data: Any) -> ChatCompletionChunk:
        """The SDK's ``ChatCompletionChunk`` of ``data``."""
        built: ChatCompletionChunk = self.client._process_response_data(
            data=data, cast_to=ChatCompletionChunk, response=self.response
        )
        return built
