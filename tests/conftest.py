"""Shared test set-up: hypothesis profiles and leak checks.

Profiles: ``default`` (fast, for CI) and ``thorough`` (thousands of examples, run by
hand with ``HYPOTHESIS_PROFILE=thorough python -m pytest``).
"""

from __future__ import annotations

import os

# litellm fetches its model cost map from the network at import unless told not to;
# tests never touch the network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=3000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

THOROUGH_TIMEOUT = 1800
"""Seconds per test under the ``thorough`` profile (the default 60 s fits 40 examples,
not 3000)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under the ``thorough`` profile, give each property test room to run its examples."""
    if settings.get_current_profile_name() != "thorough":
        return
    for item in items:
        if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            item.add_marker(pytest.mark.timeout(THOROUGH_TIMEOUT))
