"""The core of the fast paths of the SDKs Stainless generates: openai, anthropic and groq
(taken by default where they can run, :func:`choose_fast`; ``fast=True`` asks for one).

Those SDKs share one design: a resource's ``with_streaming_response`` makes the request
(authentication, ``base_url``, retries, status errors) and hands back the HTTP response
unread; their ``Stream`` splits its bytes into server-sent events by one
``SSEDecoder``, decodes each event's JSON with ``json.loads`` and builds a pydantic
object of it with ``client._process_response_data``. Most of an SDK's time per event
goes into that object and the line-by-line splitting. A fast path keeps the request and
reads the response itself:

- :class:`FastStream` / :class:`AsyncFastStream` read the response's bytes; a read error
  becomes what the SDK makes of it (:meth:`EventReader.read_error`), and what is left of
  the body after the end (``data: [DONE]``) is read or not as the SDK does
  (:meth:`EventReader.rest`, :meth:`EventReader.arest`);
- an :class:`EventReader` (one per SDK) splits the bytes with
  :class:`~streamkit.providers._sse.SSESplitter`, decodes each event with orjson
  (:func:`loads`) and applies the SDK ``Stream``'s own rules (which events are skipped,
  which end the stream, which raise what), yielding :data:`RawEvent` pairs: the JSON and
  an :class:`SDKObjectBuilder`;
- the provider's fast decoder reads the normalized fields straight from the JSON and
  makes a :class:`LazyChunk`, whose ``chunk`` (the SDK's object) is built by the SDK's own
  ``_process_response_data`` on first read, so it equals the SDK path's object. Events of
  any shape the decoder does not read itself are built at once and decoded as on the SDK
  path.

What differs per SDK (its internals, its event rules, its error types) lives in the
provider's package: ``_sdk`` (the SDK internals, in one module, with a clear error naming
the SDK version when one is missing) and ``fast`` (the reader, decoder and adapter).

The pieces that assume nothing of a Stainless SDK (:class:`LazyChunk`,
:class:`SDKObjectBuilder`, :class:`Built`, :func:`construct_lazy`, :func:`check_fast`,
:func:`choose_fast`, :func:`require_orjson`) also serve the fast path of mistralai, a
Speakeasy-generated SDK with its own streaming (:mod:`streamkit.providers.mistral.fast`).
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import PrivateAttr, SerializationInfo, SerializerFunctionWrapHandler, model_serializer

from streamkit._models import Chunk, construct_chunk_with
from streamkit.providers._sse import SSESplitter

try:
    import orjson
except ImportError:  # fast=True explains that; fast=None (auto) reads with the SDK
    orjson = None  # type: ignore[assignment]

__all__ = [
    "AsyncFastStream",
    "EventReader",
    "FastAdapter",
    "FastStream",
    "LazyChunk",
    "RawEvent",
    "SDKObjectBuilder",
    "check_fast",
    "choose_fast",
    "construct_lazy",
    "loads",
    "missing_internals",
    "require_orjson",
]


def require_orjson() -> None:
    """Raise ``ImportError`` (before any request) when orjson is not installed."""
    if orjson is None:
        raise ImportError(
            "fast=True decodes with orjson, which is not installed: pip install orjson"
        )


def check_fast(value: object) -> bool | None:
    """``fast=`` as given to ``sk.stream``: ``True``, ``False`` or ``None`` (auto), else
    ``TypeError``."""
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"fast must be a bool or None, not {value!r}")
    return value


class FastAdapter(Protocol):
    """What :func:`choose_fast` asks of a fast adapter."""

    def require_runnable(self) -> None:
        """Raise ``ImportError`` when the fast path cannot run here."""


def choose_fast(
    value: object,
    fast_adapter: Callable[[], FastAdapter],
    logger: logging.Logger,
) -> bool:
    """Whether a stream with ``fast=value`` is read by the fast path, decided once when
    the stream is built (``TypeError`` for a value that is not a bool or ``None``).

    ``True`` and ``False`` are obeyed (``True`` raises later, before any request, where
    the fast path cannot run). ``None`` (auto, the default) takes the fast path unless
    ``fast_adapter()`` cannot be imported or its :meth:`FastAdapter.require_runnable`
    raises (orjson missing, an SDK whose internals are not the ones the fast path was
    written for): then the SDK path, with a DEBUG line on ``logger`` saying why.
    """
    fast = check_fast(value)
    if fast is not None:
        return fast
    try:
        fast_adapter().require_runnable()
    except ImportError as error:
        logger.debug("fast=None (auto) takes the SDK path: %s", error)
        return False
    return True


def missing_internals(classes: Iterable[type], names: Iterable[str]) -> list[str]:
    """The ``names`` some of the SDK client ``classes`` lack: neither an attribute of
    the class nor an instance attribute one of its bases annotates (``__init__`` sets
    those)."""
    return list(_missing_internals(tuple(classes), tuple(names)))


# Cached: every stream checks (fast=None decides by it), and the installed SDK's classes
# do not change under a process.
@cache
def _missing_internals(classes: tuple[type, ...], names: tuple[str, ...]) -> tuple[str, ...]:
    missing: list[str] = []
    for name in names:
        for cls in classes:
            annotated = any(name in vars(base).get("__annotations__", {}) for base in cls.__mro__)
            if not (hasattr(cls, name) or annotated):
                missing.append(f"{cls.__qualname__}.{name}")
    return tuple(missing)


def loads(raw: bytes) -> Any:
    """orjson, or ``json.loads`` of the text for what orjson refuses (NaN, huge
    integers, lone surrogates, bad UTF-8): the value or the error is then the SDK's."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw.decode("utf-8"))


class SDKObjectBuilder(ABC):
    """Builds the SDK's object of one event from its decoded JSON, exactly as the SDK's
    ``Stream`` does (each SDK's ``_sdk`` module implements :meth:`__call__`). One per
    stream, shared by its events.

    ``eager``: every object must be built as its event arrives (a client that validates
    responses strictly raises where the SDK raises; a traced client's observer gets each
    object); the decoders then decode the built object as on the SDK path.
    """

    __slots__ = ("client", "eager", "response")

    def __init__(self, client: Any, response: Any, *, eager: bool = False) -> None:
        self.client = client
        self.response = response
        self.eager = eager

    @abstractmethod
    def __call__(self, data: Any) -> Any:
        """The SDK's object of an event whose JSON is ``data``."""

    def __deepcopy__(self, memo: dict[int, Any]) -> SDKObjectBuilder:
        # A factory over the client and its response (locks, sockets): shared by copies.
        return self


class Built(SDKObjectBuilder):
    """The builder of an object already built (an eager event's): gives it back."""

    __slots__ = ("built",)

    def __init__(self, built: Any) -> None:
        super().__init__(None, None, eager=True)
        self.built = built

    def __call__(self, data: Any) -> Any:
        """The object built already."""
        return self.built


RawEvent = tuple[Any, SDKObjectBuilder]
"""What a fast stream yields per event: the decoded JSON and how to build its SDK object."""


class LazyChunk(Chunk):
    """A fast path's chunk: every field as on the SDK path, with ``chunk`` (the SDK's
    object) built on its first read from the event's JSON.

    Each provider's lazy chunk type derives from the provider's chunk type and from this,
    in that order (``class LazyOpenAIChunk(OpenAIChunk, LazyChunk)``), so it is that type,
    follows its rules and keeps its ``chunk`` field, which has no default (a subclass
    that would give it one is refused when it is defined). ``raw_json`` is the event's
    JSON, as decoded (read it to get a raw field without building the SDK object).
    Serializing (``model_dump``) builds ``chunk`` first, so a dump is the SDK path's.
    Two threads reading ``chunk`` at once may both build it; they build equal objects
    and one is kept.

    Why ``chunk`` is lazy through ``__getattr__``: ``Chunk`` is a frozen pydantic model
    and ``chunk`` one of its fields. A ``functools.cached_property`` of that name on a
    subclass is taken by pydantic as the field's new default, so it cannot be used.
    Instead the field is simply left unset (pydantic's ``model_construct`` leaves a field
    without default unset), and Python calls ``__getattr__`` only for an attribute that
    is not there: the first read of ``chunk`` builds the object and stores it in the
    instance's ``__dict__``, where later reads find it directly. No other name is handled
    (everything else goes to pydantic's own ``__getattr__``), nothing is forwarded to
    another object.
    """

    _event: RawEvent = PrivateAttr()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse a subclass whose ``chunk`` field has a default: it would be filled in
        at construction and never built from the event."""
        super().__pydantic_init_subclass__(**kwargs)
        if not cls.model_fields["chunk"].is_required():
            raise TypeError(
                f"{cls.__qualname__}: the lazy chunk's `chunk` field must have no default; "
                "list the provider's chunk type first among the bases"
            )

    @property
    def raw_json(self) -> Any:
        """The event's JSON as decoded."""
        # Straight from pydantic's store of private attributes: ``self._event`` goes
        # through pydantic's __getattr__, whose hasattr() on the private attribute's
        # descriptor raises and catches an AttributeError each time (~20 us a read
        # when streaming, most of a fold's cost per event).
        return self.__pydantic_private__["_event"][0]  # type: ignore[index]

    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            if name != "chunk":
                return super().__getattr__(name)
            data, build = self.__pydantic_private__["_event"]  # see raw_json
            built = build(data)
            self.__dict__["chunk"] = built  # later reads find it without this hook
            self.__pydantic_fields_set__.add("chunk")  # as on the SDK path: it is set
            return built

        def __getstate__(self) -> dict[Any, Any]:
            # Pickled with the SDK object built; the builder (client, response) stays.
            self.chunk  # noqa: B018 - build it
            state = super().__getstate__()
            state["__pydantic_private__"] = {"_event": (self._event[0], None)}
            return state

    @model_serializer(mode="wrap")
    def _serialize_built(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> Any:
        self.chunk  # noqa: B018 - build it, so the dump holds the SDK path's object
        return handler(self)


LazyT = TypeVar("LazyT", bound=LazyChunk)


def construct_lazy(chunk_type: type[LazyT], event: RawEvent, values: dict[str, Any]) -> LazyT:
    """A lazy chunk of ``values`` (a fresh dict, every field but ``chunk`` in declaration
    order, as the decoders give them) holding ``event``: what
    ``chunk_type.model_construct(**values)`` then setting ``_event`` gives
    (:func:`~streamkit._models.construct_chunk_with`)."""
    return construct_chunk_with(chunk_type, values, {"_event": event})


class EventReader(ABC):
    """One SDK ``Stream``'s rules over the events of one response (a subclass per SDK):
    which events are skipped, which end the stream (:attr:`done`), which raise what, and
    what a read error becomes.

    Also the hooks of an SDK that reports a stream's progress to an observer (the
    anthropic SDK's tracing): :meth:`begin` and :meth:`end`, no-ops by default.
    """

    __slots__ = ("build", "done", "response", "splitter")

    def __init__(self, build: SDKObjectBuilder, response: Any) -> None:
        self.build = build
        self.response = response
        self.splitter = SSESplitter()
        self.done = False

    @abstractmethod
    def events(self, chunk: bytes) -> Iterable[RawEvent]:
        """The events completed by ``chunk`` (bytes of the body), as the SDK's stream
        yields them; sets :attr:`done` at the event that ends the stream."""

    @abstractmethod
    def read_error(self, error: Exception) -> Exception | None:
        """What the SDK raises for ``error``, raised while reading the body (``None``:
        ``error`` itself)."""

    def rest(self, chunks: Iterator[bytes]) -> None:
        """Once :attr:`done`: read what the SDK reads of the rest of the body (default:
        nothing; the response is closed)."""
        return

    async def arest(self, chunks: AsyncIterator[bytes]) -> None:
        """The async form of :meth:`rest`."""
        return

    def begin(self) -> None:
        """The stream starts to read events."""
        return

    def end(self, error: Exception | None) -> None:
        """The stream read its body to the end (``error`` None) or failed."""
        return


class FastStream:
    """A fast path's sync stream over the SDK's own streaming response: iterates the
    :data:`RawEvent` pairs of its :class:`EventReader`; ``close()`` releases the
    connection. ``response`` is the HTTP response (for
    :func:`streamkit._source.shutdown_socket`)."""

    def __init__(self, api_response: Any, reader: EventReader) -> None:
        self.api_response = api_response
        self.response = api_response.http_response
        self.reader = reader

    def __iter__(self) -> Iterator[RawEvent]:
        reader = self.reader
        chunks = self.response.iter_bytes()
        reader.begin()
        try:
            while True:
                try:
                    chunk = next(chunks)
                except StopIteration:
                    break
                except Exception as error:
                    wrapped = reader.read_error(error)
                    if wrapped is None:
                        raise
                    raise wrapped from error
                yield from reader.events(chunk)
                if reader.done:
                    reader.rest(chunks)
                    break
        except Exception as error:
            reader.end(error)
            raise
        reader.end(None)

    def close(self) -> None:
        """Close the HTTP response."""
        self.api_response.close()


class AsyncFastStream:
    """The async form of :class:`FastStream`; ``aclose()`` releases the connection."""

    def __init__(self, api_response: Any, reader: EventReader) -> None:
        self.api_response = api_response
        self.response = api_response.http_response
        self.reader = reader

    async def __aiter__(self) -> AsyncIterator[RawEvent]:
        reader = self.reader
        chunks = self.response.aiter_bytes()
        reader.begin()
        try:
            while True:
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    break
                except Exception as error:
                    wrapped = reader.read_error(error)
                    if wrapped is None:
                        raise
                    raise wrapped from error
                for event in reader.events(chunk):
                    yield event
                if reader.done:
                    await reader.arest(chunks)
                    break
        except Exception as error:
            reader.end(error)
            raise
        reader.end(None)

    async def aclose(self) -> None:
        """Close the HTTP response."""
        await self.api_response.close()
