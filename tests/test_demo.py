"""The demo runs offline on the built-in replay server and shows what it promises."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import wave
from pathlib import Path

from streamkit.__main__ import main


def test_demo_streams_stops_early_and_reduces() -> None:
    out = io.StringIO()
    assert main(["demo", "--pace", "0.01"], out=out) == 0
    text = out.getvalue()
    assert "Why did the OpenTelemetry Span go to therapy?" in text
    sent = re.search(r"the server sent (\d+) of (\d+) events: (\d+) never", text)
    assert sent is not None, text
    events_sent, events_total, spared = map(int, sent.groups())
    assert spared == events_total - events_sent > 0
    # the saving in tokens and money: the whole answer's reported output tokens minus
    # the stopped request's estimate, priced by genai-prices
    saving = re.search(
        r"output tokens: the whole answer (\d+) \(reported\), this request about (\d+) "
        r"\((estimated|mixed)\): about (\d+) not generated, USD (\d+\.\d+) not billed",
        text,
    )
    assert saving is not None, text
    whole, used, _source, saved, money = saving.groups()
    assert int(saved) == int(whole) - int(used) > 0 and float(money) > 0
    assert "usage: Usage(input_tokens=" in text
    assert "finish_reason: stop" in text


def test_demo_as_a_module_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streamkit", "demo", "--pace", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "matched after" in result.stdout
    # with --pace 0 the server may have sent everything before the close: the report
    # says what the server measured, never a saving that did not happen
    sent = re.search(r"the server sent (\d+) of (\d+) events: (\d+) never", result.stdout)
    if sent is None:
        assert "nothing was spared" in result.stdout
    else:
        assert int(sent.group(3)) > 0


def test_demo_report_when_the_pattern_never_matches() -> None:
    out = io.StringIO()
    assert main(["demo", "--pace", "0", "--stop-at", "no such text here"], out=out) == 0
    text = out.getvalue()
    assert "the pattern never matched: the stream ran to its end" in text
    assert "stopped after" not in text and "never had to be sent" not in text
    assert "not generated" not in text  # nothing was saved: no saving claimed


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamkit", *args], capture_output=True, text=True, timeout=60
    )


def test_cli_errors_are_one_line_not_tracebacks(monkeypatch: object) -> None:
    for args, message in [
        (["demo", "--transcript", "nope/none"], "no bundled transcript named 'nope/none'"),
        (["demo", "--stop-at", "("], "is not a regular expression"),
        (["demo", "--model", "gpt-4o"], "--model and --prompt go with --provider"),
        (["demo", "--prompt", "hi"], "--model and --prompt go with --provider"),
    ]:
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr


def test_cli_bad_pace_and_wav_are_one_line_errors(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "x.wav"
    for args, message in [
        (["demo", "--pace", "-1"], "--pace must be a number of seconds >= 0, not -1"),
        (["demo", "--pace", "nan"], "--pace must be a number of seconds >= 0"),
        (["demo", "--audio", "--pace", "-0.5"], "--pace must be"),
        (["demo", "--audio", "--wav", str(missing)], "does not exist"),
        (["demo", "--audio", "--wav", "/nonexistent/dir/x.wav"], "does not exist"),
        (["demo", "--audio", "--wav", str(tmp_path)], "is a directory"),
        (["demo", "--wav", str(tmp_path / "x.wav")], "--wav goes with --audio"),
        (["demo", "--audio", "--provider", "groq", "--model", "m"], "--audio needs"),
    ]:
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("streamkit demo: error: "), args
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr and result.stdout == "", args
    assert not missing.parent.exists()


def test_cli_missing_key_is_a_clear_error() -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    result = subprocess.run(
        [sys.executable, "-m", "streamkit", "demo", "--provider", "openai", "--model", "m"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 1 and "OPENAI_API_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_list_version_and_help() -> None:
    listed = run_cli("demo", "--list").stdout.split()
    assert "groq/chat-text-x-groq-usage" in listed and "synthetic/vllm-chat-no-usage" in listed
    assert run_cli("--version").stdout.startswith("streamkit ")
    for args in (["--help"], ["demo", "--help"]):
        text = run_cli(*args).stdout
        assert "``" not in text and ":class:" not in text and "usage:" in text


def test_demo_needs_a_model_with_a_provider() -> None:
    assert main(["demo", "--provider", "openai"], out=io.StringIO()) == 2


def test_audio_demo_writes_a_wav_and_prints_the_transcript(tmp_path: Path) -> None:
    out = io.StringIO()
    target = tmp_path / "demo.wav"
    assert main(["demo", "--audio", "--pace", "0", "--wav", str(target)], out=out) == 0
    assert "Once upon a time, a dragon slept." in out.getvalue()
    with wave.open(str(target)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (24_000, 1, 2)
        assert wav.getnframes() > 0
    written = re.search(r"wrote (\d+) bytes", out.getvalue())
    assert written is not None and int(written.group(1)) == wav.getnframes() * 2
