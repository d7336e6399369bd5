"""Anthropic on the replay server: the Messages API and the anthropic SDK's client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from streamkit.testing.replay._kit import (
    FAKE_API_KEY,
    ReplayProvider,
    SdkClient,
    WireFormat,
    merged,
)
from streamkit.testing.replay._sse import sse

if TYPE_CHECKING:
    from streamkit.testing.transcripts import Transcript


def _messages_text(data: Any) -> str | None:
    if isinstance(data, dict) and data.get("type") == "content_block_delta":
        delta = data.get("delta") or {}
        if delta.get("type") == "text_delta" and delta.get("text"):
            return str(delta["text"])
    return None


def _set_messages_text(data: Any, text: str) -> None:
    data["delta"]["text"] = text


def text_delta(text: str) -> str:
    """A ``content_block_delta`` event of block 0 whose text delta is ``text``."""
    delta = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": text},
    }
    return sse(delta, "content_block_delta")


def _unknown_event(transcript: Transcript) -> str:
    return sse({"type": "streamkit_unknown", "note": "a newer event"}, "streamkit_unknown")


def _error_event(transcript: Transcript) -> str:
    return sse(
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        "error",
    )


# The error ``type`` of an HTTP status; 529 is Anthropic's overload.
_ERROR_TYPES: Mapping[int, str] = {
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    529: "overloaded_error",
}


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


MESSAGES = WireFormat(
    api="messages",
    path_rule="a path ending with /messages",
    fits_path=lambda p: p.endswith("/messages"),
    read_text=_messages_text,
    write_text=_set_messages_text,
    broken_json=(
        'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"del\n\n'
    ),
    unknown_event=_unknown_event,
    foreign_api="chat.completions",
    error_event=_error_event,
    error_body=_error_body,
    text_event=text_delta,
)
"""Anthropic's Messages API."""


def _anthropic(url: str, async_: bool, kw: dict[str, Any]) -> tuple[Any, bool]:
    import anthropic

    opts = merged({"api_key": FAKE_API_KEY, "base_url": url, "max_retries": 0}, kw)
    if async_:
        return anthropic.AsyncAnthropic(**opts), False
    return anthropic.Anthropic(**opts), True


PROVIDER = ReplayProvider(wire_formats=(MESSAGES,), clients=(SdkClient("anthropic", _anthropic),))
