"""Write the synthetic streams of OpenAI-compatible servers (llama.cpp, vLLM, Ollama).

Run from anywhere: ``python streamkit/testing/transcripts/synthetic/make_openai_compatible.py``;
the output is deterministic (fixed ids and timestamps), byte for byte.

None of these was recorded: each mimics the chunk shape the server's documentation and
source describe for ``/v1/chat/completions`` with ``stream: true``, where it differs
from OpenAI's own: what these servers do with (or without) ``stream_options``.

- ``llamacpp-chat-usage-in-last-chunk-timings.json``: llama.cpp's ``llama-server``. No
  separate usage chunk: ``usage`` sits in the last chunk, the one carrying the
  ``finish_reason`` (and here the last piece of content), next to llama.cpp's own
  ``timings`` object; ``system_fingerprint`` is the build; then ``data: [DONE]``.
- ``vllm-chat-no-usage.json``: vLLM without ``continuous_usage_stats``: no ``usage``
  key in any chunk, and vLLM's extra ``stop_reason`` in each choice; then ``[DONE]``.
- ``ollama-chat-usage-null.json``: Ollama's OpenAI compatibility layer: ``usage: null``
  in every chunk, ``system_fingerprint: "fp_ollama"``; then ``[DONE]``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NOTE = (
    "synthetic: written by streamkit (make_openai_compatible.py) to mimic the server's "
    "documented chunk shape, not recorded from the server"
)
SOURCE = {
    "repo": "streamkit",
    "path": "streamkit/testing/transcripts/synthetic/make_openai_compatible.py",
    "license": "MIT",
    "recorded": False,
}
PROMPT = [{"role": "user", "content": "Say hello in five words."}]
PIECES = ["Hello", " there,", " nice to", " meet", " you!"]
TEXT = "".join(PIECES)


def _compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _body(chunks: list[dict[str, Any]]) -> str:
    return "".join(f"data: {_compact(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"


def _transcript(
    description: str,
    model: str,
    chunks: list[dict[str, Any]],
    covers: list[str],
    notes: list[str],
) -> dict[str, Any]:
    return {
        "provider": "openai",
        "api": "chat.completions",
        "description": description,
        "synthetic": True,
        "source": SOURCE,
        "request": {
            "method": "POST",
            "path": "/v1/chat/completions",
            "json": {"model": model, "messages": PROMPT, "stream": True},
        },
        "response": {
            "status": 200,
            "headers": {"content-type": "text/event-stream"},
            "body": _body(chunks),
        },
        "covers": covers,
        "notes": [NOTE, *notes],
    }


def llamacpp() -> dict[str, Any]:
    model = "qwen2.5-0.5b-instruct-q4_k_m.gguf"
    base = {
        "created": 1764806400,
        "id": "chatcmpl-llamacpp0000000001",
        "model": model,
        "system_fingerprint": "b7100-2f3c8a1d",
        "object": "chat.completion.chunk",
    }
    chunks: list[dict[str, Any]] = [
        {
            "choices": [
                {"finish_reason": None, "index": 0, "delta": {"role": "assistant", "content": None}}
            ],
            **base,
        }
    ]
    for piece in PIECES[:-1]:
        chunks.append(
            {"choices": [{"finish_reason": None, "index": 0, "delta": {"content": piece}}], **base}
        )
    chunks.append(
        {
            "choices": [{"finish_reason": "stop", "index": 0, "delta": {"content": PIECES[-1]}}],
            **base,
            "usage": {"completion_tokens": 7, "prompt_tokens": 14, "total_tokens": 21},
            "timings": {
                "cache_n": 0,
                "prompt_n": 14,
                "prompt_ms": 21.4,
                "prompt_per_token_ms": 1.53,
                "prompt_per_second": 654.2,
                "predicted_n": 7,
                "predicted_ms": 88.1,
                "predicted_per_token_ms": 12.59,
                "predicted_per_second": 79.45,
            },
        }
    )
    return _transcript(
        "llama.cpp llama-server stream: usage and timings inside the last chunk, "
        "which also carries content and the finish reason; no separate usage chunk",
        model,
        chunks,
        ["text", "usage", "openai_compatible", "extra_fields"],
        [
            "usage inside the finish chunk, next to llama.cpp's `timings`; no chunk with "
            "`choices: []`"
        ],
    )


def vllm() -> dict[str, Any]:
    model = "Qwen/Qwen2.5-0.5B-Instruct"
    base = {
        "id": "chatcmpl-vllm00000000000000000001",
        "object": "chat.completion.chunk",
        "created": 1764806400,
        "model": model,
    }
    chunks: list[dict[str, Any]] = [
        {
            **base,
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": ""},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ],
        }
    ]
    for piece in PIECES:
        chunks.append(
            {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": piece},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ],
            }
        )
    chunks.append(
        {
            **base,
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": ""},
                    "logprobs": None,
                    "finish_reason": "stop",
                    "stop_reason": None,
                }
            ],
        }
    )
    return _transcript(
        "vLLM stream without usage: no usage key in any chunk, vLLM's stop_reason "
        "beside finish_reason",
        model,
        chunks,
        ["text", "openai_compatible", "no_usage"],
        ["no `usage` anywhere although the request may ask for it"],
    )


def ollama() -> dict[str, Any]:
    model = "llama3.2"
    base = {
        "id": "chatcmpl-417",
        "object": "chat.completion.chunk",
        "created": 1764806400,
        "model": model,
        "system_fingerprint": "fp_ollama",
    }
    chunks: list[dict[str, Any]] = []
    for piece in PIECES:
        delta = {"role": "assistant", "content": piece}
        chunks.append(
            {
                **base,
                "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                "usage": None,
            }
        )
    chunks.append(
        {
            **base,
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": "stop"}
            ],
            "usage": None,
        }
    )
    return _transcript(
        "Ollama OpenAI-compatible stream: usage null in every chunk, then [DONE]",
        model,
        chunks,
        ["text", "openai_compatible", "no_usage"],
        ["`usage: null` in every chunk, the role repeated in every delta"],
    )


FILES = {
    "llamacpp-chat-usage-in-last-chunk-timings.json": llamacpp,
    "vllm-chat-no-usage.json": vllm,
    "ollama-chat-usage-null.json": ollama,
}


def main(out_dir: Path = HERE) -> list[Path]:
    """Write the files; return their paths."""
    written = []
    for name, make in FILES.items():
        path = out_dir / name
        path.write_text(json.dumps(make(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(path)
