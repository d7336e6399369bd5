"""litellm on the replay server: its completion function, sent over litellm's OpenAI
route (which the recorded OpenAI chat streams answer)."""

from __future__ import annotations

from typing import Any

from streamkit.testing.replay._kit import FAKE_API_KEY, ReplayProvider, SdkClient, merged


def _litellm(url: str, async_: bool, kw: dict[str, Any]) -> tuple[Any, bool]:
    import functools
    import os

    # Before the import: litellm fetches its model cost map from GitHub unless told not
    # to, and a client for a local replay server must not touch the network.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    opts = merged(
        {
            "api_base": url + "/v1",
            "api_key": FAKE_API_KEY,
            "max_retries": 0,
            "custom_llm_provider": "openai",
        },
        kw,
    )
    function = litellm.acompletion if async_ else litellm.completion
    # A completion function holds no connection of its own: nothing to close.
    return functools.partial(function, **opts), False


PROVIDER = ReplayProvider(clients=(SdkClient("litellm", _litellm),))
