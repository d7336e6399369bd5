"""Mistral on the replay server: OpenAI's chat completions with Mistral's own HTTP error
body, and the mistralai SDK's client."""

from __future__ import annotations

from typing import Any

from streamkit.testing.replay._kit import (
    FAKE_API_KEY,
    Dialect,
    ReplayProvider,
    SdkClient,
    merged,
)
from streamkit.testing.replay._providers.openai import error_type


def _error_body(status: int, message: str) -> dict[str, Any]:
    return {
        "object": "error",
        "message": message,
        "type": error_type(status),
        "param": None,
        "code": str(status),
    }


def _mistral(url: str, async_: bool, kw: dict[str, Any]) -> tuple[Any, bool]:
    from mistralai.client import Mistral
    from mistralai.client.utils.retries import BackoffStrategy, RetryConfig

    no_retries = RetryConfig("none", BackoffStrategy(1, 1, 1.0, 1), False)
    opts = merged({"api_key": FAKE_API_KEY, "server_url": url, "retry_config": no_retries}, kw)
    # One class for both: ``async_`` gets the same kind (use its ``*_async`` methods).
    return Mistral(**opts), True


PROVIDER = ReplayProvider(
    dialect=Dialect("mistral", error_body=_error_body),
    clients=(SdkClient("mistral", _mistral),),
)
