"""streamkit.testing.strategies: generated provider streams, served to the real SDKs.

For each provider, streams generated from the SDK's own types are pushed to one
``ReplayServer`` (``provider_transcript``), streamed through the real SDK client into
``sk.stream(...)`` and reduced; the result must equal what the SDK's own accumulator
makes of the same events (openai ``ChatCompletionStreamState``, anthropic
``MessageStream`` over HTTP, mistral ``accumulate_chunks_to_response_dict``; Groq has
none, so openai's state over its chunks, with usage from ``x_groq``), and what the
generator says it put in. One server per test keeps each test to a few seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings

import streamkit as sk
from streamkit import ops
from streamkit.testing import ReplayServer
from streamkit.testing import strategies as sks

# A server round trip per example: half the profile's examples (20 by default).
EXAMPLES = max(5, settings().max_examples // 2)


def reduce(server: ReplayServer, client: Any, stream: sks.ProviderStream) -> sk.CallResponse:
    """``stream`` served by ``server`` and reduced by streamkit through ``client``."""
    server.push(sks.provider_transcript(stream))
    # An OpenAI stream without a usage chunk answers a request without include_usage.
    params: dict[str, Any] = (
        {"stream_options": {"include_usage": False}} if stream.usage is None else {}
    )
    response = sk.stream(stream.provider, "generated-model", "hi", client=client, **params).pipe(
        ops.to_call_response()
    )
    result: sk.CallResponse = response.run()
    assert server.wait_for_request_end().completed
    return result


def assert_holds_what_was_generated(response: sk.CallResponse, stream: sks.ProviderStream) -> None:
    assert response.provider == stream.provider
    assert response.content == stream.text
    assert response.thinking == stream.thinking
    assert [(t.id, t.name, t.arguments) for t in response.tool_calls] == stream.tool_calls
    assert [t.args for t in response.tool_calls] == [json.loads(a) for _, _, a in stream.tool_calls]
    assert response.finish_reasons == [stream.finish_reason]
    if stream.usage is None:
        assert response.usage is not None and response.usage.source == "estimated"
    else:
        assert response.usage is not None
        assert response.usage.input_tokens == stream.usage.input_tokens
        assert response.usage.output_tokens == stream.usage.output_tokens


@dataclass(frozen=True)
class Reduced:
    """What a reducer says of a stream, in the terms every oracle can give."""

    content: str
    thinking: str | None  # None: this oracle does not keep reasoning
    tool_calls: list[tuple[str | None, str, Any]]  # (id, name, parsed arguments)
    finish_reasons: list[str | None]
    usage: tuple[int, int] | None  # (input, output tokens)


def streamkit_view(response: sk.CallResponse, *, thinking: bool = True) -> Reduced:
    usage = response.usage
    return Reduced(
        content=response.content,
        thinking=response.thinking if thinking else None,
        tool_calls=[(t.id, t.name, t.args) for t in response.tool_calls],
        finish_reasons=list(response.finish_reasons or []),
        # The SDKs' accumulators know only the provider's own figures: streamkit's
        # estimate (usage the provider never sent) compares as none.
        usage=None
        if usage is None or usage.source == "estimated"
        else (usage.input_tokens, usage.output_tokens),
    )


def openai_state(chunks: list[Any]) -> Any:
    """openai's own accumulation of chat chunks (the snapshot: ``get_final_completion``
    refuses a ``length`` finish)."""
    from openai.lib.streaming.chat import ChatCompletionStreamState
    from openai.types.chat import ChatCompletionChunk

    state = ChatCompletionStreamState()
    for chunk in chunks:
        # Groq's chunks become openai's as the wire has them (unset fields left out).
        wire = chunk.model_dump(exclude_unset=True)
        state.handle_chunk(ChatCompletionChunk.model_validate(wire))
    return state.current_completion_snapshot


def openai_oracle(stream: sks.ProviderStream, usage: Any, reasoning: str | None) -> Reduced:
    choice = openai_state(stream.events).choices[0]
    calls = choice.message.tool_calls or []
    return Reduced(
        content=choice.message.content or "",
        thinking=reasoning,
        tool_calls=[(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls],
        finish_reasons=[choice.finish_reason],
        usage=None if usage is None else (usage.prompt_tokens, usage.completion_tokens),
    )


def openai_view(_: ReplayServer, __: Any, stream: sks.ProviderStream) -> Reduced:
    """``ChatCompletionStreamState`` over the generated chunks; OpenAI chat has no
    reasoning deltas, so thinking must stay empty."""
    return openai_oracle(stream, openai_state(stream.events).usage, "")


def groq_view(_: ReplayServer, __: Any, stream: sks.ProviderStream) -> Reduced:
    """openai's state over Groq's chunks (it keeps ``delta.reasoning`` as an extra);
    usage from ``x_groq.usage`` of the last chunk."""
    message = openai_state(stream.events).choices[0].message
    reasoning = (message.model_extra or {}).get("reasoning") or ""
    return openai_oracle(stream, stream.events[-1].x_groq.usage, reasoning)


def mistral_view(_: ReplayServer, __: Any, stream: sks.ProviderStream) -> Reduced:
    """mistralai's ``accumulate_chunks_to_response_dict`` (it leaves thinking out)."""
    from mistralai.extra.observability.streaming import accumulate_chunks_to_response_dict

    accumulated = accumulate_chunks_to_response_dict(stream.events)
    choice, usage = accumulated["choices"][0], accumulated["usage"]
    calls = choice["message"].get("tool_calls", [])
    return Reduced(
        content=choice["message"]["content"],
        thinking=None,
        tool_calls=[
            (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls
        ],
        finish_reasons=[choice["finish_reason"]],
        usage=(usage["prompt_tokens"], usage["completion_tokens"]),
    )


def anthropic_view(server: ReplayServer, client: Any, stream: sks.ProviderStream) -> Reduced:
    """The SDK's ``messages.stream()`` over the same transcript, served again."""
    server.push(sks.provider_transcript(stream))
    request = {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
    with client.messages.stream(**request) as message_stream:
        message = message_stream.get_final_message()
    blocks = message.content
    return Reduced(
        content="".join(b.text for b in blocks if b.type == "text"),
        thinking="".join(b.thinking for b in blocks if b.type == "thinking"),
        tool_calls=[(b.id, b.name, b.input) for b in blocks if b.type == "tool_use"],
        finish_reasons=[message.stop_reason],
        usage=(message.usage.input_tokens, message.usage.output_tokens),
    )


ORACLES: dict[str, Callable[[ReplayServer, Any, sks.ProviderStream], Reduced]] = {
    "openai": openai_view,
    "groq": groq_view,
    "mistral": mistral_view,
    "anthropic": anthropic_view,
}


@pytest.mark.parametrize("provider", sks.STREAM_PROVIDERS)
def test_generated_streams_reduce_as_the_sdk_accumulates_them(provider: str) -> None:
    oracle = ORACLES[provider]
    with ReplayServer() as server:
        client = server.client(provider)

        @settings(max_examples=EXAMPLES)
        @given(sks.provider_streams(provider))
        def check(stream: sks.ProviderStream) -> None:
            response = reduce(server, client, stream)
            expected = oracle(server, client, stream)
            assert streamkit_view(response, thinking=expected.thinking is not None) == expected
            assert_holds_what_was_generated(response, stream)

        check()


def test_an_unknown_provider_has_no_stream_strategy() -> None:
    with pytest.raises(ValueError, match="no stream strategy for 'cohere'"):
        sks.provider_streams("cohere")
    assert all(sks.provider_streams(name) is not None for name in sks.STREAM_PROVIDERS)


def test_the_module_imports_without_any_provider_sdk() -> None:
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'openai', 'anthropic', 'mistralai', 'groq'}:\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from streamkit.testing import strategies\n"
        "strategies.provider_streams('openai')\n"
        "print('imported')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", blocker], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.stdout.strip() == "imported", result.stderr
