"""Groq on the replay server: OpenAI's chat completions with Groq's own mid-stream error
event, and the groq SDK's client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamkit.testing.replay._kit import (
    FAKE_API_KEY,
    OVERLOADED,
    Dialect,
    ReplayProvider,
    SdkClient,
    merged,
)
from streamkit.testing.replay._sse import sse

if TYPE_CHECKING:
    from streamkit.testing.transcripts import Transcript


def _error_event(transcript: Transcript) -> str:
    # ``event: error``: the shape of Groq's recorded mid-stream error.
    groq_error = {"message": OVERLOADED, "type": "internal_server_error", "code": "overloaded"}
    return sse({"error": groq_error}, "error")


def _groq(url: str, async_: bool, kw: dict[str, Any]) -> tuple[Any, bool]:
    import groq

    opts = merged({"api_key": FAKE_API_KEY, "base_url": url, "max_retries": 0}, kw)
    if async_:
        return groq.AsyncGroq(**opts), False
    return groq.Groq(**opts), True


PROVIDER = ReplayProvider(
    dialect=Dialect("groq", error_event=_error_event),
    clients=(SdkClient("groq", _groq),),
)
