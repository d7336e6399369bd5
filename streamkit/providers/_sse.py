"""Server-sent events split from raw bytes, by the rules of the Stainless-generated SDKs
(openai, anthropic, groq share one ``SSEDecoder``): the splitter of every fast path
(:mod:`streamkit.providers._stainless`). Pure: no SDK, no I/O."""

from __future__ import annotations

import contextlib

__all__ = ["SSESplitter"]


class SSESplitter:
    """Splits SSE bytes into ``(event name, data)`` pairs by the rules of the Stainless
    SDKs' ``SSEDecoder`` (openai, anthropic, groq): CR, LF and CRLF line ends (also
    across reads), ``:`` comments, one leading space stripped from a value, ``data``
    lines joined with ``\\n``, an event dispatched at a blank line when it has an event
    name, data, an id or a retry (the last event id is kept across events, as the SDK
    keeps it).

    ``data`` lines stay bytes (orjson reads bytes; it checks their UTF-8); other lines
    are decoded as strict UTF-8 as the SDK decodes every line.
    """

    __slots__ = ("_data", "_event", "_last_event_id", "_partial", "_retry", "_skip_lf")

    def __init__(self) -> None:
        self._partial = b""
        self._skip_lf = False
        self._data: list[bytes] = []
        self._event: str | None = None
        self._retry: int | None = None
        self._last_event_id: str | None = None

    def feed(self, chunk: bytes) -> list[tuple[str | None, bytes]]:
        """The events completed by ``chunk`` (a line may be split across reads)."""
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":  # the LF of a CRLF split between two reads
                chunk = chunk[1:]
        if self._partial:
            chunk = self._partial + chunk
            self._partial = b""
        if not chunk:
            return []
        lines = chunk.splitlines()  # bytes split on \r, \n and \r\n only
        last = chunk[-1]
        if last == 13:
            self._skip_lf = True
        elif last != 10:
            self._partial = lines.pop()
        events: list[tuple[str | None, bytes]] = []
        # The event being read is kept in locals (written back at the end and around
        # _field, which reads and sets the rest): a few attribute writes less per event.
        data = self._data
        name = self._event
        for line in lines:
            if not line:
                if name or data or self._last_event_id or self._retry is not None:
                    events.append((name or None, data[0] if len(data) == 1 else b"\n".join(data)))
                    name = None
                    data = []
                    self._retry = None
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value[:1] == b" " else value)
            elif line.startswith(b"event:"):  # as _field's, without its other checks
                text = line.decode("utf-8")[6:]  # the whole line, as the SDK decodes it
                name = text[1:] if text[:1] == " " else text
            else:
                self._data = data
                self._event = name
                self._field(line.decode("utf-8"))
                data = self._data
                name = self._event
        self._data = data
        self._event = name
        return events

    def _field(self, line: str) -> None:
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value.encode("utf-8"))
        elif name == "id":
            if "\0" not in value:
                self._last_event_id = value
        elif name == "retry":
            with contextlib.suppress(ValueError):  # the SDK ignores a bad retry too
                self._retry = int(value)
