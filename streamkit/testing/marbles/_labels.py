"""The labels of the marbles: short, and telling the items of a stream apart."""

from __future__ import annotations

import json

from pydantic import BaseModel

from streamkit._accumulator import ResponseSnapshot
from streamkit._models import CallResponse, Chunk
from streamkit.ops import PartialToolArgs

MAX_LABEL = 18
"""Labels longer than this many characters are cut with an ellipsis."""


def _cut(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _quoted(text: str, limit: int = MAX_LABEL) -> str:
    """``text`` in quotes, escaped as Python writes it (so ``' to'`` shows its space)."""
    quoted = repr(text)
    if len(quoted) <= limit:
        return quoted
    return quoted[: limit - 2] + "…" + quoted[0]


def _describe_chunk(chunk: Chunk, limit: int) -> str:
    parts: list[str] = []
    if chunk.audio:
        parts.append(f"♪{len(chunk.audio)}B")
    if chunk.audio_transcript:
        parts.append(_quoted(chunk.audio_transcript, limit - 6))
    if chunk.content:
        parts.append(_quoted(chunk.content, limit))
    if chunk.thinking:
        parts.append("think:" + _quoted(chunk.thinking, limit - 6))
    if chunk.refusal:
        parts.append("refusal:" + _quoted(chunk.refusal, limit - 8))
    for delta in chunk.tool_calls:
        parts.append("tool:" + (delta.name or _quoted(delta.arguments, limit - 6)))
    if chunk.finish_reasons:
        parts.append(",".join(chunk.finish_reasons))
    if chunk.usage is not None:
        parts.append("usage")
    return _cut(" ".join(parts), limit) if parts else "''"


def _fields(model: BaseModel, limit: int) -> str:
    """The fields a (possibly partial) model instance has, as compact JSON."""
    known = model.model_dump(mode="json", include=model.model_fields_set)
    return _cut(json.dumps(known, ensure_ascii=False, separators=(",", ":")), limit)


def describe(value: object, limit: int = MAX_LABEL) -> str:
    """The default label of an item: short, and telling the items of a stream apart.

    ``str`` in quotes (``' to'``), ``bytes`` by length, a :class:`~streamkit.Chunk` by
    what it carries (its text in quotes, ``think:``, ``tool:name``, ``♪2400B`` for
    audio, its finish reason, ``usage``; ``""`` when it carries nothing), a
    :class:`~streamkit.CallResponse` as ``response`` and its text, a snapshot of
    ``ops.accumulate()`` by its text so far, a pydantic model (a partial one from
    ``ops.partial_object``) by the fields it has, as JSON, an item of
    ``ops.partial_tool_args`` by its arguments so far (``✓`` once complete), an
    exception by its type; anything else by ``str()``. Labels longer than ``limit``
    characters are cut with ``…``.
    """
    if isinstance(value, BaseException):
        return type(value).__name__
    if isinstance(value, str):
        return _quoted(value, limit)
    if isinstance(value, (bytes, bytearray)):
        return f"{len(value)}B"
    if isinstance(value, Chunk):
        return _describe_chunk(value, limit)
    if isinstance(value, CallResponse):
        if value.tool_calls:
            return _cut("response tool:" + ",".join(t.name for t in value.tool_calls), limit)
        return "response " + _quoted(value.content, limit - 9)
    if isinstance(value, ResponseSnapshot):
        return _quoted(value.content, limit)
    if isinstance(value, PartialToolArgs):
        mark = " ✓" if value.complete else ""
        return _fields(value.args, limit - len(mark)) + mark
    if isinstance(value, BaseModel):
        return _fields(value, limit)
    return _cut(str(value), limit)
