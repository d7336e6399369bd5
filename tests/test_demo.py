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
    assert "never had to be sent" in result.stdout


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
