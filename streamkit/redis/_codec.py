"""Compact serialization of chunks and terminal entries for the Redis log (orjson).

A chunk is one JSON object with short keys, defaults left out. Lossless for every field
but one: the provider's own event (``Chunk.chunk``) stays in the producer's process, on
purpose (it is an SDK object, large, and not always serializable): followers get
``chunk=None``. Audio bytes travel as base64. Every :class:`~streamkit.Usage` field
travels, ``source`` and the audio token counts included.

The chunk's type travels too (key ``k``, left out for a plain :class:`~streamkit.Chunk`):
a provider's chunk class carries the rules the reducer applies to it (its
``finish_reason_table`` and ``message_builder``), so a follower must rebuild the same
class, or a followed Anthropic stream's ``"end_turn"`` would reduce to ``"other"``. The
name written is the class in the chunk's ancestry that declares those rules (the fast
path's ``LazyOpenAIChunk`` travels as ``OpenAIChunk``), as ``module:QualName``, with
``.`` standing for ``streamkit.providers.`` (``".anthropic:AnthropicChunk"``). Decoding
looks the class up among the loaded :class:`~streamkit.Chunk` subclasses, importing a
``streamkit.providers`` module (so the provider's SDK) when it is not loaded yet; nothing
else is ever imported from what the log says. A class that cannot be found (its SDK is
not installed in the follower's process) decodes as a plain ``Chunk``, with a
``RuntimeWarning`` once per class.

Since the provider's event stays behind, a provider-specific message builder that reads
it (Anthropic's, Gemini's, Cohere's, the Responses API's) has nothing to build from in a
follower: the follower's ``CallResponse.message_param`` is not the producer's.
"""

from __future__ import annotations

import base64
import importlib
import warnings
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import orjson

from streamkit._models import Chunk, ToolCallDelta, Usage, UsageSource, construct_chunk
from streamkit.prices import Cost

__all__ = ["Terminal", "decode_chunk", "decode_terminal", "encode_chunk", "encode_terminal"]

TerminalState = Literal["complete", "error", "cancelled"]

_SOURCES: tuple[UsageSource, ...] = ("reported", "estimated", "mixed")
_PROVIDERS_PACKAGE = "streamkit.providers."


def _usage(usage: Usage) -> list[int | None]:
    """``[input, output, total, cached, reasoning, audio in, audio out, source]``, the
    trailing defaults left out (``source`` as its index in :data:`_SOURCES`)."""
    raw: list[int | None] = [
        usage.input_tokens,
        usage.output_tokens,
        usage.total_tokens,
        usage.cached_tokens,
        usage.reasoning_tokens,
        usage.audio_input_tokens,
        usage.audio_output_tokens,
        _SOURCES.index(usage.source),
    ]
    if raw[-1] == 0:
        raw.pop()
        while len(raw) > 3 and raw[-1] is None:
            raw.pop()
    return raw


def _usage_from(raw: list[Any]) -> Usage:
    padded = [*raw, *[None] * (8 - len(raw))]
    return Usage(
        input_tokens=padded[0] or 0,
        output_tokens=padded[1] or 0,
        total_tokens=padded[2] or 0,
        cached_tokens=padded[3],
        reasoning_tokens=padded[4],
        audio_input_tokens=padded[5],
        audio_output_tokens=padded[6],
        source=_SOURCES[padded[7] or 0],
    )


# -- the chunk's type -------------------------------------------------------------------
_NAMES: dict[type[Chunk], str | None] = {Chunk: None}
"""The wire name of each chunk type met while encoding (``None``: a plain ``Chunk``)."""
_TYPES: dict[str, type[Chunk]] = {}
"""The chunk type of each wire name met while decoding."""
_MISSING: set[str] = set()
"""Wire names decoded as a plain ``Chunk`` (warned about once)."""


def _rules_class(chunk_type: type[Chunk]) -> type[Chunk]:
    """The class in ``chunk_type``'s ancestry that declares the reducer's rules."""
    for klass in chunk_type.__mro__:
        if "finish_reason_table" in vars(klass) or "message_builder" in vars(klass):
            return klass
    return Chunk


def _name_of(chunk_type: type[Chunk]) -> str | None:
    name = _NAMES.get(chunk_type, "")
    if name != "":
        return name
    klass = _rules_class(chunk_type)
    if klass is Chunk:
        wire = None
    else:
        module = klass.__module__
        if module.startswith(_PROVIDERS_PACKAGE):
            module = "." + module.removeprefix(_PROVIDERS_PACKAGE)
        wire = f"{module}:{klass.__qualname__}"
    _NAMES[chunk_type] = wire
    return wire


def _loaded(name: str) -> type[Chunk] | None:
    module, _, qualname = name.partition(":")
    if module.startswith("."):
        module = _PROVIDERS_PACKAGE + module[1:]
    pending: list[type[Chunk]] = [Chunk]
    while pending:
        klass = pending.pop()
        if klass.__module__ == module and klass.__qualname__ == qualname:
            return klass
        pending.extend(klass.__subclasses__())
    return None


def _type_named(name: str) -> type[Chunk]:
    chunk_type = _TYPES.get(name)
    if chunk_type is not None:
        return chunk_type
    chunk_type = _loaded(name)
    if chunk_type is None and name.startswith("."):  # a provider module not imported yet
        module = _PROVIDERS_PACKAGE + name[1:].partition(":")[0]
        try:
            importlib.import_module(module)
        except ImportError:
            pass
        else:
            chunk_type = _loaded(name)
    if chunk_type is None:
        if name not in _MISSING:
            _MISSING.add(name)
            warnings.warn(
                f"chunks of type {name!r} from the Redis log are decoded as plain Chunks: "
                "the type cannot be loaded in this process (is its provider's SDK "
                "installed?), so their finish reasons reduce by OpenAI chat's rules",
                RuntimeWarning,
                stacklevel=3,
            )
        return Chunk
    _TYPES[name] = chunk_type
    return chunk_type


# -- chunks -----------------------------------------------------------------------------
def encode_chunk(chunk: Chunk) -> bytes:
    """``chunk`` as compact JSON bytes (everything but the provider's own event)."""
    # The fields read from the model's __dict__ (pydantic keeps them there): a third
    # less than eleven attribute reads, once per chunk published.
    fields = chunk.__dict__
    out: dict[str, Any] = {"p": fields["provider"]}
    kind = _NAMES.get(type(chunk), "")
    if kind == "":
        kind = _name_of(type(chunk))
    if kind is not None:
        out["k"] = kind
    value = fields["content"]
    if value:
        out["c"] = value
    value = fields["thinking"]
    if value:
        out["th"] = value
    value = fields["refusal"]
    if value:
        out["r"] = value
    value = fields["finish_reasons"]
    if value is not None:
        out["f"] = value
    value = fields["model"]
    if value is not None:
        out["m"] = value
    value = fields["id"]
    if value is not None:
        out["i"] = value
    value = fields["usage"]
    if value is not None:
        out["u"] = _usage(value)
    value = fields["tool_calls"]
    if value:
        out["t"] = [[d.index, d.id, d.name, d.arguments, d.complete] for d in value]
    value = fields["audio"]
    if value is not None:
        out["a"] = base64.b64encode(value).decode("ascii")
    value = fields["audio_transcript"]
    if value is not None:
        out["at"] = value
    return orjson.dumps(out)


def decode_chunk(data: bytes) -> Chunk:
    """The chunk :func:`encode_chunk` wrote, of the same chunk type (with
    ``chunk=None``)."""
    raw = orjson.loads(data)
    usage = raw.get("u")
    audio = raw.get("a")
    kind = raw.get("k")
    return construct_chunk(
        Chunk if kind is None else _type_named(kind),
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
        chunk=None,
    )


# -- the terminal entry -----------------------------------------------------------------
@dataclass(frozen=True)
class Terminal:
    """The last entry of a stream: how it ended, with its usage and cost up to then.

    ``state`` is ``"complete"``, ``"error"`` or ``"cancelled"`` (an explicit stop);
    ``error_type`` and ``message`` describe the producer's error (never its arguments'
    secrets: only the exception's type name and message).

    ``usage`` is streamkit's usage of the requests the producer made (every attempt of a
    retry included), as :func:`streamkit.ops.on_usage` reports it: the provider's
    figures where it reported them, else estimated (``source`` ``"estimated"`` or
    ``"mixed"``: a stopped stream ends before the provider reports). ``cost`` is what
    that usage costs (:class:`streamkit.prices.Cost`; its ``amount`` is ``None``, with a
    ``reason``, for a model without a known price); both are ``None`` when there is no
    usage (a source that is not a streamkit stream and reported none).
    """

    state: TerminalState
    usage: Usage | None = None
    error_type: str | None = None
    message: str | None = None
    cost: Cost | None = None


def _decimal(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _cost(cost: Cost) -> dict[str, Any]:
    out: dict[str, Any] = {"a": _decimal(cost.amount)}
    fields = {
        "i": _decimal(cost.input),
        "o": _decimal(cost.output),
        "r": cost.reason,
        "s": cost.usage_source,
        "b": cost.priced_by,
    }
    out.update((key, value) for key, value in fields.items() if value is not None)
    if cost.currency != "USD":
        out["c"] = cost.currency
    return out


def _cost_from(raw: dict[str, Any]) -> Cost:
    def number(key: str) -> Decimal | None:
        value = raw.get(key)
        return None if value is None else Decimal(value)

    return Cost(
        number("a"),
        input=number("i"),
        output=number("o"),
        currency=raw.get("c", "USD"),
        reason=raw.get("r"),
        usage_source=raw.get("s"),
        priced_by=raw.get("b"),
    )


def encode_terminal(terminal: Terminal) -> bytes:
    """``terminal`` as compact JSON bytes."""
    out: dict[str, Any] = {"s": terminal.state}
    if terminal.usage is not None:
        out["u"] = _usage(terminal.usage)
    if terminal.error_type is not None:
        out["et"] = terminal.error_type
    if terminal.message is not None:
        out["em"] = terminal.message
    if terminal.cost is not None:
        out["co"] = _cost(terminal.cost)
    return orjson.dumps(out)


def decode_terminal(data: bytes) -> Terminal:
    """The terminal entry :func:`encode_terminal` wrote."""
    raw = orjson.loads(data)
    usage = raw.get("u")
    cost = raw.get("co")
    return Terminal(
        state=raw["s"],
        usage=None if usage is None else _usage_from(usage),
        error_type=raw.get("et"),
        message=raw.get("em"),
        cost=None if cost is None else _cost_from(cost),
    )
