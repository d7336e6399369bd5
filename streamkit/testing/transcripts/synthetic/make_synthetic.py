"""Write streamkit's synthetic transcripts (the cases no public recording covers).

Run from anywhere: ``python streamkit/testing/transcripts/synthetic/make_synthetic.py``.
The output is deterministic (fixed ids, timestamps and samples), so re-running
it reproduces the committed JSON files byte for byte.

- ``openai-chat-audio-pcm16.json``: OpenAI chat completions with
  ``modalities=["text", "audio"]`` and ``audio={"voice": "alloy", "format":
  "pcm16"}``.  ``choices[0].delta.audio`` carries the documented streaming
  fields: ``id`` first, then ``transcript`` text deltas and ``data`` (base64 of
  pcm16 little-endian, 24 kHz, mono samples of a 440 Hz sine tone, 0.5 s in ten
  pieces), and a last audio delta holding only ``expires_at``; then ``finish_reason`` stop,
  a usage chunk with ``choices=[]`` and ``data: [DONE]``.
- ``anthropic-midstream-overloaded-error.json``: an Anthropic messages stream
  that starts normally and then sends ``event: error`` with an
  ``overloaded_error``, ending without ``message_stop``.
"""

from __future__ import annotations

import base64
import json
import math
import struct
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

NOTE = (
    "synthetic: written by streamkit (make_synthetic.py) from the provider's documented "
    "streaming format, not recorded from the provider"
)
SOURCE = {
    "repo": "streamkit",
    "path": "streamkit/testing/transcripts/synthetic/make_synthetic.py",
    "license": "MIT",
    "recorded": False,
}

SAMPLE_RATE = 24_000
TONE_HZ = 440.0
SECONDS = 0.5
AUDIO_PIECES = 10


def _compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def pcm16_sine(
    seconds: float = SECONDS, rate: int = SAMPLE_RATE, hz: float = TONE_HZ, amplitude: float = 0.3
) -> bytes:
    """Signed 16-bit little-endian mono samples of a sine tone."""
    count = round(seconds * rate)
    peak = int(amplitude * 32767)
    samples = [round(peak * math.sin(2 * math.pi * hz * n / rate)) for n in range(count)]
    return struct.pack(f"<{count}h", *samples)


def openai_audio() -> dict[str, Any]:
    """The OpenAI chat audio (pcm16) stream as a transcript dict."""
    pcm = pcm16_sine()
    piece = len(pcm) // AUDIO_PIECES
    assert piece % 2 == 0 and piece * AUDIO_PIECES == len(pcm)
    data = [
        base64.b64encode(pcm[i * piece : (i + 1) * piece]).decode("ascii")
        for i in range(AUDIO_PIECES)
    ]
    audio_id = "audio_streamkit0000000000000001"
    expires_at = 1767229200
    transcript_text = "Once upon a time, a dragon slept."

    # (audio delta, role?) per content chunk; transcript pieces join to the text.
    deltas: list[dict[str, Any]] = [
        {"id": audio_id},
        {"transcript": "Once"},
        {"transcript": " upon"},
        {"data": data[0]},
        {"data": data[1], "transcript": " a"},
        {"data": data[2], "transcript": " time,"},
        {"data": data[3]},
        {"data": data[4], "transcript": " a dragon"},
        {"data": data[5]},
        {"data": data[6], "transcript": " slept."},
        {"data": data[7]},
        {"data": data[8]},
        {"data": data[9]},
        # The final audio update carries only its expiry (as the SDK's
        # ChoiceDeltaAudio documents it).
        {"expires_at": expires_at},
    ]
    assert "".join(d.get("transcript", "") for d in deltas) == transcript_text

    base = {
        "id": "chatcmpl-streamkitaudio0000000001",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": "gpt-4o-audio-preview-2024-12-17",
        "service_tier": "default",
        "system_fingerprint": "fp_streamkit01",
    }
    chunks: list[dict[str, Any]] = []
    for i, audio in enumerate(deltas):
        delta: dict[str, Any] = (
            {"role": "assistant", "content": None, "refusal": None, "audio": audio}
            if i == 0
            else {"audio": audio}
        )
        chunks.append(
            {
                **base,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}],
                "usage": None,
            }
        )
    chunks.append(
        {
            **base,
            "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
            "usage": None,
        }
    )
    text_tokens, audio_tokens = 9, 13
    chunks.append(
        {
            **base,
            "choices": [],
            "usage": {
                "prompt_tokens": 21,
                "completion_tokens": text_tokens + audio_tokens,
                "total_tokens": 21 + text_tokens + audio_tokens,
                "prompt_tokens_details": {
                    "cached_tokens": 0,
                    "audio_tokens": 0,
                    "text_tokens": 21,
                    "image_tokens": 0,
                },
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": audio_tokens,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                    "text_tokens": text_tokens,
                },
            },
        }
    )
    body = "".join(f"data: {_compact(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    return {
        "provider": "openai",
        "api": "chat.completions",
        "description": (
            "gpt-4o-audio-preview chat stream with modalities text+audio, pcm16 voice alloy, "
            "include_usage: delta.audio id, transcript and base64 pcm16 data deltas, "
            "expires_at, usage with audio_tokens"
        ),
        "synthetic": True,
        "source": SOURCE,
        "request": {
            "method": "POST",
            "path": "/v1/chat/completions",
            "json": {
                "model": "gpt-4o-audio-preview",
                "modalities": ["text", "audio"],
                "audio": {"voice": "alloy", "format": "pcm16"},
                "messages": [{"role": "user", "content": "Tell me a one-line story."}],
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        },
        "response": {
            "status": 200,
            "headers": {"content-type": "text/event-stream; charset=utf-8"},
            "body": body,
        },
        "covers": ["audio", "text", "usage"],
        "notes": [
            NOTE,
            (
                f"audio: pcm16 little-endian mono {SAMPLE_RATE} Hz, {TONE_HZ:g} Hz sine, "
                f"{SECONDS:g} s ({len(pcm)} bytes) in {AUDIO_PIECES} base64 data deltas"
            ),
            f"transcript: {transcript_text!r}",
        ],
        "audio": {
            "format": "pcm16",
            "sample_rate": SAMPLE_RATE,
            "channels": 1,
            "bytes": len(pcm),
            "transcript": transcript_text,
            "id": audio_id,
            "expires_at": expires_at,
        },
    }


def anthropic_overloaded() -> dict[str, Any]:
    """The Anthropic stream that fails mid-way with ``overloaded_error``."""
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "model": "claude-sonnet-4-20250514",
                    "id": "msg_streamkit00000000000001",
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": 14,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                        "output_tokens": 1,
                        "service_tier": "standard",
                    },
                },
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
    ]
    for piece in ("Once upon a time", ", a dragon", " slept"):
        events.append(
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                },
            )
        )
    body = "".join(f"event: {name}\ndata: {_compact(data)}\n\n" for name, data in events)
    # The error event exactly as Anthropic documents it (spaces after separators).
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    body += f"event: error\ndata: {json.dumps(error)}\n\n"
    return {
        "provider": "anthropic",
        "api": "messages",
        "description": (
            "messages stream that starts a text block, sends three text deltas, then "
            "event: error overloaded_error and ends without message_stop"
        ),
        "synthetic": True,
        "source": SOURCE,
        "request": {
            "method": "POST",
            "path": "/v1/messages",
            "json": {
                "model": "claude-sonnet-4-20250514",
                "max_tokens": 1024,
                "messages": [{"role": "user", "content": "Tell me a one-line story."}],
                "stream": True,
            },
        },
        "response": {
            "status": 200,
            "headers": {"content-type": "text/event-stream; charset=utf-8"},
            "body": body,
        },
        "covers": ["text", "error", "midstream_error", "ping"],
        "notes": [NOTE],
    }


def main(out_dir: Path = HERE) -> list[Path]:
    """Write both files into ``out_dir`` and return their paths."""
    written = []
    for name, make in (
        ("openai-chat-audio-pcm16.json", openai_audio),
        ("anthropic-midstream-overloaded-error.json", anthropic_overloaded),
    ):
        path = out_dir / name
        path.write_text(json.dumps(make(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(p)
