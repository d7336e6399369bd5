"""What partial JSON validation costs: streamkit's parser against re-parsing the buffer.

Run: ``PYTHONPATH=. python bench/bench_partial.py`` (add ``--quick`` to skip the slow
50k baseline). For three object shapes at ~1k, ~10k and ~50k characters, fed in
4-character pieces (about one token each), it measures the CPU time of

- ``reparse``: what a per-chunk partial parser does (Mirascope's partial structured
  output re-parses the whole buffer on every chunk, quadratic in the length):
  ``pydantic_core.from_json(buffer, allow_partial=...)`` over the whole buffer, then the
  same partial validation as streamkit, for every piece;
- ``reparse (parse only)``: the same without validation, the floor of that approach;
- ``streamkit``: ``PartialModelParser`` (``ops.partial_object``/``partial_tool_args``):
  each finished top-level member parsed once, the streaming one re-parsed when it grew
  by 1/32;

plus how many characters jiter was handed in all, per character of the object (1.0
would be one parse of the object; a re-parse per piece grows with the object).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

from pydantic import BaseModel
from pydantic_core import from_json

from streamkit._partial_json import PartialModelParser, partial_instance

PIECE = 4


class Item(BaseModel):
    name: str
    qty: int
    tags: list[str]


class Doc(BaseModel):
    title: str = ""
    body: str = ""
    items: list[Item] = []
    extra: dict[str, int] = {}


def one_long_string(size: int) -> str:
    words = 'lorem ipsum dolor sit amet, "quoted" and caf\u00e9 '
    return json.dumps({"title": "t", "body": (words * (size // len(words) + 1))[:size]})


def list_of_items(size: int) -> str:
    count = max(1, size // 45)
    items = [{"name": f"item {i}", "qty": i, "tags": ["a", "b"]} for i in range(count)]
    return json.dumps({"title": "t", "items": items})


def many_members(size: int) -> str:
    count = max(1, size // 14)
    return json.dumps({"title": "t", "extra": {f"k{i}": i for i in range(count)}})


def wide_object(size: int) -> str:
    """Many top-level members: each is parsed once by streamkit."""
    count = max(1, size // 14)
    return json.dumps({"title": "t", **{f"k{i}": i for i in range(count)}})


SHAPES: dict[str, Callable[[int], str]] = {
    "one long string": one_long_string,
    "list of items": list_of_items,
    "nested dict": many_members,
    "wide object": wide_object,
}


def pieces_of(text: str) -> list[str]:
    return [text[i : i + PIECE] for i in range(0, len(text), PIECE)]


def reparse(pieces: list[str], validate: bool) -> tuple[float, int]:
    start = time.process_time()
    buffer = ""
    parsed = 0
    for piece in pieces:
        buffer += piece
        raw = from_json(buffer, allow_partial="trailing-strings")
        parsed += len(buffer)
        if validate and isinstance(raw, dict):
            partial_instance(Doc, raw)
    Doc.model_validate_json(buffer)
    return time.process_time() - start, parsed + len(buffer)


def incremental(pieces: list[str]) -> tuple[float, int]:
    start = time.process_time()
    parser = PartialModelParser(Doc)
    for piece in pieces:
        parser.feed(piece)
    parser.finish()
    return time.process_time() - start, parser.parsed_characters


def main(quick: bool) -> None:
    print(f"pieces of {PIECE} characters; CPU ms for the whole object (jiter chars/char)")
    header = f"{'shape':<16} {'chars':>7} {'reparse':>18} {'parse only':>12} {'streamkit':>18}"
    print(header)
    print("-" * len(header))
    for shape, make in SHAPES.items():
        for size in (1_000, 10_000, 50_000):
            text = make(size)
            pieces = pieces_of(text)
            if quick and size > 10_000:
                full = only = "skipped"
            else:
                seconds, parsed = reparse(pieces, validate=True)
                full = f"{seconds * 1e3:8.1f} ({parsed / len(text):6.0f})"
                only = f"{reparse(pieces, validate=False)[0] * 1e3:8.1f}"
            seconds, parsed = incremental(pieces)
            mine = f"{seconds * 1e3:8.1f} ({parsed / len(text):6.1f})"
            print(f"{shape:<16} {len(text):>7} {full:>18} {only:>12} {mine:>18}")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
