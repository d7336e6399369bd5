"""Compact serialization of chunks and terminal entries for the Redis log (orjson).

A chunk is one JSON object with short keys, defaults left out. The provider's own event
(``Chunk.chunk``) stays in the producer's process: followers get ``chunk=None``.
Audio bytes travel as base64.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from streamkit.models import Chunk, ToolCallDelta, Usage

__all__ = ["Terminal", "decode_chunk", "decode_terminal", "encode_chunk", "encode_terminal"]

TerminalState = Literal["complete", "error", "cancelled"]


def _usage(usage: Usage) -> list[int | None]:
    return [
        usage.input_tokens,
        usage.output_tokens,
        usage.total_tokens,
        usage.cached_tokens,
        usage.reasoning_tokens,
    ]


def _usage_from(raw: list[int | None]) -> Usage:
    return Usage(
        input_tokens=raw[0] or 0,
        output_tokens=raw[1] or 0,
        total_tokens=raw[2] or 0,
        cached_tokens=raw[3],
        reasoning_tokens=raw[4],
    )


def encode_chunk(chunk: Chunk) -> bytes:
    """``chunk`` as compact JSON bytes (everything but the provider's own event)."""
    out: dict[str, Any] = {"p": chunk.provider}
    if chunk.content:
        out["c"] = chunk.content
    if chunk.thinking:
        out["th"] = chunk.thinking
    if chunk.refusal:
        out["r"] = chunk.refusal
    if chunk.finish_reasons is not None:
        out["f"] = chunk.finish_reasons
    if chunk.model is not None:
        out["m"] = chunk.model
    if chunk.id is not None:
        out["i"] = chunk.id
    if chunk.usage is not None:
        out["u"] = _usage(chunk.usage)
    if chunk.tool_calls:
        out["t"] = [[d.index, d.id, d.name, d.arguments, d.complete] for d in chunk.tool_calls]
    if chunk.audio is not None:
        out["a"] = base64.b64encode(chunk.audio).decode("ascii")
    if chunk.audio_transcript is not None:
        out["at"] = chunk.audio_transcript
    return orjson.dumps(out)


def decode_chunk(data: bytes) -> Chunk:
    """The chunk :func:`encode_chunk` wrote (with ``chunk=None``)."""
    raw = orjson.loads(data)
    usage = raw.get("u")
    audio = raw.get("a")
    return Chunk(
        provider=raw["p"],
        content=raw.get("c", ""),
        thinking=raw.get("th", ""),
        refusal=raw.get("r", ""),
        finish_reasons=raw.get("f"),
        model=raw.get("m"),
        id=raw.get("i"),
        usage=None if usage is None else _usage_from(usage),
        tool_calls=[
            ToolCallDelta(index=t[0], id=t[1], name=t[2], arguments=t[3], complete=t[4])
            for t in raw.get("t", ())
        ],
        audio=None if audio is None else base64.b64decode(audio),
        audio_transcript=raw.get("at"),
    )


@dataclass(frozen=True)
class Terminal:
    """The last entry of a stream: how it ended and the usage up to that point.

    ``state`` is ``"complete"``, ``"error"`` or ``"cancelled"`` (an explicit stop);
    ``error_type`` and ``message`` describe the producer's error (never its arguments'
    secrets: only the exception's type name and message).
    """

    state: TerminalState
    usage: Usage | None = None
    error_type: str | None = None
    message: str | None = None


def encode_terminal(terminal: Terminal) -> bytes:
    """``terminal`` as compact JSON bytes."""
    out: dict[str, Any] = {"s": terminal.state}
    if terminal.usage is not None:
        out["u"] = _usage(terminal.usage)
    if terminal.error_type is not None:
        out["et"] = terminal.error_type
    if terminal.message is not None:
        out["em"] = terminal.message
    return orjson.dumps(out)


def decode_terminal(data: bytes) -> Terminal:
    """The terminal entry :func:`encode_terminal` wrote."""
    raw = orjson.loads(data)
    usage = raw.get("u")
    return Terminal(
        state=raw["s"],
        usage=None if usage is None else _usage_from(usage),
        error_type=raw.get("et"),
        message=raw.get("em"),
    )
