"""The adapter protocol: what a provider module supplies, and nothing more.

An adapter opens the SDK's stream (sync or async), decodes each SDK event into zero or
more :class:`~streamkit._models.Chunk` (through a per-stream :class:`Decoder`, which also
knows whether the provider's terminal event arrived) and classifies errors as transient
or not. The rules the reducer applies to a provider's chunks (its finish-reason table and
message builder) are class attributes of its chunk type (:class:`~streamkit.Chunk`).
Lifetimes, threads and cancellation belong to :mod:`streamkit._source`.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import json
import os
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from functools import cache
from typing import Any, ClassVar, Literal

from streamkit._errors import IncompleteStreamError, MissingAPIKeyError
from streamkit._messages import Message
from streamkit._models import Chunk

__all__ = [
    "CONTINUE_INSTRUCTION",
    "Decoder",
    "ProviderAdapter",
    "assistant_prefill",
    "cut_stream_error",
    "describe_client",
    "is_connection_cut",
    "is_near_miss",
    "is_transient_error",
    "unknown_keyword_error",
]


class Decoder(ABC):
    """Per-stream state that turns SDK events into chunks.

    ``complete`` becomes true once the provider's terminal event has been decoded; a
    stream that ends before that is reported as :class:`IncompleteStreamError`.
    """

    def __init__(self) -> None:
        self.complete = False
        self.events = 0

    @abstractmethod
    def decode(self, event: Any) -> list[Chunk]:
        """Decode one SDK event (may yield no chunk, e.g. a ping)."""

    def opened(self, sdk_stream: Any) -> None:
        """The request was made: ``sdk_stream`` is what the adapter's ``open`` returned
        (called once, before the first :meth:`decode`; default: nothing to keep). For a
        decoder that must ask the SDK's stream about what its events do not say."""
        return

    def end(self) -> None:
        """The SDK's stream ended without an error (default: nothing more is known).

        A decoder whose terminal condition is only visible as the end itself (the
        chat-completions ``data: [DONE]``, which the SDKs consume) sets
        :attr:`complete` here.
        """
        return


CLIENT_OPTIONS = frozenset(
    {
        "base_url",
        "api_key",
        "organization",
        "project",
        "max_retries",
        "default_headers",
        "http_client",
        "endpoint",
        "credential",
        "server_url",
    }
)
"""Keyword arguments that configure an SDK client, not a call."""


@cache
def _parameters(method: str) -> tuple[frozenset[str], bool] | None:
    """The keyword parameters of ``"module:Class.method"``, and whether it also takes
    ``**kwargs`` (``None``: unknown)."""
    module_name, _, attribute = method.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
        signature = inspect.signature(target)
    except (ImportError, AttributeError, TypeError, ValueError):
        return None
    parameters = signature.parameters.values()
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    named = frozenset(
        p.name
        for p in parameters
        if p.name != "self"
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    )
    return named, takes_kwargs


NEAR_MISS = 0.85
"""How close (``difflib`` ratio) an unknown keyword must be to a known one to be taken
for a typo of it where unknown keywords are otherwise passed on (``max_token`` is 0.95
from ``max_tokens``; ``top_k``, a real parameter of some providers, 0.8 from ``top_p``)."""


def unknown_keyword_error(
    key: str, known: Collection[str], where: str, *, note: str = ""
) -> TypeError:
    """The ``TypeError`` for an unknown keyword argument ``key``: it names the call
    (``where``), a "did you mean" from ``known`` when one is close, then ``note``."""
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return TypeError(f"unknown keyword argument {key!r} for {where}{hint}{note}")


def is_near_miss(key: str, known: Collection[str]) -> bool:
    """Whether ``key`` looks like a typo of one of ``known`` (see :data:`NEAR_MISS`)."""
    return bool(difflib.get_close_matches(key, sorted(known), n=1, cutoff=NEAR_MISS))


def describe_client(client: Any) -> str:
    """A client named for an error message by its type only, never its repr: a
    ``functools.partial`` of ``litellm.completion`` shows its ``api_key=`` in its repr,
    and some SDK clients show their options."""
    if isinstance(client, type):
        return f"the class {client.__module__}.{client.__qualname__} (not an instance)"
    kind = type(client)
    name = f"{kind.__module__}.{kind.__qualname__}"
    func = getattr(client, "func", None)  # functools.partial: name what it wraps
    if isinstance(client, functools.partial) and func is not None:
        inner = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', '?')}"
        return f"a functools.partial of {inner}"
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


_TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
_TRANSIENT_TYPES = frozenset(
    {
        "overloaded_error",
        "api_error",
        "rate_limit_error",
        "server_error",
        "timeout_error",
        "internal_server_error",
        "service_unavailable",
    }
)
# httpx / httpx2, aiohttp and requests errors for a connection dropped in the middle of a body.
_CONNECTION_CUT_NAMES = frozenset(
    {
        "RemoteProtocolError",
        "ReadError",
        "ClientPayloadError",
        "ServerDisconnectedError",
        "ChunkedEncodingError",  # requests (azure-ai-inference's sync transport)
    }
)
_TRANSPORT_ERROR_NAMES = frozenset(
    {
        "ReadError",
        "WriteError",
        "ConnectError",
        "RemoteProtocolError",
        "ReadTimeout",
        "ConnectTimeout",
        "PoolTimeout",
        "APIConnectionError",
        "APITimeoutError",
    }
)


def _error_type(exc: BaseException) -> str | None:
    """The provider's error type (``overloaded_error``...) carried by an SDK exception."""
    for attr in ("type", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, str):
            return value
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping):
            for key in ("type", "code", "status"):
                value = error.get(key)
                if isinstance(value, str):
                    return value
    return None


def _carried_status(exc: BaseException) -> int | None:
    """An HTTP status carried inside an error event of a 200 stream: OpenRouter's numeric
    ``error.code`` (502, 429...), Groq's ``status_code`` in the error body."""
    candidates: list[object] = [getattr(exc, "code", None)]
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping):
            candidates += [error.get("code"), error.get("status_code")]
    for value in candidates:
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
            return value
    return None


def is_timeout_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) is a timeout of the SDK's or
    its HTTP client's (httpx ``ReadTimeout``, ``APITimeoutError``, litellm's
    ``Timeout``, azure-core's ``ServiceResponseTimeoutError``...)."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, TimeoutError):
            return True
        if any("Timeout" in cls.__name__ for cls in type(error).__mro__):
            return True
        error = error.__cause__ or error.__context__
    return False


def is_transient_error(exc: BaseException) -> bool:
    """Whether a new request may succeed where this error failed.

    Transient: connection and read errors (a body cut short included: aiohttp's
    ``ClientPayloadError``, requests' ``ChunkedEncodingError``), a stream cut before its
    terminal event, HTTP
    408/409/429/5xx/529, and error events whose type is an overload, rate limit or
    server error (these arrive with the 200 status of the stream that carried them, so
    they are classified by type, not status; an HTTP status carried in the event's body,
    as OpenRouter's numeric ``code``, counts as the status). Everything else (400, 401,
    403, 404, 422, a malformed request) is not.
    """
    if isinstance(exc, IncompleteStreamError):
        return True
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, json.JSONDecodeError):
        return False
    names = {cls.__name__ for cls in type(exc).__mro__}
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        status = getattr(getattr(exc, "response", None), "status_code", None)
    error_type = _error_type(exc)
    if error_type is not None and error_type in _TRANSIENT_TYPES:
        return True
    if not isinstance(status, int) or status == 200:
        status = _carried_status(exc)
    if isinstance(status, int) and status != 200:
        return status in _TRANSIENT_STATUS
    return bool(names & (_TRANSPORT_ERROR_NAMES | _CONNECTION_CUT_NAMES))


CONTINUE_INSTRUCTION = "Continue exactly where you stopped, without repeating anything."
"""The user message that asks a model without assistant prefill to go on (see
:meth:`ProviderAdapter.continuation_messages`)."""


def assistant_prefill(messages: list[Message], delivered: str) -> list[Message]:
    """``messages`` with ``delivered`` as the start of the assistant's answer (prefill).

    For providers that continue a final assistant message (Anthropic): the text is
    appended to a final assistant message with string content (the caller's own
    prefill, which the model's output continued), otherwise added as a new final
    assistant message.
    """
    if messages and messages[-1].get("role") == "assistant":
        last = messages[-1]
        if isinstance(last.get("content"), str):
            return [*messages[:-1], {**last, "content": last["content"] + delivered}]
    return [*messages, {"role": "assistant", "content": delivered}]


class ProviderAdapter(ABC):
    """What a provider module supplies. One instance serves every stream of a provider."""

    name: ClassVar[str]
    """The provider name used in ``sk.stream(name, ...)`` and ``Chunk.provider``."""
    terminal_event: ClassVar[str]
    """A description of the event that ends a whole stream, for error messages."""
    api_key_env: ClassVar[tuple[str, ...]] = ()
    """The environment variables the SDK's default client reads its key from (any one
    set is enough); empty when the provider has no single one (litellm: per model)."""

    sdk_method: ClassVar[str | None] = None
    """The SDK's streaming method as ``"module:Class.method"``, whose signature the keyword
    arguments of ``sk.stream`` are checked against (``None``: not checked)."""
    own_params: ClassVar[frozenset[str]] = frozenset()
    """streamkit-level keyword arguments the adapter takes itself (``api=``, ``fast=``)."""
    param_aliases: ClassVar[Mapping[str, str]] = {}
    """Common parameter names the adapter renames to the SDK's (cohere's ``stop`` ->
    ``stop_sequences``): checked under the SDK name."""
    kwargs_params: ClassVar[frozenset[str]] = frozenset()
    """The names the SDK method takes through its ``**kwargs`` (azure-core's per-request
    options): accepted like its named parameters, and (unless
    :attr:`forwards_unknown_params`) anything else is rejected."""
    forwards_unknown_params: ClassVar[bool] = False
    """Whether the SDK method passes keyword arguments it does not name on to the
    provider (litellm): then only a near miss of a named one is rejected, as a typo."""
    client_options: ClassVar[frozenset[str]] = CLIENT_OPTIONS
    """Keyword arguments that configure the SDK's client, not a call: rejected with a
    hint to build the client with them (none for litellm, which has no client)."""
    client_example: ClassVar[str] = "the SDK's client class"
    """How the SDK's client is built, for error messages (``anthropic.Anthropic``)."""
    unknown_param_note: ClassVar[str] = ""
    """Appended to the error for an unknown keyword argument (where such a parameter
    goes instead, as azure's ``model_extras``)."""
    request_on_first_read: ClassVar[bool] = False
    """Whether the SDK's stream makes its request at its first read rather than in
    :meth:`open` (cohere's and google-genai's generators): the response headers are in
    once :meth:`http_response` (or an HTTP response on the reading thread) is found,
    at the latest with the first event, not when :meth:`open` returns."""

    path: ClassVar[Literal["sdk", "fast"]] = "sdk"
    """What reads this adapter's streams: the SDK's own stream (``"sdk"``) or
    streamkit's fast path (``"fast"``); a stream tells it as
    :attr:`streamkit.Stream.path`."""

    def adapter_for(self, params: Mapping[str, Any], client: Any = None) -> ProviderAdapter:
        """The adapter that serves a stream with keyword arguments ``params`` and
        ``client`` (``None``: the default client), chosen once when the stream is built
        (default: this one). A provider with several APIs or a fast path picks among its
        adapters here by its :attr:`own_params` (OpenAI: ``api=``, ``fast=``), raising for
        a bad value before any request."""
        return self

    def check_params(self, params: Mapping[str, Any]) -> None:
        """Reject, before any request, a keyword argument the stream's call does not take
        (:meth:`accepted_params`): a client option (``base_url=``) says to configure the
        client, any other gets a "did you mean" from the names the call takes. Where the
        call passes unknown names on to the provider, only a near miss of a known name
        (``max_token``) is rejected, as a typo."""
        accepted = self.accepted_params()
        if accepted is None:
            return
        names, lenient, where = accepted
        for key in params:
            if self.param_aliases.get(key, key) in names or key in self.own_params:
                continue
            if key in self.client_options:
                raise TypeError(
                    f"{key}= is an option of the {self.name} client, not of the call: "
                    f"build the SDK client with it and pass client=... "
                    f"(e.g. client={self.client_example}({key}=...))"
                )
            if lenient and not is_near_miss(key, names):
                continue  # passed on to the provider by the SDK
            raise unknown_keyword_error(key, names, where, note=self.unknown_param_note)

    def accepted_params(self) -> tuple[frozenset[str], bool, str] | None:
        """What :meth:`check_params` checks against: the names the call takes, whether
        it passes other names on to the provider (then only near misses are rejected),
        and the call's name for the error (``None``: not checked).

        By default the signature of :attr:`sdk_method`; where it also takes
        ``**kwargs``, the names in :attr:`kwargs_params` are taken, and with
        :attr:`forwards_unknown_params` (or a ``**kwargs`` streamkit has no list for)
        other names pass on."""
        method = self.sdk_method
        signature = _parameters(method) if method else None
        if method is None or signature is None:
            return None
        named, takes_kwargs = signature
        if not takes_kwargs:
            return named, False, f"{self.name} ({method.replace(':', '.')})"
        lenient = self.forwards_unknown_params or not self.kwargs_params
        return named | self.kwargs_params, lenient, f"{self.name} ({method.replace(':', '.')})"

    def check_default_credentials(self) -> None:
        """Raise :class:`~streamkit._errors.MissingAPIKeyError` when no client was given
        and none of :attr:`api_key_env` is set (checked at ``sk.stream`` time, before
        any request: the SDKs' own errors for a missing key are late and obscure)."""
        if self.api_key_env and not any(os.environ.get(name) for name in self.api_key_env):
            raise MissingAPIKeyError(self.name, self.api_key_env)

    @abstractmethod
    def is_async_client(self, client: Any) -> bool | None:
        """Whether ``client`` is the SDK's async client (raises TypeError if foreign).

        ``None`` means the client serves both (one class for sync and async calls, such
        as ``genai.Client`` or mistralai's ``Mistral``): the stream's ``async_`` decides.
        """

    @abstractmethod
    def default_client(self, async_: bool) -> Any:
        """The SDK's default client, configured from its usual environment variables."""

    @abstractmethod
    def build_request(self, model: str, messages: list[Message], params: dict[str, Any]) -> Any:
        """The arguments of the SDK's streaming call (provider-native messages)."""

    @abstractmethod
    def open(self, client: Any, request: Any) -> Any:
        """Make the request with a sync client; return the SDK's stream (iterable)."""

    @abstractmethod
    async def open_async(self, client: Any, request: Any) -> Any:
        """Make the request with an async client; return the SDK's async stream."""

    @abstractmethod
    def new_decoder(self, request: Any) -> Decoder:
        """A fresh decoder for one stream of ``request``."""

    def single_attempt(self, client: Any, request: Any) -> tuple[Any, Any]:
        """The client and request of a request the SDK makes once, its own retries off:
        for a stream with a headers deadline, which bounds one request (streamkit's
        ``ops.retry_on_error`` and ``ops.fallback`` are the retries). Default, for the
        openai-style SDKs (openai, anthropic, groq): ``client.with_options(max_retries=0)``
        (a copy sharing the client's connection pool, made once per client)."""
        return single_attempt_client(client), request

    def http_response(self, sdk_stream: Any) -> Any:
        """The httpx response under ``sdk_stream`` (for closing its socket), if reachable."""
        return getattr(sdk_stream, "response", None)

    def close(self, sdk_stream: Any) -> None:
        """Close a sync SDK stream, releasing its connection."""
        close = getattr(sdk_stream, "close", None)
        if close is not None:
            close()

    async def close_async(self, sdk_stream: Any) -> None:
        """Close an async SDK stream, releasing its connection."""
        for name in ("aclose", "close"):
            close = getattr(sdk_stream, name, None)
            if close is not None:
                result = close()
                if hasattr(result, "__await__"):
                    await result
                return

    def is_transient(self, exc: BaseException) -> bool:
        """Whether a retry may succeed after ``exc`` (see :func:`is_transient_error`)."""
        return is_transient_error(exc)

    def continuation_messages(self, messages: list[Message], delivered: str) -> list[Message]:
        """The messages of a request that continues an answer cut after ``delivered``.

        Default (providers without assistant prefill, e.g. OpenAI chat): the delivered
        text as an assistant message, then a user message asking to continue exactly
        where it stopped (:data:`CONTINUE_INSTRUCTION`). Providers that continue a
        final assistant message override this with :func:`assistant_prefill`.
        """
        return [
            *messages,
            {"role": "assistant", "content": delivered},
            {"role": "user", "content": CONTINUE_INSTRUCTION},
        ]

    def incomplete(self, decoder: Decoder) -> IncompleteStreamError:
        """The error for a stream that ended before its terminal event."""
        return IncompleteStreamError(self.name, self.terminal_event, events=decoder.events)

    def read_error(self, decoder: Decoder, error: Exception) -> Exception:
        """The exception to raise for ``error``, raised while the stream was read.

        Default: :func:`cut_stream_error`: a connection dropped after some events and
        before the terminal one is :class:`IncompleteStreamError` (raised ``from`` the
        SDK's error), the same for every provider; any other error is the SDK's own.
        """
        return cut_stream_error(self, decoder, error)


_SINGLE_ATTEMPT_CLIENTS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_SINGLE_ATTEMPT_LOCK = threading.Lock()


def single_attempt_client(client: Any) -> Any:
    """``client.with_options(max_retries=0)`` for a client of an openai-style SDK that
    retries (made once per client and kept while it lives); any other client as it is."""
    with_options = getattr(client, "with_options", None)
    if getattr(client, "max_retries", 0) == 0 or not callable(with_options):
        return client
    with _SINGLE_ATTEMPT_LOCK:
        try:
            copy = _SINGLE_ATTEMPT_CLIENTS.get(client)
        except TypeError:  # not weakly referenceable or not hashable: not kept
            return client.with_options(max_retries=0)
        if copy is None:
            copy = _SINGLE_ATTEMPT_CLIENTS[client] = client.with_options(max_retries=0)
        return copy


def cut_stream_error(adapter: ProviderAdapter, decoder: Decoder, error: Exception) -> Exception:
    """``IncompleteStreamError`` for a connection dropped after some events and before
    the terminal one (the source raises it ``from error``); any other ``error`` unchanged.

    For SDKs (google-genai, cohere, mistralai) that raise the HTTP library's own error
    for a cut stream, which differs by library (httpx, httpx2, aiohttp) and so by sync
    or async.
    """
    if decoder.events and not decoder.complete and is_connection_cut(error):
        return adapter.incomplete(decoder)
    return error


def is_connection_cut(error: BaseException) -> bool:
    """Whether ``error`` (or its cause, as openai's ``APIConnectionError`` wraps it) is
    the HTTP library's error for a connection dropped in the middle of a body."""
    names: set[str] = set()
    cause: BaseException | None = error
    for _ in range(4):
        if cause is None:
            break
        names.update(cls.__name__ for cls in type(cause).__mro__)
        cause = cause.__cause__
    return bool(names & _CONNECTION_CUT_NAMES)
