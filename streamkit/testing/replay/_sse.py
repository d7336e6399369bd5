"""Server-Sent Events framing, the same for every provider: build an event, read and
replace its JSON data."""

from __future__ import annotations

import json
from typing import Any


def sse(data: Any, event: str | None = None) -> str:
    """One SSE event: an optional ``event:`` line, then ``data`` (compact JSON, or a
    string as is) on one ``data:`` line, then the blank line."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event is not None else ""
    return f"{head}data: {payload}\n\n"


def data_of(event: str) -> Any:
    """The JSON of an SSE event's data lines, or ``None``."""
    lines = [line[5:].lstrip(" ") for line in event.splitlines() if line.startswith("data:")]
    if not lines:
        return None
    try:
        return json.loads("\n".join(lines))
    except ValueError:
        return None


def with_data(event: str, data: Any) -> str:
    """``event`` with its data lines replaced by one carrying ``data`` (compact JSON),
    its other lines and its line ending kept."""
    newline = "\r\n" if "\r\n" in event else "\n"
    lines = [line for line in event.splitlines() if line and not line.startswith("data:")]
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return newline.join(lines) + newline + newline
