"""The docs cannot rot: every code block of ``docs/`` runs here, the marble diagrams are
the code's own, and ``mkdocs build --strict`` passes.

How a page's code blocks are run (what a docs author needs to know):

- every ```` ```python ```` block of a page runs, in order, in one namespace per page (a
  fresh one for each page), all pages in one subprocess (so a page cannot disturb the
  test process, and the SDKs are imported once);
- a block whose info string says ``title="needs an API key"`` talks to a real provider:
  it is compiled, not run (keep these few: show the same code against the replay
  server next to it);
- a ```` ```text title="Output" ```` block right after a python block is what that block
  prints: it is compared line by line (trailing spaces ignored);
- a page stops at its first failing block (later blocks build on earlier ones); after
  it, ``ReplayServer`` objects left open in its namespace are closed, and no thread
  streamkit started may still be running.

Run one page by hand: ``python tests/test_docs.py - docs/operators/text.md``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

NEEDS_KEY = "needs an API key"
GENERATED = {"performance.md", "reliability.md"}
"""Pages written by the benchmark and reliability scripts: figures, not examples."""

_FENCE = re.compile(r"^(?P<indent>[ ]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass
class Block:
    """One fenced code block of a page."""

    page: str
    line: int
    language: str
    info: str
    code: str
    expected_output: str | None = None

    @property
    def needs_key(self) -> bool:
        return NEEDS_KEY in self.info


def fenced_blocks(text: str, page: str = "<page>") -> list[Block]:
    """Every fenced block of a markdown text (indented ones in admonitions and tabs
    included), with the output block that follows a python block attached to it."""
    lines = text.splitlines()
    found: list[tuple[Block, int]] = []  # (block, index of its closing line)
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence, info = opening["indent"], opening["fence"], opening["info"].strip()
        closing = re.compile(rf"^{indent}{fence[0]}{{{len(fence)},}}\s*$")
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            line = lines[end]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            end += 1
        language = info.split()[0].lower() if info.split() else ""
        block = Block(page, index + 1, language, info, "\n".join(body) + "\n")
        found.append((block, end))
        index = end + 1
    blocks: list[Block] = []
    for position, (block, _) in enumerate(found):
        blocks.append(block)
        if block.language not in ("python", "py") or position + 1 >= len(found):
            continue
        after, closed_at = found[position + 1], found[position][1]
        between = lines[closed_at + 1 : after[0].line - 1]
        is_output = after[0].language == "text" and 'title="Output"' in after[0].info
        if is_output and all(not line.strip() for line in between):
            block.expected_output = after[0].code
    return blocks


def python_blocks(path: Path) -> list[Block]:
    """The python blocks of a page, in order."""
    page = path.relative_to(DOCS).as_posix()
    return [
        b
        for b in fenced_blocks(path.read_text(encoding="utf-8"), page)
        if b.language in ("python", "py")
    ]


def _normalized(output: str) -> str:
    return "\n".join(line.rstrip() for line in output.strip("\n").splitlines())


def _streamkit_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("streamkit-")]


def run_page(path: Path) -> dict[str, Any]:
    """Run a page's python blocks; a report of what ran and the first failure."""
    from streamkit.testing import ReplayServer

    namespace: dict[str, Any] = {"__name__": "__docs__"}
    report: dict[str, Any] = {"ran": 0, "compiled": 0, "failure": None}
    blocks = python_blocks(path)
    try:
        for block in blocks:
            code = compile(block.code, f"{block.page}:{block.line}", "exec")
            if block.needs_key:
                report["compiled"] += 1
                continue
            buffer = io.StringIO()
            try:
                with contextlib.redirect_stdout(buffer):
                    exec(code, namespace)
            except BaseException:
                report["failure"] = (
                    f"the block at {block.page}:{block.line} raised:\n{traceback.format_exc()}"
                    f"\nwhat it printed:\n{buffer.getvalue()}"
                )
                return report
            report["ran"] += 1
            if block.expected_output is not None:
                printed, expected = (
                    _normalized(buffer.getvalue()),
                    _normalized(block.expected_output),
                )
                if printed != expected:
                    report["failure"] = (
                        f"the block at {block.page}:{block.line} printed:\n{printed}\n\n"
                        f"but the page shows:\n{expected}"
                    )
                    return report
    finally:
        for value in list(namespace.values()):
            if isinstance(value, ReplayServer):
                value.close()
    deadline = time.monotonic() + 5
    while _streamkit_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    left = [t.name for t in _streamkit_threads()]
    if left:
        report["failure"] = f"threads still running after the page: {left}"
    return report


def main(argv: list[str]) -> int:
    """``test_docs.py REPORT PAGE...``: run pages, write a JSON report (``-``: print)."""
    target, pages = argv[0], [Path(p).resolve() for p in argv[1:]]
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network, ever
    reports = {}
    for page in pages:
        started = time.monotonic()
        reports[page.relative_to(DOCS).as_posix()] = {
            **run_page(page),
            "seconds": round(time.monotonic() - started, 2),
        }
    text = json.dumps(reports, indent=2)
    if target == "-":
        print(text)
    else:
        Path(target).write_text(text, encoding="utf-8")
    return 0


# -- the tests ---------------------------------------------------------------------------
PAGES = sorted(
    path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md") if path.name not in GENERATED
)


@pytest.fixture(scope="module")
def page_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    report = tmp_path_factory.mktemp("docs") / "report.json"
    result = subprocess.run(
        [sys.executable, __file__, str(report), *(str(DOCS / page) for page in PAGES)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    reports: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    return reports


@pytest.mark.timeout(300)
@pytest.mark.parametrize("page", PAGES)
def test_every_code_block_of_the_page_runs(page: str, page_reports: dict[str, Any]) -> None:
    report = page_reports[page]
    assert report["failure"] is None, report["failure"]
    assert report["ran"] + report["compiled"] == len(python_blocks(DOCS / page))


def test_the_pages_hold_code_and_only_a_few_blocks_need_a_key() -> None:
    blocks = [block for page in PAGES for block in python_blocks(DOCS / page)]
    keyed = [f"{b.page}:{b.line}" for b in blocks if b.needs_key]
    assert len(blocks) >= 40
    assert len(keyed) <= 6, keyed
    checked = [b for b in blocks if b.expected_output is not None]
    assert len(checked) >= 10


def test_the_runner_reads_fences_titles_and_outputs() -> None:
    text = (
        "Intro\n\n```python\nprint('a')\n```\n\n```text title=\"Output\"\na\n```\n\n"
        '!!! note\n    ```python title="needs an API key"\n    client = OpenAI()\n    ```\n\n'
        "```bash\nls\n```\n"
    )
    blocks = fenced_blocks(text)
    assert [(b.language, b.line) for b in blocks] == [
        ("python", 3),
        ("text", 7),
        ("python", 12),
        ("bash", 16),
    ]
    assert blocks[0].expected_output == "a\n"
    assert blocks[2].needs_key and blocks[2].code == "client = OpenAI()\n"
    assert blocks[2].expected_output is None


def _diagrams_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_diagrams", DOCS / "diagrams.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_marble_diagrams_are_what_the_code_draws() -> None:
    rendered: dict[str, str] = _diagrams_module().render_all()
    committed = {p.name: p.read_text(encoding="utf-8") for p in (DOCS / "diagrams").glob("*.svg")}
    stale = sorted(name for name, svg in rendered.items() if committed.get(name) != svg)
    extra = sorted(set(committed) - set(rendered))
    assert not stale, f"stale diagrams {stale}: run `python docs/diagrams.py` and commit them"
    assert not extra, f"diagrams no code draws any more: {extra}"


def test_every_diagram_is_shown_on_a_page() -> None:
    pages = "".join(p.read_text(encoding="utf-8") for p in DOCS.rglob("*.md"))
    shown = set(re.findall(r"diagrams/([\w.-]+\.svg)", pages))
    drawn = {p.name for p in (DOCS / "diagrams").glob("*.svg")}
    assert drawn <= shown, f"diagrams on no page: {sorted(drawn - shown)}"
    assert shown <= drawn, f"pages show missing diagrams: {sorted(shown - drawn)}"


def test_every_operator_has_its_page_index_row_and_nav_entry() -> None:
    # streamkit.ops.__all__ is the one list of operators: the API reference is generated
    # from it, and this test holds the hand-written docs to it.
    from streamkit import ops

    operators = [name for name in ops.__all__ if inspect.isfunction(getattr(ops, name))]
    pages = {p.name: p.read_text(encoding="utf-8") for p in (DOCS / "operators").glob("*.md")}
    index = pages["index.md"]
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    problems = []
    for name in operators:
        page = next((p for p, text in pages.items() if f"# `ops.{name}" in text), None)
        if page is None:
            problems.append(f"{name}: no page in docs/operators/ with a `# `ops.{name}` heading")
            continue
        rows = [line for line in index.splitlines() if re.search(rf"`ops\.{name}[(`]", line)]
        if not any(f"]({page}" in row for row in rows):
            problems.append(f"{name}: no row in docs/operators/index.md linking {page}")
        if f"operators/{page}" not in nav:
            problems.append(f"{name}: {page} is not in mkdocs.yml's nav")
    assert not problems, "\n".join(problems)


def test_the_ops_reference_is_generated_from_all() -> None:
    reference = (DOCS / "reference" / "ops.md").read_text(encoding="utf-8")
    assert "::: streamkit.ops" in reference
    assert "members:" not in reference, "list no members: mkdocstrings renders ops.__all__"


def test_the_readme_links_the_docs_and_lists_every_example() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "## Documentation" in readme and "mkdocs serve" in readme
    examples = readme.split("## Examples", 1)[1] if "## Examples" in readme else ""
    missing = [p.name for p in (ROOT / "examples").glob("*.py") if p.name not in examples]
    assert not missing, f"examples the README does not list: {missing}"


@pytest.mark.timeout(120)
def test_mkdocs_build_strict_passes(tmp_path: Path) -> None:
    if (
        importlib.util.find_spec("mkdocs") is None
        or importlib.util.find_spec("mkdocstrings") is None
    ):
        pytest.skip("mkdocs and mkdocstrings are not installed (pip install -e '.[docs]')")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "operators" / "take_until_match" / "index.html").is_file()
    assert (tmp_path / "diagrams" / "take_until_match.svg").is_file()
    assert time.monotonic() - started < 60
    pages = {path: path.read_text(encoding="utf-8") for path in tmp_path.rglob("*.html")}
    # offline: no page fetches Google Fonts
    assert not [
        p for p, html in pages.items() if "fonts.googleapis" in html or "fonts.gstatic" in html
    ]
    # the API reference shows examples as highlighted code, not >>> blockquotes
    reference = "".join(html for path, html in pages.items() if "reference" in path.parts)
    assert "doctest" not in reference and "&gt;&gt;&gt;" not in reference
    assert '<span class="n">take_until_match</span>' in reference  # highlighted code
    # diagrams scale to a narrow screen
    css = (tmp_path / "stylesheets" / "extra.css").read_text(encoding="utf-8")
    assert "max-width: 100%" in css and "overflow-x: auto" in css
    assert "stylesheets/extra.css" in pages[tmp_path / "operators" / "text" / "index.html"]


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
