"""The normalized data model: chunks in, a call response out.

Every provider adapter maps its SDK's events onto :class:`Chunk`; every operator and
the reducer work on :class:`Chunk` only. The provider's own event object always
travels along in ``Chunk.chunk`` so nothing the provider sent is lost.
"""

from __future__ import annotations

import json
import wave
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticUndefined

from streamkit._finish_reasons import CHAT_FINISH_REASONS, FinishReason
from streamkit._messages import MessageBuilder

__all__ = [
    "CallResponse",
    "Chunk",
    "ContentSpan",
    "FinishReason",
    "RequestUsage",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "UsageSource",
]

UsageSource = Literal["reported", "estimated", "mixed"]
"""Where a :class:`Usage`'s numbers come from."""

if TYPE_CHECKING:
    from streamkit.prices import Cost

ModelT = TypeVar("ModelT", bound=BaseModel)


class Usage(BaseModel):
    """Token counts for a call, as running totals, counted as the provider counts them.

    ``cached_tokens``, ``reasoning_tokens`` and the audio tokens are set only where the
    provider reports them (the OpenAI-shaped chat APIs report audio tokens, part of the
    input / output tokens, priced at the model's audio rates). Whether the cached and
    reasoning tokens are part of ``input_tokens`` / ``output_tokens`` is the provider's
    convention, kept as reported: OpenAI's ``prompt_tokens`` include cached
    tokens, Anthropic's ``input_tokens`` exclude cache reads; Gemini bills thoughts as
    output. Each adapter's module docstring says what it maps.
    """

    model_config = ConfigDict(frozen=True)

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    audio_input_tokens: int | None = None
    audio_output_tokens: int | None = None
    source: UsageSource = "reported"
    """Where the numbers come from: ``reported`` (the provider's own figures),
    ``estimated`` (counted by streamkit: the stream stopped before the provider
    reported, or it never reports; or by litellm, which counts the usage of a provider
    that sent none) or ``mixed`` (input reported, output estimated; or a sum of both
    kinds)."""

    def __add__(self, other: Usage) -> Usage:
        """Add two usages (used to bill several attempts of one call)."""

        def _opt(a: int | None, b: int | None) -> int | None:
            return None if a is None and b is None else (a or 0) + (b or 0)

        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cached_tokens=_opt(self.cached_tokens, other.cached_tokens),
            reasoning_tokens=_opt(self.reasoning_tokens, other.reasoning_tokens),
            audio_input_tokens=_opt(self.audio_input_tokens, other.audio_input_tokens),
            audio_output_tokens=_opt(self.audio_output_tokens, other.audio_output_tokens),
            source=self.source if self.source == other.source else "mixed",
        )


class ToolCallDelta(BaseModel):
    """A fragment of a streamed tool call.

    Fragments with the same ``index`` belong to one tool call: ``id`` and ``name``
    usually arrive with the first fragment, ``arguments`` is a piece of the JSON
    argument string to be concatenated in order. ``complete`` is set by adapters whose
    provider marks the end of a call explicitly (Anthropic ``content_block_stop``,
    Cohere ``tool-call-end``, Gemini's whole function calls); otherwise a call is
    complete when another index starts, a finish reason arrives or the stream ends.
    """

    model_config = ConfigDict(frozen=True)

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    complete: bool = False


class ToolCall(BaseModel):
    """A complete tool call: the raw JSON ``arguments`` and the parsed ``args``."""

    model_config = ConfigDict(frozen=True)

    id: str | None = None
    name: str
    arguments: str = ""
    args: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_arguments(cls, id: str | None, name: str, arguments: str) -> ToolCall:
        """Build a tool call, parsing ``arguments`` (an empty string means no arguments).

        Arguments that are not a JSON object are kept raw and leave ``args`` empty; use
        :meth:`parse` to get a validation error for them.
        """
        args: dict[str, Any] = {}
        if arguments.strip():
            try:
                parsed = json.loads(arguments)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                args = parsed
        return cls(id=id, name=name, arguments=arguments, args=args)

    def parse(self, model: type[ModelT]) -> ModelT:
        """Validate the raw arguments into the user's pydantic ``model``.

        Raises ``pydantic.ValidationError`` when the arguments do not fit the model.
        """
        return model.model_validate_json(self.arguments or "{}")


class Chunk(BaseModel):
    """One normalized piece of a provider stream.

    ``content``, ``thinking`` and ``refusal`` (a model's refusal text, OpenAI) are deltas
    (``""`` when the event carried none).
    ``finish_reasons`` are provider-native values. ``usage``, ``input_tokens`` and
    ``output_tokens`` are what this event reported, as running totals for the call
    (``None`` where the event reported none): the latest report is the call's total,
    never a sum. ``chunk`` is the provider's own event object, unchanged.

    Each provider's subclass carries its provider's rules for the reducer as class
    attributes: :attr:`finish_reason_table` and :attr:`message_builder`. A plain
    ``Chunk`` has OpenAI chat completions' rules.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    finish_reason_table: ClassVar[Mapping[str, FinishReason]] = CHAT_FINISH_REASONS
    """The provider's native finish reasons mapped to the common ones; a native value
    not in it maps to ``"other"`` (:mod:`streamkit._finish_reasons`)."""
    message_builder: ClassVar[type[MessageBuilder]] = MessageBuilder
    """The class that builds a response's ``message_param`` from this type's chunks
    (a new instance per response)."""

    provider: str
    content: str = ""
    thinking: str = ""
    refusal: str = ""
    finish_reasons: list[str] | None = None
    model: str | None = None
    id: str | None = None
    usage: Usage | None = None
    tool_calls: list[ToolCallDelta] = Field(default_factory=list)
    audio: bytes | None = None
    audio_transcript: str | None = None
    chunk: Any = None

    @property
    def input_tokens(self) -> int | None:
        """Input tokens reported by this event (running total), else ``None``."""
        return None if self.usage is None else self.usage.input_tokens

    @property
    def output_tokens(self) -> int | None:
        """Output tokens reported by this event (running total), else ``None``."""
        return None if self.usage is None else self.usage.output_tokens


ChunkT = TypeVar("ChunkT", bound=Chunk)

CHUNK_FIELDS: tuple[str, ...] = tuple(Chunk.__pydantic_fields__)
"""Every field of a :class:`Chunk`, in declaration order: the keys a decoder builds
each chunk from (:func:`chunk_builder`)."""

_object_setattr = object.__setattr__

# How construct_chunk builds an instance for one (class, keys in order):
_FALLBACK = 0  # through model_construct
_NO_PRIVATE = 1  # directly; the class has no private attributes (no post-init)
_EMPTY_PRIVATE = 2  # directly; private attributes, none with a default: an empty dict
_POST_INIT = 3  # directly, then the class's model_post_init, as model_construct does
_CONSTRUCT_PLANS: dict[tuple[type[Chunk], tuple[str, ...]], int] = {}


def _construct_plan(chunk_type: type[Chunk], names: tuple[str, ...]) -> int:
    """How to build ``chunk_type`` from keyword values named ``names``, in this order.

    Direct construction is the same as ``model_construct`` when its per-field loop would
    just keep the values as the instance's ``__dict__``: no alias to look up, no default
    to fill in (every field left out is required, so it stays unset), the keys in
    declaration order, no extra values kept.
    """
    fields = chunk_type.__pydantic_fields__
    if chunk_type.model_config.get("extra") == "allow" or chunk_type.__pydantic_root_model__:
        return _FALLBACK
    if any(f.alias is not None or f.validation_alias is not None for f in fields.values()):
        return _FALLBACK
    if tuple(name for name in fields if name in names) != names:  # unknown or out of order
        return _FALLBACK
    if not all(name in names or field.is_required() for name, field in fields.items()):
        return _FALLBACK
    if not chunk_type.__pydantic_post_init__:
        return _NO_PRIVATE
    # pydantic's own post-init for private attributes sets each default; with no
    # default anywhere it sets an empty dict, which is cheaper to set here (~1.8 µs).
    post_init = chunk_type.model_post_init
    plain_post_init = (
        getattr(post_init, "__module__", None) == "pydantic._internal._model_construction"
        and getattr(post_init, "__qualname__", None) == "init_private_attributes"
    )
    no_defaults = all(
        private.default is PydanticUndefined and private.default_factory is None
        for private in chunk_type.__private_attributes__.values()
    )
    return _EMPTY_PRIVATE if plain_post_init and no_defaults else _POST_INIT


def construct_chunk(chunk_type: type[ChunkT], **values: Any) -> ChunkT:
    """``chunk_type.model_construct(**values)``, about twice as cheap on a decoder's hot
    path.

    pydantic's ``model_construct`` loops over every field of the class to look for
    aliases and fill in defaults: ~3.7 µs for a :class:`Chunk`, once per chunk of every
    stream. When ``values`` gives every field that has a default, in declaration order
    (what each decoder does), that loop ends with ``values`` itself, so the instance is
    built here directly (~2 µs): the same ``__dict__``, fields set, extra and private
    state as ``model_construct`` gives. Any other call is passed to ``model_construct``.
    """
    key = (chunk_type, tuple(values))
    build = _BUILDERS.get(key)
    if build is None:
        build = _BUILDERS[key] = chunk_builder(chunk_type, key[1])
    chunk: ChunkT = build(values)  # values: a fresh dict, the call's own kwargs
    return chunk


_BUILDERS: dict[tuple[type[Chunk], tuple[str, ...]], Callable[[dict[str, Any]], Any]] = {}
"""construct_chunk's builder for each (class, keys in order)."""


def chunk_builder(
    chunk_type: type[ChunkT], names: tuple[str, ...]
) -> Callable[[dict[str, Any]], ChunkT]:
    """:func:`construct_chunk` for a decoder whose values always have the keys
    ``names``, in this order: the way to build is looked up once, here, instead of per
    chunk (the key tuple and its lookup, ~0.3 µs of every chunk).

    The returned function takes the values as a dict, which becomes the chunk's own
    ``__dict__`` (pass a fresh one, its keys exactly ``names`` in order), and returns
    the same instance as ``construct_chunk(chunk_type, **values)``.
    """
    key = (chunk_type, names)
    plan = _CONSTRUCT_PLANS.get(key)
    if plan is None:
        plan = _CONSTRUCT_PLANS[key] = _construct_plan(chunk_type, names)
    if plan == _FALLBACK:
        return lambda values: chunk_type.model_construct(**values)
    fields_set = frozenset(names)
    new = chunk_type.__new__
    empty_private = plan == _EMPTY_PRIVATE
    post_init = plan == _POST_INIT

    def build(values: dict[str, Any]) -> ChunkT:
        chunk = new(chunk_type)
        _object_setattr(chunk, "__dict__", values)
        _object_setattr(chunk, "__pydantic_fields_set__", set(fields_set))
        _object_setattr(chunk, "__pydantic_extra__", None)
        if empty_private:
            _object_setattr(chunk, "__pydantic_private__", {})
        else:
            _object_setattr(chunk, "__pydantic_private__", None)
            if post_init:
                chunk.model_post_init(None)
        return chunk

    return build


def construct_chunk_with(
    chunk_type: type[ChunkT], values: dict[str, Any], private: dict[str, Any]
) -> ChunkT:
    """:func:`construct_chunk` of ``values`` with its private attributes set from
    ``private``: the same instance as ``chunk_type.model_construct(**values)`` followed by
    setting each private attribute (the fast paths' lazy chunks hold their event so).

    ``values`` and ``private`` become the instance's own state: pass fresh dicts. Where
    :func:`construct_chunk` builds directly and the type's private attributes have no
    defaults, both are set at once (sparing the call's keyword packing and pydantic's
    ``__setattr__`` for a private attribute, ~1 µs together); otherwise through
    :func:`construct_chunk` and ``setattr``.
    """
    key = (chunk_type, tuple(values))
    plan = _CONSTRUCT_PLANS.get(key)
    if plan is None:
        plan = _CONSTRUCT_PLANS[key] = _construct_plan(chunk_type, key[1])
    if plan != _EMPTY_PRIVATE:
        chunk = construct_chunk(chunk_type, **values)
        for name, value in private.items():
            setattr(chunk, name, value)
        return chunk
    chunk = chunk_type.__new__(chunk_type)
    _object_setattr(chunk, "__dict__", values)
    _object_setattr(chunk, "__pydantic_fields_set__", set(values))
    _object_setattr(chunk, "__pydantic_extra__", None)
    _object_setattr(chunk, "__pydantic_private__", private)
    return chunk


class ContentSpan(BaseModel):
    """Which provider and model produced ``content[start:end]`` of a response.

    One span per run of content from one ``(provider, model)``: a single stream has
    one; after ``ops.fallback`` moved to another provider or model, one per attempt
    that delivered text (``model`` is ``None`` when the provider did not name it).
    """

    model_config = ConfigDict(frozen=True)

    provider: str
    model: str | None = None
    start: int
    end: int


class RequestUsage(BaseModel):
    """One request a :class:`CallResponse` was made from: who answered it and what it
    used, priced on its own (:attr:`cost`).

    Filled from the record of each request's end (``to_call_response``, a stream's
    ``construct_call_response()``): several after ``ops.fallback``, ``retry_on_error``,
    ``hedge``, ``race`` or ``best_of``, each at its own provider and model.
    """

    model_config = ConfigDict(frozen=True)

    provider: str
    model: str | None = None
    """The model the provider reported (``None`` when it named none)."""
    requested_model: str | None = None
    """The model asked for."""
    usage: Usage | None = None
    """The request's usage, with its ``source`` (the aborted attempts' included)."""

    @property
    def cost(self) -> Cost:
        """What :attr:`usage` costs at this request's model (the reported one, else the
        requested one; see :func:`streamkit.prices.cost_of`)."""
        from streamkit.prices import cost_of

        return cost_of(self.provider, self.model, self.usage, requested=self.requested_model)


class CallResponse(BaseModel):
    """The response of a call, reduced from its stream.

    ``finish_reasons`` keeps the provider's own values; ``finish_reason`` is the common
    one (``None`` when the stream ended without reporting one; ``"refusal"`` when the
    model refused, which OpenAI reports as ``stop`` with a ``refusal`` text).
    ``message_param`` is the assistant message in the provider's own format, ready to
    append to the history of the next request. ``spans`` says which provider and model
    produced which part of ``content`` (:class:`ContentSpan`; several after
    ``ops.fallback``); ``provider`` is the first one's.
    """

    model_config = ConfigDict(frozen=True)

    provider: str
    model: str | None = None
    id: str | None = None
    content: str = ""
    thinking: str = ""
    refusal: str = ""
    finish_reasons: list[str] | None = None
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    audio: bytes | None = None
    audio_transcript: str | None = None
    message_param: dict[str, Any] = Field(default_factory=dict)
    spans: list[ContentSpan] = Field(default_factory=list)
    requests: list[RequestUsage] = Field(default_factory=list)
    """Every request the response was made from (:class:`RequestUsage`), in the order
    they started: the losers of a race and the aborted attempts included, as they were
    billed. Empty when unknown (a response folded from chunks by hand)."""

    @property
    def input_tokens(self) -> int | None:
        """Input tokens of the call, or ``None`` when the provider reported no usage."""
        return None if self.usage is None else self.usage.input_tokens

    @property
    def output_tokens(self) -> int | None:
        """Output tokens of the call, or ``None`` when the provider reported no usage."""
        return None if self.usage is None else self.usage.output_tokens

    @property
    def cost(self) -> Cost:
        """What the call cost (:mod:`streamkit.prices`): the sum of its
        :attr:`requests`' costs, each request priced at its own provider and model
        (after a fallback from one model to another, each attempt at its own price);
        without them, :attr:`usage` at :attr:`model`'s price. ``cost.amount`` is
        ``None``, with a ``reason``, when it cannot be known (a request of unknown
        price makes the sum unknown)."""
        from streamkit.prices import cost_of

        if not self.requests:
            return cost_of(self.provider, self.model, self.usage)
        total = self.requests[0].cost
        for request in self.requests[1:]:
            total = total + request.cost
        return total

    def write_wav(
        self,
        path: str | Path,
        *,
        sample_rate: int = 24_000,
        channels: int = 1,
        sample_width: int = 2,
    ) -> Path:
        """Write ``audio`` (raw pcm16 by default: 24 kHz, mono) as a WAV file.

        Raises ``ValueError`` when the response holds no audio.
        """
        if not self.audio:
            raise ValueError("this response holds no audio to write")
        target = Path(path)
        with wave.open(str(target), "wb") as wav:
            wav.setnchannels(channels)
            wav.setsampwidth(sample_width)
            wav.setframerate(sample_rate)
            wav.writeframes(self.audio)
        return target
