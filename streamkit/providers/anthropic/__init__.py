"""Anthropic Messages: ``client.messages.create(stream=True)``, sync and async.

The raw event stream is used, not the SDK's ``messages.stream()`` helper: that helper
rebuilds a snapshot of the whole message with ``+=`` on every event (quadratic in the
length of the answer), while streamkit folds chunks once, in
:class:`~streamkit._accumulator.Accumulator`.

How each event becomes a chunk (exactly one chunk per event, so the raw event is always
reachable and :class:`AnthropicMessageBuilder` sees every block):

- ``message_start``: ``id`` and ``model`` (carried on every later chunk too) and the
  usage reported so far.
- ``content_block_start``: a text or thinking block's initial text (usually empty); a
  ``tool_use`` block starts a :class:`~streamkit._models.ToolCallDelta` at the block's
  index with its ``id`` and ``name``. ``redacted_thinking`` (encrypted reasoning, no
  text), ``server_tool_use`` and the server tools' result blocks
  (``web_search_tool_result``, ``bash_code_execution_tool_result``, ...) add nothing to
  the normalized fields: Anthropic runs server tools itself, so they are not tool calls
  for the caller to execute. All of them are kept, in order, in ``message_param``.
- ``content_block_delta``: ``text_delta`` -> ``content``, ``thinking_delta`` ->
  ``thinking``, ``input_json_delta`` of a ``tool_use`` block -> tool-call arguments;
  ``signature_delta`` and ``citations_delta`` are kept for ``message_param`` only.
- ``content_block_stop`` of a ``tool_use`` block completes its tool call.
- ``message_delta``: ``stop_reason`` -> ``finish_reasons`` (``message_start`` always
  carries ``null`` there) and usage. Its ``output_tokens`` is the cumulative count, so
  it replaces ``message_start``'s, never adds to it.
- ``message_stop``: the terminal event; a stream that ends without it is incomplete.

``ping`` events are dropped by the SDK. An ``event: error`` in the middle of a stream
(``overloaded_error``, ``api_error``) is raised by the SDK as ``anthropic.APIStatusError``
with status 200 and passed on unchanged; it is transient by its type. A connection
dropped inside the body after some events surfaces from the SDK as httpx's
``RemoteProtocolError``; it is reported as :class:`~streamkit._errors.IncompleteStreamError`
(with the transport error as its cause), as is a body that ends without ``message_stop``.

By default (``fast=None``) the fast path (:mod:`streamkit.providers.anthropic.fast`;
needs orjson) reads the stream where it can run: the same chunks for several times less
CPU per chunk. Where it cannot (orjson missing, an SDK whose internals ``_sdk`` does not
recognize, a client whose stream is not server-sent events such as ``AnthropicBedrock``)
the SDK reads it, and a DEBUG line on this module's logger says why; ``fast=True``
insists on the fast path (``ImportError`` before any request where it cannot run),
``fast=False`` asks for the SDK path. The modules: this one (the adapter, chunk type,
decoder and message builder), ``fast`` and ``_sdk`` (the SDK internals the fast path
relies on).

Usage: ``input_tokens`` is Anthropic's ``input_tokens``, which does not include cache
reads and writes (Anthropic counts those apart); ``cached_tokens`` is
``cache_read_input_tokens``; ``reasoning_tokens`` is ``output_tokens_details.thinking_tokens``
where reported; ``total_tokens`` is input plus output.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

import anthropic
from anthropic.types import RawMessageStreamEvent

from streamkit._finish_reasons import FinishReason
from streamkit._messages import Message, MessageBuilder
from streamkit._models import CHUNK_FIELDS, Chunk, ToolCallDelta, Usage, chunk_builder
from streamkit.providers._base import (
    Decoder,
    ProviderAdapter,
    assistant_prefill,
    describe_client,
)
from streamkit.providers._stainless import LazyChunk, check_fast, choose_fast

if TYPE_CHECKING:
    from streamkit.providers.anthropic.fast import AnthropicFastAdapter

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "AnthropicAdapter",
    "AnthropicChunk",
    "AnthropicDecoder",
    "AnthropicMessageBuilder",
]

_log = logging.getLogger(__name__)
"""Where ``fast=None`` says why a stream takes the SDK path (DEBUG)."""

DEFAULT_MAX_TOKENS = 1024
"""``max_tokens`` sent when the caller gives none (Anthropic requires it).

With extended thinking (``thinking={"type": "enabled", "budget_tokens": B}``) the
default is ``B + DEFAULT_MAX_TOKENS``, since ``max_tokens`` must exceed the budget.
"""

_SYNC_CLIENTS: tuple[type, ...] = (
    anthropic.Anthropic,
    anthropic.AnthropicBedrock,
    anthropic.AnthropicVertex,
)
_ASYNC_CLIENTS: tuple[type, ...] = (
    anthropic.AsyncAnthropic,
    anthropic.AsyncAnthropicBedrock,
    anthropic.AsyncAnthropicVertex,
)


class AnthropicDecoder(Decoder):
    """Decodes one stream's raw events (see the module docs for the mapping)."""

    def __init__(self, provider: str = "anthropic") -> None:
        super().__init__()
        self.provider = provider
        self._model: str | None = None
        self._id: str | None = None
        self._input_tokens = 0
        self._cached_tokens: int | None = None
        # Open tool_use blocks by index: (input given at block start, any JSON received).
        self._tools: dict[int, tuple[dict[str, Any], bool]] = {}

    def decode(self, event: Any) -> list[Chunk]:
        """One raw event in, one chunk out."""
        self.events += 1
        raw: RawMessageStreamEvent = event
        content = ""
        thinking = ""
        finish_reasons: list[str] | None = None
        usage: Usage | None = None
        tool_calls: list[ToolCallDelta] = []
        # The text deltas first: nearly every event of a stream is one.
        if raw.type == "content_block_delta":
            delta = raw.delta
            if delta.type == "text_delta":
                content = delta.text
            elif delta.type == "thinking_delta":
                thinking = delta.thinking
            elif delta.type == "input_json_delta" and raw.index in self._tools:
                if delta.partial_json:
                    self._tools[raw.index] = (self._tools[raw.index][0], True)
                tool_calls.append(ToolCallDelta(index=raw.index, arguments=delta.partial_json))
        elif raw.type == "message_start":
            message = raw.message
            self._model, self._id = message.model, message.id
            start = message.usage
            self._input_tokens = start.input_tokens
            self._cached_tokens = start.cache_read_input_tokens
            usage = self._usage(start.output_tokens, _thinking_tokens(start))
        elif raw.type == "content_block_start":
            block = raw.content_block
            if block.type == "text":
                content = block.text
            elif block.type == "thinking":
                thinking = block.thinking
            elif block.type == "tool_use":
                self._tools[raw.index] = (dict(block.input or {}), False)
                tool_calls.append(ToolCallDelta(index=raw.index, id=block.id, name=block.name))
        elif raw.type == "content_block_stop":
            tool = self._tools.pop(raw.index, None)
            if tool is not None:
                start_input, received_json = tool
                # A block whose input came whole at its start (no deltas) still has arguments.
                arguments = json.dumps(start_input) if start_input and not received_json else ""
                tool_calls.append(
                    ToolCallDelta(index=raw.index, arguments=arguments, complete=True)
                )
        elif raw.type == "message_delta":
            if raw.delta.stop_reason:
                finish_reasons = [raw.delta.stop_reason]
            counts = raw.usage
            # Cumulative totals: they replace what message_start reported.
            if counts.input_tokens is not None:
                self._input_tokens = counts.input_tokens
            if counts.cache_read_input_tokens is not None:
                self._cached_tokens = counts.cache_read_input_tokens
            usage = self._usage(counts.output_tokens, _thinking_tokens(counts))
        elif raw.type == "message_stop":
            self.complete = True
        return [
            _build_chunk(
                {
                    "provider": self.provider,
                    "content": content,
                    "thinking": thinking,
                    "refusal": "",
                    "finish_reasons": finish_reasons,
                    "model": self._model,
                    "id": self._id,
                    "usage": usage,
                    "tool_calls": tool_calls,
                    "audio": None,
                    "audio_transcript": None,
                    "chunk": raw,
                }
            )
        ]

    def _usage(self, output_tokens: int, reasoning_tokens: int | None) -> Usage:
        return Usage(
            input_tokens=self._input_tokens,
            output_tokens=output_tokens,
            total_tokens=self._input_tokens + output_tokens,
            cached_tokens=self._cached_tokens,
            reasoning_tokens=reasoning_tokens,
        )


def _thinking_tokens(counts: Any) -> int | None:
    details = getattr(counts, "output_tokens_details", None)
    value = getattr(details, "thinking_tokens", None)
    return value if isinstance(value, int) else None


class _Block:
    """One content block of the assistant message, its streamed pieces kept apart."""

    __slots__ = ("citations", "json", "signature", "start", "text", "thinking")

    def __init__(self, start: dict[str, Any]) -> None:
        self.start = start
        self.text: list[str] = []
        self.thinking: list[str] = []
        self.json: list[str] = []
        self.citations: list[dict[str, Any]] = []
        self.signature: str | None = None

    def param(self) -> dict[str, Any] | None:
        """The block as a request param (``None`` for an empty text block, which the
        API rejects)."""
        block = dict(self.start)
        if self.text:
            block["text"] = str(block.get("text") or "") + "".join(self.text)
        if block.get("type") == "text" and not block.get("text"):
            return None
        if self.citations:
            block["citations"] = [*(block.get("citations") or ()), *self.citations]
        if self.thinking:
            block["thinking"] = str(block.get("thinking") or "") + "".join(self.thinking)
        if self.signature is not None:
            block["signature"] = self.signature
        arguments = "".join(self.json)
        if arguments.strip():
            # Unfinished JSON (a cut stream) leaves the block with its start input.
            with contextlib.suppress(ValueError):
                block["input"] = json.loads(arguments)
        return block


_JSON_DELTA_FIELDS = {
    "text_delta": "text",
    "thinking_delta": "thinking",
    "input_json_delta": "partial_json",
    "signature_delta": "signature",
}


class AnthropicMessageBuilder(MessageBuilder):
    """Builds ``{"role": "assistant", "content": [blocks]}`` ready for the next request.

    Every block is kept in order, as Anthropic requires for the next turn: thinking
    blocks with their ``signature``, ``redacted_thinking`` with its ``data``, text (with
    citations), ``tool_use`` and ``server_tool_use`` with their parsed ``input``, and
    server tools' result blocks as received. Empty text blocks are left out (the API
    rejects them). Each chunk costs O(its own size); pieces are joined in ``build``.
    """

    def __init__(self) -> None:
        self._blocks: dict[int, _Block] = {}

    def add(self, chunk: Chunk) -> None:
        """Record the block that the chunk's raw event starts or extends."""
        # A fast-path chunk whose SDK object is not built yet: read its event's JSON
        # (as the SDK object reads) rather than build the object just to look.
        if (
            "chunk" not in chunk.__dict__
            and isinstance(chunk, LazyChunk)
            and self._add_json(chunk.raw_json)
        ):
            return
        raw = chunk.chunk
        kind = getattr(raw, "type", None)
        if kind == "content_block_start":
            start = raw.content_block.to_dict(mode="json", exclude_none=True)
            self._blocks[raw.index] = _Block(start)
        elif kind == "content_block_delta":
            block = self._blocks.get(raw.index)
            if block is None:
                return
            delta = raw.delta
            if delta.type == "text_delta":
                block.text.append(delta.text)
            elif delta.type == "thinking_delta":
                block.thinking.append(delta.thinking)
            elif delta.type == "input_json_delta":
                block.json.append(delta.partial_json)
            elif delta.type == "signature_delta":
                block.signature = delta.signature  # the SDK keeps the last one, not a sum
            elif delta.type == "citations_delta":
                block.citations.append(delta.citation.to_dict(mode="json", exclude_none=True))

    def _add_json(self, data: Any) -> bool:
        """:meth:`add` on an event's JSON; False (read the SDK object instead) for a
        block's start, a citation and any unexpected shape."""
        if type(data) is not dict:
            return False
        kind = data.get("type")
        if kind == "content_block_start":
            return False
        if kind != "content_block_delta":
            return True  # no other event adds to a block
        index = data.get("index")
        delta = data.get("delta")
        if type(index) is not int or type(delta) is not dict:
            return False
        delta_kind = delta.get("type")
        field = _JSON_DELTA_FIELDS.get(delta_kind) if type(delta_kind) is str else None
        value = delta.get(field) if field is not None else None
        if type(value) is not str:
            return False
        block = self._blocks.get(index)
        if block is None:
            return True
        if delta_kind == "text_delta":
            block.text.append(value)
        elif delta_kind == "thinking_delta":
            block.thinking.append(value)
        elif delta_kind == "input_json_delta":
            block.json.append(value)
        else:
            block.signature = value  # the SDK keeps the last one, not a sum
        return True

    def build(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The assistant message param, blocks in stream order."""
        content = [self._blocks[index].param() for index in sorted(self._blocks)]
        return {"role": "assistant", "content": [block for block in content if block]}


class AnthropicChunk(Chunk):
    """A chunk of an Anthropic Messages stream; ``chunk`` is the SDK's raw stream event."""

    chunk: RawMessageStreamEvent
    finish_reason_table: ClassVar[Mapping[str, FinishReason]] = {
        "end_turn": "stop",
        "stop_sequence": "stop",
        "pause_turn": "stop",
        "max_tokens": "length",
        "model_context_window_exceeded": "length",
        "tool_use": "tool_calls",
        "refusal": "refusal",
    }
    """Anthropic's ``stop_reason`` values mapped to the common finish reasons."""
    message_builder: ClassVar[type[MessageBuilder]] = AnthropicMessageBuilder


_build_chunk = chunk_builder(AnthropicChunk, CHUNK_FIELDS)
"""Builds an :class:`AnthropicChunk` from all its fields (``AnthropicDecoder``)."""


class AnthropicAdapter(ProviderAdapter):
    """Streams ``client.messages.create(stream=True, ...)``.

    Prompt messages: ``system`` messages go to the top-level ``system`` parameter
    (several are joined with a blank line; block lists are concatenated), ``user`` and
    ``assistant`` messages pass through (string or block content). ``max_tokens``
    defaults to :data:`DEFAULT_MAX_TOKENS`. Other keyword arguments (``tools``,
    ``thinking``, ``temperature``...) pass through to ``messages.create``.
    """

    name = "anthropic"
    client_example = "anthropic.Anthropic"
    sdk_method = "anthropic.resources.messages:Messages.create"
    api_key_env = ("ANTHROPIC_API_KEY",)
    terminal_event = "message_stop"
    own_params = frozenset({"fast"})

    def adapter_for(self, params: Mapping[str, Any], client: Any = None) -> ProviderAdapter:
        """The fast adapter
        (:class:`~streamkit.providers.anthropic.fast.AnthropicFastAdapter`) for
        ``fast=None`` (the default) where it can run and for ``fast=True``, else this one
        (:func:`~streamkit.providers._stainless.choose_fast`); ``TypeError`` for a
        ``fast`` that is not a bool or ``None``, before any request.

        A client whose stream is not server-sent events (``AnthropicBedrock``) is read
        by the SDK whatever ``fast`` says (``fast=True`` still checks that the fast path
        could run, as it always has)."""
        fast = check_fast(params.get("fast"))
        if fast is not False and client is not None and not _reads_sse(client):
            if fast:  # raises where the fast path cannot run, as it always has
                _fast_adapter().require_runnable()
            else:
                _log.debug(
                    "fast=None (auto) takes the SDK path: a %s client's stream is not "
                    "server-sent events",
                    type(client).__name__,
                )
            return self
        return _fast_adapter() if choose_fast(fast, _fast_adapter, _log) else self

    def is_async_client(self, client: Any) -> bool:
        """``AsyncAnthropic`` (and its Bedrock and Vertex forms) are async."""
        if isinstance(client, _ASYNC_CLIENTS):
            return True
        if isinstance(client, _SYNC_CLIENTS):
            return False
        raise TypeError(
            "expected an anthropic.Anthropic or anthropic.AsyncAnthropic client, "
            f"got {describe_client(client)}"
        )

    def default_client(self, async_: bool) -> Any:
        """``Anthropic()`` / ``AsyncAnthropic()`` from ``ANTHROPIC_API_KEY`` and
        ``ANTHROPIC_BASE_URL``, their retries off (streamkit's operators retry)."""
        if async_:
            return anthropic.AsyncAnthropic(max_retries=0)
        return anthropic.Anthropic(max_retries=0)

    def build_request(
        self, model: str, messages: list[Message], params: dict[str, Any]
    ) -> dict[str, Any]:
        """Keyword arguments of ``messages.create``.

        Raises ``ValueError`` for a role Anthropic does not take, for system messages
        together with a ``system=`` argument, for a prompt with no user or assistant
        message, and ``TypeError``/``ValueError`` for a ``max_tokens`` that is not a
        positive integer.
        """
        request: dict[str, Any] = dict(params)
        request.pop("fast", None)  # chose the adapter; not sent
        system: list[Any] = []
        turns: list[Message] = []
        for position, message in enumerate(messages):
            role = message.get("role")
            if role == "system":
                system.append(_system_content(position, message.get("content")))
            elif role in ("user", "assistant"):
                turns.append(message)
            else:
                raise ValueError(
                    f"message {position} has role {role!r}, which Anthropic's Messages API "
                    "does not take: use 'system', 'user' (tool results are user messages "
                    "with tool_result blocks) or 'assistant'"
                )
        if system:
            if request.get("system") is not None:
                raise ValueError(
                    "give the system prompt either as system messages or as system=..., not both"
                )
            request["system"] = _join_system(system)
        if not turns:
            raise ValueError("Anthropic needs at least one user or assistant message")
        request["max_tokens"] = _max_tokens(request)
        request["model"] = model
        request["messages"] = turns
        request["stream"] = True
        return request

    def open(self, client: Any, request: dict[str, Any]) -> Any:
        """Make the request; return the SDK's ``Stream`` of raw events."""
        return client.messages.create(**request)

    async def open_async(self, client: Any, request: dict[str, Any]) -> Any:
        """Make the request; return the SDK's ``AsyncStream`` of raw events."""
        return await client.messages.create(**request)

    def new_decoder(self, request: dict[str, Any]) -> AnthropicDecoder:
        """A fresh decoder for one stream."""
        return AnthropicDecoder(self.name)

    def continuation_messages(self, messages: list[Message], delivered: str) -> list[Message]:
        """Continue the answer as an assistant prefill: ``delivered`` ends the messages.

        The API rejects a final assistant message that ends in whitespace, so trailing
        whitespace is left out of the prefill (the model may send it again); a prefill of
        nothing but whitespace is dropped.
        """
        continued = assistant_prefill(messages, delivered)
        prefill = str(continued[-1]["content"]).rstrip()
        if not prefill:
            return continued[:-1]
        return [*continued[:-1], {**continued[-1], "content": prefill}]


def _system_content(position: int, content: Any) -> str | list[Any]:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return content
    raise TypeError(
        f"message {position} (system) must have string content or a list of text blocks, "
        f"not {type(content).__name__}"
    )


def _join_system(parts: list[Any]) -> str | list[Any]:
    """Several system messages as one ``system`` value: text joined by a blank line, or
    (when any is a block list) one list of text blocks."""
    if all(isinstance(part, str) for part in parts):
        return "\n\n".join(parts)
    blocks: list[Any] = []
    for part in parts:
        if isinstance(part, str):
            blocks.append({"type": "text", "text": part})
        else:
            blocks.extend(part)
    return blocks


def _max_tokens(request: Mapping[str, Any]) -> int:
    value = request.get("max_tokens")
    if value is None:
        thinking = request.get("thinking")
        budget = thinking.get("budget_tokens") if isinstance(thinking, Mapping) else None
        if isinstance(budget, int) and not isinstance(budget, bool):
            return budget + DEFAULT_MAX_TOKENS
        return DEFAULT_MAX_TOKENS
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"max_tokens must be an int, not {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"max_tokens must be positive, got {value}")
    return value


def _reads_sse(client: Any) -> bool:
    """Whether the fast path reads ``client``'s stream; ``True`` when the SDK internals
    that tell are missing (the fast path cannot run then anyway: choose_fast says so)."""
    try:
        from streamkit.providers.anthropic._sdk import reads_sse
    except ImportError:
        return True
    return reads_sse(client)


@cache
def _fast_adapter() -> AnthropicFastAdapter:
    from streamkit.providers.anthropic.fast import AnthropicFastAdapter

    return AnthropicFastAdapter()
