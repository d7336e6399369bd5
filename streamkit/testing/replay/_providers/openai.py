"""OpenAI on the replay server: chat completions (the wire format most other providers
speak too, each in its :class:`~streamkit.testing.replay._kit.Dialect`), the Responses
API, and the openai SDK's clients (``OpenAI``, ``AzureOpenAI``)."""

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
from streamkit.testing.replay._sse import data_of, sse

if TYPE_CHECKING:
    from streamkit.testing.transcripts import Transcript

# ------------------------------------------------------------- chat completions


def _chat_text(data: Any) -> str | None:
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices[0], dict):
        return None
    content = (choices[0].get("delta") or {}).get("content")
    return content if isinstance(content, str) and content else None


def _set_chat_text(data: Any, text: str) -> None:
    choice = data["choices"][0]
    choice["delta"] = {"content": text}
    choice["finish_reason"] = None
    for key in ("usage", "x_groq"):
        data.pop(key, None)


def chat_chunk(text: str) -> str:
    """A chat completion chunk whose delta is ``text``."""
    chunk = {
        "id": "chatcmpl-streamkit-foreign",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    return sse(chunk)


def _stream_identity(transcript: Transcript) -> dict[str, Any]:
    """``id``, ``model`` and ``created`` of the transcript's first chat chunk."""
    for event in transcript.events:
        data = data_of(event)
        if isinstance(data, dict) and "id" in data:
            return {k: data[k] for k in ("id", "model", "created") if k in data}
    return {}


def _chat_unknown_event(transcript: Transcript) -> str:
    # A chunk of an unknown object with no choices, of the same stream.
    chunk = {
        **_stream_identity(transcript),
        "object": "chat.completion.streamkit_unknown",
        "choices": [],
    }
    chunk.setdefault("id", "streamkit-unknown")
    chunk.setdefault("model", "streamkit-unknown")
    return sse(chunk)


def _chat_error_event(transcript: Transcript) -> str:
    error = {"message": OVERLOADED, "type": "server_error", "param": None, "code": None}
    return sse({"error": error})


# The error ``type`` of an HTTP status (other statuses: "invalid_request_error").
_ERROR_TYPES: Mapping[int, str] = {
    429: "rate_limit_exceeded",
    500: "server_error",
    503: "server_error",
    529: "server_error",
}


def error_type(status: int) -> str:
    """OpenAI's error ``type`` for an HTTP status (servers speaking its API use it too)."""
    return _ERROR_TYPES.get(status, "invalid_request_error")


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind = error_type(status)
    return {
        "error": {
            "message": message,
            "type": kind,
            "param": None,
            "code": kind if status == 429 else None,
        }
    }


CHAT = WireFormat(
    api="chat.completions",
    path_rule="a path ending with /chat/completions",
    fits_path=lambda p: p.endswith("/chat/completions"),
    read_text=_chat_text,
    write_text=_set_chat_text,
    broken_json='data: {"id":"streamkit-broken","choices":[{"index":0,"delta":{"cont\n\n',
    unknown_event=_chat_unknown_event,
    foreign_api="messages",
    error_event=_chat_error_event,
    error_body=_error_body,
    text_event=chat_chunk,
    dialect_fields=frozenset({"error_event", "error_body"}),
)
"""Chat completions, as OpenAI and every OpenAI-compatible server stream it."""

# ---------------------------------------------------------------- Responses API


def _responses_text(data: Any) -> str | None:
    if isinstance(data, dict) and data.get("type") == "response.output_text.delta":
        return str(data.get("delta") or "") or None
    return None


def _set_responses_text(data: Any, text: str) -> None:
    data["delta"] = text


def _responses_unknown_event(transcript: Transcript) -> str:
    return sse(
        {"type": "response.streamkit_unknown", "sequence_number": 0},
        "response.streamkit_unknown",
    )


def _responses_error_event(transcript: Transcript) -> str:
    body = {"type": "error", "code": "server_error", "message": OVERLOADED, "param": None}
    return sse({**body, "sequence_number": 0}, "error")


RESPONSES = WireFormat(
    api="responses",
    path_rule="a path ending with /responses",
    fits_path=lambda p: p.endswith("/responses"),
    read_text=_responses_text,
    write_text=_set_responses_text,
    broken_json='event: response.output_text.delta\ndata: {"type":"response.output_te\n\n',
    unknown_event=_responses_unknown_event,
    foreign_api="messages",
    error_event=_responses_error_event,
    error_body=_error_body,
    dialect_fields=frozenset({"error_body"}),
)
"""OpenAI's Responses API."""

# ---------------------------------------------------------------------- clients


def _openai(url: str, async_: bool, kw: dict[str, Any]) -> tuple[Any, bool]:
    import openai

    opts = merged({"api_key": FAKE_API_KEY, "base_url": url + "/v1", "max_retries": 0}, kw)
    if async_:
        return openai.AsyncOpenAI(**opts), False
    return openai.OpenAI(**opts), True


def _azure_openai(url: str, async_: bool, kw: dict[str, Any]) -> tuple[Any, bool]:
    import openai

    opts = merged(
        {
            "api_key": FAKE_API_KEY,
            "azure_endpoint": url,
            "api_version": "2024-10-21",
            "max_retries": 0,
        },
        kw,
    )
    if async_:
        return openai.AsyncAzureOpenAI(**opts), False
    return openai.AzureOpenAI(**opts), True


PROVIDER = ReplayProvider(
    wire_formats=(CHAT, RESPONSES),
    clients=(SdkClient("openai", _openai), SdkClient("azure_openai", _azure_openai)),
)
