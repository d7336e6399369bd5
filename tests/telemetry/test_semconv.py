"""The attribute mapping, on its own (no stream, no OpenTelemetry)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

import streamkit as sk
from streamkit.telemetry import _semconv as sc


def test_every_provider_has_a_conventions_name() -> None:
    names = {provider: sc.provider_name(provider) for provider in sk.PROVIDERS}
    assert names == {
        "openai": "openai",
        "anthropic": "anthropic",
        "mistral": "mistral_ai",
        "groq": "groq",
        "google": "gcp.gen_ai",
        "cohere": "cohere",
        "litellm": "litellm",
        "azure": "azure.ai.inference",
    }


def test_span_names_follow_operation_and_model() -> None:
    assert sc.span_name("openai", "gpt-4o") == "chat gpt-4o"
    assert sc.span_name("google", "gemini-2.5-flash") == "generate_content gemini-2.5-flash"
    assert sc.span_name("anthropic", None) == "chat"


def test_the_buckets_are_the_conventions() -> None:
    assert sc.TOKEN_BUCKETS[0] == 1 and sc.TOKEN_BUCKETS[-1] == 67108864
    assert all(b == a * 4 for a, b in itertools.pairwise(sc.TOKEN_BUCKETS))
    assert sc.SECONDS_BUCKETS[0] == 0.01 and sc.SECONDS_BUCKETS[-1] == 81.92
    assert all(abs(b - a * 2) < 1e-9 for a, b in itertools.pairwise(sc.SECONDS_BUCKETS))


def test_request_attributes_read_only_the_whitelist() -> None:
    params = {
        "max_tokens": 100,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": "END",
        "api_key": "sk-fake-key",
        "user": "someone",
        "extra_headers": {"authorization": "Bearer sk-fake-key"},
    }
    assert sc.request_attributes(params) == {
        "gen_ai.request.max_tokens": 100,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.stop_sequences": ["END"],
    }


@given(
    st.dictionaries(
        st.text(), st.one_of(st.none(), st.integers(), st.floats(), st.text(), st.booleans())
    )
)
def test_request_attributes_hold_only_attribute_values_of_known_keys(
    params: dict[str, object],
) -> None:
    attributes = sc.request_attributes(params)
    assert set(attributes) <= {
        "gen_ai.request.max_tokens",
        "gen_ai.request.temperature",
        "gen_ai.request.top_p",
        "gen_ai.request.top_k",
        "gen_ai.request.seed",
        "gen_ai.request.frequency_penalty",
        "gen_ai.request.presence_penalty",
        "gen_ai.request.stop_sequences",
    }
    for value in attributes.values():
        assert isinstance(value, (int, float, list)) and not isinstance(value, bool)
