"""Every example script runs offline, as a user would run it, and says what it should."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# (script, a line its output must contain, as a regular expression)
EXAMPLES = [
    ("compose_pipeline.py", r"^final: finish_reason=stop usage=input_tokens=\d+"),
    ("early_termination_search.py", r"^the server never had to send [1-9]\d* of \d+ events$"),
    ("fan_out.py", r"^requests made: 1$"),
    ("race_models.py", r"^losers closed early: 2 of 2$"),
    (
        "property_test_operator.py",
        r"^words\(\): the property held on [1-9]\d* generated chunk streams$",
    ),
]


@pytest.mark.parametrize(("script", "expected_line"), EXAMPLES)
def test_example_runs_and_prints_its_key_line(script: str, expected_line: str) -> None:
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(expected_line, result.stdout, re.MULTILINE), result.stdout
    # Nothing on stderr: no library log line (httpx's INFO request line) leaks into what a
    # user reads, and nothing interleaves with the live text.
    assert result.stderr == "", result.stderr
