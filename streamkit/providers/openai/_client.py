"""What the three OpenAI adapters share: the provider's name, its SDK clients and key,
and the two streamkit-level parameters that choose among them (``api=``, ``fast=``)."""

from __future__ import annotations

from typing import Any

import openai

from streamkit.providers._base import ProviderAdapter, describe_client

__all__ = ["OWN_PARAMS", "OpenAIClientAdapter"]

OWN_PARAMS = frozenset({"api", "fast"})
"""The keyword arguments of ``sk.stream("openai", ...)`` that choose the adapter rather
than go to the SDK (:func:`streamkit.providers.openai.select_adapter`)."""


class OpenAIClientAdapter(ProviderAdapter):
    """The base of the OpenAI adapters: one provider name (``"openai"``), the
    ``openai.OpenAI`` / ``openai.AsyncOpenAI`` clients and ``OPENAI_API_KEY``."""

    name = "openai"
    client_example = "OpenAI"
    own_params = OWN_PARAMS
    api_key_env = ("OPENAI_API_KEY",)

    def is_async_client(self, client: Any) -> bool:
        """``AsyncOpenAI`` (and ``AsyncAzureOpenAI``) are async, ``OpenAI`` is sync."""
        if isinstance(client, openai.AsyncOpenAI):
            return True
        if isinstance(client, openai.OpenAI):
            return False
        raise TypeError(
            f"expected an openai.OpenAI or openai.AsyncOpenAI client, got {describe_client(client)}"
        )

    def default_client(self, async_: bool) -> Any:
        """``OpenAI()`` / ``AsyncOpenAI()`` from ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``,
        their retries off (streamkit's operators retry)."""
        return openai.AsyncOpenAI(max_retries=0) if async_ else openai.OpenAI(max_retries=0)

    @staticmethod
    def call_params(params: dict[str, Any]) -> dict[str, Any]:
        """``params`` without the adapter-choosing ones (:data:`OWN_PARAMS`)."""
        return {key: value for key, value in params.items() if key not in OWN_PARAMS}
