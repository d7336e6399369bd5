"""Sections of ``docs/performance.md`` written by other benchmark scripts.

``bench/run.py`` rewrites the whole page; a script that measures one thing on its own
(``bench/bench_otel.py``) writes a section between two markers, which ``run.py`` keeps
when it rewrites the rest.
"""

from __future__ import annotations

import re
from pathlib import Path


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- section {name}: begin -->", f"<!-- section {name}: end -->"


def replace_section(page: str, name: str, body: str) -> str:
    """``page`` with section ``name`` set to ``body`` (appended when absent)."""
    begin, end = _markers(name)
    block = f"{begin}\n{body.strip()}\n{end}\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.DOTALL)
    if pattern.search(page):
        return pattern.sub(lambda _m: block, page, count=1)
    return page.rstrip("\n") + "\n\n" + block


def kept_sections(old: Path, new_page: str) -> str:
    """``new_page`` with every marked section of the page at ``old`` carried over."""
    if not old.exists():
        return new_page
    text = old.read_text(encoding="utf-8")
    for name in re.findall(r"<!-- section (\S+): begin -->", text):
        begin, end = _markers(name)
        start, stop = text.find(begin), text.find(end)
        if start < 0 or stop < start:
            continue
        body = text[start + len(begin) : stop]
        new_page = replace_section(new_page, name, body)
    return new_page
