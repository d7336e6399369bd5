"""The fast decoder of chat-completion chunks, shared by the fast paths of the SDKs that
stream them (openai, groq): each event's normalized chunk read straight from its JSON.

It mirrors :meth:`ChatChunkDecoder.decode <streamkit.providers._chat.ChatChunkDecoder.decode>`
on the JSON and gives up (returning the event to the SDK object, built at once and
decoded as on the SDK path) on every shape where reading the JSON could differ from
reading the SDK's object: usage reports, audio, list content, a value of an unexpected
type. So the normalized chunks are the SDK path's, field for field.
"""

from __future__ import annotations

from typing import Any, ClassVar

from streamkit._models import Chunk, ToolCallDelta
from streamkit.providers._chat import ChatChunkDecoder
from streamkit.providers._stainless import LazyChunk, RawEvent, construct_lazy

__all__ = ["FastChatChunkDecoder"]


def _text_or_none(value: Any) -> bool:
    return value is None or type(value) is str


def _tool_call_delta(call: Any) -> ToolCallDelta | None:
    """A ``delta.tool_calls`` item as the SDK path reads it, or None if its shape is
    one the SDK object should decide (then the caller falls back to it)."""
    if type(call) is not dict or "index" not in call:
        return None
    index = call["index"]
    call_id = call.get("id")
    function = call.get("function")
    if (index is not None and type(index) is not int) or not _text_or_none(call_id):
        return None
    name: Any = None
    arguments: Any = None
    if function is not None:
        if type(function) is not dict:
            return None
        name = function.get("name")
        arguments = function.get("arguments")
        if not (_text_or_none(name) and _text_or_none(arguments)):
            return None
    return ToolCallDelta(
        index=index if index is not None else 0, id=call_id, name=name, arguments=arguments or ""
    )


class FastChatChunkDecoder(ChatChunkDecoder):
    """Decodes a fast chat stream's :data:`~streamkit.providers._stainless.RawEvent`
    pairs into chunks of :attr:`lazy_type`; events of a shape it does not read itself go
    through the SDK object and :meth:`ChatChunkDecoder.decode` (into ``chunk_type``), so
    every chunk is the SDK path's.

    A subclass names its lazy chunk type and, if its provider reports usage elsewhere
    than in ``usage``, overrides :meth:`reports_usage`.
    """

    lazy_type: ClassVar[type[LazyChunk]]
    """The lazy chunk type of the provider (a subclass of its chunk type)."""

    def reports_usage(self, data: dict[str, Any]) -> bool:
        """Whether the event may report usage (then it is decoded through the SDK
        object, as usage is rare: once a stream). OpenAI: a ``usage`` that is not null."""
        return data.get("usage") is not None

    def decode(self, event: RawEvent) -> list[Chunk]:
        """One event's JSON in, one normalized chunk out."""
        data, build = event
        chunk = None if build.eager else self._decode_json(data, event)
        if chunk is None:
            return super().decode(build(data))
        return [chunk]

    def _decode_json(self, data: Any, event: RawEvent) -> LazyChunk | None:
        # Mirrors ChatChunkDecoder.decode on the JSON; returns None (fall back to the
        # SDK object) on any shape where reading the JSON could differ from reading it.
        if type(data) is not dict or self.reports_usage(data):
            return None
        choices = data.get("choices")
        if type(choices) is not list:
            return None
        content = thinking = refusal = ""
        finish_reasons: list[str] | None = None
        tool_calls: list[ToolCallDelta] = []
        for choice in choices:
            if type(choice) is not dict or "delta" not in choice or "index" not in choice:
                return None
            delta = choice["delta"]
            if delta is not None and choice["index"] == 0:
                if type(delta) is not dict or delta.get("audio") is not None:
                    return None
                raw_content = delta.get("content")
                reasoning = delta.get("reasoning")
                reasoning_content = delta.get("reasoning_content")
                raw_refusal = delta.get("refusal")
                if not (
                    _text_or_none(raw_content)
                    and _text_or_none(reasoning)
                    and _text_or_none(reasoning_content)
                    and _text_or_none(raw_refusal)
                ):
                    return None
                content = raw_content or ""
                thinking = reasoning or reasoning_content or ""
                refusal = raw_refusal or ""
                calls = delta.get("tool_calls")
                if calls is not None:
                    if type(calls) is not list:
                        return None
                    for call in calls:
                        call_delta = _tool_call_delta(call)
                        if call_delta is None:
                            return None
                        tool_calls.append(call_delta)
            finish_reason = choice.get("finish_reason")
            if finish_reason:
                if type(finish_reason) is not str:
                    return None
                finish_reasons = [*(finish_reasons or ()), finish_reason]
        self.advance(finish_reasons, None)  # events with usage go through the SDK object
        return construct_lazy(
            self.lazy_type,
            event,
            {
                "provider": self.provider,
                "content": content,
                "thinking": thinking,
                "refusal": refusal,
                "finish_reasons": finish_reasons,
                "model": data.get("model"),
                "id": data.get("id"),
                "usage": None,
                "tool_calls": tool_calls,
                "audio": None,
                "audio_transcript": None,
            },
        )
