"""Chunks and terminal entries survive the Redis serialization unchanged: every field,
the chunk's type (which carries its provider's reduction rules) included. The one thing
left behind on purpose is the provider's own event (``Chunk.chunk``, an SDK object):
followers get ``None`` there."""

from __future__ import annotations

import importlib
import warnings
from decimal import Decimal

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamkit._models import Chunk, Usage
from streamkit.prices import Cost
from streamkit.providers import PROVIDERS, provider_entry
from streamkit.redis._codec import (
    Terminal,
    decode_chunk,
    decode_terminal,
    encode_chunk,
    encode_terminal,
)
from streamkit.testing import strategies as sks


def _chunk_types() -> list[type[Chunk]]:
    """The chunk class of every provider whose SDK is installed, and the plain one."""
    types: list[type[Chunk]] = [Chunk]
    for name in PROVIDERS:
        entry = provider_entry(name)
        assert entry is not None
        try:
            module = importlib.import_module(entry.adapter.partition(":")[0])
        except ImportError:
            continue
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Chunk)
                and value.__module__.startswith(module.__name__)
                and value not in types
            ):
                types.append(value)
    return types


CHUNK_TYPES = _chunk_types()
COUNTS = st.integers(0, 2**53)
OPTIONAL_COUNTS = st.none() | COUNTS


def usages() -> st.SearchStrategy[Usage]:
    """Any usage: every field, the audio counts and ``source`` included."""
    return st.builds(
        Usage,
        input_tokens=COUNTS,
        output_tokens=COUNTS,
        total_tokens=COUNTS,
        cached_tokens=OPTIONAL_COUNTS,
        reasoning_tokens=OPTIONAL_COUNTS,
        audio_input_tokens=OPTIONAL_COUNTS,
        audio_output_tokens=OPTIONAL_COUNTS,
        source=st.sampled_from(["reported", "estimated", "mixed"]),
    )


@st.composite
def chunks(draw: st.DrawFn) -> list[Chunk]:
    """streamkit.testing's generated streams (text, tool calls, audio, finish reasons),
    each chunk as one of the providers' chunk types, its usage any usage at all."""
    stream = draw(sks.chunk_streams() | sks.audio_chunk_streams())
    out = []
    for chunk in stream.chunks:
        chunk_type = draw(st.sampled_from(CHUNK_TYPES))
        values = {name: getattr(chunk, name) for name in Chunk.model_fields}
        if draw(st.booleans()):
            values["usage"] = draw(st.none() | usages())
        out.append(chunk_type.model_construct(**values))
    return out


def test_every_installed_provider_has_its_chunk_type_generated() -> None:
    names = {t.__name__ for t in CHUNK_TYPES}
    assert {"AnthropicChunk", "GoogleChunk", "OpenAIChunk", "OpenAIResponsesChunk"} <= names


@given(chunks())
def test_decode_of_encode_is_the_chunk(generated: list[Chunk]) -> None:
    for chunk in generated:
        decoded = decode_chunk(encode_chunk(chunk))
        assert decoded == chunk  # the same type and every field (chunk=None on both)
        assert type(decoded) is type(chunk)
        assert decoded.usage == chunk.usage


@given(usages())
def test_every_usage_field_round_trips(usage: Usage) -> None:
    chunk = Chunk(provider="openai", usage=usage)
    assert decode_chunk(encode_chunk(chunk)).usage == usage
    assert decode_terminal(encode_terminal(Terminal("cancelled", usage))).usage == usage


@given(
    st.builds(
        Chunk,
        provider=st.text(max_size=5),
        content=st.text(),
        thinking=st.text(),
        refusal=st.text(),
        finish_reasons=st.none() | st.lists(st.text(max_size=5), max_size=2),
        model=st.none() | st.text(max_size=5),
        id=st.none() | st.text(max_size=5),
        usage=st.none() | usages(),
        audio=st.none() | st.binary(max_size=20),
        audio_transcript=st.none() | st.text(max_size=5),
    )
)
def test_any_chunk_fields_round_trip(chunk: Chunk) -> None:
    assert decode_chunk(encode_chunk(chunk)) == chunk


def test_provider_event_stays_behind_and_encoding_is_compact() -> None:
    chunk = Chunk(provider="openai", content="hi", chunk=object())
    data = encode_chunk(chunk)
    assert data == b'{"p":"openai","c":"hi"}'
    assert decode_chunk(data).chunk is None
    # Everything else survives: compare all but the provider's event.
    assert decode_chunk(data).model_dump(exclude={"chunk"}) == chunk.model_dump(exclude={"chunk"})
    usage = Usage(input_tokens=3, output_tokens=4, total_tokens=7)
    assert b'"u":[3,4,7]' in encode_chunk(Chunk(provider="openai", usage=usage))


def test_a_provider_chunk_travels_as_the_class_that_holds_its_rules() -> None:
    from streamkit.providers.anthropic import AnthropicChunk
    from streamkit.providers.openai.chat import OpenAIChunk
    from streamkit.providers.openai.fast import LazyOpenAIChunk

    data = encode_chunk(AnthropicChunk.model_construct(provider="anthropic", chunk=None))
    assert orjson.loads(data)["k"] == ".anthropic:AnthropicChunk"
    ended = AnthropicChunk.model_construct(provider="anthropic", finish_reasons=["end_turn"])
    decoded = decode_chunk(encode_chunk(ended))
    assert type(decoded) is AnthropicChunk
    assert type(decoded).finish_reason_table["end_turn"] == "stop"
    # The fast path's lazy chunk has OpenAIChunk's rules: it travels as one.
    lazy = LazyOpenAIChunk.model_construct(provider="openai", content="x")
    assert type(decode_chunk(encode_chunk(lazy))) is OpenAIChunk


def test_an_unknown_chunk_type_decodes_as_a_plain_chunk_with_a_warning() -> None:
    for name in ("os.path:Nothing", ".no_such_provider:NoChunk"):
        data = orjson.dumps({"p": "x", "k": name, "c": "hi"})
        with pytest.warns(RuntimeWarning, match="plain Chunks"):
            decoded = decode_chunk(data)
        assert type(decoded) is Chunk and decoded.content == "hi"
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            decode_chunk(data)  # warned once per type


def test_entries_written_before_usage_carried_every_field_still_decode() -> None:
    old = b'{"p":"openai","u":[3,4,7,1,null]}'
    assert decode_chunk(old).usage == Usage(
        input_tokens=3, output_tokens=4, total_tokens=7, cached_tokens=1
    )
    assert decode_terminal(b'{"s":"complete","u":[3,4,7,null,2]}').usage == Usage(
        input_tokens=3, output_tokens=4, total_tokens=7, reasoning_tokens=2
    )


DECIMALS = st.decimals(allow_nan=False, allow_infinity=False, places=12, min_value=0)


@given(
    st.sampled_from(["complete", "error", "cancelled"]),
    st.none() | usages(),
    st.none() | st.text(),
    st.none()
    | st.builds(
        Cost,
        st.none() | DECIMALS,
        input=st.none() | DECIMALS,
        output=st.none() | DECIMALS,
        reason=st.none() | st.text(max_size=10),
        usage_source=st.none() | st.sampled_from(["reported", "estimated", "mixed"]),
        priced_by=st.none() | st.sampled_from(["registered", "argument", "genai-prices"]),
    ),
)
def test_terminal_round_trip(
    state: str, usage: Usage | None, message: str | None, cost: Cost | None
) -> None:
    terminal = Terminal(state, usage, "ValueError" if message else None, message, cost)  # type: ignore[arg-type]
    assert decode_terminal(encode_terminal(terminal)) == terminal


def test_a_cost_keeps_its_exact_decimal_amount() -> None:
    cost = Cost(Decimal("0.0000123456789"), input=Decimal("1E-9"), output=Decimal("0"))
    assert decode_terminal(encode_terminal(Terminal("complete", cost=cost))).cost == cost
