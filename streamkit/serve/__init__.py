"""Serve streams to browsers and HTTP clients (extra ``[serve]``).

Three wire formats, each a pure encoder (``open``/``chunk``/``finish``/``error``/
``abort`` to SSE bytes): the Vercel AI SDK UI message stream v1 (``useChat``), OpenAI's
chat completions SSE and plain SSE of normalized chunks. :class:`StreamResponse` runs one
subscription per response with disconnect-disposes, heartbeats and a bounded queue;
:func:`chat_app` serves a handler as ``/api/chat`` and ``/v1/chat/completions``;
:func:`resumable_chat_app` serves it as chats on Redis Streams that any worker can
resume or stop (needs the ``[redis]`` extra too).
"""

from streamkit.serve._app import (
    chat_app,
    chat_page,
    openai_sse_response,
    sse_response,
    ui_message_response,
)
from streamkit.serve._encoder import Encoder, safe_error_text
from streamkit.serve._messages import from_openai_messages, from_ui_messages
from streamkit.serve._openai_sse import OpenAIChunkEncoder
from streamkit.serve._plain_sse import PlainChunkEncoder, chunk_json
from streamkit.serve._response import (
    BURST_FACTOR,
    SSE_HEADERS,
    EndReason,
    StreamEnd,
    StreamResponse,
)
from streamkit.serve._resume import EntriesResponse, resumable_chat_app
from streamkit.serve._sse import DONE, HEARTBEAT, sse_event, sse_json
from streamkit.serve._ui_message import UI_MESSAGE_HEADERS, UIMessageEncoder, ui_finish_reason

__all__ = [
    "BURST_FACTOR",
    "DONE",
    "HEARTBEAT",
    "SSE_HEADERS",
    "UI_MESSAGE_HEADERS",
    "Encoder",
    "EndReason",
    "EntriesResponse",
    "OpenAIChunkEncoder",
    "PlainChunkEncoder",
    "StreamEnd",
    "StreamResponse",
    "UIMessageEncoder",
    "chat_app",
    "chat_page",
    "chunk_json",
    "from_openai_messages",
    "from_ui_messages",
    "openai_sse_response",
    "resumable_chat_app",
    "safe_error_text",
    "sse_event",
    "sse_json",
    "sse_response",
    "ui_finish_reason",
    "ui_message_response",
]
