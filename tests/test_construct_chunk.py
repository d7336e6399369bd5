"""``construct_chunk`` builds exactly what pydantic's ``model_construct`` builds.

It skips ``model_construct``'s per-field loop on the decoders' hot path by setting the
instance state itself, so it depends on what that state is in the installed pydantic:
these tests compare the two field by field, for every chunk class a decoder builds, and
fail on a pydantic release that changes it.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import PrivateAttr

from streamkit._models import Chunk, ToolCallDelta, Usage, construct_chunk, construct_chunk_with
from streamkit.providers.anthropic import AnthropicChunk
from streamkit.providers.anthropic.fast import LazyAnthropicChunk
from streamkit.providers.groq.fast import LazyGroqChunk
from streamkit.providers.openai import OpenAIChunk
from streamkit.providers.openai.fast import LazyOpenAIChunk


def values(**overrides: Any) -> dict[str, Any]:
    """Every field, in declaration order, as the decoders pass them."""
    base: dict[str, Any] = {
        "provider": "openai",
        "content": "Hel",
        "thinking": "",
        "refusal": "",
        "finish_reasons": None,
        "model": "gpt-4o",
        "id": "chatcmpl-1",
        "usage": Usage(input_tokens=3, output_tokens=1, total_tokens=4),
        "tool_calls": [ToolCallDelta(index=0, id="call_1", name="f", arguments="{")],
        "audio": None,
        "audio_transcript": None,
        "chunk": {"raw": True},
    }
    base.update(overrides)
    return base


def state(chunk: Chunk) -> tuple[Any, ...]:
    return (
        type(chunk),
        dict(chunk.__dict__),
        list(chunk.__dict__),  # field order, which model_dump and repr follow
        chunk.__pydantic_fields_set__,
        chunk.__pydantic_extra__,
        chunk.__pydantic_private__,
    )


class WithPrivateDefault(Chunk):
    """A subclass whose private attribute has a default: post-init must set it."""

    _seen: int = PrivateAttr(default=7)


@pytest.mark.parametrize("chunk_type", [Chunk, OpenAIChunk, AnthropicChunk, WithPrivateDefault])
def test_same_state_as_model_construct(chunk_type: type[Chunk]) -> None:
    direct = construct_chunk(chunk_type, **values())
    reference = chunk_type.model_construct(**values())
    assert state(direct) == state(reference)
    assert direct == reference and repr(direct) == repr(reference)
    assert direct.model_dump(exclude={"chunk"}) == reference.model_dump(exclude={"chunk"})


def test_private_default_is_set() -> None:
    assert construct_chunk(WithPrivateDefault, **values())._seen == 7


def test_lazy_chunk_without_its_raw_chunk() -> None:
    """The fast path leaves ``chunk`` unset (built on first read) and sets a private."""
    fields = values()
    del fields["chunk"]
    direct = construct_chunk(LazyOpenAIChunk, **fields)
    reference = LazyOpenAIChunk.model_construct(**fields)
    assert state(direct) == state(reference)
    assert "chunk" not in direct.__dict__


@pytest.mark.parametrize(
    "fields",
    [
        {"content": "x", "provider": "openai"},  # out of declaration order
        {"provider": "openai"},  # defaults left to fill in
        {**values(), "unknown": 1},  # a key that is no field
    ],
    ids=["out-of-order", "defaults", "unknown-key"],
)
def test_any_other_call_is_model_constructs(fields: dict[str, Any]) -> None:
    assert state(construct_chunk(OpenAIChunk, **fields)) == state(
        OpenAIChunk.model_construct(**fields)
    )


@pytest.mark.parametrize("chunk_type", [LazyOpenAIChunk, LazyAnthropicChunk, LazyGroqChunk])
def test_with_private_state_as_model_construct_then_setattr(chunk_type: type[Chunk]) -> None:
    """The fast paths' lazy chunks: every field but ``chunk``, then the event set."""
    fields = values()
    del fields["chunk"]
    event = ({"raw": True}, None)
    direct = construct_chunk_with(chunk_type, dict(fields), {"_event": event})
    reference = chunk_type.model_construct(**fields)
    reference._event = event  # type: ignore[attr-defined]
    assert state(direct) == state(reference)
    assert "chunk" not in direct.__dict__


@pytest.mark.parametrize(
    ("chunk_type", "fields"),
    [(LazyOpenAIChunk, {"content": "x", "provider": "openai"}), (WithPrivateDefault, values())],
    ids=["out-of-order", "private-default"],
)
def test_with_private_state_falls_back_otherwise(
    chunk_type: type[Chunk], fields: dict[str, Any]
) -> None:
    private = {"_seen": 3} if chunk_type is WithPrivateDefault else {"_event": (1, None)}
    direct = construct_chunk_with(chunk_type, dict(fields), dict(private))
    reference = chunk_type.model_construct(**fields)
    for name, value in private.items():
        setattr(reference, name, value)
    assert state(direct) == state(reference)
