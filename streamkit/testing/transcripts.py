"""Recorded (and a few synthetic) provider HTTP streams, bundled as package data.

A :class:`Transcript` is one HTTP response exactly as a provider sent it: status,
content type and the raw body, plus the body split into Server-Sent Events so a
replay server can send one event at a time.  The bundled files live in
``streamkit/testing/transcripts/<provider>/<name>.json`` (real recordings, see
``ATTRIBUTION.md`` there) and ``streamkit/testing/transcripts/synthetic/`` (streams
written by streamkit from the providers' documented formats, marked
``"synthetic": true``).

Names are ``"<folder>/<file stem>"``, e.g. ``"openai/chat-text-usage"`` or
``"synthetic/openai-chat-audio-pcm16"``::

    from streamkit.testing import load_transcript, transcript_names

    t = load_transcript("anthropic/messages-text")
    assert "".join(t.events) == t.body
    transcript_names(provider="google", synthetic=False)
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # importlib.resources.abc is 3.11+; 3.10 has the same protocol in importlib.abc
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

__all__ = [
    "API_NAMES",
    "Transcript",
    "load_transcript",
    "split_sse_events",
    "transcript_names",
]

API_NAMES: tuple[str, ...] = (
    "chat.completions",
    "responses",
    "messages",
    "streamGenerateContent",
    "v2/chat",
)
"""The ``api`` values a transcript can carry (what endpoint family it answers)."""

_PACKAGE = "streamkit.testing"
_DATA_DIR = "transcripts"

# One line with its terminator; SSE allows CRLF, LF or a lone CR.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_BLANK_LINE_END = re.compile(r"(?:\r\n|\r|\n)(?:\r\n|\r|\n)\Z")


def split_sse_events(body: str) -> list[str]:
    """Split a raw SSE body into events, each with its terminating blank line.

    The split is lossless: ``"".join(split_sse_events(body)) == body`` for any
    string.  ``\\n``, ``\\r\\n`` and lone ``\\r`` line endings are all accepted.
    Extra blank lines stay attached to the event before them, and a trailing
    event without a blank line (a cut stream) is returned as the last item.
    Comment blocks (``": keep-alive"``) count as events of their own.
    """
    events: list[str] = []
    current: list[str] = []
    for match in _LINE.finditer(body):
        line = match.group(0)
        if line.strip("\r\n") == "" and line != "":
            # A blank line: it ends the current event.
            if current:
                current.append(line)
                events.append("".join(current))
                current = []
            elif events:
                events[-1] += line
            else:
                current.append(line)
        else:
            current.append(line)
    if current:
        events.append("".join(current))
    return events


def _looks_like_json(body: str) -> bool:
    stripped = body.lstrip()
    return stripped.startswith(("{", "["))


def _is_stream(status: int, content_type: str, body: str) -> bool:
    # Google sends its 404 JSON error with ``content-type: text/event-stream``,
    # so the body decides as much as the header does.
    return "text/event-stream" in content_type.lower() and not _looks_like_json(body)


def _terminated(event: str) -> str:
    if event == "" or _BLANK_LINE_END.search(event):
        return event
    if event.endswith(("\r\n", "\n", "\r")):
        newline = "\r\n" if event.endswith("\r\n") else event[-1]
        return event + newline
    return event + "\n\n"


@dataclass(frozen=True)
class Transcript:
    """One provider HTTP response, byte for byte, split into SSE events.

    Attributes:
        name: ``"<folder>/<stem>"``, e.g. ``"openai/chat-text-usage"``.
        provider: ``"openai"``, ``"anthropic"``, ``"google"``, ``"groq"``,
            ``"mistral"``, ``"cohere"``, ``"openrouter"``, ...
        api: the endpoint family, one of :data:`API_NAMES`.
        status: the HTTP status the provider answered with.
        headers: response headers that matter (at least ``content-type``), lower-case.
        body: the raw response body text.
        events: ``body`` split into what is sent one at a time: SSE events, each
            including its terminating blank line, or the whole body as a single
            item for a non-stream (JSON error) body.  ``"".join(events) == body``.
        covers: tags for what the stream exercises (``"text"``, ``"usage"``, ...).
        synthetic: ``True`` when streamkit wrote it from documented formats
            rather than recording it from the provider.
        source: where it came from (repository, path, commit, license).
        description: one line on what the stream is.
        notes: remarks about how the file was made.
        request: the request that was recorded with it (credentials removed), if any.
    """

    name: str
    provider: str
    api: str
    status: int
    headers: Mapping[str, str] = field(hash=False)
    body: str
    events: list[str] = field(hash=False)
    covers: tuple[str, ...] = ()
    synthetic: bool = False
    source: Mapping[str, Any] | None = field(default=None, hash=False, compare=False)
    description: str = ""
    notes: tuple[str, ...] = ()
    request: Mapping[str, Any] | None = field(default=None, hash=False, compare=False)

    # ------------------------------------------------------------------ derived
    @property
    def content_type(self) -> str:
        """The response's ``content-type`` (``application/json`` if none was recorded)."""
        return self.headers.get("content-type", "application/json")

    @property
    def is_stream(self) -> bool:
        """Whether the body is an SSE stream (sent chunked, one event per chunk)."""
        return _is_stream(self.status, self.content_type, self.body)

    @property
    def body_bytes(self) -> bytes:
        """The body as sent on the wire (UTF-8)."""
        return self.body.encode("utf-8")

    # ------------------------------------------------------------ constructors
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, name: str) -> Transcript:
        """Build a transcript from the bundled JSON format (see ``ATTRIBUTION.md``)."""
        response = data["response"]
        body = str(response["body"])
        headers = {str(k).lower(): str(v) for k, v in dict(response.get("headers", {})).items()}
        status = int(response["status"])
        content_type = headers.get("content-type", "application/json")
        events = split_sse_events(body) if _is_stream(status, content_type, body) else [body]
        if body == "":
            events = []
        return cls(
            name=name,
            provider=str(data["provider"]),
            api=str(data["api"]),
            status=status,
            headers=headers,
            body=body,
            events=events,
            covers=tuple(str(c) for c in data.get("covers", ())),
            synthetic=bool(data.get("synthetic", False)),
            source=data.get("source"),
            description=str(data.get("description", "")),
            notes=tuple(str(n) for n in data.get("notes", ())),
            request=data.get("request"),
        )

    @classmethod
    def from_file(cls, path: str | Path) -> Transcript:
        """Load a transcript JSON file; its name is ``"<parent folder>/<stem>"``."""
        p = Path(path)
        data = json.loads(p.read_text(encoding="utf-8"))
        return cls.from_dict(data, name=f"{p.parent.name}/{p.stem}")

    @classmethod
    def from_events(
        cls,
        provider: str,
        api: str,
        events: Iterable[str],
        *,
        name: str | None = None,
        status: int = 200,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        covers: Sequence[str] = (),
        description: str = "",
        terminate: bool = True,
        synthetic: bool = True,
    ) -> Transcript:
        """Build a transcript in memory from raw event texts.

        Each item of ``events`` is sent as one chunk, in the granularity given
        (an item may hold several SSE events, or a fragment, on purpose).  With
        ``terminate=True`` (the default) an item that does not already end with
        a blank line gets ``"\\n\\n"`` appended (or the line ending it already
        uses), so ``["data: {}", "data: [DONE]"]`` is a well-formed stream; with
        ``terminate=False`` items are kept verbatim (to build cut or broken
        streams).  ``content_type`` defaults to ``text/event-stream`` for a
        status below 400 and ``application/json`` otherwise.
        """
        items = [_terminated(e) if terminate else e for e in events]
        hdrs = {k.lower(): v for k, v in (headers or {}).items()}
        if content_type is not None:
            hdrs["content-type"] = content_type
        hdrs.setdefault("content-type", "text/event-stream" if status < 400 else "application/json")
        return cls(
            name=name if name is not None else f"{provider}/in-memory",
            provider=provider,
            api=api,
            status=status,
            headers=hdrs,
            body="".join(items),
            events=items,
            covers=tuple(covers),
            synthetic=synthetic,
            source=None,
            description=description,
        )


# ---------------------------------------------------------------- package data
def _data_root() -> Traversable:
    return resources.files(_PACKAGE).joinpath(_DATA_DIR)


@functools.cache
def _read_text(name: str) -> str | None:
    folder, _, stem = name.partition("/")
    if not folder or not stem or "/" in stem or folder.startswith("."):
        return None
    node = _data_root().joinpath(folder).joinpath(f"{stem}.json")
    if not node.is_file():
        return None
    text: str = node.read_text(encoding="utf-8")
    return text


@functools.lru_cache(maxsize=1)
def _all_names() -> tuple[str, ...]:
    names: list[str] = []
    for folder in _data_root().iterdir():
        if not folder.is_dir() or folder.name.startswith((".", "_")):
            continue
        for entry in folder.iterdir():
            if entry.is_file() and entry.name.endswith(".json"):
                names.append(f"{folder.name}/{entry.name[: -len('.json')]}")
    return tuple(sorted(names))


@functools.cache
def _header(name: str) -> tuple[str, bool]:
    text = _read_text(name)
    assert text is not None
    data = json.loads(text)
    return str(data["provider"]), bool(data.get("synthetic", False))


def load_transcript(name: str) -> Transcript:
    """Load a bundled transcript by name, e.g. ``"openai/chat-text-usage"``.

    A trailing ``.json`` is accepted.  Each call returns a fresh object.
    Raises :class:`LookupError` (listing the known names) for an unknown name.
    """
    key = name[: -len(".json")] if name.endswith(".json") else name
    text = _read_text(key)
    if text is None:
        known = ", ".join(_all_names())
        raise LookupError(f"no bundled transcript named {name!r}; known: {known}")
    return Transcript.from_dict(json.loads(text), name=key)


def transcript_names(provider: str | None = None, synthetic: bool | None = None) -> list[str]:
    """List bundled transcript names, sorted.

    ``provider`` filters on the transcript's ``provider`` field (so the synthetic
    OpenAI audio stream is listed under ``provider="openai"``); ``synthetic``
    keeps only synthetic (``True``) or only recorded (``False``) ones.
    """
    out: list[str] = []
    for name in _all_names():
        prov, synth = _header(name)
        if provider is not None and prov != provider:
            continue
        if synthetic is not None and synth != synthetic:
            continue
        out.append(name)
    return out
