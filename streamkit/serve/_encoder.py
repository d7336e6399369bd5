"""What every wire encoder shares: the chunk-to-events interface."""

from __future__ import annotations

from typing import Protocol

from streamkit._models import Chunk, Usage

__all__ = ["Encoder", "safe_error_text"]


class Encoder(Protocol):
    """Turns one stream's chunks into wire bytes (whole SSE events).

    ``open`` comes first, then ``chunk`` for each chunk, then exactly one of ``finish``,
    ``error`` or ``abort`` (the terminal), after which the encoder emits nothing more.

    The terminal's ``usage`` is streamkit's usage of the stream when the caller knows it
    (:class:`StreamResponse` passes the usage of the requests the stream made: the
    provider's figures, or streamkit's estimate, ``estimated`` or ``mixed``, where the
    provider reported none before the end); without it an encoder uses the usage the
    chunks reported, if any.
    """

    def open(self) -> list[bytes]:
        """Events before the first chunk."""
        ...

    def chunk(self, chunk: Chunk) -> list[bytes]:
        """Events for one chunk."""
        ...

    def finish(self, usage: Usage | None = None) -> list[bytes]:
        """Events for a stream that completed, terminator included."""
        ...

    def error(self, error: BaseException, usage: Usage | None = None) -> list[bytes]:
        """Events for a stream that failed, with a safe message, terminator included."""
        ...

    def abort(self, usage: Usage | None = None) -> list[bytes]:
        """Events for a stream the server stopped (a stop request, a slow client)."""
        ...


def safe_error_text(error: BaseException) -> str:
    """A message for a client: the error's type name and, for streamkit's own errors,
    their message (written by streamkit, never carrying a key); never a traceback, never
    an SDK's message (which can echo request headers)."""
    from streamkit._errors import StreamError

    if isinstance(error, StreamError):
        return f"{type(error).__name__}: {error}"[:500]
    return f"the stream failed ({type(error).__name__})"
