"""Large synthetic provider streams for the benchmarks, built in memory.

The events follow the recorded transcripts' shapes (``openai/chat-text-usage``,
``anthropic/messages-text``, ``groq/chat-text-x-groq-usage``, ``mistral/chat-text-usage``):
same keys, same kind of ids, one short text delta per event, a finish event, the usage
event (Groq: in the finish event's ``x_groq``; Mistral: in the finish event), then
``[DONE]`` / ``message_stop``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from streamkit.testing import Transcript

WORDS = ("The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", ".")
MATCH_TEXT = "MOONRISE"
"""A word the early-termination streams carry once, at a known event."""


def _openai_chunk(chat_id: str, **fields: object) -> str:
    """One chat.completion.chunk event: the recorded stream's identity, then ``fields``."""
    payload = {
        "id": chat_id,
        "object": "chat.completion.chunk",
        "created": 1766084435,
        "model": "gpt-4o-2024-08-06",
        "service_tier": "default",
        "system_fingerprint": "fp_deacdd5f6f",
        **fields,
    }
    return "data: " + json.dumps(payload, separators=(",", ":")) + "\n\n"


def _openai_event(chat_id: str, delta: dict[str, object], finish: str | None) -> str:
    return _openai_chunk(
        chat_id,
        choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        usage=None,
        obfuscation="Mi59qhDMTFqjyRp",
    )


def openai_events(chunks: int, *, match_at: int | None = None) -> Iterator[str]:
    """``chunks`` text events (the first carries the role), a finish event, the usage
    event and ``[DONE]``; event ``match_at`` (if given) carries :data:`MATCH_TEXT`."""
    chat_id = "chatcmpl-CoDWl5rS0pF10P0W0TDVgY3NA26dk"
    yield _openai_event(chat_id, {"role": "assistant", "content": "", "refusal": None}, None)
    for i in range(chunks):
        word = f" {MATCH_TEXT}" if i == match_at else WORDS[i % len(WORDS)]
        yield _openai_event(chat_id, {"content": word}, None)
    yield _openai_event(chat_id, {}, "stop")
    yield _openai_chunk(
        chat_id,
        choices=[],
        usage={
            "prompt_tokens": 16,
            "completion_tokens": chunks,
            "total_tokens": 16 + chunks,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
        obfuscation="177fY0rBeHpThLi",
    )
    yield "data: [DONE]\n\n"


def openai_transcript(chunks: int, *, match_at: int | None = None) -> Transcript:
    """An OpenAI chat-completions stream of ``chunks`` text deltas (+4 other events)."""
    return Transcript.from_events(
        "openai",
        "chat.completions",
        openai_events(chunks, match_at=match_at),
        name=f"bench/openai-{chunks}",
        content_type="text/event-stream; charset=utf-8",
        description=f"{chunks} generated text deltas",
    )


def _anthropic_event(kind: str, payload: dict[str, object]) -> str:
    return f"event: {kind}\ndata: " + json.dumps(payload, separators=(",", ":")) + "\n\n"


def anthropic_events(chunks: int) -> Iterator[str]:
    """An Anthropic Messages stream with ``chunks`` text deltas."""
    yield _anthropic_event(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "model": "claude-sonnet-4-20250514",
                "id": "msg_018bk6q16LtrDpGDm6TyXTgn",
                "type": "message",
                "role": "assistant",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 17, "output_tokens": 1},
            },
        },
    )
    yield _anthropic_event(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    )
    for i in range(chunks):
        yield _anthropic_event(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": WORDS[i % len(WORDS)]},
            },
        )
    yield _anthropic_event("content_block_stop", {"type": "content_block_stop", "index": 0})
    yield _anthropic_event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": chunks},
        },
    )
    yield _anthropic_event("message_stop", {"type": "message_stop"})


def anthropic_transcript(chunks: int) -> Transcript:
    """An Anthropic Messages stream of ``chunks`` text deltas (+5 other events)."""
    return Transcript.from_events(
        "anthropic",
        "messages",
        anthropic_events(chunks),
        name=f"bench/anthropic-{chunks}",
        content_type="text/event-stream; charset=utf-8",
        description=f"{chunks} generated text deltas",
    )


def _groq_event(delta: dict[str, object], finish: str | None, **extra: object) -> str:
    payload = {
        "id": "chatcmpl-532a6640-2e18-4a4c-8406-8437a857ce48",
        "object": "chat.completion.chunk",
        "created": 1739948145,
        "model": "llama3-8b-8192",
        "system_fingerprint": "fp_179b0f92c9",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        **extra,
    }
    return "data: " + json.dumps(payload, separators=(",", ":")) + "\n\n"


def groq_events(chunks: int) -> Iterator[str]:
    """A Groq chat stream with ``chunks`` text deltas: the role event (with
    ``x_groq.id``), the deltas, the finish event with ``x_groq.usage``, ``[DONE]``."""
    x_groq_id = "req_01jmefve36eajb6c1x6k8ppv5m"
    yield _groq_event({"role": "assistant", "content": ""}, None, x_groq={"id": x_groq_id})
    for i in range(chunks):
        yield _groq_event({"content": WORDS[i % len(WORDS)]}, None)
    usage = {
        "queue_time": 0.28245049,
        "prompt_tokens": 18,
        "prompt_time": 0.002698174,
        "completion_tokens": chunks,
        "completion_time": 0.060833333,
        "total_tokens": 18 + chunks,
        "total_time": 0.063531507,
    }
    yield _groq_event({}, "stop", x_groq={"id": x_groq_id, "usage": usage})
    yield "data: [DONE]\n\n"


def groq_transcript(chunks: int) -> Transcript:
    """A Groq chat stream of ``chunks`` text deltas (+3 other events)."""
    return Transcript.from_events(
        "groq",
        "chat.completions",
        groq_events(chunks),
        name=f"bench/groq-{chunks}",
        content_type="text/event-stream",
        description=f"{chunks} generated text deltas",
    )


def _mistral_event(delta: dict[str, object], finish: str | None, **extra: object) -> str:
    payload = {
        "id": "d3a0f557943648c49fb019bc65a64334",
        "object": "chat.completion.chunk",
        "created": 1757759492,
        "model": "mistral-tiny",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return "data: " + json.dumps(payload, separators=(",", ":")) + "\n\n"


def mistral_events(chunks: int) -> Iterator[str]:
    """A Mistral chat stream with ``chunks`` text deltas: the role event, the deltas
    (with the recorded stream's ``p`` padding), the finish event with usage, ``[DONE]``."""
    yield _mistral_event({"role": "assistant", "content": ""}, None)
    for i in range(chunks):
        padding = "abcdefghijklmnopqrstuvwxyz012345"[: 2 + 5 * (i % 7)]
        yield _mistral_event({"content": WORDS[i % len(WORDS)]}, None, p=padding)
    usage = {"prompt_tokens": 11, "total_tokens": 11 + chunks, "completion_tokens": chunks}
    yield _mistral_event({"content": ""}, "stop", usage=usage, p="abcdefghijkl")
    yield "data: [DONE]\n\n"


def mistral_transcript(chunks: int) -> Transcript:
    """A Mistral chat stream of ``chunks`` text deltas (+3 other events)."""
    return Transcript.from_events(
        "mistral",
        "chat.completions",
        mistral_events(chunks),
        name=f"bench/mistral-{chunks}",
        content_type="text/event-stream; charset=utf-8",
        description=f"{chunks} generated text deltas",
    )


def build(spec: str) -> Transcript:
    """A transcript from a spec ``"openai:20000"``, ``"anthropic:2000"``, ``"groq:2000"``,
    ``"mistral:2000"`` or ``"openai:200:match=50"`` (the match word at event 50)."""
    provider, _, rest = spec.partition(":")
    size, _, option = rest.partition(":")
    chunks = int(size)
    if provider == "openai":
        match_at = int(option.removeprefix("match=")) if option else None
        return openai_transcript(chunks, match_at=match_at)
    if provider == "anthropic":
        return anthropic_transcript(chunks)
    if provider == "groq":
        return groq_transcript(chunks)
    if provider == "mistral":
        return mistral_transcript(chunks)
    raise ValueError(f"unknown stream spec {spec!r}")
