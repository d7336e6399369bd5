"""Errors a new user reads (issue 11): a missing API key, a misspelled or misplaced
keyword argument, a provider name in another case or an alias, a class passed for a
client: each a clear error at ``sk.stream`` time, before any request."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

import streamkit as sk
from streamkit.providers import PROVIDERS, get_adapter
from streamkit.testing import ReplayServer

KEYED = [p for p in PROVIDERS if get_adapter(p).api_key_env]
TEXT = "openai/chat-text-usage"


@pytest.mark.parametrize("provider", KEYED)
def test_a_missing_api_key_names_the_provider_and_its_variable(
    provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    variables = get_adapter(provider).api_key_env
    for name in variables:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_AI_CHAT_ENDPOINT", "https://example.services.ai.azure.com/models")
    with pytest.raises(sk.MissingAPIKeyError) as raised:
        sk.stream(provider, "some-model", "hi")
    assert provider in str(raised.value) and variables[0] in str(raised.value)
    assert isinstance(raised.value, sk.StreamError)
    monkeypatch.setenv(variables[0], "sk-fake-key-for-tests")
    assert sk.stream(provider, "some-model", "hi").provider == provider  # no error now


def test_every_provider_but_litellm_has_a_key_variable() -> None:
    assert set(PROVIDERS) - set(KEYED) == {"litellm"}  # litellm's key depends on the model


@pytest.mark.parametrize(
    ("provider", "kwargs", "message"),
    [
        ("openai", {"max_token": 10}, "did you mean 'max_tokens'"),
        ("openai", {"base_url": "http://x"}, "option of the openai client"),
        ("openai", {"api": "responses", "max_output_token": 5}, "did you mean 'max_output_tokens'"),
        ("anthropic", {"max_token": 10}, "did you mean 'max_tokens'"),
        ("anthropic", {"api_key": "sk-fake"}, "option of the anthropic client"),
        ("groq", {"temprature": 0.5}, "did you mean 'temperature'"),
        ("cohere", {"max_token": 10}, "did you mean 'max_tokens'"),
        ("cohere", {"api_key": "sk-fake"}, r"client=cohere\.ClientV2\(api_key=\.\.\.\)"),
        ("mistral", {"max_token": 10}, "did you mean 'max_tokens'"),
        ("mistral", {"temprature": 0.5}, "did you mean 'temperature'"),
        ("azure", {"max_token": 10}, "did you mean 'max_tokens'"),
        ("azure", {"top_k": 5}, r"'top_k'.*model_extras="),  # would fail inside requests
        ("azure", {"endpoint": "https://x"}, "option of the azure client"),
        ("litellm", {"max_token": 10}, "did you mean 'max_tokens'"),
        ("litellm", {"temprature": 0.5}, "did you mean 'temperature'"),
        ("google", {"max_output_token": 10}, "did you mean 'max_output_tokens'"),
        ("google", {"temprature": 0.5}, "did you mean 'temperature'"),
        ("google", {"api_key": "sk-fake"}, r"option of the google client.*genai\.Client\("),
    ],
)
def test_a_misspelled_or_misplaced_keyword_is_rejected_before_any_request(
    provider: str, kwargs: dict[str, Any], message: str
) -> None:
    with ReplayServer() as server:
        client = server.client(provider)
        with pytest.raises(TypeError, match=message):
            sk.stream(provider, "m", "hi", client=client, **kwargs)
        assert server.requests == []


@pytest.mark.parametrize(
    ("provider", "transcript", "kwargs", "sent"),
    [
        ("mistral", "mistral/chat-text-usage", {"max_tokens": 5}, {"max_tokens": 5}),
        ("azure", TEXT, {"max_tokens": 5, "model_extras": {"top_k": 3}}, {"top_k": 3}),
        ("azure", TEXT, {"headers": {"x-trace": "1"}, "retry_total": 0}, {}),  # azure-core's
        # litellm passes a provider's own parameters (not in its signature) on
        ("litellm", TEXT, {"top_k": 3, "max_tokens": 5}, {"top_k": 3, "max_tokens": 5}),
        ("google", "google/gemini-text", {"max_tokens": 5, "temperature": 0.1}, {}),
    ],
)
def test_right_keywords_pass_to_the_request(
    provider: str, transcript: str, kwargs: dict[str, Any], sent: dict[str, Any]
) -> None:
    with ReplayServer(transcript) as server:
        stream = sk.stream(provider, "m", "hi", client=server.client(provider), **kwargs)
        list(stream)
        body = server.requests[0].json
    assert {key: body.get(key) for key in sent} == sent


def test_google_unknown_argument_uses_the_shared_did_you_mean() -> None:
    # the same message as every provider's, from the same helper
    with ReplayServer() as server:
        with pytest.raises(TypeError) as google:
            sk.stream("google", "m", "hi", client=server.client("google"), max_output_token=1)
        with pytest.raises(TypeError) as openai_:
            sk.stream("openai", "m", "hi", client=server.client("openai"), max_token=1)
    assert str(google.value).startswith("unknown keyword argument 'max_output_token' for google")
    assert str(openai_.value).startswith("unknown keyword argument 'max_token' for openai")


AZURE_KEY, AZURE_ENDPOINT = "AZURE_AI_CHAT_KEY", "AZURE_AI_CHAT_ENDPOINT"


@pytest.mark.parametrize("endpoint", [None, "", "my-resource.services.ai.azure.com", "ftp://x"])
def test_azure_without_a_usable_endpoint_fails_at_sk_stream(
    endpoint: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(AZURE_KEY, "sk-fake-key-for-tests")
    if endpoint is None:
        monkeypatch.delenv(AZURE_ENDPOINT, raising=False)
    else:
        monkeypatch.setenv(AZURE_ENDPOINT, endpoint)
    with pytest.raises(sk.EndpointError, match=AZURE_ENDPOINT) as raised:
        sk.stream("azure", "Phi-4", "hi")
    assert isinstance(raised.value, sk.StreamError) and isinstance(raised.value, ValueError)
    monkeypatch.setenv(AZURE_ENDPOINT, "https://my-resource.services.ai.azure.com/models")
    assert sk.stream("azure", "Phi-4", "hi").provider == "azure"  # no error now


@pytest.mark.parametrize("async_", [False, True])
def test_azure_client_with_a_bad_endpoint_fails_at_sk_stream(async_: bool) -> None:
    import azure.ai.inference
    import azure.ai.inference.aio
    from azure.core.credentials import AzureKeyCredential

    module = azure.ai.inference.aio if async_ else azure.ai.inference
    client = module.ChatCompletionsClient(
        endpoint="my-resource.services.ai.azure.com", credential=AzureKeyCredential("k")
    )
    try:
        with pytest.raises(sk.EndpointError, match="not an http"):
            sk.stream("azure", "Phi-4", "hi", client=client)
    finally:
        if not async_:
            client.close()


def test_a_right_keyword_passes() -> None:
    with ReplayServer("openai/chat-text-usage") as server:
        stream = sk.stream("openai", "gpt-4o", "hi", client=server.client("openai"), max_tokens=5)
        list(stream)
        assert server.requests[0].json["max_tokens"] == 5


@pytest.mark.parametrize(
    ("name", "canonical"),
    [("OpenAI", "openai"), ("claude", "anthropic"), ("Gemini", "google"), ("MISTRAL", "mistral")],
)
def test_provider_names_accept_case_and_aliases(name: str, canonical: str) -> None:
    with ReplayServer() as server:
        stream = sk.stream(name, "m", "hi", client=server.client(canonical))
    assert stream.provider == canonical


def test_an_unknown_provider_says_did_you_mean() -> None:
    with pytest.raises(sk.UnknownProviderError, match="did you mean 'anthropic'"):
        sk.stream("antropic", "m", "hi")
    with pytest.raises(sk.UnknownProviderError, match="known providers"):
        sk.stream("nothing-like-it", "m", "hi")


def test_a_client_class_says_to_call_it() -> None:
    with pytest.raises(TypeError, match=r"call it, client=anthropic\..*Anthropic\(\)"):
        sk.stream("anthropic", "m", "hi", client=anthropic.Anthropic)


def test_a_wrong_client_is_named_with_the_right_article() -> None:
    client = anthropic.Anthropic(api_key="sk-fake-key-for-tests")
    with pytest.raises(TypeError) as raised:
        sk.stream("openai", "m", "hi", client=client)
    assert "got an anthropic." in str(raised.value) and "a anthropic" not in str(raised.value)
    wrong = openai.OpenAI(api_key="sk-fake-key-for-tests")
    with pytest.raises(TypeError, match="got an openai"):
        sk.stream("anthropic", "m", "hi", client=wrong)
