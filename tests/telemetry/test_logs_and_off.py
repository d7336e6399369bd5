"""Standard logging (DEBUG lines for start, first chunk and end, nothing above DEBUG on a
normal run) and telemetry off by default (no OpenTelemetry import, nothing recorded)."""

from __future__ import annotations

import ast
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import streamkit as sk
from streamkit import ops
from streamkit.testing import ReplayServer
from tests.ops._pipelines import run_sync

ROOT = Path(__file__).resolve().parents[2]


def test_a_request_logs_start_first_chunk_and_end_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        caplog.at_level(logging.DEBUG, logger="streamkit"),
        ReplayServer("openai/chat-text-usage") as server,
    ):
        stream = sk.stream(
            "openai",
            "replayed-model",
            "hello",
            client=server.client("openai"),
            temperature=0.5,
            user="someone@example.com",
        )
        (response,) = run_sync(stream.pipe(ops.to_call_response()))
    ours = [r for r in caplog.records if r.name.startswith("streamkit")]
    lines = [r.getMessage() for r in ours if r.name == "streamkit.telemetry._logs"]
    assert [line.split(" id=")[0] for line in lines] == [
        "request start",
        "request first chunk",
        "request end",
    ]
    start = lines[0]
    for field in (
        "gen_ai.operation.name=chat",
        "gen_ai.provider.name=openai",
        "gen_ai.request.model=replayed-model",
        "gen_ai.request.temperature=0.5",
        "streamkit.attempt=",
    ):
        assert field in start, start
    assert "someone@example.com" not in " ".join(lines)  # only whitelisted parameters
    end = lines[-1]
    assert response.usage is not None
    assert f"gen_ai.usage.output_tokens={response.usage.output_tokens}" in end
    assert "streamkit.end.outcome=completed" in end
    assert f"gen_ai.response.id={response.id}" in end
    assert all(r.levelno == logging.DEBUG for r in ours), [r.getMessage() for r in ours]


def test_a_normal_run_logs_nothing_above_debug(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG), ReplayServer("anthropic/messages-text") as server:
        stream = sk.stream("anthropic", "m", "hello", client=server.client("anthropic"))
        run_sync(stream.pipe(ops.retry_on_error(2), ops.take_until_match("a"), ops.text()))
        for _chunk, _tool in sk.stream("anthropic", "m", "hi", client=server.client("anthropic")):
            pass
    loud = [
        r for r in caplog.records if r.name.startswith("streamkit") and r.levelno > logging.DEBUG
    ]
    assert loud == []


def _get_logger_calls(source: str) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Attribute) and node.func.attr == "getLogger")
            or (isinstance(node.func, ast.Name) and node.func.id == "getLogger")
        )
    ]


def test_every_streamkit_logger_is_its_modules_own() -> None:
    """One logger per module that logs, named after it: every ``getLogger`` call in the
    package's code (docstrings aside) is ``getLogger(__name__)``."""
    package = ROOT / "streamkit"
    found: dict[str, str] = {}
    for path in sorted(package.rglob("*.py")):
        for call in _get_logger_calls(path.read_text(encoding="utf-8")):
            argument = ast.unparse(call.args[0]) if call.args else "<none>"
            found[f"{path.relative_to(ROOT)}:{call.lineno}"] = argument
    assert len(found) >= 9  # the source, the operators, the timeouts, the log, 4 adapters
    assert {place: name for place, name in found.items() if name != "__name__"} == {}


def test_the_logger_scan_sees_a_shared_logger() -> None:
    # the scan above, on code that breaks the rule
    bad = "import logging\nlog = logging.getLogger('streamkit')\n"
    (call,) = _get_logger_calls(bad)
    assert ast.unparse(call.args[0]) == "'streamkit'"


def test_off_by_default_imports_no_opentelemetry_and_records_nothing() -> None:
    code = textwrap.dedent(
        """
        import sys
        import streamkit as sk
        from streamkit.testing import ReplayServer

        with ReplayServer("openai/chat-text-usage") as server:
            stream = sk.stream("openai", "m", "hello", client=server.client("openai"))
            for _ in stream:
                pass
        assert not sk.telemetry.is_instrumented()
        loaded = sorted(name for name in sys.modules if name.startswith("opentelemetry"))
        print(loaded)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_without_opentelemetry_instrument_says_what_to_install() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["opentelemetry"] = None  # as if opentelemetry-api were not installed
        import streamkit as sk
        try:
            sk.telemetry.instrument()
        except sk.StreamError as error:
            print(error)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert 'pip install "streamkit[otel]"' in result.stdout, result.stderr
