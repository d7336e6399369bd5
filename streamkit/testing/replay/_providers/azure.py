"""Azure AI Inference on the replay server: OpenAI-compatible chat completions, and the
azure-ai-inference SDK's ``ChatCompletionsClient``."""

from __future__ import annotations

from typing import Any

from streamkit.testing.replay._kit import FAKE_API_KEY, ReplayProvider, SdkClient, merged


def _azure(url: str, async_: bool, kw: dict[str, Any]) -> tuple[Any, bool]:
    import azure.ai.inference
    import azure.ai.inference.aio
    from azure.core.credentials import AzureKeyCredential

    # The SDK takes a credential, not a key: ``api_key`` (as the other factories take)
    # becomes the credential's key.
    key = kw.pop("api_key", FAKE_API_KEY)
    # retry_total=0: azure-core's RetryPolicy otherwise retries 429/5xx up to 10 times.
    opts = merged({"endpoint": url, "credential": AzureKeyCredential(key), "retry_total": 0}, kw)
    if async_:
        return azure.ai.inference.aio.ChatCompletionsClient(**opts), False
    return azure.ai.inference.ChatCompletionsClient(**opts), True


PROVIDER = ReplayProvider(clients=(SdkClient("azure", _azure),))
