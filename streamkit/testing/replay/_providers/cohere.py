"""Cohere on the replay server: the v2 chat API and the cohere SDK's client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamkit.testing.replay._kit import (
    FAKE_API_KEY,
    OVERLOADED,
    ReplayProvider,
    SdkClient,
    WireFormat,
    merged,
)
from streamkit.testing.replay._sse import sse

if TYPE_CHECKING:
    from streamkit.testing.transcripts import Transcript


def _cohere_text(data: Any) -> str | None:
    if isinstance(data, dict) and data.get("type") == "content-delta":
        try:
            return str(data["delta"]["message"]["content"]["text"]) or None
        except (KeyError, TypeError):
            return None
    return None


def _set_cohere_text(data: Any, text: str) -> None:
    data["delta"]["message"]["content"]["text"] = text


def _unknown_event(transcript: Transcript) -> str:
    return sse({"type": "streamkit-unknown", "note": "a newer event"}, "streamkit-unknown")


def _error_event(transcript: Transcript) -> str:
    # Not documented by Cohere: the shape its other events use.
    return sse({"type": "error", "message": OVERLOADED}, "error")


def _error_body(status: int, message: str) -> dict[str, Any]:
    return {"id": "streamkit-replay-error", "message": message}


V2_CHAT = WireFormat(
    api="v2/chat",
    path_rule="a path ending with /v2/chat",
    fits_path=lambda p: p.endswith("/v2/chat"),
    read_text=_cohere_text,
    write_text=_set_cohere_text,
    broken_json='event: content-delta\ndata: {"type":"content-delta","index":0,"delta":{"mes\n\n',
    unknown_event=_unknown_event,
    foreign_api="chat.completions",
    error_event=_error_event,
    error_body=_error_body,
)
"""Cohere's v2 chat API."""


def _cohere(url: str, async_: bool, kw: dict[str, Any]) -> tuple[Any, bool]:
    import cohere

    opts = merged({"api_key": FAKE_API_KEY, "base_url": url, "max_retries": 0}, kw)
    if async_:
        return cohere.AsyncClientV2(**opts), False
    return cohere.ClientV2(**opts), True


PROVIDER = ReplayProvider(wire_formats=(V2_CHAT,), clients=(SdkClient("cohere", _cohere),))
