"""First contact on a fresh machine: the README's snippets run as written, and CI runs
exactly the README's test command in a fresh venv, from committed constraints, plus a
newest-SDK leg (issue 11)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_docs import fenced_blocks

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SDKS = ("openai", "anthropic", "mistralai", "groq", "google-genai", "cohere", "litellm")


def readme_blocks() -> list[tuple[int, str, bool]]:
    blocks = fenced_blocks(README.read_text(encoding="utf-8"), "README.md")
    return [(b.line, b.code, b.needs_key) for b in blocks if b.language in ("python", "py")]


def test_the_readme_has_python_snippets_and_few_need_a_key() -> None:
    blocks = readme_blocks()
    assert len(blocks) >= 2
    assert sum(needs_key for _, _, needs_key in blocks) <= 1


@pytest.mark.parametrize(("line", "code", "needs_key"), readme_blocks(), ids=lambda v: str(v))
def test_every_readme_snippet_runs_on_its_own(
    line: int, code: str, needs_key: bool, tmp_path: Path
) -> None:
    """Each block alone, in a fresh interpreter (so a missing import is a NameError)."""
    compile(code, f"README.md:{line}", "exec")
    if needs_key:
        return
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert result.returncode == 0, f"README.md:{line} failed:\n{result.stderr}"


def readme_test_command() -> str:
    text = README.read_text(encoding="utf-8")
    after = text[text.index("Install and run the tests") :]
    match = re.search(r"```bash\n(.+?)\n```", after, re.S)
    assert match is not None
    return match.group(1).strip()


def test_ci_runs_exactly_the_readme_test_command_in_a_fresh_venv() -> None:
    command = readme_test_command()
    assert "-c constraints.txt" in command and command.endswith("python3 -m pytest")
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    lines = [line.strip() for line in script.splitlines()]
    assert command in lines
    default_leg = script[script.index("leg 2") :]
    venv = default_leg.index("python3 -m venv")
    assert venv < default_leg.index("activate") < default_leg.index(command)
    # the newest-SDK leg: a fresh venv, upgraded SDKs, no constraints, and every test
    # that drives an SDK over the wire: the provider tests and the fast path's
    newest_leg = script[script.index("leg 1") : script.index("leg 2")]
    assert "python3 -m venv" in newest_leg and "--upgrade" in newest_leg
    assert "constraints" not in newest_leg
    listed = re.search(r"^NEWEST_SDK_TESTS=\((.*)\)$", newest_leg, re.M)
    assert listed is not None
    tests = listed.group(1).split()
    assert {
        "tests/providers",
        "tests/test_fast_path.py",
        "tests/test_fast_path_stainless.py",
        "tests/test_fast_path_mistral.py",
    } <= set(tests)
    assert all((ROOT / test).exists() for test in tests)
    assert 'pytest -q -p no:cacheprovider "${NEWEST_SDK_TESTS[@]}"' in newest_leg
    assert subprocess.run(["bash", "-n", str(ROOT / ".ci" / "run")]).returncode == 0


def test_the_constraints_pin_every_sdk_and_not_streamkit() -> None:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not a pin: {line!r}"
            pins[name.lower().replace("_", "-")] = version
    for sdk in (*SDKS, "azure-ai-inference", "pytest", "hypothesis", "mypy", "ruff"):
        assert sdk in pins, f"constraints.txt does not pin {sdk}"
    assert "streamkit" not in pins
    script = (ROOT / ".ci" / "freeze-constraints").read_text(encoding="utf-8")
    assert "python3 -m venv" in script and "--exclude streamkit" in script


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dev_requirement_closure() -> set[str]:
    """Every distribution ``pip install -e ".[dev]"`` installs here: the dev extra's
    requirements (``streamkit[all]`` expanded from pyproject.toml), then each installed
    distribution's own, with their markers evaluated for this interpreter."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    from importlib import metadata

    from packaging.requirements import Requirement

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    todo = [Requirement(line) for line in extras["dev"]]
    seen: set[str] = set()
    while todo:
        requirement = todo.pop()
        name = normalized(requirement.name)
        if name == "streamkit":
            todo += [Requirement(line) for extra in requirement.extras for line in extras[extra]]
            continue
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.distribution(requirement.name).requires or []
        except metadata.PackageNotFoundError:
            continue  # not installed here: the pin check below still names it
        wanted = {"", *requirement.extras}
        for line in requires:
            needed = Requirement(line)
            marker = needed.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in wanted):
                todo.append(needed)
    return seen


def test_the_constraints_pin_everything_the_dev_extra_installs() -> None:
    """A fresh ``pip install -c constraints.txt -e ".[dev]"`` gets only pinned versions:
    fastapi (the serve tests) and its annotated-doc were once left unpinned."""
    pins = {
        normalized(line.partition("==")[0])
        for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    }
    unpinned = sorted(dev_requirement_closure() - pins - {"pip", "setuptools", "wheel"})
    assert unpinned == [], f"constraints.txt does not pin {unpinned}: run .ci/freeze-constraints"
