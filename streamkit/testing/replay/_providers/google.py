"""Google on the replay server: Gemini's ``streamGenerateContent`` and the google-genai
SDK's client."""

from __future__ import annotations

from collections.abc import Mapping
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


def _google_text(data: Any) -> str | None:
    try:
        parts = data["candidates"][0]["content"]["parts"]
    except (KeyError, IndexError, TypeError):
        return None
    texts = [
        part["text"]
        for part in parts
        if isinstance(part, dict) and isinstance(part.get("text"), str) and not part.get("thought")
    ]
    return "".join(texts) or None


def _set_google_text(data: Any, text: str) -> None:
    candidate = data["candidates"][0]
    candidate["content"]["parts"] = [{"text": text}]
    candidate.pop("finishReason", None)


def _unknown_event(transcript: Transcript) -> str:
    # A chunk with no candidates and a field Gemini does not send.
    return sse({"streamkitUnknown": {"note": "a newer field"}})


def _error_event(transcript: Transcript) -> str:
    return sse({"error": {"code": 503, "message": OVERLOADED, "status": "UNAVAILABLE"}})


# The error ``status`` of an HTTP status.
_ERROR_STATUSES: Mapping[int, str] = {
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    529: "UNAVAILABLE",
}


def _error_body(status: int, message: str) -> dict[str, Any]:
    google_status = _ERROR_STATUSES.get(status) or (
        "INTERNAL" if status >= 500 else "INVALID_ARGUMENT"
    )
    return {"error": {"code": status, "message": message, "status": google_status}}


STREAM_GENERATE_CONTENT = WireFormat(
    api="streamGenerateContent",
    path_rule="a path containing :streamGenerateContent or :generateContent",
    fits_path=lambda p: ":streamGenerateContent" in p or ":generateContent" in p,
    read_text=_google_text,
    write_text=_set_google_text,
    # Gemini's data lines are bare JSON like chat completions': any JSON cut short will do.
    broken_json='data: {"id":"streamkit-broken","choices":[{"index":0,"delta":{"cont\n\n',
    unknown_event=_unknown_event,
    foreign_api="messages",
    error_event=_error_event,
    error_body=_error_body,
)
"""Gemini's ``streamGenerateContent`` (``alt=sse``)."""


def _google(url: str, async_: bool, kw: dict[str, Any]) -> tuple[Any, bool]:
    from google import genai
    from google.genai import types

    http_options = types.HttpOptions(base_url=url, retry_options=types.HttpRetryOptions(attempts=1))
    opts = merged({"api_key": FAKE_API_KEY, "vertexai": False, "http_options": http_options}, kw)
    return genai.Client(**opts), True


PROVIDER = ReplayProvider(
    wire_formats=(STREAM_GENERATE_CONTENT,), clients=(SdkClient("google", _google),)
)
