"""Request messages in the UI message or OpenAI format, as streamkit's neutral messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from streamkit._messages import Message

__all__ = ["from_openai_messages", "from_ui_messages"]

_ROLES = ("system", "user", "assistant")


def _text_of(parts: Any) -> str:
    if parts is None:  # an assistant turn of tool calls only: "content": null
        return ""
    if isinstance(parts, str):
        return parts
    if not isinstance(parts, Sequence):
        raise ValueError("message content must be a string or a list of parts")
    texts = []
    for part in parts:
        if not isinstance(part, Mapping):
            raise ValueError("each message part must be an object")
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
    return "".join(texts)


def _messages(raw: Any, field: str) -> list[Message]:
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)) or not raw:
        raise ValueError("'messages' must be a non-empty list")
    result: list[Message] = []
    for position, message in enumerate(raw):
        if not isinstance(message, Mapping):
            raise ValueError(f"message {position} must be an object")
        role = message.get("role")
        if role == "developer":
            role = "system"
        if role not in _ROLES:
            continue  # tool results and the like: not part of a neutral prompt
        content = _text_of(message.get(field, ""))
        if content:
            result.append({"role": role, "content": content})
    if not result:
        raise ValueError("no message with text content")
    return result


def from_ui_messages(messages: Any) -> list[Message]:
    """``useChat``'s ``UIMessage`` list (``{id, role, parts: [{type: "text", text}]}``)
    as neutral messages; non-text parts are left out. Raises ``ValueError``."""
    return _messages(messages, "parts")


def from_openai_messages(messages: Any) -> list[Message]:
    """OpenAI chat messages (content a string or a list of text parts) as neutral
    messages; tool messages are left out. Raises ``ValueError``."""
    return _messages(messages, "content")
