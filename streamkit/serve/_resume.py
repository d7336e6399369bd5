"""Resumable chat streams on Redis: any worker serves, resumes or stops any chat.

``resumable_chat_app(handler, redis)`` serves the routes ``useChat({resume: true})``
uses, each answer read back from the chat's Redis Stream (:mod:`streamkit.redis`):

- ``POST /api/chat`` (``{"id", "messages"}``): starts the chat's producer unless one is
  active on any worker (then it joins that one: one provider request per chat), and
  streams the UI message stream v1;
- ``GET /api/chat/{id}/stream``: the chat's active stream from its start, or with a
  ``Last-Event-ID`` header exactly the events after that one (even if the stream has
  finished meanwhile, while it is retained); ``204`` when nothing is active;
- ``POST /api/chat/{id}/stop`` (or ``POST /api/chat/stop`` with ``{"id"}``, what the
  bundled chat page sends): stops the chat's producer, whichever worker runs it;
- ``POST /v1/chat/completions`` (OpenAI-compatible, ``stream: true``): a new stream per
  request, produced on Redis like a chat's and read back from it as OpenAI
  ``chat.completion.chunk`` events (without SSE ids: OpenAI clients do not resume); the
  chunks' ``id`` (``chatcmpl-...``) is its chat id, so ``POST /api/chat/{that id}/stop``
  stops it from any worker;
- ``GET /``: the bundled chat page (with ``page``).

SSE event ids are the Redis entry ids: the events a chunk becomes share its entry, the
id is on the last of them. A resumed response is encoded from the stream's start (so the
encoder's state is the original's) and only the events after ``Last-Event-ID`` are sent.
A client going away never stops the producer; only the stop route does. While nothing
arrives for ``heartbeat`` seconds an SSE comment line is sent (as :class:`StreamResponse`
does), so proxies do not cut an idle stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from reactivex import Observable
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from streamkit._messages import Message
from streamkit._models import Chunk
from streamkit.serve._app import chat_page, completion_request
from streamkit.serve._encoder import Encoder
from streamkit.serve._messages import from_ui_messages
from streamkit.serve._openai_sse import OpenAIChunkEncoder
from streamkit.serve._response import SSE_HEADERS, Heartbeat
from streamkit.serve._sse import HEARTBEAT
from streamkit.serve._ui_message import UI_MESSAGE_HEADERS, UIMessageEncoder

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["EntriesResponse", "resumable_chat_app"]

Handler = Callable[[list[Message]], Observable[Chunk]]
EncoderFactory = Callable[[str | None], Encoder]
"""Makes a response's encoder, given the stream's first entry id (``None`` when the
stream failed before any entry)."""

_PRODUCERS: set[asyncio.Task[Any]] = set()
"""Producers this process started, referenced until they finish."""


def _with_id(events: list[bytes], entry_id: str) -> list[bytes]:
    if not events:
        return events
    return [*events[:-1], f"id: {entry_id}\n".encode() + events[-1]]


class EntriesResponse(Response):
    """The Redis Stream ``key`` as SSE, the events after ``last_event_id``.

    Reads the stream from its start with :func:`streamkit.redis.entries`; a client
    disconnect ends the read (never the producer). By default the events are the UI
    message stream v1 (``useChat``); ``encoder`` makes another wire format's encoder
    (given the first entry id), with ``headers`` instead of the UI message stream's.
    While nothing was sent for ``heartbeat`` seconds an SSE comment line is sent
    (``None``: never). ``event_ids``: whether events carry their entry id (``id:``), for
    a client to resume with ``Last-Event-ID``; leave them out for a client that cannot
    resume (the ``openai`` SDK, which also reads a heartbeat after an ``id:`` as an
    empty event).
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        redis: aioredis.Redis,
        key: str,
        *,
        last_event_id: str | None = None,
        poll: float = 1.0,
        heartbeat: float | None = 15.0,
        encoder: EncoderFactory | None = None,
        headers: Mapping[str, str] | None = None,
        event_ids: bool = True,
    ) -> None:
        if heartbeat is not None and heartbeat <= 0:
            raise ValueError(f"heartbeat must be positive seconds or None, not {heartbeat}")
        if encoder is None:
            encoder = functools.partial(_ui_encoder, key)
            headers = UI_MESSAGE_HEADERS if headers is None else headers
        super().__init__(
            content=None,
            status_code=200,
            headers={**SSE_HEADERS, **dict(headers or {})},
            media_type=self.media_type,
        )
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.redis, self.key, self.poll = redis, key, poll
        self.last_event_id = last_event_id
        self.heartbeat = heartbeat
        self.encoder = encoder
        self.event_ids = event_ids

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream the entries to the client (ASGI)."""
        from streamkit.redis import ProducerError, ProducerLostError, RedisStreamError, Terminal
        from streamkit.redis._log import LOST, parse_id

        loop = asyncio.get_running_loop()
        after = parse_id(self.last_event_id) if self.last_event_id else (0, 0)
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        writing = asyncio.Lock()
        last_sent = loop.time()
        closed = False

        async def body(events: list[bytes], more: bool = True) -> None:
            nonlocal last_sent, closed
            if not events and more:
                return
            async with writing:  # the reader and the heartbeats write
                if closed:
                    return
                closed = not more
                message = {"type": "http.response.body", "body": b"".join(events)}
                await send({**message, "more_body": more})
                last_sent = loop.time()

        async def run() -> None:
            from streamkit.redis import entries

            encoder: Encoder | None = None
            items = entries(self.redis, self.key, poll=self.poll)
            async with contextlib.aclosing(items):
                try:
                    async for entry_id, item in items:
                        events: list[bytes] = []
                        if encoder is None:
                            encoder = self.encoder(entry_id)
                            events += encoder.open()
                        if isinstance(item, Terminal):
                            if item.error_type == LOST:
                                events += encoder.error(ProducerLostError(self.key))
                            elif item.state == "error":
                                error = ProducerError(self.key, item.error_type, item.message)
                                events += encoder.error(error)
                            elif item.state == "cancelled":
                                events += encoder.abort()
                            else:
                                events += encoder.finish()
                        else:
                            events += encoder.chunk(item)
                        if parse_id(entry_id) > after:
                            await body(_with_id(events, entry_id) if self.event_ids else events)
                except RedisStreamError as error:
                    if encoder is None:
                        encoder = self.encoder(None)
                        await body(encoder.open())
                    await body(encoder.error(error))
            await body([], more=False)

        wake = asyncio.Event()
        heartbeat = Heartbeat(loop, lambda: last_sent, wake.set)

        async def beat() -> None:
            while True:
                await wake.wait()
                wake.clear()
                if heartbeat.due:
                    heartbeat.due = False
                    await body([HEARTBEAT])

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        tasks = {asyncio.ensure_future(run()), asyncio.ensure_future(watch())}
        beater = None
        if self.heartbeat is not None:
            beater = asyncio.ensure_future(beat())
            heartbeat.arm(self.heartbeat)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            heartbeat.cancel()
            for task in (*tasks, *([beater] if beater is not None else [])):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await task


def _ui_encoder(key: str, first_id: str | None) -> Encoder:
    """The UI message stream's encoder, its message id made of the key and the stream's
    base id (the same on every worker, every resume)."""
    if first_id is None:
        return UIMessageEncoder()
    return UIMessageEncoder(f"msg-{key}-{first_id.partition('-')[0]}")


def resumable_chat_app(
    handler: Handler,
    redis: aioredis.Redis,
    *,
    prefix: str = "chat:",
    ttl: float = 3600.0,
    maxlen: int = 10_000,
    lease: float = 10.0,
    poll: float = 1.0,
    heartbeat: float | None = 15.0,
    page: bool = True,
) -> Starlette:
    """An ASGI app serving ``handler(messages) -> Observable[Chunk]`` as resumable chats.

    Every chat's answer goes to the Redis Stream ``prefix + id`` through a producer
    detached from the request (:func:`streamkit.redis.produce`); ``ttl``, ``maxlen``,
    ``lease`` and ``poll`` are theirs. ``heartbeat``: seconds without an event after
    which a response sends an SSE comment line (``None``: never). Any number of these
    apps sharing one Redis are interchangeable for every request (see the module docs
    for the routes).
    """
    from streamkit.redis import is_active, stop
    from streamkit.redis._log import parse_id
    from streamkit.redis._producer import acquire, produce

    def bad_request(message: str) -> JSONResponse:
        return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, 400)

    def last_event_id(request: Request) -> str | JSONResponse | None:
        value = request.headers.get("last-event-id")
        if not value:
            return None
        try:
            parse_id(value)
        except ValueError:
            return bad_request("Last-Event-ID is not a stream entry id")
        return value

    async def start(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"]:
            return bad_request("the body must be a JSON object with a chat 'id'")
        try:
            messages = from_ui_messages(body.get("messages"))
        except ValueError as error:
            return bad_request(str(error))
        key = prefix + body["id"]
        await start_producer(key, messages)
        return EntriesResponse(redis, key, poll=poll, heartbeat=heartbeat)

    async def start_producer(key: str, messages: list[Message]) -> None:
        """Run ``key``'s producer on this worker, unless one is active on any worker."""
        token = await acquire(redis, key, lease, 30.0)
        if token is not None:  # no producer anywhere: this worker runs it
            task = asyncio.get_running_loop().create_task(
                produce(
                    redis, key, handler(messages), ttl=ttl, maxlen=maxlen, lease=lease, token=token
                )
            )
            _PRODUCERS.add(task)
            task.add_done_callback(_PRODUCERS.discard)

    async def completions(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        parsed = completion_request(body)
        if isinstance(parsed, JSONResponse):
            return parsed
        messages, model, include_usage = parsed
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        key = prefix + completion_id
        await start_producer(key, messages)

        def encoder(first_id: str | None) -> Encoder:
            return OpenAIChunkEncoder(model, include_usage=include_usage, id=completion_id)

        return EntriesResponse(
            redis, key, poll=poll, heartbeat=heartbeat, encoder=encoder, headers={}, event_ids=False
        )

    async def resume(request: Request) -> Response:
        key = prefix + request.path_params["chat_id"]
        after = last_event_id(request)
        if isinstance(after, JSONResponse):
            return after
        if after is not None and await redis.exists(key):
            return EntriesResponse(redis, key, last_event_id=after, poll=poll, heartbeat=heartbeat)
        if not await is_active(redis, key):
            return Response(status_code=204)
        return EntriesResponse(redis, key, last_event_id=after, poll=poll, heartbeat=heartbeat)

    async def stop_chat(request: Request) -> Response:
        stopped = await stop(redis, prefix + request.path_params["chat_id"])
        return JSONResponse({"stopped": stopped})

    async def stop_by_body(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            return bad_request("the body must be a JSON object with a chat 'id'")
        return JSONResponse({"stopped": await stop(redis, prefix + body["id"])})

    async def index(request: Request) -> Response:
        return HTMLResponse(chat_page())

    routes = [
        Route("/api/chat", start, methods=["POST"]),
        Route("/api/chat/stop", stop_by_body, methods=["POST"]),
        Route("/api/chat/{chat_id}/stream", resume, methods=["GET"]),
        Route("/api/chat/{chat_id}/stop", stop_chat, methods=["POST"]),
        Route("/v1/chat/completions", completions, methods=["POST"]),
    ]
    if page:
        routes.append(Route("/", index, methods=["GET"]))
    return Starlette(routes=routes)


def redis_app(handler: Handler, url: str) -> Starlette:
    """``serve --redis URL``'s app: :func:`resumable_chat_app` on a client for ``url``."""
    import redis.asyncio as aioredis

    return resumable_chat_app(handler, aioredis.Redis.from_url(url))
