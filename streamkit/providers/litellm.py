"""LiteLLM: ``litellm.completion(stream=True)`` / ``litellm.acompletion``, any model string.

LiteLLM has no client object: its "client" is the completion function itself. So the
``client`` of ``sk.stream("litellm", ...)`` is a completion function:

- ``None`` (default): ``litellm.completion``, or ``litellm.acompletion`` with
  ``async_=True``;
- ``litellm.completion`` / ``litellm.acompletion``, or either bound to settings with
  ``functools.partial(litellm.acompletion, api_base=..., api_key=...)``;
- a ``litellm.Router``'s ``completion`` / ``acompletion``.

A coroutine function (``acompletion``) makes the stream async. Other keyword arguments
(``api_base``, ``api_key``, ``temperature``...) pass through to the call::

    sk.stream("litellm", "anthropic/claude-sonnet-4-5", "Hi", api_key=...)
    sk.stream("litellm", "openai/gpt-4o", "Hi", client=litellm.acompletion)

Chunks are litellm's ``ModelResponseStream`` (OpenAI-shaped, kept raw in
``chunk.chunk``). Usage is requested by default (``stream_options={"include_usage":
True}``, which litellm honours for every provider by sending a usage chunk at the end).

What litellm does on its own, and streamkit cannot change:

- it reports a stream cut before its finish reason as ``MidStreamFallbackError``;
  streamkit raises that as :class:`~streamkit._errors.IncompleteStreamError` (caused by
  it). A body that ends cleanly *after* the finish reason is completed by litellm
  itself: it builds the usage chunk from what it received, so that cut cannot be seen.
  A usage chunk litellm built because the provider sent none (a cut after the finish
  reason, a server that never reports usage) holds litellm's own token count, not the
  provider's: streamkit labels it ``source="estimated"`` (the provider's own figures,
  which litellm keeps among the chunks it received, stay ``"reported"``).
  But litellm yields the usage chunk only once the body has ended: a connection dropped
  before ``data: [DONE]`` makes it raise even when the usage chunk had arrived, and
  streamkit, which never got that usage, raises ``IncompleteStreamError``;
- it reports an event it cannot parse and a provider's mid-stream error event the same
  way (``MidStreamFallbackError``, status 500): streamkit passes those on as litellm's
  error, and classifies them as transient or not by the error litellm mapped (an
  unparsable event is not, an overload or server error event is);
- it logs every chunk on a thread pool of its own (``litellm-logging_N`` threads, up to
  ``LOGGING_EXECUTOR_MAX_THREADS``, 100 by default), which lives as long as the process:
  ``litellm.disable_streaming_logging = True`` turns the per-chunk part off;
- ``import litellm`` takes seconds and fetches its model cost map from GitHub unless
  ``LITELLM_LOCAL_MODEL_COST_MAP=True``: litellm is imported only when a litellm stream
  is first made.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import ConfigDict

from streamkit._finish_reasons import CHAT_FINISH_REASONS, FinishReason
from streamkit._messages import Message, MessageBuilder
from streamkit._models import Chunk, Usage
from streamkit.providers._base import (
    Decoder,
    ProviderAdapter,
    describe_client,
    is_connection_cut,
    is_transient_error,
)
from streamkit.providers._chat import ChatChunkDecoder, ChatMessageBuilder

if TYPE_CHECKING:
    from litellm.types.utils import ModelResponseStream

__all__ = ["LiteLLMAdapter", "LiteLLMChunk", "LiteLLMChunkDecoder", "mapped_error"]


class LiteLLMChunk(Chunk):
    """A chunk of a LiteLLM stream; ``chunk`` is litellm's ``ModelResponseStream``."""

    # The chunk type lives in litellm, imported only when first used (see _litellm()).
    model_config = ConfigDict(defer_build=True)

    chunk: ModelResponseStream

    finish_reason_table: ClassVar[Mapping[str, FinishReason]] = CHAT_FINISH_REASONS
    """The chat-completions finish reasons litellm normalizes every provider's to."""
    message_builder: ClassVar[type[MessageBuilder]] = ChatMessageBuilder


@functools.cache
def _litellm() -> ModuleType:
    """Import litellm (slow) once, and complete :class:`LiteLLMChunk` with its type."""
    module = importlib.import_module("litellm")
    types = importlib.import_module("litellm.types.utils")
    LiteLLMChunk.model_rebuild(_types_namespace={"ModelResponseStream": types.ModelResponseStream})
    return module


class LiteLLMChunkDecoder(ChatChunkDecoder):
    """The chat decoder, telling the provider's usage from the usage litellm counted.

    litellm yields a usage chunk at the end of every stream that asked for one: the
    provider's figures when the provider sent them, else its own count of what it
    received (its tokenizer's). Only the wrapper (litellm's ``CustomStreamWrapper``)
    knows which: it keeps the chunks it received, the provider's usage chunk among
    them. Usage with no provider report under it is labelled ``estimated``.
    """

    def __init__(self, provider: str, *, expect_usage: bool) -> None:
        super().__init__(provider, chunk_type=LiteLLMChunk, expect_usage=expect_usage)
        self._wrapper: Any = None

    def opened(self, sdk_stream: Any) -> None:
        """Keep litellm's stream wrapper, to ask it where a usage figure came from."""
        self._wrapper = sdk_stream

    def usage_of(self, event: Any) -> Usage | None:
        """The event's usage; ``source="estimated"`` when litellm counted it itself."""
        usage = super().usage_of(event)
        if usage is not None and not self._provider_reported():
            return usage.model_copy(update={"source": "estimated"})
        return usage

    def _provider_reported(self) -> bool:
        """Whether litellm received usage from the provider (``True`` when it cannot
        be told: a wrapper that keeps no ``chunks`` list, the figure as given)."""
        received = getattr(self._wrapper, "chunks", None)
        if not isinstance(received, list):
            return True
        return any(getattr(chunk, "usage", None) is not None for chunk in received)


class LiteLLMAdapter(ProviderAdapter):
    """Streams ``litellm.completion(stream=True)`` (sync) or ``acompletion`` (async)."""

    name = "litellm"
    terminal_event = "a finish_reason (and the usage chunk when requested)"
    sdk_method = "litellm:completion"
    forwards_unknown_params = True  # a provider's own parameters (top_k...) pass through
    client_options = frozenset()  # no client: api_key=, max_retries=... are the call's

    def is_async_client(self, client: Any) -> bool:
        """A completion function: async when it is a coroutine function (``acompletion``)."""
        if not callable(client):
            raise TypeError(
                "expected a completion function as the client of 'litellm' "
                "(litellm.completion, litellm.acompletion, a functools.partial of one, or a "
                f"Router's method), got {describe_client(client)}"
            )
        return inspect.iscoroutinefunction(client)

    def default_client(self, async_: bool) -> Any:
        """``litellm.acompletion`` for async streams, else ``litellm.completion``."""
        litellm = _litellm()
        return litellm.acompletion if async_ else litellm.completion

    def build_request(
        self, model: str, messages: list[Message], params: dict[str, Any]
    ) -> dict[str, Any]:
        """Keyword arguments of the completion function (``stream=True`` always)."""
        request: dict[str, Any] = {"model": model, "messages": messages, **params}
        request["stream"] = True
        request.setdefault("stream_options", {"include_usage": True})
        return request

    def single_attempt(self, client: Any, request: Any) -> tuple[Any, Any]:
        """``request`` with ``max_retries=0`` (the retries of the SDK litellm calls)."""
        return client, {**request, "max_retries": 0}

    def open(self, client: Any, request: dict[str, Any]) -> Any:
        """Call the completion function; return litellm's ``CustomStreamWrapper``."""
        _litellm()
        return client(**request)

    async def open_async(self, client: Any, request: dict[str, Any]) -> Any:
        """Await the async completion function; return its ``CustomStreamWrapper``."""
        _litellm()
        return await client(**request)

    def new_decoder(self, request: dict[str, Any]) -> LiteLLMChunkDecoder:
        """A chat-chunk decoder expecting usage if it was requested."""
        options = request.get("stream_options") or {}
        return LiteLLMChunkDecoder(self.name, expect_usage=bool(options.get("include_usage")))

    def http_response(self, sdk_stream: Any) -> Any:
        """The HTTP response under litellm's wrapper, where the provider's stream has one
        (the openai SDK's stream that litellm's OpenAI-compatible routes use)."""
        inner = getattr(sdk_stream, "completion_stream", None)
        return getattr(inner, "response", None)

    def read_error(self, decoder: Decoder, error: Exception) -> Exception:
        """litellm's report of a stream cut before its end (``MidStreamFallbackError``
        over an ``APIConnectionError``) as :class:`~streamkit._errors.IncompleteStreamError`
        (raised from it); other errors unchanged.

        litellm reports every error raised while a stream is read as such an
        ``APIConnectionError``: a dropped connection, a body ended before the finish
        reason, but also an event it could not parse and a provider's error event. Only
        the first two are a cut: what litellm mapped is read from the
        ``APIConnectionError``'s context (see :func:`mapped_error`), as litellm keeps it
        neither in ``original_exception`` nor in ``__cause__``."""
        exceptions = importlib.import_module("litellm.exceptions")
        original = getattr(error, "original_exception", None)
        if (
            decoder.events
            and not decoder.complete
            and isinstance(error, exceptions.MidStreamFallbackError)
            and isinstance(original, exceptions.APIConnectionError)
            and _is_cut(mapped_error(error))
        ):
            return self.incomplete(decoder)
        return error

    def is_transient(self, exc: BaseException) -> bool:
        """A ``MidStreamFallbackError`` by the error litellm mapped into it (its own
        status, 500 for any read error, says nothing: an unparsable event is not
        transient, an error event is by its type); others as
        :func:`~streamkit.providers.is_transient_error`."""
        exceptions = importlib.import_module("litellm.exceptions")
        if isinstance(exc, exceptions.MidStreamFallbackError):
            mapped = mapped_error(exc)
            if mapped is not None and not _is_cut(mapped):
                return is_transient_error(mapped)
        return is_transient_error(exc)


def mapped_error(error: BaseException) -> BaseException | None:
    """The exception litellm mapped into ``error`` (a ``MidStreamFallbackError`` or one
    of its other exceptions): the first exception not of litellm's own in the
    ``original_exception``, ``__cause__`` and ``__context__`` chain, or ``None``.

    litellm raises its mapped exception inside the ``except`` block that caught the
    provider SDK's error (or, for a body that ended before a finish reason, the
    ``StopIteration`` of the SDK stream), so that error is its ``__context__``."""
    current: BaseException | None = error
    for _ in range(6):
        if current is None:
            return None
        if not type(current).__module__.startswith("litellm"):
            return current
        current = (
            getattr(current, "original_exception", None) or current.__cause__ or current.__context__
        )
    return None


def _is_cut(mapped: BaseException | None) -> bool:
    """Whether litellm's mapped error is a cut stream: the end of the body before a finish
    reason (the SDK stream's ``StopIteration``), a dropped connection, or unknown (an
    ``APIConnectionError`` says connection, so unknown counts as a cut)."""
    if mapped is None or isinstance(mapped, StopIteration | StopAsyncIteration):
        return True
    return is_connection_cut(mapped)
