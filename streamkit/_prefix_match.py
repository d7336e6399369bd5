"""Prefix matching across attempts: what downstream already received, and a new
attempt's output matched against it so that nothing is delivered twice.

Shared by ``ops.retry_on_error`` and ``ops.fallback``: a restarted attempt must
reproduce what was delivered (only what follows it is passed on), a continuation
appends to it.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from streamkit._errors import StreamDivergedError
from streamkit._models import Chunk, ToolCallDelta, Usage

__all__ = ["Delivered"]

PieceT = TypeVar("PieceT", str, bytes)


class _Mismatch(Exception):
    """The current attempt's output differs from what was already delivered."""

    def __init__(self, delivered: str, retried: str) -> None:
        super().__init__()
        self.delivered = delivered
        self.retried = retried


class _Channel(Generic[PieceT]):
    """Everything delivered on one channel (content, thinking, one tool call's arguments...)
    across attempts, and how far the current attempt has reproduced it.

    ``position`` is where the current attempt stands in the delivered text. Up to
    ``exact_until`` the attempt must reproduce the delivered text exactly; between
    ``exact_until`` and the end (a continuation re-sending the delivered text's
    trailing whitespace) it may, and stops being compared at the first difference.
    """

    __slots__ = ("_empty", "_joined", "_pieces", "exact_until", "length", "position")

    def __init__(self, empty: PieceT) -> None:
        self._empty: PieceT = empty
        self._pieces: list[PieceT] = []
        self._joined: PieceT | None = empty
        self.length = 0
        self.position = 0
        self.exact_until = 0

    def delivered(self) -> PieceT:
        """The whole delivered text (joined once per retry, not per chunk)."""
        if self._joined is None:
            self._joined = self._empty.join(self._pieces)
            self._pieces = [self._joined]
        return self._joined

    def restart(self, position: int = 0, exact_until: int | None = None) -> None:
        """A new attempt starts at ``position``, owing the delivered text up to
        ``exact_until`` (default: all of it)."""
        self.position = position
        self.exact_until = self.length if exact_until is None else exact_until

    @property
    def replaying(self) -> bool:
        """Whether the current attempt still owes delivered text it must reproduce."""
        return self.position < self.exact_until

    def feed(self, piece: PieceT) -> PieceT:
        """Take the attempt's next ``piece``; return the part downstream has not seen.

        Raises :class:`_Mismatch` when the piece contradicts the delivered text.
        """
        if not piece:
            return piece
        position = self.position
        if position >= self.length:
            self._append(piece)
            return piece
        delivered = self.delivered()
        overlap = min(len(piece), self.length - position)
        if delivered.startswith(piece[:overlap], position):
            self.position = position + overlap
            rest = piece[overlap:]
        else:
            same = 0
            while piece[same] == delivered[position + same]:
                same += 1
            if position + same < self.exact_until:
                raise _Mismatch(_text(delivered), _text(delivered[:position] + piece))
            # A continuation that did not repeat all the trailing whitespace: keep what it
            # sent after the part that did.
            self.position = self.length
            rest = piece[same:]
        if rest:
            self._append(rest)
        return rest

    def _append(self, piece: PieceT) -> None:
        self._pieces.append(piece)
        self._joined = None
        self.length += len(piece)
        self.position = self.length


def _text(value: str | bytes) -> str:
    return value if isinstance(value, str) else f"<{len(value)} bytes of audio>"


_TEXT_FIELDS = ("content", "thinking", "refusal")


class Delivered:
    """What downstream received across attempts, and the current attempt matched to it.

    It also sums usage over attempts: ``billed`` is the sum of the last usage each
    failed attempt reported, added to every usage report of the current attempt.
    """

    def __init__(self) -> None:
        self.text = {name: _Channel("") for name in _TEXT_FIELDS}
        self.transcript = _Channel("")
        self.audio = _Channel(b"")
        self.tool_names: dict[int, _Channel[str]] = {}
        self.tool_arguments: dict[int, _Channel[str]] = {}
        self.tool_ids: dict[int, str] = {}
        self.tools_completed: set[int] = set()
        self.billed: Usage | None = None
        self.attempt_usage: Usage | None = None
        self.first_attempt = True

    def _channels(self) -> list[_Channel[Any]]:
        return [
            *self.text.values(),
            self.transcript,
            self.audio,
            *self.tool_names.values(),
            *self.tool_arguments.values(),
        ]

    @property
    def content(self) -> str:
        """The content text delivered so far."""
        return self.text["content"].delivered()

    def only_content(self) -> bool:
        """Whether some content and nothing else (thinking, tool calls, audio) was delivered."""
        content = self.text["content"]
        others = [channel for channel in self._channels() if channel is not content]
        return content.length > 0 and not self.tool_ids and all(c.length == 0 for c in others)

    def continuable(self) -> bool:
        """Whether what was delivered is content and/or thinking and nothing else (no
        tool calls, refusal or audio), some of it: a next attempt may go on after it
        (:meth:`begin_attempt` ``continuing``) rather than reproduce it. Thinking is the
        failed attempt's reasoning, which no other request reproduces: the next one's
        own follows it."""
        text, thinking = self.text["content"], self.text["thinking"]
        others = [c for c in self._channels() if c is not text and c is not thinking]
        return (
            text.length + thinking.length > 0
            and not self.tool_ids
            and all(c.length == 0 for c in others)
        )

    def attempt_failed(self) -> None:
        """Bill the failed attempt's last usage report."""
        if self.attempt_usage is not None:
            previous = self.billed
            self.billed = self.attempt_usage if previous is None else previous + self.attempt_usage
        self.attempt_usage = None

    def begin_attempt(self, continuing: bool) -> None:
        """A new attempt: from the start, or (``continuing``) after the delivered text
        and thinking (owing none of it)."""
        self.first_attempt = False
        for channel in self._channels():
            channel.restart(channel.length if continuing else 0)
        if continuing:
            # The continuation may repeat the delivered text's trailing whitespace (a
            # prefill cannot end with it): that part is matched, but not owed.
            content = self.text["content"]
            stripped = len(content.delivered().rstrip())
            content.restart(stripped, exact_until=stripped)

    def replaying(self) -> bool:
        """Whether the attempt still owes delivered output it must reproduce."""
        return any(channel.replaying for channel in self._channels())

    def check_complete(self) -> None:
        """At the end of an attempt: it must have reproduced everything delivered."""
        for channel in self._channels():
            if channel.replaying:
                delivered = channel.delivered()
                raise StreamDivergedError(_text(delivered), _text(delivered[: channel.position]))

    def admit(self, chunk: Chunk) -> Chunk | None:
        """The part of ``chunk`` downstream has not seen (``None``: nothing to pass).

        Raises :class:`StreamDivergedError` when the attempt contradicts what was
        delivered, or sends new output before it has reproduced all of it.
        """
        if chunk.usage is not None:
            self.attempt_usage = chunk.usage
        if self.first_attempt:
            # Nothing to compare with yet: remember, and pass the chunk as it is.
            self._cut(chunk)
            return chunk
        was_replaying = self.replaying()
        try:
            updates, produced = self._cut(chunk)
        except _Mismatch as mismatch:
            raise StreamDivergedError(mismatch.delivered, mismatch.retried) from None
        if produced and self.replaying():
            self.check_complete()  # new output before the old was reproduced: diverged
        if self.billed is not None and chunk.usage is not None:
            updates["usage"] = self.billed + chunk.usage
        if (
            was_replaying
            and not produced
            and chunk.usage is None
            and not chunk.finish_reasons
            and not updates.get("tool_calls", chunk.tool_calls)
        ):
            return None  # only repeats what was delivered (or carries nothing)
        return chunk.model_copy(update=updates) if updates else chunk

    def _cut(self, chunk: Chunk) -> tuple[dict[str, Any], bool]:
        """Feed ``chunk`` to the channels: the field updates that cut out what was
        delivered, and whether anything new remains."""
        updates: dict[str, Any] = {}
        produced = False
        for name in _TEXT_FIELDS:
            value: str = getattr(chunk, name)
            new = self.text[name].feed(value)
            produced = produced or bool(new)
            if new != value:
                updates[name] = new
        if chunk.audio_transcript:
            transcript = self.transcript.feed(chunk.audio_transcript)
            produced = produced or bool(transcript)
            if transcript != chunk.audio_transcript:
                updates["audio_transcript"] = transcript or None
        if chunk.audio:
            audio = self.audio.feed(chunk.audio)
            produced = produced or bool(audio)
            if audio != chunk.audio:
                updates["audio"] = audio or None
        if chunk.tool_calls:
            tools: list[ToolCallDelta] = []
            for delta in chunk.tool_calls:
                kept = self._cut_tool_delta(delta)
                if kept is not None:
                    tools.append(kept)
                    produced = produced or bool(kept.name or kept.arguments or kept.id)
            if tools != chunk.tool_calls:
                updates["tool_calls"] = tools
        return updates, produced

    def _cut_tool_delta(self, delta: ToolCallDelta) -> ToolCallDelta | None:
        index = delta.index
        name = self.tool_names.setdefault(index, _Channel("")).feed(delta.name or "")
        arguments = self.tool_arguments.setdefault(index, _Channel("")).feed(delta.arguments)
        # A retry gets new tool-call ids from the provider: downstream keeps the first.
        call_id = delta.id if delta.id and index not in self.tool_ids else None
        if call_id is not None:
            self.tool_ids[index] = call_id
        complete = delta.complete and index not in self.tools_completed
        if complete:
            self.tools_completed.add(index)
        unchanged = (name, arguments, call_id, complete) == (
            delta.name or "",
            delta.arguments,
            delta.id,
            delta.complete,
        )
        if unchanged:
            return delta
        if not (name or arguments or call_id or complete):
            return None
        return ToolCallDelta(
            index=index, id=call_id, name=name or None, arguments=arguments, complete=complete
        )
