"""The anthropic SDK internals the fast path (:mod:`streamkit.providers.anthropic.fast`)
uses, in one place.

The fast path keeps the SDK's behaviour by calling parts of it that are not public API:

- ``client._process_response_data`` and ``client._strict_response_validation``: how the
  SDK's ``Stream`` builds (and, for a strict client, validates) each event object;
- ``client._make_status_error``: the ``APIStatusError`` subclass an ``event: error``
  raises (``OverloadedError``, ``InternalServerError``..., chosen by the stream's status);
- ``client._make_timeout_error`` / ``client._make_connection_error``: what a failed read
  of the body becomes (``APITimeoutError`` / ``APIConnectionError`` with the SDK's
  message, raised ``from`` the HTTP library's error);
- ``client._make_sse_decoder``: whether the client's stream is server-sent events at all
  (Bedrock's is AWS event-stream frames: :func:`reads_sse`);
- ``response.stream.stream_observer``: the observer the SDK's OpenTelemetry tracing puts
  on a traced response's body, which the SDK's ``Stream`` tells of each event.

They are internals of anthropic 2.x: with a release that lacks one,
:func:`require_sdk_internals` says so, with its version, before any request.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
from anthropic.types import RawMessageStreamEvent

from streamkit.providers._stainless import SDKObjectBuilder, missing_internals

__all__ = [
    "AnthropicEventBuilder",
    "make_status_error",
    "read_error",
    "reads_sse",
    "require_sdk_internals",
    "stream_observer",
]

_CLIENT_INTERNALS = (
    "_process_response_data",
    "_strict_response_validation",
    "_make_status_error",
    "_make_timeout_error",
    "_make_connection_error",
    "_make_sse_decoder",
)
_SSE_DECODERS = (
    getattr(anthropic.Anthropic, "_make_sse_decoder", None),
    getattr(anthropic.AsyncAnthropic, "_make_sse_decoder", None),
)


def require_sdk_internals() -> None:
    """Raise ``ImportError`` (before any request) when the installed anthropic SDK lacks
    the internals the fast path uses."""
    classes = (anthropic.Anthropic, anthropic.AsyncAnthropic)
    missing = missing_internals(classes, _CLIENT_INTERNALS)
    if missing:
        raise ImportError(
            f"fast=True needs the anthropic SDK's client internals {', '.join(missing)}, "
            f"which anthropic {anthropic.__version__} lacks (the fast path was built "
            "against anthropic 2.x): use fast=False, or an anthropic release that has them"
        )


def reads_sse(client: Any) -> bool:
    """Whether ``client``'s stream is server-sent events read by the SDK's own
    ``SSEDecoder`` (not Bedrock's AWS event-stream decoder, nor a subclass's own)."""
    return getattr(type(client), "_make_sse_decoder", None) in _SSE_DECODERS


def stream_observer(response: Any) -> Any:
    """The tracing observer on ``response``'s body (``None`` for an untraced client),
    looked up as the SDK's ``Stream`` looks it up."""
    return getattr(getattr(response, "stream", None), "stream_observer", None)


def read_error(client: Any, request: Any, error: Exception) -> Exception | None:
    """What the SDK raises for ``error``, raised while reading the body: an
    ``AnthropicError`` itself (``None``), a timeout as the client's ``APITimeoutError``,
    any other error as its ``APIConnectionError``."""
    if isinstance(error, anthropic.AnthropicError):
        return None
    if isinstance(error, httpx2.TimeoutException):
        timeout: Exception = client._make_timeout_error(request, error)
        return timeout
    connection: Exception = client._make_connection_error(request, error)
    return connection


def make_status_error(client: Any, message: str, body: Any, response: Any) -> Exception:
    """The error the SDK's ``Stream`` raises for an ``event: error``."""
    error: Exception = client._make_status_error(message, body=body, response=response)
    return error


class AnthropicEventBuilder(SDKObjectBuilder):
    """Builds the SDK's ``RawMessageStreamEvent`` from an event's decoded JSON exactly
    as its ``Stream`` does (``client._process_response_data``)."""

    __slots__ = ()

    def __init__(self, client: Any, response: Any, *, eager: bool = False) -> None:
        # A strict client validates every event as it arrives: build them all at once
        # so a validation error is raised where the SDK raises it.
        strict = bool(client._strict_response_validation)
        super().__init__(client, response, eager=eager or strict)

    def __call__(self, data: Any) -> RawMessageStreamEvent:
        """The SDK's event object of ``data``."""
        built: RawMessageStreamEvent = self.client._process_response_data(
            data=data, cast_to=RawMessageStreamEvent, response=self.response
        )
        return built
