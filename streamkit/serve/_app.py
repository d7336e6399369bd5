"""Response helpers and the chat ASGI app."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from typing import Any

from reactivex import Observable
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from streamkit._messages import Message
from streamkit._models import Chunk
from streamkit.serve._messages import from_openai_messages, from_ui_messages
from streamkit.serve._openai_sse import OpenAIChunkEncoder
from streamkit.serve._plain_sse import PlainChunkEncoder
from streamkit.serve._response import StreamEnd, StreamResponse
from streamkit.serve._ui_message import UI_MESSAGE_HEADERS, UIMessageEncoder

__all__ = ["chat_app", "openai_sse_response", "sse_response", "ui_message_response"]

Handler = Callable[[list[Message]], Observable[Chunk]]


def ui_message_response(
    observable: Observable[Chunk], *, message_id: str | None = None, **options: Any
) -> StreamResponse:
    """A response streaming ``observable`` as the UI message stream v1 (``useChat``).

    ``options`` go to :class:`StreamResponse` (``heartbeat``, ``max_queue``, ``on_end``).
    """
    encoder = UIMessageEncoder(message_id)
    return StreamResponse(observable, encoder, headers=UI_MESSAGE_HEADERS, **options)


def openai_sse_response(
    observable: Observable[Chunk],
    *,
    model: str | None = None,
    include_usage: bool = False,
    **options: Any,
) -> StreamResponse:
    """A response streaming ``observable`` as OpenAI ``chat.completion.chunk`` SSE."""
    encoder = OpenAIChunkEncoder(model, include_usage=include_usage)
    return StreamResponse(observable, encoder, **options)


def sse_response(observable: Observable[Chunk], **options: Any) -> StreamResponse:
    """A response streaming ``observable`` as plain SSE ``chunk`` events."""
    return StreamResponse(observable, PlainChunkEncoder(), **options)


def _bad_request(message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, 400)


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        return None


def completion_request(body: Any) -> tuple[list[Message], str | None, bool] | JSONResponse:
    """``(messages, model, include_usage)`` of an OpenAI chat completions request body,
    or the ``400`` response for a body that is not one (or does not ask to stream)."""
    if not isinstance(body, dict):
        return _bad_request("the body must be a JSON object")
    if body.get("stream") is not True:
        return _bad_request("only streaming is served: send 'stream': true")
    try:
        messages = from_openai_messages(body.get("messages"))
    except ValueError as error:
        return _bad_request(str(error))
    stream_options = body.get("stream_options") or {}
    include_usage = isinstance(stream_options, dict) and bool(stream_options.get("include_usage"))
    model = body.get("model") if isinstance(body.get("model"), str) else None
    return messages, model, include_usage


def chat_page() -> str:
    """The bundled chat page (plain HTML and JS, no external resources)."""
    return (resources.files("streamkit.serve") / "chat.html").read_text(encoding="utf-8")


def chat_app(
    handler: Handler,
    *,
    page: bool = True,
    on_end: Callable[[StreamEnd], None] | None = None,
    **options: Any,
) -> Starlette:
    """An ASGI app serving ``handler(messages) -> Observable[Chunk]``.

    Routes: ``POST /api/chat`` (``useChat``'s default transport body ``{"id",
    "messages": [UIMessage...]}``; UI message stream v1), ``POST /api/chat/stop``
    (body ``{"id"}``: stops that chat's stream, which then ends with ``abort`` and is
    reported as ``stopped``, told apart from a client that went away), ``POST
    /v1/chat/completions`` (OpenAI-compatible, ``stream: true``) and, with ``page``,
    the chat page at ``/``.
    ``on_end`` is told how each response ended; ``options`` go to
    :class:`StreamResponse`.
    """

    streaming: dict[str, StreamResponse] = {}  # chat id -> its running response

    async def api_chat(request: Request) -> Response:
        body = await _json_body(request)
        if not isinstance(body, dict):
            return _bad_request("the body must be a JSON object")
        try:
            messages = from_ui_messages(body.get("messages"))
        except ValueError as error:
            return _bad_request(str(error))
        chat_id = body.get("id")
        response = ui_message_response(handler(messages), **options)
        if not isinstance(chat_id, str):
            response.on_end = on_end
            return response

        def ended(end: StreamEnd) -> None:
            if streaming.get(chat_id) is response:
                del streaming[chat_id]
            if on_end is not None:
                on_end(end)

        response.on_end = ended
        streaming[chat_id] = response
        return response

    async def stop_chat(request: Request) -> Response:
        body = await _json_body(request)
        chat_id = body.get("id") if isinstance(body, dict) else None
        response = streaming.get(chat_id) if isinstance(chat_id, str) else None
        if response is None:
            return JSONResponse({"stopped": False}, 404)
        response.stop()
        return JSONResponse({"stopped": True})

    async def completions(request: Request) -> Response:
        parsed = completion_request(await _json_body(request))
        if isinstance(parsed, JSONResponse):
            return parsed
        messages, model, include_usage = parsed
        return openai_sse_response(
            handler(messages),
            model=model,
            include_usage=include_usage,
            on_end=on_end,
            **options,
        )

    async def index(request: Request) -> Response:
        return HTMLResponse(chat_page())

    routes = [
        Route("/api/chat", api_chat, methods=["POST"]),
        Route("/api/chat/stop", stop_chat, methods=["POST"]),
        Route("/v1/chat/completions", completions, methods=["POST"]),
    ]
    if page:
        routes.append(Route("/", index, methods=["GET"]))
    return Starlette(routes=routes)
