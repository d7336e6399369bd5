"""Lint and strict typing are part of the test suite, so the README's one test command
(and CI, which runs exactly it) checks them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_lint_passes() -> None:
    result = run(sys.executable, "-m", "ruff", "check", "streamkit", "tests", "examples", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(300)
def test_mypy_strict_passes_on_the_package() -> None:
    result = run(sys.executable, "-m", "mypy", "--strict", "streamkit")
    assert result.returncode == 0, result.stdout + result.stderr
