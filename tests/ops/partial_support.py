"""Models and checks shared by the tests of ``ops.partial_object`` and
``ops.partial_tool_args``."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st
from pydantic import BaseModel, Field

from streamkit.testing import strategies as sks


class Author(BaseModel):
    """A nested model with a required and an optional field."""

    name: str
    born: int | None = None


class Book(BaseModel):
    """The structured output of ``synthetic/openai-chat-structured-output-json``."""

    title: str
    author: Author
    year: int
    rating: float
    genres: list[str]
    summary: str


class Shelf(BaseModel):
    """Every kind of value: strings with escapes, numbers, booleans, null, lists of
    models, a dict, a constrained string, defaults."""

    label: str
    count: int
    weight: float = 0.0
    open: bool = True
    note: str | None = None
    code: str = Field(default="x", max_length=12)
    books: list[Author] = []
    tags: dict[str, int] = {}
    owner: Author | None = None


_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)
_small_int = st.integers(-(10**9), 10**9)
_author = st.builds(Author, name=_text, born=st.none() | _small_int)

shelves = st.builds(
    Shelf,
    label=_text,
    count=_small_int,
    weight=st.floats(allow_nan=False, allow_infinity=False, width=32),
    open=st.booleans(),
    note=st.none() | _text,
    code=st.text(max_size=12),
    books=st.lists(_author, max_size=3),
    tags=st.dictionaries(_text, _small_int, max_size=3),
    owner=st.none() | _author,
)
"""Shelf instances to stream (their JSON is the full text)."""


@st.composite
def shelf_json_splits(draw: st.DrawFn) -> tuple[Shelf, str, list[str]]:
    """``(shelf, its JSON text, that text cut at arbitrary points)``: ASCII-escaped or
    not, compact or indented, with or without leading/trailing whitespace."""
    shelf = draw(shelves)
    indent = draw(st.sampled_from([None, 2]))
    text = json.dumps(
        shelf.model_dump(mode="json"), ensure_ascii=draw(st.booleans()), indent=indent
    )
    text = draw(st.sampled_from(["", " ", "\n"])) + text + draw(st.sampled_from(["", "\n"]))
    return shelf, text, draw(sks.split_text(text))


def consistent(partial: Any, final: Any) -> bool:
    """Whether ``partial`` could be a prefix of ``final``: every field a partial model
    has set agrees with the final one, strings are prefixes, lists hold equal items
    then at most one unfinished last item."""
    if isinstance(partial, BaseModel):
        return type(partial) is type(final) and all(
            consistent(getattr(partial, name), getattr(final, name))
            for name in partial.model_fields_set
        )
    if isinstance(partial, str):
        return isinstance(final, str) and final.startswith(partial)
    if isinstance(partial, list):
        if not partial:
            return isinstance(final, list)
        last = len(partial) - 1
        return (
            isinstance(final, list)
            and len(partial) <= len(final)
            and partial[:last] == final[:last]
            and consistent(partial[last], final[last])
        )
    if isinstance(partial, dict):
        return all(key in final and consistent(v, final[key]) for key, v in partial.items())
    return bool(partial == final)
