"""The demo: ``python -m streamkit demo`` (or the ``streamkit`` console script).

With no ``--provider`` it needs no API key: it starts the built-in replay server on
127.0.0.1, which replays a real recorded provider stream at a model's pace, and points
the provider's official SDK client at it. With ``--provider`` and ``--model`` (and the
provider's API key in its usual environment variable) it runs the same against the real
API.

It shows three things: a stream printed live as it arrives; the same request stopped
early with ``ops.take_until_match`` once the pattern is written (and, on the replay
server, how many events the server never had to send and the output tokens and money
that saved, zero when nothing was); and the reduced call response with its usage.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import threading
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

import streamkit as sk
from streamkit import ops

DEFAULT_TRANSCRIPT = "groq/chat-text-x-groq-usage"
DEFAULT_STOP = r"\?"
DEFAULT_PROMPT = "Tell me a joke about OpenTelemetry"
DEFAULT_WAV = "streamkit-demo.wav"
DESCRIPTION = (
    "streamkit: LLM provider streams as ReactiveX observables. "
    "'streamkit demo' replays a real recorded stream from a local server (no API key)."
)


class CommandError(Exception):
    """A bad command line or environment, reported as one line (exit code 2)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamkit", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"streamkit {sk.__version__}")
    commands = parser.add_subparsers(dest="command")
    demo = commands.add_parser("demo", help="stream, stop early, reduce (no API key needed)")
    demo.add_argument(
        "--provider",
        help="run against the real API of this provider (its key in the environment)",
    )
    demo.add_argument("--model", help="the model, with --provider")
    demo.add_argument("--prompt", help=f"the prompt, with --provider (default {DEFAULT_PROMPT!r})")
    demo.add_argument(
        "--list", action="store_true", help="list the bundled transcripts --transcript takes"
    )
    demo.add_argument(
        "--transcript",
        default=DEFAULT_TRANSCRIPT,
        help=f"the bundled recording to replay (default {DEFAULT_TRANSCRIPT})",
    )
    demo.add_argument(
        "--stop-at",
        default=DEFAULT_STOP,
        help="regular expression that ends the early-stopped stream (default: a '?')",
    )
    demo.add_argument("--pace", type=float, default=0.04, help="seconds between replayed events")
    demo.add_argument(
        "--audio",
        action="store_true",
        help="OpenAI audio output: write a WAV and print the transcript as it arrives",
    )
    demo.add_argument("--wav", help=f"where --audio writes (default {DEFAULT_WAV})")
    try:
        from streamkit.serve._cli import add_serve_parser
    except ImportError:  # the [serve] extra is not installed
        pass
    else:
        add_serve_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    out = out or sys.stdout
    if args.command == "serve":
        from streamkit.serve._cli import run_serve

        return run_serve(args, out)
    if args.command != "demo":
        _parser().print_help(out)
        return 0 if args.command is None else 2
    try:
        return _demo(args, out)
    except CommandError as error:
        print(f"streamkit demo: error: {error}", file=sys.stderr)
        return 2
    except sk.StreamError as error:
        print(f"streamkit demo: error: {error}", file=sys.stderr)
        return 1


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    if args.list:
        from streamkit.testing import transcript_names

        for name in transcript_names():
            print(name, file=out)
        return 0
    if args.provider and not args.model:
        raise CommandError("--provider needs --model")
    if not args.provider and (args.model or args.prompt):
        raise CommandError(
            "--model and --prompt go with --provider (the real API); without it the demo "
            "replays a recording: choose it with --transcript (see --list)"
        )
    try:
        re.compile(args.stop_at)
    except re.error as error:
        message = f"--stop-at {args.stop_at!r} is not a regular expression: {error}"
        raise CommandError(message) from None
    if args.wav is not None and not args.audio:
        raise CommandError("--wav goes with --audio (where the audio is written)")
    if not math.isfinite(args.pace) or args.pace < 0:
        raise CommandError(f"--pace must be a number of seconds >= 0, not {args.pace:g}")
    if args.audio:
        from streamkit._demo_audio import run_audio_demo

        if args.provider and args.provider != "openai":
            raise CommandError("--audio needs --provider openai (or no --provider)")
        args.wav = args.wav or DEFAULT_WAV
        _check_writable(args.wav)

        return run_audio_demo(args, out)
    with ExitStack() as stack:
        if args.provider:
            provider, model, client, server = args.provider, args.model, None, None
            prompt = args.prompt or DEFAULT_PROMPT
            print(f"streamkit demo against the real {provider} API ({model})\n", file=out)
        else:
            from streamkit.testing import ReplayServer, load_transcript

            try:
                transcript = load_transcript(args.transcript)
            except LookupError:
                raise CommandError(
                    f"no bundled transcript named {args.transcript!r} (list them: "
                    "python -m streamkit demo --list)"
                ) from None
            server = stack.enter_context(ReplayServer(transcript, pace=args.pace))
            provider = transcript.provider
            model = _recorded_model(_request_body(transcript.request)) or "recorded-model"
            client = server.client(provider)
            prompt = _recorded_prompt(_request_body(transcript.request)) or DEFAULT_PROMPT
            print(
                f"streamkit demo: replaying a real {provider} stream ({args.transcript}) "
                f"from {server.url}, no API key needed\n",
                file=out,
            )
        stream = sk.stream(provider, model, prompt, client=client)
        _live(stream, out)
        _early_stop(stream, args.stop_at, server, out)
        _reduced(stream, out)
    return 0


def _check_writable(path: str) -> None:
    """Raise :class:`CommandError` unless a file can be written at ``path`` (its folder
    exists and is writable, and ``path`` is not a folder), before anything runs."""
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        raise CommandError(f"--wav {path!r} is a directory: give a file name, as demo.wav")
    if not folder.is_dir():
        raise CommandError(f"--wav {path!r}: the directory {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise CommandError(f"--wav {path!r}: the directory {str(folder)!r} is not writable")


def _live(stream: sk.Stream, out: TextIO) -> None:
    print("1. The stream, printed live as it arrives:\n", file=out)
    for chunk, _tool in stream:
        print(chunk.content, end="", flush=True, file=out)
    print(f"\n\n   finish reason: {stream.finish_reasons}, usage: {stream.usage!r}\n", file=out)


def _early_stop(stream: sk.Stream, pattern: str, server: Any, out: TextIO) -> None:
    print(f"2. The same request, stopped as soon as the text matches {pattern!r}:\n", file=out)
    done = threading.Event()
    chunks: list[sk.Chunk] = []
    errors: list[BaseException] = []

    def on_next(chunk: sk.Chunk) -> None:
        chunks.append(chunk)
        print(chunk.content, end="", flush=True, file=out)

    def on_error(error: BaseException) -> None:
        errors.append(error)
        done.set()

    requests_before = len(server.requests) if server is not None else 0
    reports: list[sk.UsageReport] = []
    stream.pipe(ops.take_until_match(pattern), ops.on_usage(reports.append)).subscribe(
        on_next, on_error, on_completed=done.set
    )
    done.wait()
    if errors:
        raise errors[0]
    matched = re.search(pattern, "".join(chunk.content for chunk in chunks)) is not None
    if matched:
        print(f"\n\n   matched after {len(chunks)} chunks: the HTTP response was closed", file=out)
    else:
        print(
            f"\n\n   the pattern never matched: the stream ran to its end ({len(chunks)} chunks)",
            file=out,
        )
    if server is not None:
        record = server.wait_for_request_end(requests_before)
        spared = record.events_total - record.events_sent
        if spared > 0:
            print(
                f"   the server sent {record.events_sent} of {record.events_total} events: "
                f"{spared} never had to be sent (a real model stops generating them)",
                file=out,
            )
            print(_saving(stream, reports) + "\n", file=out)
        elif matched:
            print(
                f"   the server had already sent all {record.events_total} events when the "
                "response was closed: nothing was spared (a replay this fast outruns the "
                "client; try --pace 0.04)\n",
                file=out,
            )
        else:
            print(f"   the server sent all {record.events_total} events\n", file=out)


def _saving(full: sk.Stream, reports: list[sk.UsageReport]) -> str:
    """What the early stop saved, in output tokens and money: the whole answer's usage
    (part 1, the provider's figures) minus what the stopped request used (streamkit's
    estimate: the provider never reported it)."""
    # the iteration's own request: stream.usage / .cost count part 2's request too
    answer = full.construct_call_response()
    whole, stopped = answer.usage, reports[0].usage if reports else None
    if whole is None or stopped is None:
        return "   tokens saved: unknown (no usage for one of the two requests)"
    saved = max(whole.output_tokens - stopped.output_tokens, 0)
    line = (
        f"   output tokens: the whole answer {whole.output_tokens} ({whole.source}), "
        f"this request about {stopped.output_tokens} ({stopped.source}): "
        f"about {saved} not generated"
    )
    whole_cost, stopped_cost = answer.cost, reports[0].cost
    if whole_cost.amount is None or stopped_cost.amount is None:
        reason = whole_cost.reason or stopped_cost.reason or "no price"
        return f"{line}; money saved unknown ({reason})"
    money = max(whole_cost.amount - stopped_cost.amount, 0)
    return f"{line}, {whole_cost.currency} {money:.6f} not billed (genai-prices' price)"


def _reduced(stream: sk.Stream, out: TextIO) -> None:
    print("3. A stream reduced to its call response (ops.to_call_response()):\n", file=out)
    response = stream.pipe(ops.to_call_response()).run()
    print(f"   content: {response.content!r}", file=out)
    print(f"   finish_reason: {response.finish_reason} ({response.finish_reasons})", file=out)
    print(f"   usage: {response.usage!r}", file=out)


def _request_body(request: Any) -> Any:
    return request.get("json") if isinstance(request, dict) else None


def _recorded_model(request: Any) -> str | None:
    if isinstance(request, dict) and isinstance(request.get("model"), str):
        return str(request["model"])
    return None


def _recorded_prompt(request: Any) -> str | None:
    if not isinstance(request, dict):
        return None
    messages = request.get("messages")
    if isinstance(messages, list) and messages:
        content = messages[-1].get("content") if isinstance(messages[-1], dict) else None
        if isinstance(content, str):
            return content
    return None


if __name__ == "__main__":
    raise SystemExit(main())
