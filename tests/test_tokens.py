"""The token estimators name providers as the registry does (``sk.PROVIDERS``), which is
how a stream names its provider: any other name would never match."""

from __future__ import annotations

import streamkit as sk
from streamkit._tokens import _OPENAI_LIKE, PROVIDER_OVERHEAD, TOOL_PROMPT


def test_the_estimators_name_providers_by_their_registry_names() -> None:
    named = _OPENAI_LIKE | set(PROVIDER_OVERHEAD) | set(TOOL_PROMPT)
    assert named <= set(sk.PROVIDERS), sorted(named - set(sk.PROVIDERS))
