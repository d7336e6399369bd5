"""Hypothesis strategies for property-testing streamkit pipelines (yours and ours).

    from hypothesis import given
    from streamkit.testing import strategies as sks

    @given(sks.text_splits())
    def test_my_operator(split):
        text, pieces = split
        ...

Whole provider streams, built from the SDK's own types, can be served to the real SDK
through :class:`~streamkit.testing.ReplayServer`::

    @given(sks.provider_streams("anthropic"))
    def test_my_pipeline(generated):
        server.push(sks.provider_transcript(generated))
        stream = sk.stream("anthropic", "model", "hi", client=client)
        assert stream.pipe(ops.to_call_response()).run().content == generated.text

Requires ``hypothesis`` (``pip install streamkit[testing]``) and, for a provider's
streams, that provider's SDK.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from streamkit._models import Chunk, ToolCallDelta, Usage
from streamkit.testing.transcripts import Transcript

__all__ = [
    "STREAM_PROVIDERS",
    "AudioChunkStream",
    "FaultSchedule",
    "ProviderStream",
    "anthropic_message_streams",
    "audio_chunk_streams",
    "chunk_streams",
    "fault_schedules",
    "groq_chat_streams",
    "mistral_chat_streams",
    "openai_chat_streams",
    "provider_streams",
    "provider_transcript",
    "rechunked",
    "split_text",
    "text_splits",
    "tool_arguments",
]


@st.composite
def split_text(draw: st.DrawFn, text: str) -> list[str]:
    """``text`` cut into pieces at arbitrary boundaries (empty pieces included);
    ``"".join(pieces) == text`` always."""
    if not text:
        return draw(st.lists(st.just(""), max_size=3))
    cuts = draw(st.lists(st.integers(0, len(text)), max_size=len(text) + 3))
    bounds = sorted(cuts)
    pieces: list[str] = []
    start = 0
    for cut in bounds:
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return pieces


def text_splits(
    texts: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[tuple[str, list[str]]]:
    """``(text, pieces)``: a unicode text and a split of it (one character per piece,
    empty pieces, or a single piece are all reachable)."""
    source = texts if texts is not None else st.text(max_size=80)
    one_char_each = source.map(lambda text: (text, list(text)))
    arbitrary = source.flatmap(lambda text: split_text(text).map(lambda pieces: (text, pieces)))
    return st.one_of(arbitrary, one_char_each)


def tool_arguments() -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects as tool arguments (unicode keys and values, nesting)."""
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.text(max_size=12)
    )
    values = st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
        ),
        max_leaves=6,
    )
    return st.dictionaries(st.text(min_size=1, max_size=8), values, max_size=4)


@dataclass(frozen=True)
class ChunkStream:
    """A normalized chunk sequence with what it should reduce to."""

    chunks: list[Chunk]
    text: str
    tool_calls: list[tuple[str, str, dict[str, Any]]]
    """``(id, name, args)`` of each tool call, in order."""
    usage: Usage
    finish_reason: str


@st.composite
def chunk_streams(draw: st.DrawFn, provider: str = "openai") -> ChunkStream:
    """A whole normalized stream: text split at arbitrary boundaries, then zero or more
    tool calls with arguments fragmented arbitrarily, running-total usage reports, and
    a finish reason on the last chunk."""
    text, pieces = draw(text_splits())
    calls = draw(st.lists(tool_arguments(), max_size=3))
    chunks: list[Chunk] = []
    output_tokens = 0
    input_tokens = draw(st.integers(1, 10_000))
    for piece in pieces:
        output_tokens += 1
        report = draw(st.booleans())
        usage = (
            Usage(
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                total_tokens=input_tokens + output_tokens,
            )
            if report
            else None
        )
        chunks.append(Chunk(provider=provider, content=piece, usage=usage, id="resp-1"))
    expected_calls: list[tuple[str, str, dict[str, Any]]] = []
    for index, args in enumerate(calls):
        call_id, name = f"call_{index}", f"tool_{index}"
        expected_calls.append((call_id, name, args))
        arguments = json.dumps(args, ensure_ascii=False)
        fragments = draw(split_text(arguments))
        for position, fragment in enumerate(fragments):
            delta = ToolCallDelta(
                index=index,
                id=call_id if position == 0 else None,
                name=name if position == 0 else None,
                arguments=fragment,
            )
            chunks.append(Chunk(provider=provider, tool_calls=[delta]))
    finish_reason = "tool_calls" if calls else draw(st.sampled_from(["stop", "length"]))
    output_tokens += 1
    final_usage = Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
    )
    chunks.append(Chunk(provider=provider, finish_reasons=[finish_reason], usage=final_usage))
    return ChunkStream(chunks, text, expected_calls, final_usage, finish_reason)


@dataclass(frozen=True)
class AudioChunkStream:
    """A chunk sequence carrying audio, with the audio and the text it holds."""

    chunks: list[Chunk]
    audio: bytes
    """Every chunk's audio bytes, in order."""
    text: str
    """Every chunk's ``audio_transcript`` then ``content``, in order."""


@st.composite
def audio_chunk_streams(draw: st.DrawFn, provider: str = "openai") -> AudioChunkStream:
    """A stream whose chunks each may carry audio bytes (empty pieces included), a
    transcript piece and a content piece, ending with a finish reason."""
    chunks: list[Chunk] = []
    for _ in range(draw(st.integers(0, 12))):
        audio = draw(st.one_of(st.none(), st.binary(max_size=16)))
        transcript = draw(st.one_of(st.none(), st.text(max_size=6)))
        content = draw(st.one_of(st.just(""), st.text(max_size=6)))
        chunks.append(
            Chunk(provider=provider, audio=audio, audio_transcript=transcript, content=content)
        )
    chunks.append(Chunk(provider=provider, finish_reasons=["stop"]))
    audio = b"".join(chunk.audio or b"" for chunk in chunks)
    text = "".join((chunk.audio_transcript or "") + chunk.content for chunk in chunks)
    return AudioChunkStream(chunks, audio, text)


@dataclass(frozen=True)
class FaultSchedule:
    """Where each attempt of a request breaks: ``breaks[i]`` is the number of events
    attempt ``i`` delivers before it fails (``None``: that attempt succeeds)."""

    breaks: tuple[int | None, ...]

    @property
    def attempts_needed(self) -> int:
        """Attempts until the first fault-free one (``len(breaks) + 1`` if none is)."""
        for position, cut in enumerate(self.breaks):
            if cut is None:
                return position + 1
        return len(self.breaks) + 1


def fault_schedules(
    events: int, *, max_faults: int = 3, always_recovers: bool = False
) -> st.SearchStrategy[FaultSchedule]:
    """Fault schedules for a stream of ``events`` events: up to ``max_faults`` attempts
    that break after a drawn number of events, optionally ending with one that succeeds."""
    cut = st.integers(0, max(events - 1, 0))
    faults = st.lists(cut, max_size=max_faults)
    if always_recovers:
        return faults.map(lambda cuts: FaultSchedule((*cuts, None)))
    return st.lists(st.one_of(cut, st.none()), max_size=max_faults + 1).map(
        lambda cuts: FaultSchedule(tuple(cuts))
    )


@st.composite
def rechunked(draw: st.DrawFn, stream: ChunkStream, *, id_prefix: str = "retry_") -> list[Chunk]:
    """The same output as ``stream`` split at other boundaries: what a retried request
    may send. Text and tool-call arguments are split anew, tool calls get new ids
    (``id_prefix`` + index, as a provider assigns new ids to a new request), usage
    reports fall elsewhere; the last chunk (finish reason and final usage) is the same."""
    provider = stream.chunks[-1].provider
    input_tokens = stream.usage.input_tokens
    chunks: list[Chunk] = []
    for count, piece in enumerate(draw(split_text(stream.text)), start=1):
        usage = (
            Usage(input_tokens=input_tokens, output_tokens=count, total_tokens=input_tokens + count)
            if draw(st.booleans())
            else None
        )
        chunks.append(Chunk(provider=provider, content=piece, usage=usage, id="resp-retry"))
    for index, (_, name, args) in enumerate(stream.tool_calls):
        fragments = draw(split_text(json.dumps(args, ensure_ascii=False)))
        for position, fragment in enumerate(fragments):
            delta = ToolCallDelta(
                index=index,
                id=f"{id_prefix}{index}" if position == 0 else None,
                name=name if position == 0 else None,
                arguments=fragment,
            )
            chunks.append(Chunk(provider=provider, tool_calls=[delta]))
    chunks.append(stream.chunks[-1])
    return chunks


def pieces_of(chunks: Sequence[Chunk]) -> list[str]:
    """The content deltas of ``chunks`` (a helper for assertions)."""
    return [chunk.content for chunk in chunks]


# -- whole provider streams, built from the SDK's own types -----------------------------
#
# Each strategy below draws one provider-independent plan (thinking, text split at
# arbitrary points, tool calls with fragmented JSON arguments, usage, a finish reason),
# renders it as the provider's own wire objects and validates each with the SDK's own
# type, so a stream the SDK would reject cannot be generated. ``provider_transcript``
# turns the result into SSE text to replay through the real SDK with ``ReplayServer``.
# The SDKs are imported inside the strategies: this module imports without them.

STREAM_PROVIDERS: tuple[str, ...] = ("openai", "anthropic", "mistral", "groq")
"""The providers :func:`provider_streams` can generate streams for."""


@dataclass(frozen=True)
class ProviderStream:
    """A generated provider stream: the SDK's own event objects, in order, and what
    they hold (what a correct reducer must give back)."""

    provider: str
    api: str
    """The transcript ``api``: ``"chat.completions"`` or ``"messages"``."""
    events: list[Any]
    """``ChatCompletionChunk`` (openai, groq), ``RawMessageStreamEvent`` members
    (anthropic) or ``CompletionChunk`` (mistral) objects, as the SDK yields them."""
    text: str
    thinking: str
    """Reasoning text (Anthropic thinking, Mistral thinking parts, Groq reasoning)."""
    tool_calls: list[tuple[str, str, str]]
    """``(id, name, raw JSON arguments)`` of each tool call, in order."""
    usage: Usage | None
    """What the stream reports (``None``: an OpenAI stream without ``include_usage``)."""
    finish_reason: str
    """The provider's own finish (stop) reason."""


@dataclass(frozen=True)
class _Plan:
    thinking: list[str]
    text: list[str]
    calls: list[tuple[str, str, list[str]]]  # (id, name, argument fragments)
    input_tokens: int
    output_tokens: int
    report_usage: bool
    finish_reason: str
    reasons: tuple[str, str, str]  # the provider's (stop, length, tool calls) reasons

    def usage(self) -> Usage | None:
        if not self.report_usage:
            return None
        total = self.input_tokens + self.output_tokens
        return Usage(
            input_tokens=self.input_tokens, output_tokens=self.output_tokens, total_tokens=total
        )

    def stream(self, provider: str, api: str, events: list[Any]) -> ProviderStream:
        calls = [(call_id, name, "".join(fragments)) for call_id, name, fragments in self.calls]
        return ProviderStream(
            provider=provider,
            api=api,
            events=events,
            text="".join(self.text),
            thinking="".join(self.thinking),
            tool_calls=calls,
            usage=self.usage(),
            finish_reason=self.finish_reason,
        )


@st.composite
def _plans(
    draw: st.DrawFn,
    *,
    reasons: tuple[str, str, str],
    id_prefix: str,
    thinking: bool,
    optional_usage: bool = False,
) -> _Plan:
    """Thinking (if the provider has it) then text, each split anywhere, then up to three
    tool calls with arguments cut anywhere; usage; a finish reason that fits."""
    thought = draw(text_splits())[1] if thinking and draw(st.booleans()) else []
    text = draw(text_splits())[1]
    calls = []
    for index, args in enumerate(draw(st.lists(tool_arguments(), max_size=3))):
        raw = json.dumps(args, ensure_ascii=draw(st.booleans()))
        calls.append((f"{id_prefix}{index}", f"tool_{index}", draw(split_text(raw))))
    stop, length, tool_calls = reasons
    finish = tool_calls if calls else draw(st.sampled_from([stop, length]))
    return _Plan(
        thinking=thought,
        text=text,
        calls=calls,
        input_tokens=draw(st.integers(1, 100_000)),
        output_tokens=draw(st.integers(1, 100_000)),
        report_usage=draw(st.booleans()) if optional_usage else True,
        finish_reason=finish,
        reasons=reasons,
    )


def _chat_chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """An OpenAI-shaped ``chat.completion.chunk`` (openai, groq, mistral)."""
    return {
        "id": "chatcmpl-generated",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": "generated-model",
        "choices": choices,
        **extra,
    }


def _delta(delta: dict[str, Any], finish_reason: str | None = None) -> list[dict[str, Any]]:
    return [{"index": 0, "delta": delta, "finish_reason": finish_reason}]


def _chat_tool_deltas(plan: _Plan, *, continuation_name: str | None) -> list[dict[str, Any]]:
    """One ``delta`` per argument fragment; the first of a call carries its id and name
    (``continuation_name`` is what the others carry as name: mistral requires one)."""
    deltas = []
    for index, (call_id, name, fragments) in enumerate(plan.calls):
        for position, fragment in enumerate(fragments or [""]):
            function: dict[str, Any] = {"arguments": fragment}
            call: dict[str, Any] = {"index": index, "function": function}
            if position == 0:
                call.update(id=call_id, type="function")
                function["name"] = name
            elif continuation_name is not None:
                function["name"] = continuation_name
            deltas.append({"tool_calls": [call]})
    return deltas


def _chat_usage(plan: _Plan) -> dict[str, int]:
    return {
        "prompt_tokens": plan.input_tokens,
        "completion_tokens": plan.output_tokens,
        "total_tokens": plan.input_tokens + plan.output_tokens,
    }


@st.composite
def openai_chat_streams(draw: st.DrawFn) -> ProviderStream:
    """OpenAI chat completion streams (``openai.types.chat.ChatCompletionChunk``): a role
    chunk, text deltas, tool calls with fragmented arguments, a finish-reason chunk and,
    when the request asked for ``include_usage``, a last chunk with ``choices=[]``."""
    from openai.types.chat import ChatCompletionChunk

    plan = draw(
        _plans(
            reasons=("stop", "length", "tool_calls"),
            id_prefix="call_",
            thinking=False,
            optional_usage=True,
        )
    )
    raw = [_chat_chunk(_delta({"role": "assistant", "content": "", "refusal": None}))]
    raw += [_chat_chunk(_delta({"content": piece})) for piece in plan.text]
    raw += [_chat_chunk(_delta(d)) for d in _chat_tool_deltas(plan, continuation_name=None)]
    raw.append(_chat_chunk(_delta({}, plan.finish_reason)))
    if plan.report_usage:
        raw.append(_chat_chunk([], usage=_chat_usage(plan)))
    events = [ChatCompletionChunk.model_validate(item) for item in raw]
    return plan.stream("openai", "chat.completions", events)


@st.composite
def groq_chat_streams(draw: st.DrawFn) -> ProviderStream:
    """Groq chat completion streams (``groq.types.chat.ChatCompletionChunk``): reasoning
    deltas (``delta.reasoning``), text, tool calls with fragmented arguments, and the
    usage in ``x_groq.usage`` of the finish-reason chunk."""
    from groq.types.chat import ChatCompletionChunk

    plan = draw(_plans(reasons=("stop", "length", "tool_calls"), id_prefix="fc_", thinking=True))
    request = {"id": "req_generated"}
    raw = [_chat_chunk(_delta({"role": "assistant", "content": ""}), x_groq=request)]
    raw += [_chat_chunk(_delta({"reasoning": piece})) for piece in plan.thinking]
    raw += [_chat_chunk(_delta({"content": piece})) for piece in plan.text]
    raw += [_chat_chunk(_delta(d)) for d in _chat_tool_deltas(plan, continuation_name=None)]
    usage = {**request, "usage": _chat_usage(plan)}
    raw.append(_chat_chunk(_delta({}, plan.finish_reason), x_groq=usage))
    events = [ChatCompletionChunk.model_validate(item) for item in raw]
    return plan.stream("groq", "chat.completions", events)


@st.composite
def mistral_chat_streams(draw: st.DrawFn) -> ProviderStream:
    """Mistral chat streams (``mistralai.client.models.CompletionChunk``): thinking as
    content parts (``{"type": "thinking", ...}``), text as plain strings or text parts,
    tool calls with fragmented arguments, usage in the finish-reason chunk."""
    from mistralai.client.models import CompletionChunk

    plan = draw(_plans(reasons=("stop", "length", "tool_calls"), id_prefix="call", thinking=True))
    raw = [_chat_chunk(_delta({"role": "assistant", "content": ""}))]
    for piece in plan.thinking:
        part = {"type": "thinking", "thinking": [{"type": "text", "text": piece}]}
        raw.append(_chat_chunk(_delta({"content": [part]})))
    for piece in plan.text:
        content: Any = [{"type": "text", "text": piece}] if draw(st.booleans()) else piece
        raw.append(_chat_chunk(_delta({"content": content})))
    raw += [_chat_chunk(_delta(d)) for d in _chat_tool_deltas(plan, continuation_name="")]
    raw.append(_chat_chunk(_delta({"content": ""}, plan.finish_reason), usage=_chat_usage(plan)))
    events = [CompletionChunk.model_validate(item) for item in raw]
    return plan.stream("mistral", "chat.completions", events)


@st.composite
def anthropic_message_streams(draw: st.DrawFn) -> ProviderStream:
    """Anthropic messages streams (``anthropic.types.RawMessageStreamEvent``):
    ``message_start`` with the input tokens, a thinking block (deltas, then its
    signature), a text block, ``tool_use`` blocks whose ``input_json_delta`` fragments
    cut the arguments anywhere, ``message_delta`` with the stop reason and the
    cumulative output tokens, ``message_stop``."""
    import anthropic
    from pydantic import TypeAdapter

    plan = draw(
        _plans(reasons=("end_turn", "max_tokens", "tool_use"), id_prefix="toolu_", thinking=True)
    )
    message: dict[str, Any] = {
        "id": "msg_generated",
        "type": "message",
        "role": "assistant",
        "model": "generated-model",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": plan.input_tokens, "output_tokens": 1},
    }
    blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    if plan.thinking:
        signature = draw(st.text("abcdefXYZ0123456789+/=", min_size=1, max_size=24))
        deltas = [{"type": "thinking_delta", "thinking": piece} for piece in plan.thinking]
        deltas.append({"type": "signature_delta", "signature": signature})
        blocks.append(({"type": "thinking", "thinking": "", "signature": ""}, deltas))
    if plan.text:
        deltas = [{"type": "text_delta", "text": piece} for piece in plan.text]
        blocks.append(({"type": "text", "text": ""}, deltas))
    for call_id, name, fragments in plan.calls:
        start = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
        blocks.append((start, [{"type": "input_json_delta", "partial_json": f} for f in fragments]))
    raw: list[dict[str, Any]] = [{"type": "message_start", "message": message}]
    for index, (start, deltas) in enumerate(blocks):
        raw.append({"type": "content_block_start", "index": index, "content_block": start})
        raw += [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas]
        raw.append({"type": "content_block_stop", "index": index})
    raw.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": plan.finish_reason, "stop_sequence": None},
            "usage": {"output_tokens": plan.output_tokens},
        }
    )
    raw.append({"type": "message_stop"})
    adapter: TypeAdapter[Any] = TypeAdapter(anthropic.types.RawMessageStreamEvent)
    events = [adapter.validate_python(item) for item in raw]
    return plan.stream("anthropic", "messages", events)


def provider_streams(provider: str) -> st.SearchStrategy[ProviderStream]:
    """Whole generated streams of ``provider`` (one of :data:`STREAM_PROVIDERS`).

    Raises ``ValueError`` for another provider.
    """
    strategies: dict[str, Any] = {
        "openai": openai_chat_streams,
        "anthropic": anthropic_message_streams,
        "mistral": mistral_chat_streams,
        "groq": groq_chat_streams,
    }
    if provider not in strategies:
        raise ValueError(
            f"no stream strategy for {provider!r}; one of {', '.join(STREAM_PROVIDERS)}"
        )
    strategy: st.SearchStrategy[ProviderStream] = strategies[provider]()
    return strategy


def provider_transcript(stream: ProviderStream, *, name: str | None = None) -> Transcript:
    """``stream`` as the provider sends it on the wire: one SSE event per SDK event
    (``event:`` lines for Anthropic; ``data: [DONE]`` after the chat chunks), ready for
    ``ReplayServer.push`` so the real SDK parses it."""
    items = []
    for event in stream.events:
        data = event.model_dump_json(by_alias=True, exclude_unset=True)
        if stream.api == "messages":
            items.append(f"event: {event.type}\ndata: {data}\n\n")
        else:
            items.append(f"data: {data}\n\n")
    if stream.api != "messages":
        items.append("data: [DONE]\n\n")
    return Transcript.from_events(
        stream.provider,
        stream.api,
        items,
        name=name or f"{stream.provider}/generated",
        description="generated by streamkit.testing.strategies",
    )
