"""``tee_audio_text``: one stream split into its audio bytes and its text."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, Literal, NamedTuple, TypeVar

from reactivex import Observable, abc
from reactivex import operators as rx_ops

from streamkit._models import Chunk
from streamkit.ops._share_replay import SharedReplay

__all__ = ["AudioText", "TeeSide", "tee_audio_text"]

T = TypeVar("T")
Side = Literal["audio", "text"]


class _Piece(NamedTuple):
    """What one chunk contributes to each side (empty when nothing)."""

    audio: bytes
    text: str


def _piece_of(chunk: Chunk) -> _Piece:
    return _Piece(chunk.audio or b"", (chunk.audio_transcript or "") + chunk.content)


def _has_any(piece: _Piece) -> bool:
    return bool(piece.audio or piece.text)


def _audio_of(piece: _Piece) -> bytes:
    return piece.audio


def _text_of(piece: _Piece) -> str:
    return piece.text


def _non_empty(value: object) -> bool:
    return bool(value)


class _Tee:
    """The shared upstream of both sides and the rule for connecting it."""

    def __init__(self, source: Observable[Chunk]) -> None:
        # Only the two small pieces of each chunk are kept for replay, not the chunk.
        pieces = source.pipe(rx_ops.map(_piece_of), rx_ops.filter(_has_any))
        self.shared: SharedReplay[_Piece] = SharedReplay(pieces)
        self._lock = threading.Lock()
        self._sides_seen: set[Side] = set()

    def side_subscribed(self, side: Side, scheduler: abc.SchedulerBase | None) -> None:
        with self._lock:
            self._sides_seen.add(side)
            both = len(self._sides_seen) == 2
        if both:
            self.shared.connect(scheduler)


class TeeSide(Observable[T], Generic[T]):
    """One side of :func:`tee_audio_text`: an observable that, like a
    ``ConnectableObservable``, also has :meth:`connect`.

    A subscriber that arrives after the upstream connected first receives what it
    missed, so nothing of either side is lost to a late subscriber.
    """

    def __init__(self, tee: _Tee, side: Side, pick: Callable[[_Piece], T]) -> None:
        self._tee = tee
        self._side: Side = side
        self._values: Observable[T] = Observable(self._add).pipe(
            rx_ops.map(pick), rx_ops.filter(_non_empty)
        )
        super().__init__(self._subscribe)

    def _add(
        self, observer: abc.ObserverBase[_Piece], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        return self._tee.shared.add(observer)

    def _subscribe(
        self, observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        subscription = self._values.subscribe(observer, scheduler=scheduler)
        self._tee.side_subscribed(self._side, scheduler)
        return subscription

    def connect(self, scheduler: abc.SchedulerBase | None = None) -> abc.DisposableBase:
        """Connect the upstream now (once for both sides), without waiting for the other
        side to be subscribed. Disposing the result disposes upstream for both sides
        (their subscribers then get a :class:`~streamkit.StreamError`)."""
        return self._tee.shared.connect(scheduler)


class AudioText(NamedTuple):
    """The two sides of :func:`tee_audio_text`: ``audio, text = ops.tee_audio_text(s)``."""

    audio: TeeSide[bytes]
    """The audio bytes, in order (empty pieces dropped)."""
    text: TeeSide[str]
    """The text: each chunk's audio transcript then its content (empty pieces dropped)."""

    def connect(self, scheduler: abc.SchedulerBase | None = None) -> abc.DisposableBase:
        """Connect the shared upstream now (see :meth:`TeeSide.connect`)."""
        return self.audio.connect(scheduler)


def tee_audio_text(source: Observable[Chunk]) -> AudioText:
    """Split one chunk stream into its audio and its text, fed by a single request.

    ``audio, text = ops.tee_audio_text(stream)``: ``audio`` emits the chunks' audio
    bytes in order, ``text`` the text (for an audio response its transcript, otherwise
    its content: per chunk, ``audio_transcript`` then ``content``). Empty pieces are
    dropped.

    - **Connection**: upstream is subscribed once, when both sides have been
      subscribed, or earlier by an explicit ``.connect()`` (on the tuple or either
      side). Either side subscribed later first receives what it missed.
    - **Disposal**: one side disposing does not affect the other; when every
      subscriber of both sides has disposed before completion, upstream is disposed
      (the HTTP response is closed). Nothing ever makes a second request.
    - **Memory**: the audio bytes and text of the whole stream are kept for late
      subscribers (not the chunks themselves), as a ``CallResponse`` would hold them.

    Example:
        ```python
        audio, text = ops.tee_audio_text(stream)
        audio.subscribe(player.write)
        text.subscribe(print)  # connects: both sides are subscribed
        ```
    """
    if not isinstance(source, Observable):
        raise TypeError(f"tee_audio_text expects an Observable of chunks, not {source!r}")
    tee = _Tee(source)
    return AudioText(audio=TeeSide(tee, "audio", _audio_of), text=TeeSide(tee, "text", _text_of))
