"""Plain SSE of normalized chunks, for custom front ends.

``event: chunk`` with the JSON of a :class:`~streamkit.Chunk` minus the raw provider
event (audio as base64), then ``event: end`` (``{"reason": "finish"|"abort"}``) or
``event: error`` (``{"message": ...}``); either carries ``usage`` (a
:class:`~streamkit.Usage` with its ``source``) when the stream's usage is known.
"""

from __future__ import annotations

import base64
from typing import Any

from streamkit._models import Chunk, Usage
from streamkit.serve._encoder import safe_error_text
from streamkit.serve._sse import sse_json

__all__ = ["PlainChunkEncoder", "chunk_json"]


def chunk_json(chunk: Chunk) -> dict[str, Any]:
    """A chunk as JSON-ready data, without its provider event."""
    data = chunk.model_dump(exclude={"chunk", "audio"})
    data["audio"] = None if chunk.audio is None else base64.b64encode(chunk.audio).decode()
    return data


class PlainChunkEncoder:
    """Encodes one stream as ``chunk`` events (see :class:`Encoder`)."""

    def __init__(self) -> None:
        self._ended = False
        self._usage: Usage | None = None  # the latest the chunks reported

    def open(self) -> list[bytes]:
        """Nothing: the first chunk opens the stream."""
        return []

    def chunk(self, chunk: Chunk) -> list[bytes]:
        """One ``chunk`` event."""
        if self._ended:
            return []
        if chunk.usage is not None:
            self._usage = chunk.usage
        return [sse_json(chunk_json(chunk), "chunk")]

    def _end(self, payload: dict[str, Any], event: str, usage: Usage | None) -> list[bytes]:
        if self._ended:
            return []
        self._ended = True
        usage = self._usage if usage is None else usage
        if usage is not None:
            payload["usage"] = usage.model_dump(exclude_none=True)
        return [sse_json(payload, event)]

    def finish(self, usage: Usage | None = None) -> list[bytes]:
        """``end`` with reason ``finish`` (and the usage)."""
        return self._end({"reason": "finish"}, "end", usage)

    def error(self, error: BaseException, usage: Usage | None = None) -> list[bytes]:
        """``error`` with a safe message (and the usage so far)."""
        return self._end({"message": safe_error_text(error)}, "error", usage)

    def abort(self, usage: Usage | None = None) -> list[bytes]:
        """``end`` with reason ``abort`` (and the usage so far)."""
        return self._end({"reason": "abort"}, "end", usage)
