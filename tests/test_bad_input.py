"""Bad input gets a clear error before any request is sent, for every provider.

``tests/test_stream.py`` checks one example of each with the openai SDK, and the
operator tests check which argument values each operator refuses; this file extends
both: every provider with a real SDK client pointed at a ReplayServer (which proves no
request went out), more kinds of bad value, and what the messages say.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

import pytest
from reactivex import operators as rx

import streamkit as sk
from streamkit import ops
from streamkit.testing import FAKE_API_KEY, ReplayServer
from tests.reliability._matrix import PROVIDER_BY_NAME, PROVIDER_CASES, ProviderCase
from tests.reliability._run import close_async_client

PROVIDERS = [
    pytest.param(
        case,
        id=case.name,
        marks=pytest.mark.skipif(bool(case.missing()), reason=str(case.missing())),
    )
    for case in PROVIDER_CASES
]


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    """A server with a reply for any provider: a test that sends a request fails below."""
    with ReplayServer("openai/chat-text-usage") as replay:
        yield replay
        assert replay.requests == [], "a request was sent"


def other_client(server: ReplayServer, provider: str) -> Any:
    """A real SDK client of another provider."""
    return server.client("anthropic" if provider != "anthropic" else "openai")


# -- the provider ----------------------------------------------------------------------
# ("OpenAI" and "claude" are accepted since issue 11: tests/test_user_errors.py)
@pytest.mark.parametrize("provider", ["openia", "open-ai", "", "nothing-like-it", None, 3])
def test_unknown_provider_lists_every_known_one(provider: Any, server: ReplayServer) -> None:
    with pytest.raises(sk.UnknownProviderError) as info:
        sk.stream(provider, "m", "hi", client=server.client("openai"))
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert repr(provider) in message
    assert all(name in message for name in sk.PROVIDERS)


def test_unknown_provider_in_the_call_decorator(server: ReplayServer) -> None:
    with pytest.raises(sk.UnknownProviderError, match="known providers"):

        @sk.call("openia", "gpt-4o", client=server.client("openai"))
        def prompt() -> str:
            return "hi"


# -- the model ----------------------------------------------------------------------
@pytest.mark.parametrize("model", [None, "", b"gpt-4o", ["gpt-4o"], 4])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_model_of_the_wrong_type(provider: ProviderCase, model: Any, server: ReplayServer) -> None:
    with pytest.raises(TypeError, match="model must be a non-empty string") as info:
        sk.stream(provider.name, model, "hi", client=server.client(provider.name))
    assert repr(model) in str(info.value)


# -- the messages ----------------------------------------------------------------------
BAD_MESSAGES = [
    ([{"role": "wizard", "content": "hi"}], ValueError, r"message 0 has role 'wizard'"),
    ([{"role": "User", "content": "hi"}], ValueError, r"message 0 has role 'User'"),
    ([{"content": "hi"}], ValueError, r"message 0 has role None"),
    (
        [{"role": "user", "content": "hi"}, {"role": "robot", "content": "x"}],
        ValueError,
        r"message 1 has role 'robot'",
    ),
    ([{"role": "user"}], ValueError, r"message 0 \(user\) has no 'content'"),
    ([{"role": "user", "content": None}], ValueError, r"message 0 \(user\) has no 'content'"),
    ([], ValueError, "must not be empty"),
    (["hi"], TypeError, "message 0 must be a dict"),
    ({"role": "user", "content": "hi"}, TypeError, "not dict"),
    (None, TypeError, "not NoneType"),
]


@pytest.mark.parametrize(("messages", "error", "message"), BAD_MESSAGES)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_bad_messages(
    provider: ProviderCase,
    messages: Any,
    error: type[Exception],
    message: str,
    server: ReplayServer,
) -> None:
    with pytest.raises(error, match=message):
        sk.stream(provider.name, "m", messages, client=server.client(provider.name))


def test_a_bad_role_names_the_roles_it_takes(server: ReplayServer) -> None:
    with pytest.raises(ValueError) as info:
        sk.stream(
            "openai", "m", [{"role": "wizard", "content": "hi"}], client=server.client("openai")
        )
    assert "system, user, assistant" in str(info.value)


# -- unknown parameters ------------------------------------------------------------------
# litellm takes any keyword: what is not an OpenAI parameter is a provider-specific one,
# sent as it is (for its OpenAI-SDK routes in extra_body, see litellm.utils.
# add_provider_specific_params_to_optional_params), for the provider to accept or refuse.
PARAMETER_CHECKING = [
    param for param, case in zip(PROVIDERS, PROVIDER_CASES, strict=True) if case.name != "litellm"
]


@pytest.mark.parametrize("provider", PARAMETER_CHECKING)
def test_an_unknown_parameter_fails_without_a_request(
    provider: ProviderCase, server: ReplayServer
) -> None:
    """Refused when the stream is built (google, cohere map parameters themselves), or
    by the SDK's own signature when the request is made: no request goes out either way."""
    client = server.client(provider.name)
    try:
        stream = sk.stream(provider.name, "m", "hi", client=client, not_a_parameter=1)
    except TypeError as error:
        assert "not_a_parameter" in str(error)
        return
    with pytest.raises(TypeError, match="not_a_parameter"):
        stream.pipe(ops.to_call_response()).run()


@pytest.mark.skipif(
    bool(PROVIDER_BY_NAME["litellm"].missing()), reason=str(PROVIDER_BY_NAME["litellm"].missing())
)
def test_litellm_sends_an_unknown_parameter_to_the_provider() -> None:
    """The exception above: no error from litellm, the parameter goes out in the request."""
    with ReplayServer("openai/chat-text-usage") as replay:
        stream = sk.stream("litellm", "m", "hi", client=replay.client("litellm"), not_a_param=1)
        stream.pipe(ops.to_call_response()).run()
        assert replay.requests[0].json["not_a_param"] == 1


# -- the client --------------------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_client_of_another_provider(provider: ProviderCase, server: ReplayServer) -> None:
    with pytest.raises(TypeError, match="expected") as info:
        sk.stream(provider.name, "m", "hi", client=other_client(server, provider.name))
    assert provider.sdk_module.split(".")[-1] in str(info.value).lower().replace(
        "genai", "google.genai"
    )


# litellm takes any callable as its client (a completion function).
NOT_LITELLM = [param for param in PROVIDERS if param.id != "litellm"]


@pytest.mark.parametrize("provider", NOT_LITELLM)
def test_a_wrong_client_holding_a_key_is_named_without_it(
    provider: ProviderCase, server: ReplayServer
) -> None:
    """A litellm client is a partial whose repr shows its api_key: the error names the
    client by its type, never by its repr."""
    holding_a_key = functools.partial(lambda **_: None, api_key=FAKE_API_KEY)
    assert FAKE_API_KEY in repr(holding_a_key)  # the canary is where a repr would show it
    with pytest.raises(TypeError, match="expected") as info:
        sk.stream(provider.name, "m", "hi", client=holding_a_key)
    assert "functools.partial" in str(info.value)
    assert FAKE_API_KEY not in str(info.value) and FAKE_API_KEY not in repr(info.value)


def test_a_litellm_client_given_to_another_provider_hides_its_key(server: ReplayServer) -> None:
    with pytest.raises(TypeError) as info:
        sk.stream("openai", "m", "hi", client=server.client("litellm"))
    assert "litellm" in str(info.value) and FAKE_API_KEY not in str(info.value)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_async_client_used_for_sync_iteration(
    provider: ProviderCase, server: ReplayServer
) -> None:
    client = server.client(provider.name, async_=True)
    stream = sk.stream(provider.name, "m", "hi", client=client, async_=True)
    try:
        with pytest.raises(sk.StreamError, match="async for"):
            list(stream)
        with pytest.raises(sk.StreamError, match="async for"):
            next(iter(stream))
    finally:
        await close_async_client(client)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_sync_client_used_for_async_iteration(
    provider: ProviderCase, server: ReplayServer
) -> None:
    stream = sk.stream(provider.name, "m", "hi", client=server.client(provider.name))
    with pytest.raises(sk.StreamError, match="`for`"):
        async for _ in stream:
            pass


@pytest.mark.parametrize("provider", ["openai", "anthropic", "groq", "cohere"])
async def test_async_flag_that_contradicts_the_client(provider: str, server: ReplayServer) -> None:
    """SDKs with a separate async class: ``async_`` must agree with the client given."""
    with pytest.raises(TypeError, match="a sync client was given"):
        sk.stream(provider, "m", "hi", client=server.client(provider), async_=True)
    async_client = server.client(provider, async_=True)
    try:
        with pytest.raises(TypeError, match="an async client was given"):
            sk.stream(provider, "m", "hi", client=async_client, async_=False)
    finally:
        await close_async_client(async_client)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_async_stream_subscribed_outside_an_event_loop(
    provider: ProviderCase, server: ReplayServer
) -> None:
    client = server.client(provider.name, async_=True)
    stream = sk.stream(provider.name, "m", "hi", client=client, async_=True)
    with pytest.raises(sk.StreamError, match="event loop"):
        stream.pipe(ops.to_call_response()).run()


# -- operators ---------------------------------------------------------------------------
OPERATOR_ERRORS = [
    (lambda: ops.first_chunk_timeout(-1), ValueError, "seconds must be finite and > 0, got -1"),
    (lambda: ops.idle_timeout(0), ValueError, "seconds must be finite and > 0, got 0"),
    (lambda: ops.idle_timeout("5"), TypeError, "seconds must be a number, not '5'"),  # type: ignore[arg-type]  # wrong on purpose
    (lambda: ops.retry_on_error(0), ValueError, "max_attempts .* must be >= 1, got 0"),
    (lambda: ops.retry_on_error(max_attempts=-2), ValueError, "got -2"),
    (lambda: ops.retry_on_error(2.5), TypeError, "max_attempts must be an int, not float"),  # type: ignore[arg-type]  # wrong on purpose
    (lambda: ops.retry_on_error(backoff=-1), ValueError, "backoff must be >= 0 seconds"),
    (lambda: ops.take_until_match("(unclosed"), ValueError, r"\(unclosed"),
    (lambda: ops.take_until_match(b"bytes"), TypeError, "bytes"),  # type: ignore[arg-type]  # wrong on purpose
    (lambda: ops.share_replay(buffer_size=-1), ValueError, "buffer_size must be >= 0, got -1"),
]


@pytest.mark.parametrize(
    ("make", "error", "message"),
    OPERATOR_ERRORS,
    ids=[
        "negative timeout",
        "zero idle timeout",
        "timeout as str",
        "max_attempts=0",
        "negative max_attempts",
        "float max_attempts",
        "negative backoff",
        "invalid regex",
        "bytes pattern",
        "negative buffer",
    ],
)
def test_operator_arguments_fail_clearly_before_any_request(
    make: Any, error: type[Exception], message: str, server: ReplayServer
) -> None:
    stream = sk.stream("openai", "m", "hi", client=server.client("openai"))
    with pytest.raises(error, match=message):
        stream.pipe(make(), rx.take(1))


def test_an_invalid_regex_says_what_is_wrong(server: ReplayServer) -> None:
    with pytest.raises(ValueError) as info:
        ops.take_until_match("(unclosed")
    text = str(info.value)
    # Which pattern, and the regex engine's reason, so the user can fix it.
    assert "(unclosed" in text and re.search(r"missing \)|unterminated|position", text), text
