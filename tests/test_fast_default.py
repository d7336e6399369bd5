"""The fast path by default (``fast=None``, "auto"): a stream takes the fast path where
the provider has one and it can run here, else the SDK path silently (one DEBUG line on
the provider module's logger says why), and ``Stream.path`` tells which one reads it.

``fast=True`` and ``fast=False`` keep their meaning; the differential tests
(``tests/test_fast_path*.py``) compare those two. Here: the choice itself, and that
what auto picks reads every chunk as the SDK path does.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from anthropic._streaming import SSEDecoder as AnthropicSSEDecoder
from azure.ai.inference import ChatCompletionsClient
from azure.core.credentials import AzureKeyCredential

import streamkit as sk
from streamkit.providers import _stainless
from streamkit.providers._stainless import LazyChunk
from streamkit.providers.anthropic import _sdk as anthropic_sdk
from streamkit.providers.groq import _sdk as groq_sdk
from streamkit.providers.mistral import _sdk as mistral_sdk
from streamkit.providers.openai import _sdk as openai_sdk
from streamkit.testing import FAKE_API_KEY, ReplayServer
from tests.ops._pipelines import run_async, run_sync

FAST_PROVIDERS = {
    "openai": ("gpt-4o-mini", "openai/chat-tool-call-gpt-4o-mini", "streamkit.providers.openai"),
    "anthropic": (
        "claude-sonnet-4-0",
        "anthropic/messages-parallel-tool-use",
        "streamkit.providers.anthropic",
    ),
    "groq": (
        "openai/gpt-oss-120b",
        "groq/chat-tool-call-reasoning-usage",
        "streamkit.providers.groq",
    ),
    "mistral": (
        "mistral-large-latest",
        "synthetic/mistral-chat-tool-call-argument-deltas",
        "streamkit.providers.mistral",
    ),
}
PROVIDERS = sorted(FAST_PROVIDERS)


def new_stream(provider: str, client: Any, **params: Any) -> sk.Stream:
    return sk.stream(provider, FAST_PROVIDERS[provider][0], "hi", client=client, **params)


def normalized(chunks: list[sk.Chunk]) -> list[dict[str, Any]]:
    return [chunk.model_dump(exclude={"chunk"}) for chunk in chunks]


@pytest.fixture
def no_warnings() -> Iterator[None]:
    """A normal run of the auto choice warns of nothing (its reasons are DEBUG lines)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# -- auto picks the fast path where it runs ---------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_default_is_the_fast_path_and_reads_as_the_sdk_path(provider: str) -> None:
    transcript = FAST_PROVIDERS[provider][1]
    with ReplayServer() as server:
        server.push(transcript, transcript)
        client = server.client(provider)
        default = new_stream(provider, client)
        sdk_path = new_stream(provider, client, fast=False)
        assert (default.path, sdk_path.path) == ("fast", "sdk")
        by_default, by_sdk = run_sync(default), run_sync(sdk_path)
    assert any(isinstance(chunk, LazyChunk) for chunk in by_default)
    assert not any(isinstance(chunk, LazyChunk) for chunk in by_sdk)
    assert normalized(by_default) == normalized(by_sdk)
    assert "fast" not in server.requests[0].json  # chose the path; never sent


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_the_default_is_the_fast_path_async(provider: str) -> None:
    transcript = FAST_PROVIDERS[provider][1]
    with ReplayServer() as server:
        server.push(transcript, transcript)
        client = server.client(provider, async_=True)
        default = new_stream(provider, client, async_=True)
        sdk_path = new_stream(provider, client, async_=True, fast=False)
        assert (default.path, sdk_path.path) == ("fast", "sdk")
        by_default, by_sdk = await run_async(default), await run_async(sdk_path)
        if provider != "mistral":  # one mistralai client serves both ways
            await client.close()
    assert any(isinstance(chunk, LazyChunk) for chunk in by_default)
    assert normalized(by_default) == normalized(by_sdk)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_explicit_none_true_and_false(provider: str) -> None:
    with ReplayServer() as server:
        client = server.client(provider)
        assert new_stream(provider, client, fast=None).path == "fast"
        assert new_stream(provider, client, fast=True).path == "fast"
        assert new_stream(provider, client, fast=False).path == "sdk"
        with pytest.raises(TypeError, match="fast must be a bool or None"):
            new_stream(provider, client, fast="yes")
        assert server.requests == []


def test_a_continuation_keeps_the_path() -> None:
    with ReplayServer() as server:
        client = server.client("openai")
        assert new_stream("openai", client).continuation("Hel").path == "fast"
        assert new_stream("openai", client, fast=False).continuation("Hel").path == "sdk"


def test_a_call_takes_the_fast_path_by_default() -> None:
    with ReplayServer("openai/chat-text-usage") as server:

        @sk.call("openai", "gpt-4o", client=server.client("openai"), stream=True)
        def ask() -> str:
            return "hi"

        stream = ask()
        assert isinstance(stream, sk.Stream) and stream.path == "fast"
        assert stream.pipe(sk.ops.to_call_response()).run().content


# -- auto falls back to the SDK path where the fast path cannot run ----------------------
def debug_lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger and r.levelno == 10]


def assert_default_reads_with_the_sdk(
    provider: str, caplog: pytest.LogCaptureFixture, reason: str
) -> None:
    """``fast=None`` takes the SDK path (one request, no lazy chunk) with one DEBUG line
    naming ``reason`` and no warning; ``fast=True`` raises ``ImportError`` naming it."""
    logger = FAST_PROVIDERS[provider][2]
    caplog.set_level(logging.DEBUG, logger=logger)
    with ReplayServer(FAST_PROVIDERS[provider][1]) as server:
        client = server.client(provider)
        stream = new_stream(provider, client)
        assert stream.path == "sdk"
        chunks = run_sync(stream)
        with pytest.raises(ImportError, match=reason):  # fast=True: as ever
            new_stream(provider, client, fast=True)
    assert chunks and not any(isinstance(chunk, LazyChunk) for chunk in chunks)
    assert len(server.requests) == 1
    (line,) = debug_lines(caplog, logger)
    assert "fast=None" in line and reason in line
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_without_orjson_the_default_reads_with_the_sdk(
    provider: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    no_warnings: None,
) -> None:
    monkeypatch.setattr(_stainless, "orjson", None)  # what `import orjson` failing leaves
    assert_default_reads_with_the_sdk(provider, caplog, "orjson")


def break_internals(provider: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Make the provider's ``_sdk`` check fail as for an SDK release without the
    internals the fast path uses; the text the reason then names."""
    if provider == "openai":
        missing = ImportError("cannot import name 'drain_response_async'", name="openai._gone")
        monkeypatch.setattr(openai_sdk, "_missing_sdk_internals", missing)
        return "openai._gone"
    if provider == "mistral":
        monkeypatch.setattr(mistral_sdk, "_EVENTSTREAMING", (*mistral_sdk._EVENTSTREAMING, "_gone"))
        return "eventstreaming._gone"
    module = anthropic_sdk if provider == "anthropic" else groq_sdk
    monkeypatch.setattr(module, "_CLIENT_INTERNALS", (*module._CLIENT_INTERNALS, "_gone"))
    return "_gone"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_with_other_sdk_internals_the_default_reads_with_the_sdk(
    provider: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    no_warnings: None,
) -> None:
    assert_default_reads_with_the_sdk(provider, caplog, break_internals(provider, monkeypatch))


class _OwnDecoderAnthropic(anthropic.Anthropic):
    """A client with a stream decoder of its own (as ``AnthropicBedrock``'s)."""

    def _make_sse_decoder(self, options: Any = None) -> Any:
        return AnthropicSSEDecoder()


def test_a_client_the_fast_path_does_not_read_takes_the_sdk_path(
    caplog: pytest.LogCaptureFixture, no_warnings: None
) -> None:
    caplog.set_level(logging.DEBUG, logger="streamkit.providers.anthropic")
    with ReplayServer("anthropic/messages-text") as server:
        client = _OwnDecoderAnthropic(base_url=server.url, api_key=FAKE_API_KEY, max_retries=0)
        stream = new_stream("anthropic", client)
        assert stream.path == "sdk"
        assert new_stream("anthropic", client, fast=True).path == "sdk"  # read by the SDK
        chunks = run_sync(stream)
        client.close()
    assert chunks and not any(isinstance(chunk, LazyChunk) for chunk in chunks)
    (line,) = debug_lines(caplog, "streamkit.providers.anthropic")
    assert "_OwnDecoderAnthropic" in line and "server-sent events" in line


def test_the_responses_api_takes_the_sdk_path(
    caplog: pytest.LogCaptureFixture, no_warnings: None
) -> None:
    caplog.set_level(logging.DEBUG, logger="streamkit.providers.openai")
    with ReplayServer("openai/responses-text") as server:
        stream = sk.stream("openai", "gpt-5", "hi", client=server.client("openai"), api="responses")
        assert stream.path == "sdk"
        assert run_sync(stream)
        with pytest.raises(ValueError, match="chat completions only"):
            sk.stream(
                "openai", "gpt-5", "hi", client=server.client("openai"), api="responses", fast=True
            )
    (line,) = debug_lines(caplog, "streamkit.providers.openai")
    assert "Responses API" in line


# -- providers without a fast path ---------------------------------------------------------
def client_for(provider: str, server: ReplayServer) -> Any:
    if provider == "azure":
        return ChatCompletionsClient(
            endpoint=server.url, credential=AzureKeyCredential(FAKE_API_KEY)
        )
    return server.client(provider)


NO_FAST_PATH = {
    "google": ("gemini-2.5-flash", "google/gemini-text"),
    "cohere": ("command-a-03-2025", "cohere/chat-v2-text-usage"),
    "azure": ("gpt-4o", "openai/chat-text-usage"),
    "litellm": ("gpt-4o", "openai/chat-text-usage"),
}


@pytest.mark.parametrize("value", [None, False])
@pytest.mark.parametrize("provider", sorted(NO_FAST_PATH))
def test_no_fast_path_takes_none_and_false_as_no_fast(provider: str, value: bool | None) -> None:
    """``fast=None`` (auto) and ``fast=False`` (the SDK path) ask for what a provider with
    no fast path does anyway: accepted (code that passes ``fast=`` on for any provider
    works), not sent, read by the SDK."""
    model, transcript = NO_FAST_PATH[provider]
    with ReplayServer() as server:
        server.push(transcript, transcript)
        client = client_for(provider, server)
        explicit = sk.stream(provider, model, "hi", client=client, fast=value)
        absent = sk.stream(provider, model, "hi", client=client)
        assert explicit.path == absent.path == "sdk"
        by_explicit, by_absent = run_sync(explicit), run_sync(absent)
        assert normalized(by_explicit) == normalized(by_absent) != []
        bodies = [request.json or {} for request in server.requests]
        assert len(bodies) == 2 and bodies[0] == bodies[1] and "fast" not in bodies[0]


@pytest.mark.parametrize("provider", ["google", "cohere", "azure"])
def test_no_fast_path_rejects_fast_true_as_before(provider: str) -> None:
    model, transcript = NO_FAST_PATH[provider]
    with ReplayServer(transcript) as server:
        client = client_for(provider, server)
        with pytest.raises(TypeError, match="unknown keyword argument 'fast'"):
            sk.stream(provider, model, "hi", client=client, fast=True)
        with pytest.raises(TypeError, match="unknown keyword argument 'fast'"):
            sk.stream(provider, model, "hi", client=client, fast="yes")
        assert server.requests == []
