"""A connection dropped after the provider's terminal event loses nothing of the
response: the stream completes whole. Dropped just before it, the stream is
``IncompleteStreamError``. (Found by the fault matrix: every SDK but openai's raised
its transport error for a complete response, which retry_on_error would then have
re-requested and billed again.)"""

from __future__ import annotations

from collections.abc import Callable

import pytest

import streamkit as sk
from streamkit import ops
from streamkit.testing import Fault, ReplayServer, Reply, load_transcript
from streamkit.testing.replay import event_text
from tests.reliability._matrix import MODEL, PROVIDER_CASES, ProviderCase
from tests.reliability._run import close_async_client, run

CASES = [
    pytest.param(provider, async_, id=f"{provider.name}-{'async' if async_ else 'sync'}")
    for provider in PROVIDER_CASES
    for async_ in (False, True)
]


def ends_with_done(provider: ProviderCase) -> bool:
    """Whether the transcript's last event is ``data: [DONE]`` (after the terminal one)."""
    return load_transcript(provider.transcript).events[-1].startswith("data: [DONE]")


async def outcome(
    server: ReplayServer, provider: ProviderCase, async_: bool, fault: Fault
) -> tuple[str, Exception | None]:
    server.push(Reply(provider.transcript, fault=fault))
    client = server.client(provider.name, async_=async_)
    try:
        stream = sk.stream(provider.name, MODEL, "hello", client=client, async_=async_)
        responses, error = await run(stream.pipe(ops.to_call_response()), async_=async_)
    finally:
        if async_:
            await close_async_client(client)
    return (responses[0].content if responses else ""), error


def whole_text(provider: ProviderCase) -> str:
    transcript = load_transcript(provider.transcript)
    return "".join(event_text(event, transcript.api) for event in transcript.events)


@pytest.mark.parametrize(("provider", "async_"), CASES)
@pytest.mark.parametrize("cut", ["close", "reset"])
async def test_cut_after_every_event_is_a_whole_response(
    provider: ProviderCase, async_: bool, cut: str, replay: Callable[..., ReplayServer]
) -> None:
    missing = provider.missing()
    if missing:
        pytest.skip(missing)
    events = len(load_transcript(provider.transcript).events)
    fault = Fault(close_after_events=events) if cut == "close" else Fault(reset_after_events=events)
    text, error = await outcome(replay(), provider, async_, fault)
    assert error is None, repr(error)
    assert text == whole_text(provider)


@pytest.mark.parametrize(("provider", "async_"), CASES)
async def test_cut_before_the_last_event(
    provider: ProviderCase, async_: bool, replay: Callable[..., ReplayServer]
) -> None:
    """Without ``[DONE]`` only, the response is whole; without the terminal event
    itself (Anthropic's message_stop, Gemini's finishReason chunk), it is incomplete.

    litellm is the exception: it holds the usage chunk back until the body has ended
    (its ``CustomStreamWrapper`` yields usage from the ``StopIteration`` branch), so on
    a connection dropped before ``[DONE]`` it raises ``MidStreamFallbackError`` and
    never yields the usage it received: streamkit sees the finish reason without the
    usage it asked for, an incomplete stream."""
    missing = provider.missing()
    if missing:
        pytest.skip(missing)
    events = len(load_transcript(provider.transcript).events)
    text, error = await outcome(replay(), provider, async_, Fault(close_after_events=events - 1))
    if provider.name == "litellm":
        assert isinstance(error, sk.IncompleteStreamError), repr(error)
        assert type(error.__cause__).__name__ == "MidStreamFallbackError", repr(error.__cause__)
    elif ends_with_done(provider):
        assert error is None, repr(error)
        assert text == whole_text(provider)
    else:
        assert isinstance(error, sk.IncompleteStreamError), repr(error)
