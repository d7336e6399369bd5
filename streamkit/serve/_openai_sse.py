"""OpenAI's chat completions SSE: ``data: {chat.completion.chunk}`` ... ``data: [DONE]``.

Any OpenAI SDK or OpenAI-compatible client reads it, whatever provider is behind the
stream. Reasoning goes in ``delta.reasoning_content`` (the field OpenAI-compatible
servers use for it); the usage chunk (``choices: []``) is sent when asked for, as
OpenAI does with ``stream_options.include_usage``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from streamkit.accumulator import Accumulator
from streamkit.models import Chunk
from streamkit.serve._encoder import safe_error_text
from streamkit.serve._sse import DONE, sse_json

__all__ = ["OpenAIChunkEncoder"]

# Common reasons OpenAI's chat chunks have no value for: a refusal is filtered content;
# a native reason streamkit does not know ("other") ends the answer as a stop would.
_FINISH = {"refusal": "content_filter", "other": "stop"}


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
        self._tool_ids: dict[int, str] = {}
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
        calls = []
        for tool in chunk.tool_calls:
            call: dict[str, Any] = {"index": tool.index}
            if tool.index not in self._tool_ids:
                self._tool_ids[tool.index] = tool.id or f"call_{uuid.uuid4().hex[:24]}"
                call["id"] = self._tool_ids[tool.index]
                call["type"] = "function"
            function: dict[str, Any] = {"arguments": tool.arguments}
            if tool.name:
                function["name"] = tool.name
            call["function"] = function
            calls.append(call)
        if calls:
            delta["tool_calls"] = calls
        return [self._chunk(delta)] if delta else []

    def finish(self) -> list[bytes]:
        """The finish reason chunk, the usage chunk when asked for, ``[DONE]``."""
        if self._ended:
            return []
        self._ended = True
        self.accumulator.finish()
        reason = self.accumulator.finish_reason or "stop"
        out = [self._chunk({}, _FINISH.get(reason, reason))]
        usage = self.accumulator.usage
        if self.include_usage and usage is not None:
            body: dict[str, Any] = {
                "prompt_tokens": usage.input_tokens,
                "completion_tokens": usage.output_tokens,
                "total_tokens": usage.total_tokens or usage.input_tokens + usage.output_tokens,
            }
            if usage.cached_tokens is not None:
                body["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
            if usage.reasoning_tokens is not None:
                body["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
            out.append(
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
            )
        return [*out, DONE]

    def error(self, error: BaseException) -> list[bytes]:
        """OpenAI's in-stream error event (``{"error": {...}}``, which the SDK raises as
        an ``APIError``) with a safe message."""
        if self._ended:
            return []
        self._ended = True
        text = safe_error_text(error)
        return [sse_json({"error": {"message": text, "type": "server_error"}}), DONE]

    def abort(self) -> list[bytes]:
        """The stream stopped by the server: ends with ``[DONE]`` and no finish reason."""
        if self._ended:
            return []
        self._ended = True
        return [DONE]
