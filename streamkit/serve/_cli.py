"""``python -m streamkit serve``: the chat page and both streaming endpoints on uvicorn.

Without ``--provider`` it needs no API key: every request is answered by the built-in
replay server, which replays a real recorded provider stream at a model's pace.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, TextIO

from reactivex import Observable

import streamkit as sk
from streamkit._messages import Message
from streamkit.serve._response import StreamEnd

__all__ = [
    "DEFAULT_SERVE_TRANSCRIPT",
    "ChatServer",
    "add_serve_parser",
    "build_chat_server",
    "run_serve",
]

DEFAULT_SERVE_TRANSCRIPT = "anthropic/messages-thinking"


def add_serve_parser(commands: Any) -> None:
    """Add the ``serve`` subcommand to the CLI's subparsers."""
    serve = commands.add_parser("serve", help="a chat page and streaming endpoints (no key needed)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument("--provider", help="use the real API of this provider (key in env)")
    serve.add_argument("--model", help="the model, with --provider")
    serve.add_argument(
        "--transcript",
        default=DEFAULT_SERVE_TRANSCRIPT,
        help=f"the recording to replay without --provider (default {DEFAULT_SERVE_TRANSCRIPT})",
    )
    serve.add_argument("--pace", type=float, default=0.05, help="seconds between replayed events")
    serve.add_argument(
        "--redis",
        metavar="URL",
        help="resumable chats on this Redis (redis://...): any serve process sharing it "
        "serves, resumes (GET /api/chat/{id}/stream) or stops (POST .../stop) any chat",
    )


@dataclass
class ChatServer:
    """The app ``serve`` runs, with what it ran on (the replay server, if any)."""

    app: Any
    replay: Any
    ends: list[StreamEnd] = field(default_factory=list)
    stack: ExitStack = field(default_factory=ExitStack)

    def close(self) -> None:
        """Stop the replay server, if one was started."""
        self.stack.close()


def build_chat_server(
    provider: str | None = None,
    model: str | None = None,
    *,
    transcript: str = DEFAULT_SERVE_TRANSCRIPT,
    pace: float = 0.05,
    redis_url: str | None = None,
) -> ChatServer:
    """The chat app against the real API (``provider``/``model``) or the replay server."""
    from streamkit.serve import chat_app

    stack = ExitStack()
    replay = None
    if provider is None:
        from streamkit.testing import ReplayServer, Reply, load_transcript

        recording = load_transcript(transcript)
        replay = stack.enter_context(ReplayServer(Reply(recording, pace=pace)))
        provider = recording.provider
        request = recording.request
        body = request.get("json") if isinstance(request, dict) else None
        recorded = body.get("model") if isinstance(body, dict) else None
        model = recorded if isinstance(recorded, str) else "recorded-model"
        client = replay.client(provider, async_=True)
    else:
        if not model:
            raise ValueError("--provider needs --model")
        client = None
    chosen_provider, chosen_model = provider, model
    assert chosen_model is not None

    def handler(messages: list[Message]) -> Observable[sk.Chunk]:
        return sk.stream(chosen_provider, chosen_model, messages, client=client, async_=True)

    server = ChatServer(app=None, replay=replay, stack=stack)
    if redis_url is not None:
        from streamkit.serve._resume import redis_app

        server.app = redis_app(handler, redis_url)
    else:
        server.app = chat_app(handler, on_end=server.ends.append)
    return server


def run_serve(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``serve`` until interrupted; returns the exit code."""
    import uvicorn

    out = out or sys.stdout
    if args.provider and not args.model:
        print("--provider needs --model", file=sys.stderr)
        return 2
    server = build_chat_server(
        args.provider,
        args.model,
        transcript=args.transcript,
        pace=args.pace,
        redis_url=getattr(args, "redis", None),
    )
    source = (
        f"the real {args.provider} API ({args.model})"
        if args.provider
        else f"a replayed {args.transcript} stream, no API key needed"
    )
    print(f"streamkit serve: http://{args.host}:{args.port}/ ({source})", file=out, flush=True)
    try:
        uvicorn.run(server.app, host=args.host, port=args.port, log_level="warning")
    finally:
        server.close()
    return 0
