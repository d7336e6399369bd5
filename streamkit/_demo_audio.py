"""The demo's ``--audio`` mode: "process text and audio concurrently", as in Mirascope's
streaming guide.

One OpenAI chat request with audio output is split by ``ops.tee_audio_text`` into its
audio bytes (written to a WAV file as they arrive) and its transcript (printed as it
arrives). Offline it replays streamkit's synthetic audio transcript (a generated tone:
no public recording of this stream exists).
"""

from __future__ import annotations

import argparse
import threading
import wave
from contextlib import ExitStack
from typing import Any, TextIO

import streamkit as sk
from streamkit import ops

AUDIO_TRANSCRIPT = "synthetic/openai-chat-audio-pcm16"
SAMPLE_RATE = 24_000


def run_audio_demo(args: argparse.Namespace, out: TextIO) -> int:
    """Stream audio and text at once; write the audio to ``args.wav``."""
    with ExitStack() as stack:
        client: Any = None
        model = args.model or "gpt-4o-audio-preview"
        if args.provider:  # openai (the command line checked it)
            prompt = args.prompt or "Tell me a one-line story."
        else:
            from streamkit.testing import ReplayServer

            server = stack.enter_context(ReplayServer(AUDIO_TRANSCRIPT, pace=args.pace))
            client = server.client("openai")
            prompt = "Tell me a very short story"
            print(
                f"streamkit audio demo: replaying {AUDIO_TRANSCRIPT} (synthetic: a generated "
                f"tone) from {server.url}\n",
                file=out,
            )
        stream = sk.stream(
            "openai",
            model,
            prompt,
            client=client,
            modalities=["text", "audio"],
            audio={"voice": "alloy", "format": "pcm16"},
        )
        wav = stack.enter_context(wave.open(args.wav, "wb"))
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)

        audio, text = ops.tee_audio_text(stream)
        done = threading.Event()
        finished: list[str] = []
        errors: list[BaseException] = []
        lock = threading.Lock()
        written = [0]

        def write_audio(data: bytes) -> None:
            wav.writeframes(data)
            written[0] += len(data)

        def print_text(piece: str) -> None:
            print(piece, end="", flush=True, file=out)

        def side_done(name: str) -> Any:
            def on_completed() -> None:
                with lock:
                    finished.append(name)
                    if len(finished) == 2:
                        done.set()

            return on_completed

        def on_error(error: BaseException) -> None:
            errors.append(error)
            done.set()

        print("transcript, as it arrives: ", end="", file=out)
        audio.subscribe(write_audio, on_error, side_done("audio"))
        text.subscribe(print_text, on_error, side_done("text"))
        done.wait()
        if errors:
            raise errors[0]
    seconds = written[0] / 2 / SAMPLE_RATE
    print(f"\n\nwrote {written[0]} bytes of pcm16 audio ({seconds:.2f} s) to {args.wav}", file=out)
    return 0
