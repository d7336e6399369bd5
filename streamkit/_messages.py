"""Provider-neutral prompt messages and their validation.

A prompt is a string (one user message) or a list of ``{"role", "content"}`` dicts with
role ``system``, ``user`` or ``assistant`` and string content. A dict with other keys
(or non-string content) is taken as a message already in the provider's own format,
for example a previous response's ``message_param``, and passed through unchanged.

The other way round, a :class:`MessageBuilder` builds a response's assistant message (its
``message_param``) in the provider's own format; each provider's chunk type names its
builder (``Chunk.message_builder``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamkit._models import Chunk, ToolCall

__all__ = [
    "NEUTRAL_ROLES",
    "Message",
    "MessageBuilder",
    "function_tool_calls",
    "is_neutral",
    "normalize_messages",
]

Message = dict[str, Any]
NEUTRAL_ROLES = ("system", "user", "assistant")
_NATIVE_ROLES = ("developer", "tool", "model", "function", "chatbot")


def is_neutral(message: Mapping[str, Any]) -> bool:
    """Whether ``message`` is a plain ``{"role", "content": str}`` message."""
    return set(message) == {"role", "content"} and isinstance(message.get("content"), str)


def normalize_messages(messages: str | Sequence[Mapping[str, Any]]) -> list[Message]:
    """Validate a prompt and return it as a list of message dicts.

    Raises ``TypeError`` for a prompt of the wrong type and ``ValueError`` for a message
    with a missing or unknown role, before any request is sent.
    """
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    if isinstance(messages, Mapping) or not isinstance(messages, Sequence):
        raise TypeError(
            "messages must be a prompt string or a list of {'role', 'content'} dicts, "
            f"not {type(messages).__name__}"
        )
    if not messages:
        raise ValueError("messages must not be empty")
    result: list[Message] = []
    for position, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise TypeError(
                f"message {position} must be a dict with 'role' and 'content', "
                f"not {type(message).__name__}"
            )
        role = message.get("role")
        if role not in NEUTRAL_ROLES + _NATIVE_ROLES:
            raise ValueError(
                f"message {position} has role {role!r}; expected one of "
                f"{', '.join(NEUTRAL_ROLES)} (or a provider's own message format)"
            )
        # Only a role (and a null content): no provider takes it, native format or not.
        only_role = set(message) <= {"role", "content"} and message.get("content") is None
        if role in NEUTRAL_ROLES and only_role:
            raise ValueError(f"message {position} ({role}) has no 'content'")
        result.append(dict(message))
    return result


def function_tool_calls(calls: list[ToolCall]) -> list[dict[str, Any]]:
    """Tool calls as ``{"id", "type": "function", "function": {"name", "arguments"}}``,
    the form OpenAI chat and Cohere v2 assistant messages share."""
    return [
        {
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }
        for call in calls
    ]


class MessageBuilder:
    """Builds the assistant message of a response in the provider's own format.

    A new builder serves one response: ``add`` sees every chunk (for provider-specific
    parts such as Anthropic's thinking signatures); ``build`` gets the reduced response
    fields. Each provider's chunk type names its builder class
    (``Chunk.message_builder``). This base class is the default of a plain
    :class:`~streamkit.Chunk`: it keeps nothing from the chunks and builds the OpenAI
    chat-completions message (``role``, ``content``, ``tool_calls``, ``refusal``).
    """

    def add(self, chunk: Chunk) -> None:
        """Observe one chunk (default: nothing to keep)."""

    def build(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The assistant message param: ``{"role": "assistant", "content": ...,
        "tool_calls": [...], "refusal": ...}`` by default."""
        message: dict[str, Any] = {"role": "assistant", "content": fields["content"] or None}
        tool_calls: list[ToolCall] = fields["tool_calls"]
        if tool_calls:
            message["tool_calls"] = function_tool_calls(tool_calls)
        if fields.get("refusal"):
            message["refusal"] = fields["refusal"]
        return message
