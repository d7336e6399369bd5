"""The Vercel AI SDK UI message stream, v1 (what ``useChat`` reads).

Chunk shapes follow the ``ai`` package's ``uiMessageChunkSchema`` (strict objects: no
extra keys): ``start``, ``start-step``, ``text-*``, ``reasoning-*``, ``tool-input-*``,
``finish-step``, ``finish``, ``error``, ``abort``, then ``data: [DONE]``.
"""

from __future__ import annotations

import uuid
from typing import Any

from streamkit._accumulator import Accumulator
from streamkit._models import Chunk, ToolCall, Usage
from streamkit.serve._encoder import safe_error_text
from streamkit.serve._sse import DONE, sse_json

__all__ = ["UI_MESSAGE_HEADERS", "UIMessageEncoder", "ui_finish_reason"]

UI_MESSAGE_HEADERS = {"x-vercel-ai-ui-message-stream": "v1"}
"""The response header that marks a UI message stream."""

_FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool-calls",
    "content_filter": "content-filter",
    "refusal": "content-filter",
    "error": "error",
    "other": "other",
}


def ui_finish_reason(reason: str | None) -> str:
    """streamkit's common finish reason as the UI message stream's ``finishReason``."""
    return _FINISH_REASONS.get(reason or "", "unknown")


class UIMessageEncoder:
    """Encodes one stream as UI message stream v1 events (see :class:`Encoder`).

    Text and reasoning become parts with ids (``text-0``, ``reasoning-1``...): a part is
    ended before a part of the other kind starts. Tool calls become ``tool-input-start``,
    ``tool-input-delta`` and, once complete, ``tool-input-available`` with the parsed
    input. ``finish`` carries the finish reason and, as message metadata, the model and
    the usage; ``error`` and ``abort`` are preceded by a ``message-metadata`` event with
    the usage so far, when it is known.
    """

    def __init__(self, message_id: str | None = None) -> None:
        self.message_id = message_id or f"msg-{uuid.uuid4().hex}"
        self.accumulator = Accumulator()
        self._parts = 0
        self._open: tuple[str, str] | None = None  # (kind, id)
        self._tools: dict[int, str] = {}  # index -> toolCallId, once started
        self._pending_args: dict[int, str] = {}  # arguments before the tool's name
        self._available_done: set[int] = set()
        self._ended = False

    def _emit(self, payload: dict[str, Any]) -> bytes:
        return sse_json(payload)

    def open(self) -> list[bytes]:
        """``start`` (with the message id) and ``start-step``."""
        return [
            self._emit({"type": "start", "messageId": self.message_id}),
            self._emit({"type": "start-step"}),
        ]

    def _close_part(self) -> list[bytes]:
        if self._open is None:
            return []
        kind, part_id = self._open
        self._open = None
        return [self._emit({"type": f"{kind}-end", "id": part_id})]

    def _delta(self, kind: str, delta: str) -> list[bytes]:
        out: list[bytes] = []
        if self._open is None or self._open[0] != kind:
            out += self._close_part()
            self._open = (kind, f"{kind}-{self._parts}")
            self._parts += 1
            out.append(self._emit({"type": f"{kind}-start", "id": self._open[1]}))
        out.append(self._emit({"type": f"{kind}-delta", "id": self._open[1], "delta": delta}))
        return out

    def _available(self, call: ToolCall, index: int) -> list[bytes]:
        out = self._start_tool(index, call.id, call.name)
        out += self._flush_pending(index)
        return [
            *out,
            self._emit(
                {
                    "type": "tool-input-available",
                    "toolCallId": self._tools[index],
                    "toolName": call.name,
                    "input": call.args,
                }
            ),
        ]

    def _start_tool(self, index: int, call_id: str | None, name: str | None) -> list[bytes]:
        if index in self._tools or not name:
            return []
        self._tools[index] = call_id or f"call-{self.message_id}-{index}"
        start = {"type": "tool-input-start", "toolCallId": self._tools[index], "toolName": name}
        return [*self._close_part(), self._emit(start)]

    def _flush_pending(self, index: int) -> list[bytes]:
        pending = self._pending_args.pop(index, "")
        if not pending or index not in self._tools:
            return []
        delta = {"type": "tool-input-delta", "toolCallId": self._tools[index]}
        return [self._emit({**delta, "inputTextDelta": pending})]

    def chunk(self, chunk: Chunk) -> list[bytes]:
        """Events for one chunk's text, reasoning and tool call deltas."""
        if self._ended:
            return []
        completed = self.accumulator.add(chunk)
        out: list[bytes] = []
        if chunk.thinking:
            out += self._delta("reasoning", chunk.thinking)
        for text in (chunk.content, chunk.refusal):
            if text:
                out += self._delta("text", text)
        for delta in chunk.tool_calls:
            out += self._start_tool(delta.index, delta.id, delta.name)
            if delta.arguments:
                self._pending_args[delta.index] = (
                    self._pending_args.get(delta.index, "") + delta.arguments
                )
            out += self._flush_pending(delta.index)
        out += self._completed(completed)
        return out

    def _completed(self, calls: list[ToolCall]) -> list[bytes]:
        out: list[bytes] = []
        for call in calls:
            by_id = [i for i, cid in self._tools.items() if call.id and cid == call.id]
            waiting = [i for i in self._tools if i not in self._available_done]
            index = (by_id or waiting or [max(self._tools, default=-1) + 1])[0]
            self._available_done.add(index)
            out += self._available(call, index)
        return out

    def _metadata(self, usage: Usage | None) -> dict[str, Any]:
        usage = self.accumulator.usage if usage is None else usage
        metadata: dict[str, Any] = {"model": self.accumulator.model}
        if usage is not None:
            metadata["usage"] = usage.model_dump(exclude_none=True)
        return metadata

    def _metadata_event(self, usage: Usage | None) -> list[bytes]:
        """``message-metadata`` with the usage so far, before an ``error`` or ``abort``
        (which carry no metadata); nothing when no usage is known."""
        metadata = self._metadata(usage)
        if "usage" not in metadata:
            return []
        return [self._emit({"type": "message-metadata", "messageMetadata": metadata})]

    def finish(self, usage: Usage | None = None) -> list[bytes]:
        """Open parts ended, outstanding tool calls made available, ``finish-step``,
        ``finish`` (finish reason; model and ``usage`` as metadata, see
        :class:`~streamkit.serve.Encoder`) and ``[DONE]``."""
        if self._ended:
            return []
        out = self._close_part() + self._completed(self.accumulator.finish())
        self._ended = True
        reason = ui_finish_reason(self.accumulator.finish_reason)
        return [
            *out,
            self._emit({"type": "finish-step"}),
            self._emit(
                {"type": "finish", "finishReason": reason, "messageMetadata": self._metadata(usage)}
            ),
            DONE,
        ]

    def error(self, error: BaseException, usage: Usage | None = None) -> list[bytes]:
        """Open parts ended, ``message-metadata`` with the usage so far, an ``error``
        event with a safe text, and ``[DONE]``."""
        if self._ended:
            return []
        self._ended = True
        text = safe_error_text(error)
        return [
            *self._close_part(),
            *self._metadata_event(usage),
            self._emit({"type": "error", "errorText": text}),
            DONE,
        ]

    def abort(self, usage: Usage | None = None) -> list[bytes]:
        """Open parts ended, ``message-metadata`` with the usage so far, ``abort`` and
        ``[DONE]``."""
        if self._ended:
            return []
        self._ended = True
        return [
            *self._close_part(),
            *self._metadata_event(usage),
            self._emit({"type": "abort"}),
            DONE,
        ]
