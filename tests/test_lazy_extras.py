"""``sk.serve`` and ``sk.redis`` after a bare ``import streamkit as sk``: imported on first
access, and without their extra a clear ``ImportError`` naming it. Each case runs in a
fresh interpreter (this process has imported both long ago)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_sk_serve_and_sk_redis_are_imported_on_first_access() -> None:
    result = run(
        """
        import sys
        import streamkit as sk

        assert "streamkit.serve" not in sys.modules and "streamkit.redis" not in sys.modules
        assert "starlette" not in sys.modules  # import streamkit needs no extra
        assert sk.serve is sys.modules["streamkit.serve"]
        assert callable(sk.serve.chat_app) and callable(sk.serve.ui_message_response)
        assert sk.redis is sys.modules["streamkit.redis"]
        assert callable(sk.redis.follow) and callable(sk.redis.stop)
        try:
            sk.no_such_name
        except AttributeError as error:
            assert "no_such_name" in str(error)
        else:
            raise AssertionError("sk.no_such_name did not raise")
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize(
    ("name", "package"),
    [("serve", "starlette"), ("redis", "redis"), ("redis", "orjson")],
)
def test_without_the_extra_the_error_names_it(name: str, package: str) -> None:
    # None in sys.modules makes ``import package`` fail as if it were not installed.
    result = run(
        f"""
        import sys
        sys.modules[{package!r}] = None
        import streamkit as sk

        try:
            sk.{name}
        except ImportError as error:
            print(type(error).__name__, error, sep=": ")
        else:
            raise AssertionError("sk.{name} did not raise")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ImportError: ")
    assert f"[{name}] extra" in result.stdout
    assert f'pip install "streamkit[{name}]"' in result.stdout
    assert f"missing: {package}" in result.stdout
