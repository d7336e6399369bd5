"""Google Gemini through ``google-genai``: ``generate_content_stream``, sync and async.

One ``genai.Client`` serves both ways (``client.models`` is sync, ``client.aio.models``
async), so :meth:`GoogleAdapter.is_async_client` answers ``None`` for it and the
stream's ``async_`` decides; ``client.aio`` (a ``genai.client.AsyncClient``) is async.

Prompt messages (:meth:`GoogleAdapter.build_request`): ``system`` messages go to
``config.system_instruction``; ``user`` becomes a ``user`` content and ``assistant`` a
``model`` content, each with one text part; a message already in Gemini's own form
(``{"role": "model", "parts": [...]}``, e.g. a previous ``message_param``) passes through.
Keyword arguments become :class:`google.genai.types.GenerateContentConfig` fields
(:data:`PARAM_ALIASES`): ``max_tokens`` -> ``max_output_tokens``, ``stop`` ->
``stop_sequences``; every other field passes by its own name (``temperature``,
``top_p``, ``tools``, ``thinking_config``...), and an unknown name is a ``TypeError``
before any request. A ``config=`` argument (dict or ``GenerateContentConfig``) is the
base that those keywords override.

How a streamed ``GenerateContentResponse`` becomes one chunk (candidate 0 only):

- text parts -> ``content``; text parts with ``thought=True`` (thought summaries, with
  ``thinking_config=ThinkingConfig(include_thoughts=True)``) -> ``thinking``;
- each ``function_call`` part -> one whole, complete
  :class:`~streamkit._models.ToolCallDelta` (Gemini sends function calls whole, never as
  argument fragments): ``index`` counts the calls of the stream, ``id`` is the call's
  ``id`` where Gemini sends one (else ``None``), ``arguments`` is ``json.dumps(args)``;
- ``finish_reason`` -> its enum name (``"STOP"``, ``"MAX_TOKENS"``...); a prompt
  blocked before any candidate (``prompt_feedback.block_reason``) reports that reason
  (``"SAFETY"``...). Either ends the stream: a stream without one is incomplete.
  Gemini ends a turn of function calls with ``STOP`` too, so its common
  ``finish_reason`` is ``"stop"`` there, not ``"tool_calls"``;
- other parts (inline data, executable code and its result) add nothing to the
  normalized fields; they stay in ``chunk.chunk`` and in ``message_param``.

Usage (``usage_metadata``) is repeated on every chunk as running totals for the call,
so each chunk reports it as it stands and the latest report is the call's usage; it is
never summed (summing multiplies ``prompt_token_count`` by the number of chunks):

- ``input_tokens`` = ``prompt_token_count`` (which includes cached content) +
  ``tool_use_prompt_token_count``; ``cached_tokens`` = ``cached_content_token_count``;
- ``output_tokens`` = ``candidates_token_count`` + ``thoughts_token_count``: Google bills
  thinking tokens as output tokens, and ``total_token_count`` counts them, as OpenAI's
  ``completion_tokens`` includes reasoning; ``reasoning_tokens`` = ``thoughts_token_count``;
- ``total_tokens`` = ``total_token_count``.

``message_param`` (:class:`GoogleMessageBuilder`) is ``{"role": "model", "parts": [...]}``
with every part of candidate 0 in order, ``thought_signature`` kept (Gemini needs it
back with function calls); consecutive plain text parts of one kind (thought or not)
without a signature are joined into one part, and empty ones are left out.

Closing: the SDK's stream is a chain of generators that holds the HTTP response
(httpx2 for sync; aiohttp, or httpx2 with a custom transport, for async) in a local
variable. Closing the sync generator closes the response at once (each inner
generator is finalized as its frame is freed); closing the async one does not (the
inner async generators wait for the event loop's finalizer), so :meth:`close_async`
also closes the HTTP response itself. :func:`find_http_response` reaches that response
through the suspended generators; a sync stream caches it after its first event so a
disposal from another thread can shut its socket down
(:func:`streamkit._source.shutdown_socket`) even while the reader is blocked. Before the
first event it cannot be reached, nor the response of a follow-up request the SDK makes
on its own (automatic continuation, automatic function calling): such a disposal takes
effect when the next event arrives. A connection dropped before the terminal chunk is an
:class:`~streamkit._errors.IncompleteStreamError` (the SDK lets the bare ``httpx2`` or
``aiohttp`` error through); HTTP errors are the SDK's own
(``google.genai.errors.ClientError``, ``ServerError``).
"""

from __future__ import annotations

import enum
import gc
import json
import types as pytypes
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from google import genai
from google.genai import types
from google.genai.client import AsyncClient

from streamkit._finish_reasons import FinishReason
from streamkit._messages import Message, MessageBuilder, is_neutral
from streamkit._models import Chunk, ToolCallDelta, Usage
from streamkit.providers._base import (
    Decoder,
    ProviderAdapter,
    describe_client,
    unknown_keyword_error,
)

__all__ = [
    "PARAM_ALIASES",
    "GoogleAdapter",
    "GoogleChunk",
    "GoogleDecoder",
    "GoogleMessageBuilder",
    "find_http_response",
    "google_usage",
]

PARAM_ALIASES: Mapping[str, str] = {"max_tokens": "max_output_tokens", "stop": "stop_sequences"}
"""streamkit's common parameter names -> ``GenerateContentConfig`` fields."""

_CONFIG_FIELDS = frozenset(types.GenerateContentConfig.model_fields)
_ACCEPTED = _CONFIG_FIELDS | frozenset(PARAM_ALIASES) | {"config"}
_WHERE = "google (GenerateContentConfig fields)"
_NOTE = f" (streamkit also takes {', '.join(PARAM_ALIASES)} and config=)"


def _first_candidate(response: Any) -> types.Candidate | None:
    for candidate in getattr(response, "candidates", None) or ():
        if candidate.index in (None, 0):
            return candidate  # type: ignore[no-any-return]
    return None


def _name(value: Any) -> str:
    """An SDK enum's name (unknown values become members too), or the raw value."""
    return value.name if isinstance(value, enum.Enum) else str(value)


def google_usage(meta: types.GenerateContentResponseUsageMetadata | None) -> Usage | None:
    """streamkit's usage of one ``usage_metadata`` report (see the module docs)."""
    if meta is None:
        return None
    input_tokens = (meta.prompt_token_count or 0) + (meta.tool_use_prompt_token_count or 0)
    output_tokens = (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=meta.total_token_count or input_tokens + output_tokens,
        cached_tokens=meta.cached_content_token_count,
        reasoning_tokens=meta.thoughts_token_count,
    )


class GoogleDecoder(Decoder):
    """Decodes ``GenerateContentResponse`` chunks; complete at a finish (or block) reason."""

    def __init__(self, provider: str = "google") -> None:
        super().__init__()
        self.provider = provider
        self.tool_call_count = 0

    def decode(self, event: Any) -> list[Chunk]:
        """One streamed response in, one normalized chunk out."""
        self.events += 1
        content: list[str] = []
        thinking: list[str] = []
        tool_calls: list[ToolCallDelta] = []
        finish_reasons: list[str] | None = None
        candidate = _first_candidate(event)
        if candidate is not None:
            parts = candidate.content.parts if candidate.content is not None else None
            for part in parts or ():
                call = part.function_call
                if call is not None:
                    tool_calls.append(
                        ToolCallDelta(
                            index=self.tool_call_count,
                            id=call.id,
                            name=call.name,
                            arguments=json.dumps(call.args or {}, ensure_ascii=False),
                            complete=True,
                        )
                    )
                    self.tool_call_count += 1
                elif part.text:
                    (thinking if part.thought else content).append(part.text)
            if candidate.finish_reason is not None:
                finish_reasons = [_name(candidate.finish_reason)]
        feedback = getattr(event, "prompt_feedback", None)
        if finish_reasons is None and feedback is not None and feedback.block_reason is not None:
            finish_reasons = [_name(feedback.block_reason)]
        if finish_reasons:
            self.complete = True
        return [
            GoogleChunk.model_construct(
                provider=self.provider,
                content="".join(content),
                thinking="".join(thinking),
                finish_reasons=finish_reasons,
                model=event.model_version,
                id=event.response_id,
                usage=google_usage(event.usage_metadata),
                tool_calls=tool_calls,
                chunk=event,
            )
        ]


class _Part:
    """A part of the built message; plain text is kept as pieces, joined once."""

    __slots__ = ("fields", "pieces")

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields
        self.pieces: list[str] | None = [fields["text"]] if _plain_text(fields) else None

    def param(self) -> dict[str, Any]:
        if self.pieces is None:
            return dict(self.fields)
        return {**self.fields, "text": "".join(self.pieces)}


def _plain_text(fields: Mapping[str, Any]) -> bool:
    """A text part with nothing that must stay apart (no signature, call or data)."""
    return "text" in fields and set(fields) <= {"text", "thought"}


class GoogleMessageBuilder(MessageBuilder):
    """Builds ``{"role": "model", "parts": [...]}`` from candidate 0's parts (see the
    module docs)."""

    def __init__(self) -> None:
        self.parts: list[_Part] = []

    def add(self, chunk: Chunk) -> None:
        """Keep the parts of the chunk's first candidate, joining plain text."""
        candidate = _first_candidate(chunk.chunk)
        if candidate is None or candidate.content is None:
            return
        for part in candidate.content.parts or ():
            fields = part.model_dump(exclude_none=True)
            if _plain_text(fields) and not fields["text"]:
                continue  # an empty text part carries nothing
            last = self.parts[-1] if self.parts else None
            if (
                last is not None
                and last.pieces is not None
                and _plain_text(fields)
                and bool(last.fields.get("thought")) == bool(fields.get("thought"))
            ):
                last.pieces.append(fields["text"])
            else:
                self.parts.append(_Part(fields))

    def build(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The model turn, ready to append to the next request's ``contents``."""
        return {"role": "model", "parts": [part.param() for part in self.parts]}


def _sdk_http_response_class() -> type | None:
    try:
        from google.genai._api_client import HttpResponse
    except ImportError:  # SDK internals moved: closing falls back to the generators
        return None
    return HttpResponse


_GENERATORS = (pytypes.GeneratorType, pytypes.AsyncGeneratorType)
_ONE_ATTEMPT = types.HttpRetryOptions(attempts=1)
"""One attempt per request: google-genai retries nothing, not even its implicit
retry of aiohttp connection errors."""

_SEARCH_DEPTH = 8


def find_http_response(sdk_stream: Any) -> Any:
    """The HTTP response under a google-genai stream (a suspended generator), or None.

    The SDK keeps it in its innermost generator (``request_streamed``), reached only
    through the for-loop iterators of the generators above it, so the suspended
    generators' references (``gc.get_referents``) are followed, generators only, down
    to the SDK's ``HttpResponse`` holder. This reads SDK internals: anything unexpected
    gives ``None`` and the caller falls back to closing the generator. A generator that
    is running (blocked in a read) shows no references; that is why sync streams cache
    the response between events (:class:`_SyncEvents`).
    """
    holder_class = _sdk_http_response_class()
    if holder_class is None:
        return None
    frontier = [sdk_stream]
    seen: set[int] = set()
    for _ in range(_SEARCH_DEPTH):
        following: list[Any] = []
        for obj in frontier:
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if isinstance(obj, holder_class):
                response = getattr(obj, "response_stream", None)
                # A list is an already-read body (no stream): nothing to close.
                return response if hasattr(response, "close") else None
            if not isinstance(obj, _GENERATORS):
                continue
            for ref in gc.get_referents(obj):
                if isinstance(ref, pytypes.CellType):
                    try:
                        ref = ref.cell_contents
                    except ValueError:  # an empty cell
                        continue
                if isinstance(ref, (*_GENERATORS, holder_class)):
                    following.append(ref)
        frontier = following
    return None


class _SyncEvents:
    """The SDK's sync stream, remembering its HTTP response once the request was made
    (so another thread can shut its socket down while this one is blocked reading)."""

    def __init__(self, events: Iterator[types.GenerateContentResponse]) -> None:
        self.events = events
        self.http_response: Any = None
        self._searched = False

    def __iter__(self) -> _SyncEvents:
        return self

    def __next__(self) -> types.GenerateContentResponse:
        event = next(self.events)
        if not self._searched:  # after the first event: the request has been made
            self._searched = True
            self.http_response = find_http_response(self.events)
        return event

    def close(self) -> None:
        """Close the generators (which closes the response), then the response itself."""
        close = getattr(self.events, "close", None)
        try:
            if close is not None:
                close()
        finally:
            if self.http_response is not None:
                self.http_response.close()


class GoogleChunk(Chunk):
    """A chunk of a Gemini stream; ``chunk`` is the SDK's ``GenerateContentResponse``."""

    chunk: types.GenerateContentResponse
    finish_reason_table: ClassVar[Mapping[str, FinishReason]] = {
        "STOP": "stop",
        "MAX_TOKENS": "length",
        "SAFETY": "content_filter",
        "RECITATION": "content_filter",
        "BLOCKLIST": "content_filter",
        "PROHIBITED_CONTENT": "content_filter",
        "SPII": "content_filter",
        "IMAGE_SAFETY": "content_filter",
        "LANGUAGE": "content_filter",
        "MALFORMED_FUNCTION_CALL": "error",
        "UNEXPECTED_TOOL_CALL": "error",
        "OTHER": "error",
        "FINISH_REASON_UNSPECIFIED": "error",
        # Newer FinishReason values (google-genai 3.x).
        "IMAGE_PROHIBITED_CONTENT": "content_filter",
        "IMAGE_RECITATION": "content_filter",
        "MODEL_ARMOR": "content_filter",
        "ESCALATION": "content_filter",
        "PUP_LIMITED_DISABLED": "content_filter",
        "IMAGE_OTHER": "error",
        "NO_IMAGE": "error",
        "TOO_MANY_TOOL_CALLS": "error",
        "MISSING_THOUGHT_SIGNATURE": "error",
        "MALFORMED_RESPONSE": "error",
        # The response goes on in a follow-up request (the SDK follows it by default).
        "CONTINUATION": "length",
        # promptFeedback.blockReason of a prompt blocked before any candidate.
        "JAILBREAK": "content_filter",
        "BLOCKED_REASON_UNSPECIFIED": "content_filter",
    }
    """Gemini's ``FinishReason`` and ``BlockedReason`` names mapped to the common finish
    reasons."""
    message_builder: ClassVar[type[MessageBuilder]] = GoogleMessageBuilder


class GoogleAdapter(ProviderAdapter):
    """Streams ``client.models.generate_content_stream(...)`` (sync) and
    ``await client.aio.models.generate_content_stream(...)`` (async); see the module docs.
    """

    name = "google"
    client_example = "genai.Client"
    unknown_param_note = _NOTE
    request_on_first_read = True
    api_key_env = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI")
    terminal_event = "a chunk with a finishReason (or a promptFeedback.blockReason)"

    def accepted_params(self) -> tuple[frozenset[str], bool, str]:
        """``GenerateContentConfig``'s fields, :data:`PARAM_ALIASES` and ``config``."""
        return _ACCEPTED, False, _WHERE

    def is_async_client(self, client: Any) -> bool | None:
        """``None`` for ``genai.Client`` (it serves both: ``async_`` decides), ``True`` for
        its ``client.aio``; ``TypeError`` for anything else."""
        if isinstance(client, AsyncClient):
            return True
        if isinstance(client, genai.Client):
            return None
        raise TypeError(
            "expected a google.genai.Client (or its .aio async client), "
            f"got {describe_client(client)}"
        )

    def default_client(self, async_: bool) -> Any:
        """``genai.Client()``, which reads ``GEMINI_API_KEY`` / ``GOOGLE_API_KEY`` (and
        the Vertex AI variables); it serves sync and async. One attempt per request
        (streamkit's operators retry)."""
        return genai.Client(http_options=types.HttpOptions(retry_options=_ONE_ATTEMPT))

    def build_request(
        self, model: str, messages: list[Message], params: dict[str, Any]
    ) -> dict[str, Any]:
        """Keyword arguments of ``generate_content_stream``: ``model``, ``contents`` and
        ``config`` (see the module docs for the mapping).

        Raises ``TypeError`` for an unknown keyword argument and ``ValueError`` for a
        message role Gemini does not take, for system messages together with a
        ``system_instruction``, or for a config field of the wrong type.
        """
        system: list[str] = []
        contents: list[Any] = []
        for position, message in enumerate(messages):
            if not is_neutral(message):
                contents.append(message)  # already Gemini's own content form
                continue
            role, text = message["role"], message["content"]
            if role == "system":
                system.append(text)
            elif role in ("user", "assistant", "model"):
                role = "user" if role == "user" else "model"
                contents.append({"role": role, "parts": [{"text": text}]})
            else:
                raise ValueError(
                    f"message {position} has role {role!r}: Gemini contents take user and "
                    "model (assistant) turns, and system messages become system_instruction"
                )
        config = _config(params)
        if system:
            if config.system_instruction is not None:
                raise ValueError("give system messages or system_instruction, not both")
            config.system_instruction = system[0] if len(system) == 1 else list(system)
        return {
            "model": model,
            "contents": contents,
            "config": config if config.model_fields_set else None,
        }

    def single_attempt(self, client: Any, request: Any) -> tuple[Any, Any]:
        """``request`` with ``config.http_options.retry_options`` of one attempt (which
        also stops google-genai's implicit retry of aiohttp connection errors)."""
        config = request.get("config") or types.GenerateContentConfig()
        options = config.http_options or types.HttpOptions()
        options = options.model_copy(update={"retry_options": _ONE_ATTEMPT})
        return client, {**request, "config": config.model_copy(update={"http_options": options})}

    def open(self, client: Any, request: dict[str, Any]) -> _SyncEvents:
        """The SDK's stream; the request itself is made at the first ``next``."""
        if isinstance(client, AsyncClient):
            raise TypeError("a sync stream needs a genai.Client, not its .aio async client")
        return _SyncEvents(client.models.generate_content_stream(**request))

    async def open_async(self, client: Any, request: dict[str, Any]) -> Any:
        """Make the request with ``client.aio`` (or an ``AsyncClient``); return the SDK's
        async generator."""
        models = client.models if isinstance(client, AsyncClient) else client.aio.models
        return await models.generate_content_stream(**request)

    def new_decoder(self, request: dict[str, Any]) -> GoogleDecoder:
        """A Gemini decoder (a finish or block reason ends the stream)."""
        return GoogleDecoder(self.name)

    def http_response(self, sdk_stream: Any) -> Any:
        """The HTTP response under the stream, once the request was made (else None)."""
        if isinstance(sdk_stream, _SyncEvents):
            return sdk_stream.http_response
        return find_http_response(sdk_stream)

    async def close_async(self, sdk_stream: Any) -> None:
        """Close the SDK's async generator and the HTTP response under it.

        Closing the outer generator alone leaves the response open until the event
        loop finalizes the inner generators, so the response (found while the
        generators are still suspended) is closed here at once.
        """
        http_response = find_http_response(sdk_stream)
        try:
            await sdk_stream.aclose()
        finally:
            if http_response is not None:
                aclose = getattr(http_response, "aclose", None)  # httpx / httpx2
                if aclose is not None:
                    await aclose()
                else:
                    http_response.close()  # aiohttp's ClientResponse.close() is sync


def _config(params: Mapping[str, Any]) -> types.GenerateContentConfig:
    """The request's ``GenerateContentConfig`` from ``config=`` and keyword arguments."""
    fields: dict[str, Any] = {}
    for key, value in params.items():
        if key == "config":
            continue
        field = PARAM_ALIASES.get(key, key)
        if field not in _CONFIG_FIELDS:
            raise unknown_keyword_error(key, _ACCEPTED, _WHERE, note=_NOTE)
        if field == "stop_sequences" and isinstance(value, str):
            value = [value]
        fields[field] = value
    overrides = types.GenerateContentConfig(**fields)
    base = params.get("config")
    if base is None:
        return overrides
    if not isinstance(base, types.GenerateContentConfig):
        base = types.GenerateContentConfig.model_validate(base)
    return base.model_copy(update={name: getattr(overrides, name) for name in fields})
