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


@pytest.mark.parametrize("provider", KEYED)
def test_a_missing_api_key_names_the_provider_and_its_variable(
    provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    variables = get_adapter(provider).api_key_env
    for name in variables:
        monkeypatch.delenv(name, raising=False)
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
