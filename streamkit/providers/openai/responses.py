"""OpenAI's Responses API (``client.responses.create(stream=True)``).

Selected per stream on the ``"openai"`` provider with ``api="responses"``
(:class:`OpenAIResponsesAdapter`)::

    sk.stream("openai", "gpt-5", "Why is the sky blue?", client=client, api="responses",
              reasoning={"summary": "auto"})

The stream is typed events rather than chat chunks. What each becomes:

- ``response.created`` / ``in_progress`` / ``queued``: the response id and model;
- ``response.output_text.delta`` -> ``content``; ``response.refusal.delta`` -> ``refusal``;
- ``response.reasoning_summary_text.delta`` and ``response.reasoning_text.delta`` ->
  ``thinking``; consecutive reasoning parts (summary parts, reasoning items) are
  separated by a blank line, as ``"\\n\\n".join`` of the parts would be;
- ``response.output_item.added`` with a ``function_call`` item -> a
  :class:`~streamkit._models.ToolCallDelta` (``index`` = ``output_index``, ``id`` =
  ``call_id``, ``name``), ``response.function_call_arguments.delta`` -> its arguments,
  and ``response.output_item.done`` for it -> ``complete=True``;
- ``response.completed`` / ``response.incomplete`` / ``response.failed`` end the
  stream: usage (``input_tokens``, ``output_tokens``, cached and reasoning details) and
  the finish reason: ``"completed"``, the ``incomplete_details.reason``
  (``"max_output_tokens"``, ``"content_filter"``) or ``"failed"`` (the response's
  ``error`` stays in the raw event);
- an ``error`` event raises ``openai.APIError`` (an error event that carries a
  top-level ``error`` object is raised by the SDK itself).

Every event becomes exactly one chunk, so the raw event is always in ``chunk.chunk``.

The Responses API reports a function-call response as ``"completed"`` like any other:
``finish_reasons`` stays ``["completed"]`` and the common ``finish_reason`` is
``"tool_calls"`` (the accumulator refines a normal stop that holds tool calls).

Prompt messages become ``input`` items: neutral ``{"role", "content"}`` messages are
already valid items (a ``system`` message stays an item in place rather than moving to
``instructions``, so several system messages and their order are kept). Chat-format
tool results (``{"role": "tool", "tool_call_id", "content"}``) become
``function_call_output`` items and a chat-format assistant message with ``tool_calls``
becomes a message plus ``function_call`` items, so a history written for chat
completions works here too. The ``message_param`` of a Responses call is
``{"role": "assistant", "output": [items]}``: the response's output items (reasoning,
message, function calls) as the API sent them, expanded back into ``input`` items on
the next turn.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, ClassVar

import openai
from openai.types.responses import ResponseStreamEvent, ResponseUsage
from pydantic import ConfigDict

from streamkit._finish_reasons import CHAT_FINISH_REASONS, FinishReason
from streamkit._messages import Message, MessageBuilder
from streamkit._models import Chunk, ToolCallDelta, Usage
from streamkit.providers._base import Decoder
from streamkit.providers.openai._client import OpenAIClientAdapter

__all__ = [
    "TERMINAL_EVENT",
    "OpenAIResponsesAdapter",
    "OpenAIResponsesChunk",
    "ResponsesDecoder",
    "ResponsesMessageBuilder",
    "build_request",
    "responses_input",
    "responses_usage",
]

TERMINAL_EVENT = "response.completed, response.incomplete or response.failed"
"""The events that end a Responses stream (for :class:`~streamkit.IncompleteStreamError`)."""

_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_LIFECYCLE = frozenset({"response.created", "response.in_progress", "response.queued"})
_THINKING = frozenset({"response.reasoning_summary_text.delta", "response.reasoning_text.delta"})
_PART_SEPARATOR = "\n\n"


def build_request(model: str, messages: list[Message], params: dict[str, Any]) -> dict[str, Any]:
    """The arguments of ``responses.create(stream=True)`` for a prompt.

    Raises ``ValueError`` when ``params`` holds ``input`` (the prompt is the messages).
    """
    if "input" in params:
        raise ValueError("pass the prompt as messages, not as input=, with api='responses'")
    request = {"model": model, "input": responses_input(messages), **params}
    request["stream"] = True
    return request


def responses_input(messages: list[Message]) -> list[dict[str, Any]]:
    """Prompt messages as Responses ``input`` items (see the module docs)."""
    items: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role == "assistant" and isinstance(message.get("output"), list):
            items.extend(message["output"])
        elif role == "tool" and "tool_call_id" in message:
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message["tool_call_id"],
                    "output": message.get("content") or "",
                }
            )
        elif role == "assistant" and message.get("tool_calls"):
            if message.get("content"):
                items.append({"role": "assistant", "content": message["content"]})
            for call in message["tool_calls"]:
                function = call.get("function") or {}
                items.append(
                    {
                        "type": "function_call",
                        "call_id": call.get("id"),
                        "name": function.get("name"),
                        "arguments": function.get("arguments") or "",
                    }
                )
        else:
            items.append(dict(message))
    return items


def responses_usage(raw: ResponseUsage | None) -> Usage | None:
    """Usage from a Responses ``usage`` object, or ``None``."""
    if raw is None:
        return None
    input_details = getattr(raw, "input_tokens_details", None)
    output_details = getattr(raw, "output_tokens_details", None)
    input_tokens = raw.input_tokens or 0
    output_tokens = raw.output_tokens or 0
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=raw.total_tokens or input_tokens + output_tokens,
        cached_tokens=getattr(input_details, "cached_tokens", None),
        reasoning_tokens=getattr(output_details, "reasoning_tokens", None),
    )


def _finish_reason(event: Any) -> str:
    """The native finish reason of a terminal event: status, or why it is incomplete."""
    response = event.response
    if event.type == "response.incomplete":
        details = getattr(response, "incomplete_details", None)
        return str(getattr(details, "reason", None) or "incomplete")
    if event.type == "response.failed":
        return "failed"
    return str(getattr(response, "status", None) or "completed")


class ResponsesDecoder(Decoder):
    """Decodes Responses API events, one chunk per event (see the module docs)."""

    def __init__(self) -> None:
        super().__init__()
        self.id: str | None = None
        self.model: str | None = None
        self._thinking_part: tuple[Any, ...] | None = None
        self._arguments_seen: set[int] = set()

    def decode(self, event: Any) -> list[Chunk]:
        """One event in, one chunk out; raises ``openai.APIError`` for an ``error`` event."""
        self.events += 1
        kind = event.type
        content = thinking = refusal = ""
        finish_reasons: list[str] | None = None
        usage: Usage | None = None
        tool_calls: list[ToolCallDelta] = []
        if kind in _LIFECYCLE or kind in _TERMINAL:
            self.id = getattr(event.response, "id", None) or self.id
            self.model = getattr(event.response, "model", None) or self.model
        if kind == "response.output_text.delta":
            content = event.delta
        elif kind == "response.refusal.delta":
            refusal = event.delta
        elif kind in _THINKING:
            thinking = self._thinking(event)
        elif kind == "response.output_item.added" and event.item.type == "function_call":
            tool_calls.append(self._call_delta(event.output_index, event.item))
        elif kind == "response.function_call_arguments.delta":
            if event.delta:
                self._arguments_seen.add(event.output_index)
            tool_calls.append(ToolCallDelta(index=event.output_index, arguments=event.delta))
        elif kind == "response.output_item.done" and event.item.type == "function_call":
            tool_calls.append(self._call_delta(event.output_index, event.item, complete=True))
        elif kind in _TERMINAL:
            finish_reasons = [_finish_reason(event)]
            usage = responses_usage(getattr(event.response, "usage", None))
            self.complete = True
        elif kind == "error":
            raise _error_event(event)
        return [
            OpenAIResponsesChunk.model_construct(
                provider="openai",
                content=content,
                thinking=thinking,
                refusal=refusal,
                finish_reasons=finish_reasons,
                model=self.model,
                id=self.id,
                usage=usage,
                tool_calls=tool_calls,
                audio=None,
                audio_transcript=None,
                chunk=event,
            )
        ]

    def _thinking(self, event: Any) -> str:
        """A reasoning delta, after a blank line when it starts a new reasoning part."""
        index = getattr(event, "summary_index", getattr(event, "content_index", None))
        part = (event.item_id, event.type, index)
        previous, self._thinking_part = self._thinking_part, part
        delta = str(event.delta)
        return _PART_SEPARATOR + delta if previous not in (None, part) else delta

    def _call_delta(self, index: int, item: Any, *, complete: bool = False) -> ToolCallDelta:
        """A function-call item as a fragment: its id and name, and its arguments only
        where no argument deltas carried them (a server that sends whole items)."""
        arguments = ""
        if index not in self._arguments_seen:
            arguments = getattr(item, "arguments", None) or ""
            if arguments:
                self._arguments_seen.add(index)
        return ToolCallDelta(
            index=index,
            id=getattr(item, "call_id", None),
            name=getattr(item, "name", None),
            arguments=arguments,
            complete=complete,
        )


def _error_event(event: Any) -> openai.APIError:
    """The SDK's ``APIError`` for an ``error`` event (``code``, ``message``, ``param``).

    The event carries no HTTP request; the error gets a stand-in of the SDK's request
    type (``POST /responses``) since ``APIError`` requires one.
    """
    body = {"code": event.code, "message": event.message, "param": event.param}
    return openai.APIError(
        event.message or "An error occurred during streaming", _stand_in_request(), body=body
    )


def _stand_in_request() -> Any:
    # openai 3.x builds on httpx2, earlier versions on httpx.
    for name in ("httpx2", "httpx"):
        try:
            http = importlib.import_module(name)
        except ImportError:
            continue
        return http.Request("POST", "/responses")
    return None  # pragma: no cover - the openai SDK always brings one of them


class ResponsesMessageBuilder(MessageBuilder):
    """The assistant message of a Responses stream: ``{"role": "assistant", "output":
    [items]}``, the output items of ``response.output_item.done`` events in output
    order, which the next ``api="responses"`` request expands into ``input``. Chunks
    of another type (an ``ops.fallback`` to another API) are not Responses items and
    are left out.
    """

    def __init__(self) -> None:
        self.output_items: dict[int, dict[str, Any]] = {}

    def add(self, chunk: Chunk) -> None:
        """Keep each finished output item of a Responses stream."""
        if not isinstance(chunk, OpenAIResponsesChunk):
            return
        event = chunk.chunk
        if event is None:  # a chunk without its event: followed from a Redis log
            return
        if event.type == "response.output_item.done":
            self.output_items[event.output_index] = event.item.to_dict()

    def build(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The Responses output items, in output order."""
        return {
            "role": "assistant",
            "output": [self.output_items[index] for index in sorted(self.output_items)],
        }


class OpenAIResponsesChunk(Chunk):
    """A chunk of a Responses API stream; ``chunk`` is the SDK's typed event."""

    # Chunks are only ever built with model_construct: skip building the schema of the
    # large event union at import.
    model_config = ConfigDict(defer_build=True)

    chunk: ResponseStreamEvent

    finish_reason_table: ClassVar[Mapping[str, FinishReason]] = {
        **CHAT_FINISH_REASONS,
        # Response statuses and incomplete_details reasons.
        "completed": "stop",
        "max_output_tokens": "length",
        "incomplete": "length",
        "failed": "error",
        "refusal": "refusal",
    }
    """The Responses API's terminal statuses and ``incomplete_details.reason`` values
    mapped to the common finish reasons (``content_filter`` as in chat completions)."""
    message_builder: ClassVar[type[MessageBuilder]] = ResponsesMessageBuilder


class OpenAIResponsesAdapter(OpenAIClientAdapter):
    """Streams ``client.responses.create(stream=True)`` for ``api="responses"`` (see the
    module docs)."""

    sdk_method = "openai.resources.responses:Responses.create"
    terminal_event = TERMINAL_EVENT

    def build_request(
        self, model: str, messages: list[Message], params: dict[str, Any]
    ) -> dict[str, Any]:
        """Keyword arguments of ``responses.create`` (:func:`build_request`)."""
        return build_request(model, messages, self.call_params(params))

    def open(self, client: Any, request: dict[str, Any]) -> Any:
        """Make the request; return the SDK's ``Stream`` of typed events."""
        return client.responses.create(**request)

    async def open_async(self, client: Any, request: dict[str, Any]) -> Any:
        """Make the request; return the SDK's ``AsyncStream`` of typed events."""
        return await client.responses.create(**request)

    def new_decoder(self, request: dict[str, Any]) -> ResponsesDecoder:
        """A fresh decoder for one Responses stream."""
        return ResponsesDecoder()
