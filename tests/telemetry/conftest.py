"""Fixtures: streamkit instrumented with the OpenTelemetry SDK's in-memory exporter and
metric reader (see ``_harness.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.telemetry._harness import Telemetry


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """streamkit instrumented for the test (content not captured)."""
    harness = Telemetry()
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture
def telemetry_factory() -> Iterator[Callable[..., Telemetry]]:
    """``telemetry_factory(capture_content=...)``: an instrumented harness."""
    made: list[Telemetry] = []

    def make(**kwargs: Any) -> Telemetry:
        harness = Telemetry(**kwargs)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()
