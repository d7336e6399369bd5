"""Cohere v2 chat streaming: ``ClientV2.chat_stream`` / ``AsyncClientV2.chat_stream``.

Prompt messages pass through: Cohere v2 takes ``system``, ``user`` and ``assistant``
messages with string content as they are, and a message in Cohere's own form (a
``tool`` message, an assistant message with ``tool_calls``, e.g. a previous
``message_param``) passes unchanged. Keyword arguments are ``chat_stream``'s own
(``tools``, ``max_tokens``, ``temperature``, ``thinking``...), with the common names of
:data:`PARAM_ALIASES` (``stop`` -> ``stop_sequences``, ``top_p`` -> ``p``, ``top_k`` ->
``k``); an unknown name is a ``TypeError`` before any request.

How each typed event becomes a chunk (exactly one chunk per event, so the raw event is
always reachable):

- ``message-start``: the response ``id``;
- ``content-start`` / ``content-delta``: ``text`` -> ``content``; ``thinking`` (the
  content blocks of reasoning models) -> ``thinking``;
- ``tool-plan-delta``: the tool plan, the model's reasoning about which tools to call,
  -> ``thinking``. It is reasoning in the same sense as other providers' thinking, so it
  is read where callers read reasoning; :class:`CohereMessageBuilder` keeps it apart as
  the message's ``tool_plan``, which Cohere expects back with its tool calls;
- ``tool-call-start``: a :class:`~streamkit._models.ToolCallDelta` at the event's
  ``index`` with the call's ``id``, ``name`` and first ``arguments``;
  ``tool-call-delta``: an ``arguments`` fragment; ``tool-call-end``: the call is
  complete;
- ``citation-start`` / ``citation-end`` (grounded answers), ``content-end`` and
  ``debug``: nothing normalized; citations stay in ``chunk.chunk``;
- ``message-end``: ``finish_reason`` (``COMPLETE``, ``MAX_TOKENS``, ``TOOL_CALL``,
  ``ERROR``...) and usage; the terminal event. A stream that ends without it is an
  :class:`~streamkit._errors.IncompleteStreamError`, a connection dropped before it too
  (the SDK lets the bare ``httpx`` error through). A ``finish_reason`` of ``ERROR``
  (with ``delta.error``) is reported as it came: the SDK raises nothing for it.

Usage: Cohere reports ``tokens`` (what the model read and wrote) and ``billed_units``
(what is charged: the input without the chat template and system preamble Cohere
adds). streamkit's ``input_tokens`` / ``output_tokens`` are ``tokens``, as every other
provider counts the tokens the model processed (``billed_units`` when a response has
no ``tokens``); ``cached_tokens`` is ``usage.cached_tokens``. The billed units stay in
the raw ``message-end`` event.

Cohere's stream does not name the model, so chunks carry the model that was requested.
The SDK skips an event it cannot parse (with a logged warning) rather than raising.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, ClassVar

import cohere
from cohere.core.http_response import BaseHttpResponse
from cohere.v2.types.v2chat_stream_response import V2ChatStreamResponse

from streamkit._finish_reasons import FinishReason
from streamkit._messages import Message, MessageBuilder, function_tool_calls, is_neutral
from streamkit._models import Chunk, ToolCall, ToolCallDelta, Usage
from streamkit.providers._base import (
    Decoder,
    ProviderAdapter,
    describe_client,
)

__all__ = [
    "PARAM_ALIASES",
    "CohereAdapter",
    "CohereChunk",
    "CohereDecoder",
    "CohereMessageBuilder",
    "cohere_usage",
]

PARAM_ALIASES: Mapping[str, str] = {"stop": "stop_sequences", "top_p": "p", "top_k": "k"}
"""streamkit's common parameter names -> ``chat_stream`` arguments."""

_CHAT_STREAM_ARGS = frozenset(inspect.signature(cohere.ClientV2.chat_stream).parameters) - {
    "self",
    "model",
    "messages",
}


def cohere_usage(raw: Any) -> Usage | None:
    """streamkit's usage of a ``message-end`` usage object (see the module docs)."""
    if raw is None:
        return None
    counts = raw.tokens if raw.tokens is not None else raw.billed_units
    input_tokens = int(getattr(counts, "input_tokens", None) or 0)
    output_tokens = int(getattr(counts, "output_tokens", None) or 0)
    cached = raw.cached_tokens
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
        cached_tokens=None if cached is None else int(cached),
    )


class CohereDecoder(Decoder):
    """Decodes Cohere v2 stream events; complete at ``message-end``."""

    def __init__(self, provider: str = "cohere", model: str | None = None) -> None:
        super().__init__()
        self.provider = provider
        self.model = model

    def decode(self, event: Any) -> list[Chunk]:
        """One typed event in, one normalized chunk out."""
        self.events += 1
        kind = getattr(event, "type", None)
        delta = getattr(event, "delta", None)
        message = getattr(delta, "message", None)
        content = thinking = ""
        response_id: str | None = None
        tool_calls: list[ToolCallDelta] = []
        finish_reasons: list[str] | None = None
        usage: Usage | None = None
        index = getattr(event, "index", None) or 0
        if kind == "message-start":
            response_id = event.id
        elif kind in ("content-start", "content-delta"):
            block = getattr(message, "content", None)
            content = getattr(block, "text", None) or ""
            thinking = getattr(block, "thinking", None) or ""
        elif kind == "tool-plan-delta":
            thinking = getattr(message, "tool_plan", None) or ""
        elif kind in ("tool-call-start", "tool-call-delta"):
            call = getattr(message, "tool_calls", None)
            function = getattr(call, "function", None)
            tool_calls.append(
                ToolCallDelta(
                    index=index,
                    id=getattr(call, "id", None),
                    name=getattr(function, "name", None),
                    arguments=getattr(function, "arguments", None) or "",
                )
            )
        elif kind == "tool-call-end":
            tool_calls.append(ToolCallDelta(index=index, complete=True))
        elif kind == "message-end":
            response_id = event.id
            finish_reason = getattr(delta, "finish_reason", None)
            finish_reasons = [str(finish_reason)] if finish_reason else None
            usage = cohere_usage(getattr(delta, "usage", None))
            self.complete = True
        return [
            CohereChunk.model_construct(
                provider=self.provider,
                content=content,
                thinking=thinking,
                finish_reasons=finish_reasons,
                model=self.model,
                id=response_id,
                usage=usage,
                tool_calls=tool_calls,
                chunk=event,
            )
        ]


class CohereMessageBuilder(MessageBuilder):
    """Builds the Cohere v2 assistant message:
    ``{"role": "assistant", "content": ..., "tool_plan": ..., "tool_calls": [...]}``.

    ``content`` is the text, or, when the model sent thinking blocks, a list of a
    ``thinking`` block and a ``text`` block; keys with nothing to say are left out.
    """

    def __init__(self) -> None:
        self.tool_plan: list[str] = []
        self.thinking: list[str] = []

    def add(self, chunk: Chunk) -> None:
        """Keep the tool plan apart from thinking blocks (both are ``chunk.thinking``)."""
        if not chunk.thinking:
            return
        if getattr(chunk.chunk, "type", None) == "tool-plan-delta":
            self.tool_plan.append(chunk.thinking)
        else:
            self.thinking.append(chunk.thinking)

    def build(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The assistant message, ready to append to the next request's ``messages``."""
        text: str = fields["content"]
        tool_calls: list[ToolCall] = fields["tool_calls"]
        message: dict[str, Any] = {"role": "assistant"}
        if self.thinking:
            blocks: list[dict[str, str]] = [
                {"type": "thinking", "thinking": "".join(self.thinking)}
            ]
            if text:
                blocks.append({"type": "text", "text": text})
            message["content"] = blocks
        elif text or not tool_calls:
            message["content"] = text
        if self.tool_plan:
            message["tool_plan"] = "".join(self.tool_plan)
        if tool_calls:
            message["tool_calls"] = function_tool_calls(tool_calls)
        return message


class CohereChunk(Chunk):
    """A chunk of a Cohere v2 chat stream; ``chunk`` is the SDK's typed stream event."""

    chunk: V2ChatStreamResponse
    finish_reason_table: ClassVar[Mapping[str, FinishReason]] = {
        "COMPLETE": "stop",
        "STOP_SEQUENCE": "stop",
        "MAX_TOKENS": "length",
        "TOOL_CALL": "tool_calls",
        "ERROR": "error",
        "TIMEOUT": "error",
    }
    """Cohere's ``finish_reason`` values mapped to the common finish reasons."""
    message_builder: ClassVar[type[MessageBuilder]] = CohereMessageBuilder


class CohereAdapter(ProviderAdapter):
    """Streams ``ClientV2.chat_stream(...)`` / ``AsyncClientV2.chat_stream(...)``; see the
    module docs."""

    name = "cohere"
    client_example = "cohere.ClientV2"
    sdk_method = "cohere:ClientV2.chat_stream"
    request_on_first_read = True
    param_aliases = PARAM_ALIASES
    api_key_env = ("CO_API_KEY",)
    terminal_event = "message-end"

    def is_async_client(self, client: Any) -> bool:
        """``AsyncClientV2`` is async, ``ClientV2`` sync; other clients are a TypeError."""
        if isinstance(client, cohere.AsyncClientV2):
            return True
        if isinstance(client, cohere.ClientV2):
            return False
        raise TypeError(
            "expected a cohere.ClientV2 or cohere.AsyncClientV2 client, "
            f"got {describe_client(client)}"
        )

    def default_client(self, async_: bool) -> Any:
        """``ClientV2()`` / ``AsyncClientV2()``, which read ``CO_API_KEY``, their
        retries off (streamkit's operators retry)."""
        return cohere.AsyncClientV2(max_retries=0) if async_ else cohere.ClientV2(max_retries=0)

    def build_request(
        self, model: str, messages: list[Message], params: dict[str, Any]
    ) -> dict[str, Any]:
        """Keyword arguments of ``chat_stream``.

        Raises ``TypeError`` for an unknown keyword argument and ``ValueError`` for a
        plain message whose role Cohere v2 does not take.
        """
        for position, message in enumerate(messages):
            if is_neutral(message) and message["role"] not in ("system", "user", "assistant"):
                raise ValueError(
                    f"message {position} has role {message['role']!r}: Cohere v2 takes "
                    "system, user, assistant and tool messages"
                )
        request: dict[str, Any] = {"model": model, "messages": messages}
        for key, value in params.items():
            argument = PARAM_ALIASES.get(key, key)
            if argument not in _CHAT_STREAM_ARGS:
                raise TypeError(
                    f"unknown argument {key!r} for cohere: give ClientV2.chat_stream "
                    f"arguments (or {', '.join(PARAM_ALIASES)})"
                )
            request[argument] = (
                [value] if argument == "stop_sequences" and isinstance(value, str) else value
            )
        return request

    def single_attempt(self, client: Any, request: Any) -> tuple[Any, Any]:
        """``request`` with cohere's ``request_options={"max_retries": 0}``."""
        options = dict(request.get("request_options") or {})
        options["max_retries"] = 0
        return client, {**request, "request_options": options}

    def open(self, client: Any, request: dict[str, Any]) -> Any:
        """The SDK's stream (a generator; the request is made at the first ``next``)."""
        return client.chat_stream(**request)

    async def open_async(self, client: Any, request: dict[str, Any]) -> Any:
        """The SDK's async stream (the request is made at the first ``__anext__``)."""
        return client.chat_stream(**request)

    def new_decoder(self, request: dict[str, Any]) -> CohereDecoder:
        """A Cohere decoder (``message-end`` ends the stream)."""
        return CohereDecoder(self.name, model=request.get("model"))

    def http_response(self, sdk_stream: Any) -> Any:
        """The httpx response under the stream, once the request was made (else None).

        The SDK's generator holds the response wrapper in a local variable of its
        ``with`` block; a frame's locals can be read while the generator runs (blocked
        in a read on another thread), which is when a disposal needs it.
        """
        frame = getattr(sdk_stream, "gi_frame", None) or getattr(sdk_stream, "ag_frame", None)
        if frame is None:
            return None
        for value in frame.f_locals.values():
            if isinstance(value, BaseHttpResponse):
                return value.response
        return None
