"""Faults: the ways a reply can be broken on the wire (see :class:`Fault`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast

from streamkit.testing.replay._payloads import (
    MALFORMED_KINDS,
    MalformedKind,
    error_event,
    first_text_event,
    large_event_text,
    malformed_event,
    with_text,
)
from streamkit.testing.transcripts import Transcript


@dataclass(frozen=True)
class Fault:
    """A way to break a reply on the wire.

    A :class:`Reply` carries at most one ``Fault``, and replies are taken one per
    request, so each attempt of a retry can meet a different fault.  The fields
    combine freely (except ``http_error``, which replaces the stream); each one
    left at its default does nothing.

    **What is sent** (positions count the transcript's own events):

    Attributes:
        end_after_events: send the transcript's first ``n`` events, then end the
            HTTP body properly (the chunked body's last chunk): a stream that ends
            cleanly without its terminal event, the connection still usable.
            Contrast ``close_after_events``, which drops the connection mid-body.
        malformed: ``(n, kind)``: insert a malformed event before the
            transcript's event ``n``; ``kind`` is ``"broken_json"`` (a data line
            cut in the middle of its JSON), ``"unknown_event"`` (a well-formed
            event of a type the provider does not send, as a newer API version
            might) or ``"foreign_event"`` (a text delta in another provider's
            format).  See :func:`malformed_event`.
        error_event_after: send the transcript's first ``n`` events, then the
            provider's mid-stream error event (an overload: Anthropic's
            ``event: error`` with ``overloaded_error``, OpenAI-style
            ``data: {"error": ...}``, Groq's ``event: error``...; see
            :func:`error_event`), then end the body properly.
        large_event: insert a copy of the transcript's first text delta right
            after it, its text replaced by ``large_event`` characters of ASCII
            filler (:func:`large_event_text`): one absurdly large but valid event.
        http_error: answer with this HTTP status and the provider's JSON error
            body (:func:`error_body`) instead of the stream.  Only ``headers``
            and ``stall_before`` (waited before the answer) apply with it.
        headers: extra response headers, e.g. ``{"retry-after": "1"}`` (given as a
            mapping; kept as sorted pairs so a ``Fault`` stays hashable).

    **How it is sent** (positions count events as sent, inserted ones included):

    Attributes:
        close_after_events: send this many events, then close the connection
            cleanly (FIN) without the rest of the body: no further events and no
            end of the chunked body, so the stream is cut without its terminal
            event.  A value at or past the number of events sends them all and
            still drops the connection before the end of the HTTP body.
        reset_after_events: send this many events, then reset the connection
            (``SO_LINGER`` 0, then close: the client gets a TCP RST).
        stall_before: seconds to wait after the response headers and before the
            first event (a slow time-to-first-token).
        stall_after_events: ``(n, seconds)``: after ``n`` events, wait
            ``seconds`` before going on (``n`` equal to the number of events
            stalls before the end of the body).
        trickle: send the body one byte at a time (chunk framing included),
            waiting this many seconds between bytes (0: no wait, but still one
            write per byte).
        trickle_bytes: trickle only the first this many bytes of the body, then
            send the rest as usual (``None``: the whole body).  Each trickled byte
            costs the client a read, so a long body trickled whole is slow.

    While stalling or trickling the server watches the socket and stops as soon
    as the client goes away.  When both a close and a reset are given, the one
    with fewer events happens (a reset on a tie).  :meth:`events_for` gives the
    events a fault sends, so a test can compute what a client should receive.
    """

    close_after_events: int | None = None
    reset_after_events: int | None = None
    stall_before: float = 0.0
    stall_after_events: tuple[int, float] | None = None
    end_after_events: int | None = None
    malformed: tuple[int, MalformedKind] | None = None
    error_event_after: int | None = None
    large_event: int | None = None
    trickle: float | None = None
    trickle_bytes: int | None = None
    http_error: int | None = None
    headers: Mapping[str, str] | tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for name in (
            "close_after_events",
            "reset_after_events",
            "end_after_events",
            "error_event_after",
        ):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"Fault.{name} must be >= 0, got {value}")
        if self.stall_before < 0:
            raise ValueError(f"Fault.stall_before must be >= 0, got {self.stall_before}")
        if self.stall_after_events is not None:
            n, seconds = self.stall_after_events
            if n < 0 or seconds < 0:
                raise ValueError(
                    f"Fault.stall_after_events must be (n >= 0, seconds >= 0), "
                    f"got {self.stall_after_events}"
                )
        if self.malformed is not None:
            at, kind = self.malformed
            if at < 0 or kind not in MALFORMED_KINDS:
                raise ValueError(
                    f"Fault.malformed must be (n >= 0, one of {', '.join(MALFORMED_KINDS)}), "
                    f"got {self.malformed!r}"
                )
        if self.large_event is not None and self.large_event < 1:
            raise ValueError(f"Fault.large_event must be >= 1 characters, got {self.large_event}")
        if self.trickle is not None and self.trickle < 0:
            raise ValueError(f"Fault.trickle must be >= 0 seconds, got {self.trickle}")
        if self.trickle_bytes is not None and self.trickle_bytes < 0:
            raise ValueError(f"Fault.trickle_bytes must be >= 0, got {self.trickle_bytes}")
        if self.http_error is not None:
            if not 400 <= self.http_error <= 599:
                raise ValueError(
                    f"Fault.http_error must be a 4xx or 5xx status, got {self.http_error}"
                )
            stream_faults = [
                name
                for name in (
                    "close_after_events",
                    "reset_after_events",
                    "stall_after_events",
                    "end_after_events",
                    "malformed",
                    "error_event_after",
                    "large_event",
                    "trickle",
                    "trickle_bytes",
                )
                if getattr(self, name) is not None
            ]
            if stream_faults:
                raise ValueError(
                    "Fault.http_error replaces the stream, so it cannot be combined with "
                    + ", ".join(stream_faults)
                )
        pairs = self.headers.items() if isinstance(self.headers, Mapping) else self.headers
        # Frozen: normalize through object.__setattr__, once, at construction.
        object.__setattr__(self, "headers", tuple(sorted((str(k), str(v)) for k, v in pairs)))

    def header_items(self) -> tuple[tuple[str, str], ...]:
        """The extra response headers as ``(name, value)`` pairs."""
        return cast(tuple[tuple[str, str], ...], self.headers)

    def cut(self) -> tuple[int, Literal["close", "reset"]] | None:
        """Where the connection is cut: ``(events sent before, "close" | "reset")``."""
        close, reset = self.close_after_events, self.reset_after_events
        if reset is not None and (close is None or reset <= close):
            return reset, "reset"
        if close is not None:
            return close, "close"
        return None

    def stall_at(self, index: int) -> float:
        """Seconds to stall just before event ``index`` (after ``index`` events)."""
        total = 0.0
        if index == 0:
            total += self.stall_before
        if self.stall_after_events is not None and self.stall_after_events[0] == index:
            total += self.stall_after_events[1]
        return total

    def events_for(self, transcript: Transcript) -> list[str]:
        """The events this fault makes the server send for ``transcript``, in order,
        before any cut, stall or trickle (``[]`` with ``http_error``).

        The transcript's events are kept up to ``end_after_events`` or
        ``error_event_after`` (whichever is smaller), then the error event is
        appended, then the malformed and large events are inserted at their
        positions in the transcript.
        """
        if self.http_error is not None:
            return []
        original = list(transcript.events)
        keep = len(original)
        for limit in (self.end_after_events, self.error_event_after):
            if limit is not None:
                keep = min(keep, limit)
        inserted: dict[int, list[str]] = {}
        if self.large_event is not None:
            found = first_text_event(transcript)
            if found is None:
                raise ValueError(f"transcript {transcript.name!r} has no text event to enlarge")
            index, event = found
            inserted.setdefault(index + 1, []).append(
                with_text(event, transcript.api, large_event_text(self.large_event))
            )
        if self.malformed is not None:
            at, kind = self.malformed
            inserted.setdefault(at, []).append(malformed_event(transcript, kind))
        events: list[str] = []
        for index in range(keep + 1):
            events.extend(inserted.get(index, ()))
            if index < keep:
                events.append(original[index])
        if self.error_event_after is not None:
            events.append(error_event(transcript))
        return events
