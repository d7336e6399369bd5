"""Non-OpenAI streams through Redis: a follower reduces an Anthropic or a Gemini stream
to the producer's answer (text, thinking, tool calls, native and common finish reasons,
usage). Each provider's chunk type carries its finish-reason table, so the chunks must
come back from the log as that type: a plain ``Chunk`` would reduce Anthropic's
``"end_turn"`` or ``"tool_use"`` to ``"other"``. (The Responses API's chunks too: its
message builder must take a chunk without its event.)"""

from __future__ import annotations

from typing import Any

import pytest
import reactivex
import redis.asyncio as aioredis
from reactivex import operators as rx_ops

import streamkit as sk
import streamkit.redis as skr
from streamkit import ops
from streamkit.testing import ReplayServer
from tests.redis_streams.helpers import collect, producers_done

CASES = [
    ("openai", "gpt-4o-mini", "openai/responses-parallel-function-calls", "tool_calls"),
    ("openai", "gpt-4o-mini", "openai/responses-text", "stop"),
    ("anthropic", "claude-sonnet-4-5", "anthropic/messages-text", "stop"),
    ("anthropic", "claude-sonnet-4-5", "anthropic/messages-thinking", "stop"),
    ("anthropic", "claude-sonnet-4-5", "anthropic/messages-parallel-tool-use", "tool_calls"),
    ("google", "gemini-2.5-flash", "google/gemini-text", "stop"),
    ("google", "gemini-2.5-flash", "google/gemini-parallel-function-calls", "tool_calls"),
    ("google", "gemini-2.5-flash", "google/gemini-max-tokens", "length"),
]


def _reduced(response: sk.CallResponse) -> dict[str, object]:
    return {
        "content": response.content,
        "thinking": response.thinking,
        "tool_calls": [(call.id, call.name, call.args) for call in response.tool_calls],
        "finish_reasons": response.finish_reasons,
        "finish_reason": response.finish_reason,
        "usage": response.usage,
    }


@pytest.mark.parametrize(
    ("provider", "model", "transcript", "finish_reason"), CASES, ids=[c[2] for c in CASES]
)
async def test_a_followed_stream_reduces_to_the_producers_answer(
    redis: aioredis.Redis, provider: str, model: str, transcript: str, finish_reason: str
) -> None:
    with ReplayServer(transcript, pace=0.002) as server:
        client = server.client(provider, async_=True)
        api: dict[str, Any] = {"api": "responses"} if "responses" in transcript else {}
        stream = sk.stream(provider, model, "hi", client=client, **api)
        live = await collect(stream.pipe(ops.publish(redis, "p", poll=0.2), ops.to_call_response()))
        assert server.wait_for_request_end().completed
    await producers_done()
    # The producer's answer: the same stream, reduced in its own process. Read on the SDK
    # path: its chunk types are the ones the log restores (a fast-path chunk, which the
    # producer above published, travels as its provider's class: redis/_codec.py).
    with ReplayServer(transcript) as server:
        client = server.client(provider)
        direct = sk.stream(provider, model, "hi", client=client, fast=False, **api)
        produced: list[sk.Chunk] = direct.pipe(rx_ops.to_list()).run()
    expected: sk.CallResponse = reactivex.from_iterable(produced).pipe(ops.to_call_response()).run()
    assert expected.finish_reason == finish_reason  # the transcript's, normalized
    (published,) = live
    (followed,) = await collect(skr.follow(redis, "p").pipe(ops.to_call_response()))
    assert _reduced(published) == _reduced(followed) == _reduced(expected)
    chunks = await collect(skr.follow(redis, "p"))
    assert [type(chunk) for chunk in chunks] == [type(chunk) for chunk in produced]
    assert [c.model_dump(exclude={"chunk"}) for c in chunks] == [
        c.model_dump(exclude={"chunk"}) for c in produced
    ]
