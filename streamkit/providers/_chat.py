"""Decoding shared by the OpenAI chat-completions wire format and its relatives.

OpenAI, Groq, Mistral, LiteLLM and Azure all stream ``chat.completion.chunk`` objects
(each SDK with its own classes of the same shape), so one decoder reads them by
attribute. Each adapter supplies only what differs: where usage lives, how a tool-call
fragment reads, and what ends its stream. Their chunk types share the chat rules of
the reducer too: :data:`~streamkit._finish_reasons.CHAT_FINISH_REASONS` (a plain
``Chunk``'s) and :class:`ChatMessageBuilder`.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from streamkit._messages import MessageBuilder
from streamkit._models import CHUNK_FIELDS, Chunk, ToolCallDelta, Usage, chunk_builder
from streamkit.providers._base import Decoder

__all__ = ["ChatChunkDecoder", "ChatMessageBuilder", "chat_usage"]


def chat_usage(raw: Any) -> Usage | None:
    """Usage from an OpenAI-shaped usage object (``prompt_tokens``...), or ``None``.

    The details' ``audio_tokens`` (part of ``prompt_tokens`` / ``completion_tokens``,
    billed at the model's audio rates) are kept when not zero."""
    if raw is None:
        return None
    prompt = getattr(raw, "prompt_tokens", None) or 0
    completion = getattr(raw, "completion_tokens", None) or 0
    total = getattr(raw, "total_tokens", None) or prompt + completion
    prompt_details = getattr(raw, "prompt_tokens_details", None)
    completion_details = getattr(raw, "completion_tokens_details", None)
    return Usage(
        input_tokens=prompt,
        output_tokens=completion,
        total_tokens=total,
        cached_tokens=_field(prompt_details, "cached_tokens"),
        reasoning_tokens=_field(completion_details, "reasoning_tokens"),
        audio_input_tokens=_field(prompt_details, "audio_tokens") or None,
        audio_output_tokens=_field(completion_details, "audio_tokens") or None,
    )


def _text(value: Any) -> str:
    """Delta content as text: a string, or (Mistral thinking models) a list of parts."""
    if not value:  # None, "", [] or an SDK's falsy "unset" marker (mistralai's UNSET)
        return ""
    if isinstance(value, str):
        return value
    return "".join(
        getattr(part, "text", "") or "" for part in value if getattr(part, "type", "text") == "text"
    )


def _thinking_parts(value: Any) -> str:
    """Reasoning carried as ``thinking`` parts inside list content (Mistral)."""
    if not value or isinstance(value, str):
        return ""
    pieces: list[str] = []
    for part in value:
        if getattr(part, "type", None) == "thinking":
            for inner in getattr(part, "thinking", None) or ():
                pieces.append(getattr(inner, "text", "") or "")
    return "".join(pieces)


@cache
def _builder(chunk_type: type[Chunk]) -> Callable[[dict[str, Any]], Chunk]:
    """How to build a chunk of ``chunk_type`` from all its fields (once per type)."""
    return chunk_builder(chunk_type, CHUNK_FIELDS)


@cache
def _holds_no_audio(chunk_type: type[Chunk]) -> bool:
    """Whether a chunk type declares ``holds_no_audio`` (cached per type: looking up an
    absent class attribute through pydantic's metaclass costs ~1 µs)."""
    return bool(getattr(chunk_type, "holds_no_audio", False))


class ChatMessageBuilder(MessageBuilder):
    """The OpenAI chat-completions assistant message (also Groq, Mistral, LiteLLM, Azure):
    :class:`~streamkit._messages.MessageBuilder`'s, with the audio id of an audio answer."""

    def __init__(self) -> None:
        self.audio_id: str | None = None

    def add(self, chunk: Chunk) -> None:
        """Remember the audio id, which the next turn refers to."""
        # OpenAI sends the id alone in the first audio delta (no data, no transcript),
        # so the raw chunk is read until an id was found. A chunk type that declares
        # `holds_no_audio` (the fast path's, whose raw chunk is built on first read) is
        # skipped, so no raw chunk is built just to look.
        if self.audio_id is None and not _holds_no_audio(type(chunk)):
            raw = chunk.chunk
            for choice in getattr(raw, "choices", None) or ():
                audio = getattr(choice.delta, "audio", None)
                if audio is None:  # every chunk of a text answer: no id to look for
                    continue
                audio_id = getattr(audio, "id", None)
                if audio_id:
                    self.audio_id = audio_id

    def build(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """``{"role": "assistant", "content": ..., "tool_calls": [...], "audio": {...}}``."""
        message = super().build(fields)
        if self.audio_id is not None:
            message["audio"] = {"id": self.audio_id}
        return message


class ChatChunkDecoder(Decoder):
    """Decodes chat-completion chunks.

    The stream is complete once a finish reason arrived and the stream ended: at
    ``data: [DONE]`` (which the SDK consumes, ending its iteration without an error),
    or earlier, as soon as the usage chunk that was requested arrived. A server that
    sends no usage chunk although it was asked for (llama.cpp, vLLM and Ollama by
    default, many proxies) ends complete at ``[DONE]``, its usage ``None``. Incomplete:
    a stream that ends without a finish reason, or whose connection drops after the
    finish reason and before the usage chunk or ``[DONE]``.

    Known limit of the SDK path: a body that ends *properly* (the chunked body's last
    chunk) after the finish reason but without ``[DONE]`` looks the same as ``[DONE]``
    (the SDK's ``Stream`` ends quietly on both), so it counts as complete.
    """

    def __init__(
        self, provider: str, *, chunk_type: type[Chunk] = Chunk, expect_usage: bool = False
    ) -> None:
        super().__init__()
        self.provider = provider
        self.chunk_type = chunk_type
        self.expect_usage = expect_usage
        self._finished = False
        self._usage_seen = False

    def usage_of(self, event: Any) -> Usage | None:
        """The usage an event reports (OpenAI: ``event.usage``)."""
        return chat_usage(getattr(event, "usage", None))

    def tool_call_delta(self, call: Any) -> ToolCallDelta:
        """One fragment of ``delta.tool_calls`` as a :class:`ToolCallDelta`."""
        function = call.function
        return ToolCallDelta(
            index=call.index if call.index is not None else 0,
            id=call.id,
            name=getattr(function, "name", None),
            arguments=getattr(function, "arguments", None) or "",
        )

    def advance(self, finish_reasons: list[str] | None, usage: Usage | None) -> None:
        """Count one event and update :attr:`complete`: every started choice finished
        and, when usage was asked for, the usage chunk arrived (the one rule, shared by
        the fast path's decoder)."""
        self.events += 1
        if finish_reasons:
            self._finished = True
        if usage is not None:
            self._usage_seen = True
        self.complete = self._finished and (self._usage_seen or not self.expect_usage)

    def end(self) -> None:
        """The SDK ended its iteration cleanly (``data: [DONE]``): complete once a
        finish reason arrived, with or without the usage chunk."""
        if self._finished:
            self.complete = True

    def decode(self, event: Any) -> list[Chunk]:
        """One chat chunk in, one normalized chunk out."""
        content = ""
        thinking = ""
        refusal = ""
        finish_reasons: list[str] | None = None
        tool_calls: list[ToolCallDelta] = []
        audio: bytes | None = None
        transcript: str | None = None
        for choice in event.choices or ():
            delta = choice.delta
            if delta is not None and choice.index == 0:
                raw_content = getattr(delta, "content", None)
                if type(raw_content) is str:  # plain text (almost every chunk): as it is
                    content, thinking_parts = raw_content, ""
                else:
                    content, thinking_parts = _text(raw_content), _thinking_parts(raw_content)
                thinking = _reasoning(delta) or thinking_parts or ""
                refusal = getattr(delta, "refusal", None) or ""
                calls = getattr(delta, "tool_calls", None)
                if calls:
                    tool_calls.extend(self.tool_call_delta(call) for call in calls)
                delta_audio = getattr(delta, "audio", None)
                if delta_audio is not None:
                    data = _field(delta_audio, "data")
                    if data:
                        audio = base64.b64decode(data)
                    transcript = _field(delta_audio, "transcript") or None
            if choice.finish_reason:
                # An SDK's str enum (azure-ai-inference) reads as its value, not "Cls.MEMBER".
                native = getattr(choice.finish_reason, "value", choice.finish_reason)
                finish_reasons = [*(finish_reasons or ()), str(native)]
        usage = self.usage_of(event)
        self.advance(finish_reasons, usage)
        return [
            _builder(self.chunk_type)(
                {
                    "provider": self.provider,
                    "content": content,
                    "thinking": thinking,
                    "refusal": refusal,
                    "finish_reasons": finish_reasons,
                    "model": getattr(event, "model", None),
                    "id": getattr(event, "id", None),
                    "usage": usage,
                    "tool_calls": tool_calls,
                    "audio": audio,
                    "audio_transcript": transcript,
                    "chunk": event,
                }
            )
        ]


def _reasoning(delta: Any) -> Any:
    """The delta's ``reasoning``, else its ``reasoning_content`` (``None`` if neither):
    two attributes that nearly every delta lacks, read for each chunk.

    A pydantic model keeps its fields in ``__dict__`` and unknown keys in
    ``__pydantic_extra__``; looking there (once for both names) spares the
    AttributeError pydantic raises for an absent name (~2 µs a chunk each); other
    objects are read with ``getattr``.
    """
    values = getattr(delta, "__dict__", None)
    extra = getattr(delta, "__pydantic_extra__", None)
    found = None
    for name in ("reasoning", "reasoning_content"):
        if values is not None and name in values:
            found = values[name]
        elif extra is not None:
            found = extra.get(name)
        else:
            found = getattr(delta, name, None)
        if found:
            return found
    return found


def _field(obj: Any, name: str) -> Any:
    """A field of an SDK object or of a plain dict (some SDKs keep unknown parts as dicts)."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)
