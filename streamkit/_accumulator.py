"""The one fold of chunks into a response.

Every rule about folding chunks lives here, so ``to_call_response``, ``accumulate`` and
the ``Stream``'s totals agree:

- text, thinking, transcript and audio are lists of pieces joined lazily (appending to a
  growing string costs O(length) per chunk);
- tool-call fragments are grouped by index; a call completes when its adapter marks it
  complete, when another index starts, when a finish reason arrives or when the stream
  ends;
- usage is the latest reported running total, never a sum of reports;
- finish reasons are the last ones reported: a later chunk without any (OpenAI's usage
  chunk) does not erase them; they map to the common reason by the table of the chunk
  type that reported them (``Chunk.finish_reason_table``);
- ``message_param`` is built by the message builder the first chunk's type names
  (``Chunk.message_builder``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from streamkit._finish_reasons import common_finish_reason
from streamkit._messages import MessageBuilder
from streamkit._models import (
    CallResponse,
    Chunk,
    ContentSpan,
    FinishReason,
    ToolCall,
    ToolCallDelta,
    Usage,
)

__all__ = ["Accumulator", "ResponseSnapshot", "ToolCallCompletion"]

PieceT = TypeVar("PieceT", str, bytes)


class _Pieces(Generic[PieceT]):
    """Append-only pieces with a cached join: reading the first k pieces twice is free."""

    __slots__ = ("_cached", "_cached_count", "_empty", "_pieces")

    def __init__(self, empty: PieceT) -> None:
        self._pieces: list[PieceT] = []
        self._empty: PieceT = empty
        self._cached: PieceT = empty
        self._cached_count = 0

    def append(self, piece: PieceT) -> None:
        if piece:
            self._pieces.append(piece)

    def __len__(self) -> int:
        return len(self._pieces)

    def join(self, count: int | None = None) -> PieceT:
        """The first ``count`` pieces (all by default), joined; cost O(new pieces)."""
        count = len(self._pieces) if count is None else count
        if count == self._cached_count:
            return self._cached
        if count < self._cached_count:
            return self._empty.join(self._pieces[:count])
        joined = self._cached + self._empty.join(self._pieces[self._cached_count : count])
        self._cached, self._cached_count = joined, count
        return joined


class _ToolCallBuilder:
    __slots__ = ("arguments", "complete", "id", "index", "name")

    def __init__(self, index: int) -> None:
        self.index = index
        self.id: str | None = None
        self.name: str | None = None
        self.arguments: _Pieces[str] = _Pieces("")
        self.complete = False

    def add(self, delta: ToolCallDelta) -> None:
        if delta.id:
            self.id = delta.id
        if delta.name:
            self.name = delta.name
        self.arguments.append(delta.arguments)

    def build(self, arguments_count: int | None = None) -> ToolCall:
        arguments = self.arguments.join(arguments_count)
        if self.complete:
            return ToolCall.from_arguments(self.id, self.name or "", arguments)
        # A partial call: arguments are unfinished JSON, so they are not parsed here.
        return ToolCall(id=self.id, name=self.name or "", arguments=arguments)


class ToolCallCompletion:
    """The rule for when a streamed tool call is complete, in one place.

    A call completes when its adapter marks a fragment ``complete``, when a fragment of
    another (new) index starts, when a finish reason arrives, or when the stream ends;
    each call completes once. Used by the :class:`Accumulator` and by operators that
    follow tool calls (``ops.partial_tool_args``).
    """

    __slots__ = ("_done", "_open")

    def __init__(self) -> None:
        self._done: dict[int, bool] = {}
        self._open: int | None = None

    def before(self, delta: ToolCallDelta) -> list[int]:
        """Call before applying ``delta``: the indices it completes (the open call, when
        ``delta`` starts a new one)."""
        if delta.index in self._done:
            return []
        completed = self._close_open()
        self._done[delta.index] = False
        self._open = delta.index
        return completed

    def after(self, delta: ToolCallDelta) -> list[int]:
        """Call after applying ``delta``: its own index if it marks its call complete."""
        if not delta.complete or self._done.get(delta.index, True):
            return []
        self._done[delta.index] = True
        if self._open == delta.index:
            self._open = None
        return [delta.index]

    def finish(self) -> list[int]:
        """A finish reason or the end of the stream: every call still open, in order."""
        completed = [index for index, done in self._done.items() if not done]
        for index in completed:
            self._done[index] = True
        self._open = None
        return completed

    def is_complete(self, index: int) -> bool:
        """Whether the call at ``index`` has completed."""
        return self._done.get(index, False)

    def _close_open(self) -> list[int]:
        index, self._open = self._open, None
        if index is None or self._done[index]:
            return []
        self._done[index] = True
        return [index]


class Accumulator:
    """Folds chunks into a :class:`CallResponse` incrementally (O(chunk) per chunk).

    ``add`` returns the tool calls that the chunk completed, in order; ``finish`` (at the
    end of the stream) returns those still open. ``response()`` builds the final
    response; ``snapshot()`` a cheap view of the response so far.
    """

    def __init__(self) -> None:
        self.provider: str | None = None
        self.model: str | None = None
        self.id: str | None = None
        self.finish_reasons: list[str] | None = None
        # The finish-reason table of the chunk type that reported finish_reasons.
        self._finish_reason_table: Mapping[str, FinishReason] | None = None
        self.usage: Usage | None = None
        self.chunks = 0
        # Bumped by every change, so a snapshot can tell whether it is still current.
        self.version = 0
        # Set by finish(): the stream ended, nothing more is folded.
        self.finished = False
        self._content: _Pieces[str] = _Pieces("")
        self._thinking: _Pieces[str] = _Pieces("")
        self._refusal: _Pieces[str] = _Pieces("")
        self._transcript: _Pieces[str] = _Pieces("")
        self._audio: _Pieces[bytes] = _Pieces(b"")
        self._has_audio = False
        self._tools: dict[int, _ToolCallBuilder] = {}
        self._completion = ToolCallCompletion()
        self._message_builder: MessageBuilder | None = None
        # Who produced the content: [provider, model, start, end] per run of one source.
        self._source: tuple[str, str | None] | None = None
        self._spans: list[list[Any]] = []
        self._length = 0

    # -- folding ---------------------------------------------------------------------
    def add(self, chunk: Chunk) -> list[ToolCall]:
        """Fold one chunk; return the tool calls it completed."""
        # Once per chunk of every pipeline that folds: each field is read once, and what
        # most chunks lack (tool calls) is skipped without a loop.
        self.chunks += 1
        self.version += 1
        provider = chunk.provider
        model = chunk.model
        if self.provider is None:
            self.provider = provider
            self._message_builder = type(chunk).message_builder()
        if model:
            self.model = model
        if chunk.id:
            self.id = chunk.id
        source = self._source
        if source is None or provider != source[0]:
            source = self._source = (provider, model)
        elif model and model != source[1]:
            source = self._source = (source[0], model)
        content = chunk.content
        if content:
            self._attribute(source, len(content))
        self._content.append(content)
        self._thinking.append(chunk.thinking)
        self._refusal.append(chunk.refusal)
        if chunk.audio is not None:
            self._has_audio = True
            self._audio.append(chunk.audio)
        if chunk.audio_transcript:
            self._has_audio = True
            self._transcript.append(chunk.audio_transcript)
        if chunk.usage is not None:
            self.usage = chunk.usage
        if self._message_builder is not None:
            self._message_builder.add(chunk)

        completed: list[ToolCall] = []
        tool_calls = chunk.tool_calls
        if tool_calls:
            for delta in tool_calls:
                self._complete(self._completion.before(delta), completed)
                builder = self._tools.get(delta.index)
                if builder is None:
                    builder = self._tools[delta.index] = _ToolCallBuilder(delta.index)
                builder.add(delta)
                self._complete(self._completion.after(delta), completed)
        if chunk.finish_reasons:
            self.finish_reasons = list(chunk.finish_reasons)
            self._finish_reason_table = type(chunk).finish_reason_table
            self._complete(self._completion.finish(), completed)
        return completed

    def _attribute(self, source: tuple[str, str | None], length: int) -> None:
        """Count ``length`` characters of content to ``source`` (one span per run of one
        provider and model)."""
        spans = self._spans
        last = spans[-1] if spans else None
        if last is not None and last[0] == source[0] and last[1] in (None, source[1]):
            last[1] = source[1]
            last[3] += length
        else:
            spans.append([source[0], source[1], self._length, self._length + length])
        self._length += length

    def spans(self, upto: int | None = None) -> list[ContentSpan]:
        """Which provider and model produced which part of the content (up to
        character ``upto``, default all of it)."""
        out = []
        for provider, model, start, end in self._spans:
            if upto is not None and start >= upto:
                break
            end = end if upto is None else min(end, upto)
            out.append(ContentSpan(provider=provider, model=model, start=start, end=end))
        return out

    def finish(self) -> list[ToolCall]:
        """Complete every tool call still open (the stream ended)."""
        completed: list[ToolCall] = []
        self._complete(self._completion.finish(), completed)
        if completed:
            self.version += 1
        self.finished = True
        return completed

    def _complete(self, indices: list[int], completed: list[ToolCall]) -> None:
        for index in indices:
            builder = self._tools[index]
            builder.complete = True
            completed.append(builder.build())

    # -- reading ---------------------------------------------------------------------
    @property
    def content(self) -> str:
        """The text so far."""
        return self._content.join()

    @property
    def thinking(self) -> str:
        """The reasoning text so far."""
        return self._thinking.join()

    @property
    def refusal(self) -> str:
        """The refusal text so far."""
        return self._refusal.join()

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The tool calls so far, in order (unfinished ones with partial arguments)."""
        return [builder.build() for builder in self._tools.values()]

    @property
    def finish_reason(self) -> FinishReason | None:
        """The common finish reason of the last reported native ones."""
        return _finish_reason(
            self._finish_reason_table,
            self.finish_reasons,
            bool(len(self._refusal)),
            bool(self._tools),
        )

    @property
    def audio(self) -> bytes | None:
        """All audio bytes so far, or ``None`` when the stream carried no audio."""
        return self._audio.join() if self._has_audio else None

    @property
    def audio_transcript(self) -> str | None:
        """The audio transcript so far, or ``None`` when the stream carried no audio."""
        return self._transcript.join() if self._has_audio else None

    def response(self) -> CallResponse:
        """The call response for everything folded so far."""
        fields = self._fields()
        message_param: dict[str, Any] = {}
        if self._message_builder is not None:
            message_param = self._message_builder.build(fields)
        return CallResponse(**fields, message_param=message_param)

    def _fields(self) -> dict[str, Any]:
        return {
            "provider": self.provider or "",
            "model": self.model,
            "id": self.id,
            "content": self.content,
            "thinking": self.thinking,
            "refusal": self.refusal,
            "finish_reasons": self.finish_reasons,
            "finish_reason": self.finish_reason,
            "usage": self.usage,
            "tool_calls": self.tool_calls,
            "audio": self.audio,
            "audio_transcript": self.audio_transcript,
            "spans": self.spans(),
        }

    def snapshot(self) -> ResponseSnapshot:
        """A view of the response so far that costs O(1) until its text is read."""
        return ResponseSnapshot(self)


def _finish_reason(
    table: Mapping[str, FinishReason] | None,
    finish_reasons: list[str] | None,
    refused: bool,
    has_tools: bool,
) -> FinishReason | None:
    """The common finish reason. A normal stop is refined by what the turn holds:
    a refusal (OpenAI says ``stop``) or tool calls (Gemini says ``STOP``, OpenAI says
    ``stop`` for a forced tool choice): both need a different next step."""
    if not finish_reasons or table is None:
        return None
    common = common_finish_reason(table, finish_reasons[-1])
    if common == "stop" and refused:
        return "refusal"
    if common == "stop" and has_tools:
        return "tool_calls"
    return common


class ResponseSnapshot:
    """The response as it stood after some chunk, emitted by ``ops.accumulate()``.

    It reads like a :class:`CallResponse` (``content``, ``thinking``, ``tool_calls``,
    ``usage``, ``finish_reasons``, ...). Building one costs O(1): its text is joined only
    when read, from the accumulator's append-only pieces, so a pipeline that never reads
    a snapshot's text stays linear in the stream's length. ``to_call_response()`` gives
    the full pydantic response.
    """

    __slots__ = (
        "_accumulator",
        "_audio_count",
        "_content_count",
        "_finish_reason_table",
        "_refusal_count",
        "_thinking_count",
        "_tool_args",
        "_transcript_count",
        "_version",
        "chunks",
        "finish_reasons",
        "id",
        "model",
        "provider",
        "usage",
    )

    def __init__(self, accumulator: Accumulator) -> None:
        self._accumulator = accumulator
        self.provider: str = accumulator.provider or ""
        self.model = accumulator.model
        self.id = accumulator.id
        self.usage = accumulator.usage
        self.finish_reasons = accumulator.finish_reasons
        self._finish_reason_table = accumulator._finish_reason_table
        self.chunks = accumulator.chunks
        self._version = accumulator.version
        # One snapshot per chunk: the piece lists' lengths are read directly (not
        # through _Pieces.__len__) and the comprehension runs only when there are tools.
        self._content_count = len(accumulator._content._pieces)
        self._thinking_count = len(accumulator._thinking._pieces)
        self._refusal_count = len(accumulator._refusal._pieces)
        self._transcript_count = len(accumulator._transcript._pieces)
        self._audio_count = len(accumulator._audio._pieces) if accumulator._has_audio else -1
        tools = accumulator._tools
        self._tool_args = (
            [(builder, len(builder.arguments), builder.complete) for builder in tools.values()]
            if tools
            else []
        )

    @property
    def content(self) -> str:
        """The text up to this snapshot."""
        return self._accumulator._content.join(self._content_count)

    def content_since(self, earlier: ResponseSnapshot | None) -> str:
        """The text this snapshot adds to ``earlier`` (a previous snapshot of the same
        stream; ``None`` for the start): O(added text), whatever came before."""
        start = 0
        if earlier is not None and earlier._accumulator is self._accumulator:
            start = earlier._content_count
        return "".join(self._accumulator._content._pieces[start : self._content_count])

    @property
    def thinking(self) -> str:
        """The reasoning text up to this snapshot."""
        return self._accumulator._thinking.join(self._thinking_count)

    @property
    def refusal(self) -> str:
        """The refusal text up to this snapshot."""
        return self._accumulator._refusal.join(self._refusal_count)

    @property
    def audio(self) -> bytes | None:
        """The audio bytes up to this snapshot (``None`` without audio)."""
        if self._audio_count < 0:
            return None
        return self._accumulator._audio.join(self._audio_count)

    @property
    def audio_transcript(self) -> str | None:
        """The audio transcript up to this snapshot (``None`` without audio)."""
        if self._audio_count < 0:
            return None
        return self._accumulator._transcript.join(self._transcript_count)

    @property
    def tool_calls(self) -> list[ToolCall]:
        """Tool calls up to this snapshot; unfinished ones carry partial arguments."""
        return self._tool_calls(all_complete=False)

    def _tool_calls(self, *, all_complete: bool) -> list[ToolCall]:
        calls = []
        for builder, count, complete in self._tool_args:
            arguments = builder.arguments.join(count)
            if complete or all_complete:
                calls.append(ToolCall.from_arguments(builder.id, builder.name or "", arguments))
            else:
                calls.append(ToolCall(id=builder.id, name=builder.name or "", arguments=arguments))
        return calls

    @property
    def finish_reason(self) -> FinishReason | None:
        """The common finish reason, if one was reported by this snapshot."""
        return _finish_reason(
            self._finish_reason_table,
            self.finish_reasons,
            self._refusal_count > 0,
            bool(self._tool_args),
        )

    @property
    def input_tokens(self) -> int | None:
        """Input tokens reported so far."""
        return None if self.usage is None else self.usage.input_tokens

    @property
    def output_tokens(self) -> int | None:
        """Output tokens reported so far."""
        return None if self.usage is None else self.usage.output_tokens

    @property
    def is_final(self) -> bool:
        """Whether this is the stream's final state: the stream ended (its accumulator
        finished) and nothing was folded after this snapshot."""
        accumulator = self._accumulator
        return accumulator.finished and self._version == accumulator.version

    def to_call_response(self) -> CallResponse:
        """This snapshot as a :class:`CallResponse`: what it holds, frozen at its chunk.

        The final snapshot (:attr:`is_final`, the last one ``ops.accumulate()`` emits for
        a stream that completed) gives the whole response, ``message_param`` (the next
        turn's message) included; any other leaves ``message_param`` empty, since that
        message is built from the whole stream. Reading is safe from any thread: a
        finished accumulator no longer changes, and an earlier snapshot reads only the
        append-only pieces up to its own counts.
        """
        if self.is_final:
            return self._accumulator.response()
        return self._view(self.tool_calls)

    def ended_response(self) -> CallResponse:
        """The response of a stream that ended at this snapshot (as ``ops.to_call_response``
        ends a pipeline of snapshots): :meth:`to_call_response`, with the tool calls still
        open completed, as the end of a stream completes them."""
        if self.is_final:
            return self._accumulator.response()
        return self._view(self._tool_calls(all_complete=True))

    def _view(self, tool_calls: list[ToolCall]) -> CallResponse:
        content = self.content
        return CallResponse(
            provider=self.provider,
            model=self.model,
            id=self.id,
            content=content,
            thinking=self.thinking,
            refusal=self.refusal,
            finish_reasons=self.finish_reasons,
            finish_reason=self.finish_reason,
            usage=self.usage,
            tool_calls=tool_calls,
            audio=self.audio,
            audio_transcript=self.audio_transcript,
            spans=self._accumulator.spans(len(content)),
        )

    def __repr__(self) -> str:
        return (
            f"ResponseSnapshot(provider={self.provider!r}, chunks={self.chunks}, "
            f"content={self.content!r}, finish_reasons={self.finish_reasons!r})"
        )
