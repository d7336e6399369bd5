"""The operators stand above the core: they import the core, never ``streamkit._stream``
(what they need of a stream is the ``RestartableStream`` protocol), and nothing they
import leans back on ``streamkit.ops``.

Imports are read with ``ast`` from the source files, those inside functions included,
so a lazy import counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import openai

import streamkit as sk
from streamkit._restartable import RestartableStream

PACKAGE = Path(sk.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
OPERATOR_MODULES = sorted(name for name in MODULES if name.startswith("streamkit.ops"))


def imported_by(name: str) -> set[str]:
    """The streamkit modules (and packages) module ``name`` imports anywhere in its code."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            # `from streamkit import _stream` imports the module streamkit._stream
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {m for m in found if m in MODULES}


def test_the_import_reader_sees_top_level_lazy_and_relative_imports() -> None:
    assert "streamkit.ops._contest" in imported_by("streamkit.ops._race")
    assert "streamkit._source" in imported_by("streamkit.ops._publish")  # inside a function
    assert "streamkit.ops._text" in imported_by("streamkit.ops")


def test_no_operator_module_imports_the_stream_module() -> None:
    offenders = {
        name: sorted(imported_by(name) & {"streamkit", "streamkit._stream"})
        for name in OPERATOR_MODULES
    }
    offenders = {name: found for name, found in offenders.items() if found}
    assert not offenders, f"operator modules importing streamkit._stream: {offenders}"


def test_the_core_under_the_operators_never_imports_them() -> None:
    core = {m for name in OPERATOR_MODULES for m in imported_by(name)} - set(OPERATOR_MODULES)
    seen: set[str] = set()
    back: list[str] = []
    while core:
        name = core.pop()
        if name in seen:
            continue
        seen.add(name)
        for module in imported_by(name):
            if module == "streamkit" or module.startswith("streamkit.ops"):
                back.append(f"{name} -> {module}")
            else:
                core.add(module)
    assert "streamkit._models" in seen
    assert not back, f"core modules the operators use import the operators: {back}"


def test_a_stream_is_a_restartable_stream() -> None:
    # A client is only used at the first request, which this test never makes.
    stream = sk.stream("openai", "gpt-4o", "hi", client=openai.OpenAI(api_key="unused"))
    assert isinstance(stream, RestartableStream)
    assert isinstance(stream.continuation("Hel"), RestartableStream)
