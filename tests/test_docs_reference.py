"""The public surface is what the API reference shows: each public package's ``__all__``,
no more and no less, every name in it with a docstring.

``docs/reference/*.md`` render the API with mkdocstrings directives (``::: target``). A
directive of a whole package renders its ``__all__`` (less the names its ``filters``
drop, or only its ``members`` when it lists them); a directive of one name renders that
name. A name of a package's ``__all__`` counts as documented when the same object is
rendered under the same name anywhere in the reference (``streamkit.redis.publish`` is
``ops.publish``, shown in ``streamkit.ops``). And mkdocstrings drops what has no
docstring (``show_if_no_docstring: false``), so a public name without one would be
missing from the page: the docstrings are read as mkdocstrings reads them (griffe:
attribute docstrings count, ``#:`` comments do not).
"""

from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import streamkit

# PyYAML comes with mkdocs (no type stubs: imported by name)
yaml: Any = importlib.import_module("yaml")

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"

PACKAGES = (
    "streamkit",
    "streamkit.ops",
    "streamkit.prices",
    "streamkit.providers",
    "streamkit.telemetry",
    "streamkit.serve",
    "streamkit.redis",
    "streamkit.testing",
    "streamkit.testing.replay",
    "streamkit.testing.transcripts",
    "streamkit.testing.marbles",
    "streamkit.testing.strategies",
    "streamkit.testing.spans",
)
"""The public packages and modules: their ``__all__`` is the public surface, documented
in the reference, every name with a docstring."""

PUBLIC_CORE_MODULES = frozenset({"prices", "_finish_reasons"})
"""Modules directly in ``streamkit/`` that the reference may render whole (the finish
reason tables are documentation of the normalized values). The others (``_stream``,
``_models``, ``_accumulator``...) are where the code lives: the reference shows their
names as the packages export them, never the module itself."""

_DIRECTIVE = re.compile(r"^:::\s+(?P<target>[\w.]+)\s*$")


@dataclass
class Directive:
    """One ``::: target`` of a reference page, with its options."""

    page: str
    line: int
    target: str
    options: dict[str, Any] = field(default_factory=dict)


def directives() -> list[Directive]:
    """Every mkdocstrings directive of ``docs/reference/``, in page order."""
    found: list[Directive] = []
    for path in sorted(REFERENCE.glob("*.md")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for index, line in enumerate(lines):
            match = _DIRECTIVE.match(line)
            if match is None:
                continue
            block: list[str] = []
            for following in lines[index + 1 :]:
                if not following.startswith("    "):
                    break
                block.append(following)
            parsed = yaml.safe_load("\n".join(block)) if block else None
            options = (parsed or {}).get("options") or {}
            found.append(Directive(path.name, index + 1, match["target"], options))
    return found


def resolve(target: str) -> tuple[ModuleType | None, str, Any]:
    """``(parent module or None, name, object)`` of a directive's target, resolved as
    mkdocstrings does: a dotted path that names a module is that module (so
    ``streamkit._stream`` is the module, ``streamkit.stream`` the function the package
    exports)."""
    try:
        return _parent_of(target), target.rsplit(".", 1)[-1], importlib.import_module(target)
    except ModuleNotFoundError:
        pass
    module_path, _, name = target.rpartition(".")
    owner: Any = importlib.import_module(module_path.split(".")[0])
    parts = module_path.split(".")
    for depth in range(1, len(parts)):
        owner = importlib.import_module(".".join(parts[: depth + 1]))
    if not hasattr(owner, name):
        raise AttributeError(f"{module_path} has no {name}")
    return owner if inspect.ismodule(owner) else None, name, getattr(owner, name)


def _parent_of(target: str) -> ModuleType | None:
    parent = target.rpartition(".")[0]
    return importlib.import_module(parent) if parent else None


def rendered_members(directive: Directive, module: ModuleType) -> list[str]:
    """The names of ``module`` a whole-module directive renders."""
    members = directive.options.get("members")
    if members is False:
        return []
    if isinstance(members, list):
        return [str(name) for name in members]
    public = list(getattr(module, "__all__", []))
    filters = directive.options.get("filters") or []
    dropped = [re.compile(f[1:]) for f in filters if f.startswith("!")]
    return [name for name in public if not any(p.search(name) for p in dropped)]


def resolved() -> list[tuple[Directive, ModuleType | None, str, Any]]:
    """The directives that resolve, with their :func:`resolve` (the others are
    reported by ``test_every_directive_names_something_that_exists``)."""
    found = []
    for directive in directives():
        try:
            found.append((directive, *resolve(directive.target)))
        except (ImportError, AttributeError):
            continue
    return found


def documented() -> set[tuple[str, int]]:
    """``(name, id(object))`` of everything the reference renders."""
    shown: set[tuple[str, int]] = set()
    for directive, _, name, obj in resolved():
        shown.add((name, id(obj)))
        if inspect.ismodule(obj):
            for member in rendered_members(directive, obj):
                if hasattr(obj, member):
                    shown.add((member, id(getattr(obj, member))))
    return shown


def test_every_directive_names_something_that_exists() -> None:
    problems = []
    for directive in directives():
        where = f"{directive.page}:{directive.line} ::: {directive.target}"
        try:
            _, _, obj = resolve(directive.target)
        except (ImportError, AttributeError) as exc:
            problems.append(f"{where}: {exc}")
            continue
        if inspect.ismodule(obj):
            members = [m for m in rendered_members(directive, obj) if not hasattr(obj, m)]
            if members:
                problems.append(f"{where}: no such members {members}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("package", PACKAGES)
def test_the_reference_shows_exactly_the_public_names(package: str) -> None:
    module = importlib.import_module(package)
    public = list(module.__all__)
    assert len(public) == len(set(public)), f"{package}.__all__ repeats a name"
    missing = [name for name in public if not hasattr(module, name)]
    assert not missing, f"{package}.__all__ names what the package lacks: {missing}"
    shown = documented()
    undocumented = [name for name in public if (name, id(getattr(module, name))) not in shown]
    assert not undocumented, (
        f"public names of {package} the API reference (docs/reference/) does not show: "
        f"{undocumented}"
    )
    not_public = []
    for directive, parent, name, obj in resolved():
        # a submodule (streamkit.testing.strategies) is a public module of its own
        if parent is module and name not in public and not inspect.ismodule(obj):
            not_public.append(f"{directive.page}:{directive.line} {directive.target}")
        if obj is module:
            extra = [m for m in rendered_members(directive, module) if m not in public]
            not_public += [f"{directive.page}:{directive.line} {package}.{m}" for m in extra]
    assert not not_public, f"the reference shows names not in {package}.__all__: {not_public}"


def test_the_reference_never_renders_an_internal_core_module() -> None:
    core = {
        path.stem
        for path in Path(streamkit.__file__).parent.glob("*.py")
        if path.stem not in {"__init__", "__main__"}
    }
    wrong = []
    for directive, _, _, obj in resolved():
        if inspect.ismodule(obj) and obj.__name__.startswith("streamkit."):
            stem = obj.__name__.split(".", 1)[1]
            if stem in core and stem not in PUBLIC_CORE_MODULES:
                wrong.append(f"{directive.page}:{directive.line} ::: {directive.target}")
    assert not wrong, f"core modules rendered whole (show their names instead): {wrong}"


def test_every_public_name_has_a_docstring() -> None:
    griffe = pytest.importorskip("griffe", reason="griffe comes with mkdocstrings[python]")
    loader = griffe.GriffeLoader(search_paths=[str(ROOT)])
    package = loader.load("streamkit")
    loader.resolve_aliases(implicit=False, external=None)
    undocumented = []
    for module_name in PACKAGES:
        module = importlib.import_module(module_name)
        static = package if module_name == "streamkit" else package[module_name.split(".", 1)[1]]
        for name in module.__all__:
            member = static[name]
            target = member.final_target if member.is_alias else member
            if target.docstring is None or not target.docstring.value.strip():
                undocumented.append(f"{module_name}.{name} ({target.path})")
    assert not undocumented, f"public names without a docstring: {undocumented}"


def test_the_parser_reads_targets_and_options() -> None:
    """The reading of a directive this module relies on, on a page of its own making."""
    assert _DIRECTIVE.match("::: streamkit.ops")["target"] == "streamkit.ops"  # type: ignore[index]
    assert _DIRECTIVE.match("see ::: streamkit.ops") is None
    redis = next(d for d in directives() if d.target == "streamkit.redis")
    assert "publish" in redis.options["filters"][1]
    assert "publish" not in rendered_members(redis, importlib.import_module("streamkit.redis"))
    assert resolve("streamkit._stream")[2] is importlib.import_module("streamkit._stream")
    assert resolve("streamkit.stream")[2] is streamkit.stream
    assert resolve("streamkit.Stream")[2] is streamkit.Stream
