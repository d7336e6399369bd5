"""OpenAI's chat completions SSE: ``data: {chat.completion.chunk}`` ... ``data: [DONE]``.

Any OpenAI SDK or OpenAI-compatible client reads it, whatever provider is behind the
stream. Reasoning goes in ``delta.reasoning_content`` (the field OpenAI-compatible
servers use for it); the usage chunk (``choices: []``) is sent when asked for, as
OpenAI does with ``stream_options.include_usage``: always, with streamkit's usage
(estimated where the provider reported none).

Tool calls are written as OpenAI streams them, whatever the provider's own shape: the
``index`` counts the calls from 0 in the order they started (Anthropic numbers content
blocks, so its first call may be block 3); the first delta of a call carries its ``id``,
``type`` and ``name``, later deltas only argument text (the Responses API repeats a
call's id and name when it is done: that adds nothing, so nothing is sent); a call that
streamed no argument text gets ``"{}"`` before the finish reason, as OpenAI sends for a
call without arguments.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from streamkit._accumulator import Accumulator
from streamkit._models import Chunk, ToolCallDelta, Usage
from streamkit._tokens import count_output
from streamkit.serve._encoder import safe_error_text
from streamkit.serve._sse import DONE, sse_json

__all__ = ["OpenAIChunkEncoder"]

# Common reasons OpenAI's chat chunks have no value for: a refusal is filtered content;
# a native reason streamkit does not know ("other") ends the answer as a stop would.
_FINISH = {"refusal": "content_filter", "other": "stop"}


class _Tool:
    """A tool call as sent: its OpenAI index, and what of it went out."""

    __slots__ = ("has_arguments", "index", "named")

    def __init__(self, index: int) -> None:
        self.index = index
        self.named = False
        self.has_arguments = False


class OpenAIChunkEncoder:
    """Encodes one stream as OpenAI ``chat.completion.chunk`` events (see :class:`Encoder`)."""

    def __init__(
        self, model: str | None = None, *, include_usage: bool = False, id: str | None = None
    ) -> None:
        self.id = id or f"chatcmpl-{uuid.uuid4().hex}"
        self.model = model
        self.include_usage = include_usage
        self.created = int(time.time())
        self.accumulator = Accumulator()
        self._tools: dict[int, _Tool] = {}  # streamkit's index -> the call as sent
        self._ended = False

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return sse_json(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model or self.accumulator.model or "unknown",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
        )

    def open(self) -> list[bytes]:
        """The first chunk: the assistant role."""
        return [self._chunk({"role": "assistant", "content": ""})]

    def chunk(self, chunk: Chunk) -> list[bytes]:
        """One ``chat.completion.chunk`` for a chunk with text, reasoning or tool deltas."""
        if self._ended:
            return []
        self.accumulator.add(chunk)
        delta: dict[str, Any] = {}
        if chunk.content:
            delta["content"] = chunk.content
        if chunk.refusal:
            delta["refusal"] = chunk.refusal
        if chunk.thinking:
            delta["reasoning_content"] = chunk.thinking
        calls = [call for tool in chunk.tool_calls if (call := self._tool_call(tool))]
        if calls:
            delta["tool_calls"] = calls
        return [self._chunk(delta)] if delta else []

    def _tool_call(self, tool: ToolCallDelta) -> dict[str, Any] | None:
        """The OpenAI delta of one streamkit tool call delta, ``None`` when it adds
        nothing to what was sent (a repeated id or name)."""
        sent = self._tools.get(tool.index)
        call: dict[str, Any] = {}
        function: dict[str, Any] = {}
        if sent is None:
            sent = self._tools[tool.index] = _Tool(len(self._tools))
            call["id"] = tool.id or f"call_{uuid.uuid4().hex[:24]}"
            call["type"] = "function"
        if tool.name and not sent.named:
            sent.named = True
            function["name"] = tool.name
        if tool.arguments:
            sent.has_arguments = True
        if tool.arguments or call:
            function["arguments"] = tool.arguments
        if not function:
            return None
        return {"index": sent.index, **call, "function": function}

    def _no_arguments(self) -> list[bytes]:
        """``"{}"`` for each call that streamed no argument text (OpenAI's own stream
        sends ``"{}"`` for a call without arguments; clients parse it as JSON)."""
        calls = [
            {"index": sent.index, "function": {"arguments": "{}"}}
            for sent in self._tools.values()
            if not sent.has_arguments
        ]
        for sent in self._tools.values():
            sent.has_arguments = True
        return [self._chunk({"tool_calls": calls})] if calls else []

    def _estimate(self) -> Usage:
        """Output tokens counted from what was sent, for chunks that came with no usage
        and no streamkit request behind them (so no request to count the input of)."""
        acc = self.accumulator
        pieces = [acc.content, acc.thinking, acc.refusal]
        pieces += [call.name + call.arguments for call in acc.tool_calls]
        text = "".join(pieces)
        output = count_output(acc.provider or "", acc.model, text, len(text))
        return Usage(input_tokens=0, output_tokens=output, total_tokens=output, source="estimated")

    def _usage_chunk(self, usage: Usage | None) -> list[bytes]:
        """The usage chunk (``choices: []``), when the client asked for usage: with
        ``usage`` (streamkit's, given by the response), else the usage the chunks
        reported, else an estimate of the output."""
        if not self.include_usage:
            return []
        if usage is None:
            usage = self.accumulator.usage or self._estimate()
        body: dict[str, Any] = {
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens or usage.input_tokens + usage.output_tokens,
        }
        if usage.cached_tokens is not None:
            body["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
        if usage.reasoning_tokens is not None:
            body["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
        return [
            sse_json(
                {
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model or self.accumulator.model or "unknown",
                    "choices": [],
                    "usage": body,
                }
            )
        ]

    def finish(self, usage: Usage | None = None) -> list[bytes]:
        """``"{}"`` for calls without arguments, the finish reason chunk, the usage
        chunk when asked for (``usage``: streamkit's usage of the stream, see
        :class:`Encoder`), ``[DONE]``."""
        if self._ended:
            return []
        self._ended = True
        self.accumulator.finish()
        reason = self.accumulator.finish_reason or "stop"
        out = [*self._no_arguments(), self._chunk({}, _FINISH.get(reason, reason))]
        return [*out, *self._usage_chunk(usage), DONE]

    def error(self, error: BaseException, usage: Usage | None = None) -> list[bytes]:
        """OpenAI's in-stream error event (``{"error": {...}}``, which the SDK raises as
        an ``APIError``) with a safe message (no usage chunk: the SDK raises at the
        error event, before reading one)."""
        if self._ended:
            return []
        self._ended = True
        text = safe_error_text(error)
        return [sse_json({"error": {"message": text, "type": "server_error"}}), DONE]

    def abort(self, usage: Usage | None = None) -> list[bytes]:
        """The stream stopped by the server: no finish reason, the usage chunk when
        asked for (the usage so far), ``[DONE]``."""
        if self._ended:
            return []
        self._ended = True
        return [*self._usage_chunk(usage), DONE]
