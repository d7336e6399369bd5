"""Server-sent events framing, shared by every wire format."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["DONE", "HEARTBEAT", "sse_event", "sse_json"]

HEARTBEAT = b": ping\n\n"
"""An SSE comment line: keeps proxies from cutting an idle stream; clients ignore it."""

DONE = b"data: [DONE]\n\n"
"""The terminator the UI message stream and OpenAI's SSE both end with."""


def sse_event(data: str, event: str | None = None) -> bytes:
    """One SSE event: ``event:`` (if given) and ``data:`` lines (one per line of data)."""
    lines = [] if event is None else [f"event: {event}"]
    lines.extend(f"data: {line}" for line in data.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


def sse_json(payload: Any, event: str | None = None) -> bytes:
    """One SSE event whose data is ``payload`` as compact JSON."""
    return sse_event(json.dumps(payload, separators=(",", ":"), ensure_ascii=False), event)
