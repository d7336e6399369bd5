"""OpenRouter on the replay server: OpenAI's chat completions with OpenRouter's own error
event and body (a numeric ``code``). Its transcripts are served to the openai client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamkit.testing.replay._kit import OVERLOADED, Dialect, ReplayProvider
from streamkit.testing.replay._sse import sse

if TYPE_CHECKING:
    from streamkit.testing.transcripts import Transcript


def _error_event(transcript: Transcript) -> str:
    return sse({"error": {"message": OVERLOADED, "code": 503}})


def _error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "code": status}}


PROVIDER = ReplayProvider(
    dialect=Dialect("openrouter", error_event=_error_event, error_body=_error_body)
)
