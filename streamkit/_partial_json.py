"""A JSON object streaming in, validated into the user's pydantic model as it grows.

Shared by ``ops.partial_object`` and ``ops.partial_tool_args``. Every piece of JSON is
parsed by pydantic_core (jiter): ``from_json(..., allow_partial="trailing-strings")``
for the member still streaming, ``from_json`` for each finished member and
``Model.model_validate_json`` for the whole text at the end. What this module adds is
a scanner that tracks string/escape state and bracket depth, only to find where the
object's top-level members begin and end; it reads no JSON value itself.

**What a partial object is.** An instance of the user's model built with
``model_construct``: the fields known so far hold validated values (each validated
against its field's type and constraints, the last one with pydantic's
``experimental_allow_partial``, so an unfinished string is shown as far as it goes and
an unfinished list holds its finished items), fields with a default and not yet seen
hold the default, and required fields not seen yet are *not set*: reading one raises
``AttributeError``; ``model_fields_set`` names the fields known. A nested model still
streaming is itself such a partial instance. A value that cannot be valid yet (a
number that may have more digits, an unfinished literal or enum string) is left out
until it is complete. The model's own ``field_validator``/``model_validator`` run only
on the final object, which is always ``Model.model_validate_json(whole text)``:
partials are a preview, the final object is the authority.

**Cost.** jiter does not resume a parse: a partial parse of t characters costs O(t),
so parsing the whole buffer again for every fragment costs O(n²) over an object of n
characters. Here each fragment is scanned once (O(fragment)), each finished top-level
member is parsed and validated once, and the member still streaming is parsed again
only when its text grew by at least ``1/reparse_divisor`` of what was parsed last
(and never for trailing whitespace or a number that may go on). Its re-parse sizes
grow geometrically, so the total work is O(n) (at most ``reparse_divisor + 1`` times
one parse of the object, for an object made of one huge member). The price is the
granularity of a huge member: with the default divisor 32 a member of m characters is
shown again every m/32 characters (every chunk while it is small, every ~1.5k
characters at 50k).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, Generic, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import from_json

__all__ = ["DEFAULT_REPARSE_DIVISOR", "PartialModelParser"]

ModelT = TypeVar("ModelT", bound=BaseModel)

DEFAULT_REPARSE_DIVISOR: Final = 32
"""The streaming member is parsed again once it grew by 1/32 of what was parsed last."""

_STRUCTURAL = re.compile(r'["{}\[\],:]')
_IN_STRING = re.compile(r'["\\]')
_WHITESPACE = frozenset(" \t\n\r")

# What the text after the last structural character (outside strings) holds:
_BLANK = 0  # whitespace only: inert
_TOKEN = 1  # a bare token (number, true, null...) that may go on: inert until it ends
_ENDED = 2  # a bare token followed by whitespace: complete, significant


class _MISSING:
    """A field value that is not known (yet)."""


_missing: Final = _MISSING()


class _ObjectMembers:
    """Splits the text of one JSON object, fed in fragments, at its top-level members.

    Tracks only string/escape state, bracket depth and the inert tail; values are
    jiter's business. O(fragment) per fragment.
    """

    def __init__(self) -> None:
        self.started = False
        """The opening brace was seen."""
        self.closed = False
        """The closing brace was seen."""
        self.trailing = False
        """Something other than whitespace followed the closing brace."""
        self.finished: list[str] = []
        """Texts of the members that ended and were not taken yet."""
        self._pieces: list[str] = []
        self._closed_at = 0  # length of the text up to and including the closing brace
        self._length = 0
        self._in_string = False
        self._escaped = False
        self._depth = 0
        self._member: list[str] = []
        self._member_length = 0
        self._tail_length = 0
        self._tail_kind = _BLANK

    @property
    def significant_length(self) -> int:
        """Characters of the streaming member that can change its value now."""
        inert = self._tail_length if self._tail_kind != _ENDED else 0
        return self._member_length - inert

    def member_text(self) -> str:
        """The streaming member's significant text (joined now: O(member))."""
        return "".join(self._member)[: self.significant_length]

    def text(self) -> str:
        """Everything fed so far (up to the closing brace once it was seen)."""
        whole = "".join(self._pieces)
        return whole[: self._closed_at] if self.closed else whole

    def feed(self, fragment: str) -> None:
        """Scan ``fragment``; raise ``ValueError`` if the text does not open an object."""
        self._pieces.append(fragment)
        offset = self._length
        self._length += len(fragment)
        position = 0
        member_start = 0 if self.started else -1
        end = len(fragment)
        while position < end:
            if self.closed:
                self.trailing = self.trailing or bool(fragment[position:].strip())
                return
            if not self.started:
                position = _skip_whitespace(fragment, position)
                if position == end:
                    break
                if fragment[position] != "{":
                    raise ValueError(
                        f"expected a JSON object, got {fragment[position : position + 20]!r}"
                    )
                self.started, self._depth = True, 1
                position += 1
                member_start = position
                continue
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                    position += 1
                    continue
                found = _IN_STRING.search(fragment, position)
                if found is None:
                    position = end
                    break
                self._escaped = found.group() == "\\"
                self._in_string = self._escaped
                position = found.end()
                continue
            found = _STRUCTURAL.search(fragment, position)
            if found is None:
                self._extend_tail(fragment, position, end)
                position = end
                break
            self._tail_length, self._tail_kind = 0, _BLANK
            char, at = found.group(), found.start()
            position = at + 1
            if char == '"':
                self._in_string = True
            elif char in "{[":
                self._depth += 1
            elif char in "}]":
                self._depth -= 1
                if self._depth == 0:
                    self._end_member(fragment[member_start:at])
                    self.closed, self._closed_at = True, offset + at + 1
                    member_start = -1
            elif char == "," and self._depth == 1:  # between two top-level members
                self._end_member(fragment[member_start:at])
                member_start = position
        if member_start >= 0 and member_start < end:
            self._member.append(fragment[member_start:])
            self._member_length += end - member_start

    def _extend_tail(self, fragment: str, start: int, end: int) -> None:
        for char in fragment[start:end]:
            if char in _WHITESPACE:
                if self._tail_kind == _TOKEN:
                    self._tail_kind = _ENDED
            elif self._tail_kind == _BLANK:
                self._tail_kind = _TOKEN
        self._tail_length += end - start

    def _end_member(self, last_piece: str) -> None:
        text = "".join(self._member) + last_piece
        if text.strip():
            self.finished.append(text)
        self._member, self._member_length = [], 0
        self._tail_length, self._tail_kind = 0, _BLANK


def _skip_whitespace(text: str, position: int) -> int:
    while position < len(text) and text[position] in _WHITESPACE:
        position += 1
    return position


@dataclass(frozen=True)
class _Field:
    name: str
    adapter: TypeAdapter[Any]
    model: type[BaseModel] | None
    """The field's type when it is a pydantic model (a partial one is built for it)."""


@functools.cache
def _fields_by_key(model: type[BaseModel]) -> Mapping[str, _Field]:
    """Each field of ``model`` under the JSON keys that may name it."""
    fields: dict[str, _Field] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        nested = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
        # Constraints (``Field(max_length=...)``) live in the metadata; keep them.
        # Any: pydantic types the annotation as a TypeForm, which Annotated[...] is not.
        # The arguments as one tuple: mypy reads ``Annotated[(a, *b)]`` as 3.11-only syntax.
        annotated_args = (annotation, *info.metadata)
        constrained: Any = Annotated[annotated_args] if info.metadata else annotation
        spec = _Field(name, TypeAdapter(constrained), nested)
        alias = info.validation_alias if isinstance(info.validation_alias, str) else info.alias
        for key in (name, alias):
            if key is not None:
                fields[key] = spec
    return fields


def _field_value(field: _Field, raw: Any, partial: bool) -> Any:
    """``raw`` validated for ``field``; partial values may be unfinished; ``_missing``
    when it is not valid (yet)."""
    try:
        return field.adapter.validate_python(raw, experimental_allow_partial=partial)
    except ValidationError:
        if partial and field.model is not None and isinstance(raw, dict):
            return partial_instance(field.model, raw)
        return _missing


def partial_instance(model: type[ModelT], raw: dict[str, Any]) -> ModelT:
    """``model`` built from a partially parsed JSON object (its last key may be
    unfinished), without the values that are not valid yet."""
    fields = _fields_by_key(model)
    last = next(reversed(raw), None)
    values: dict[str, Any] = {}
    for key, item in raw.items():
        field = fields.get(key)
        if field is None:
            continue
        value = _field_value(field, item, partial=key == last)
        if value is not _missing:
            values[field.name] = value
    return model.model_construct(_fields_set=set(values), **values)


class PartialModelParser(Generic[ModelT]):
    """Feeds one JSON object's text in fragments; gives partial instances of ``model``
    when they change and the validated object once the object is closed."""

    def __init__(
        self, model: type[ModelT], *, reparse_divisor: int = DEFAULT_REPARSE_DIVISOR
    ) -> None:
        if reparse_divisor < 1:
            raise ValueError(f"reparse_divisor must be >= 1, got {reparse_divisor}")
        self._model = model
        self._fields = _fields_by_key(model)
        self._divisor = reparse_divisor
        self._members = _ObjectMembers()
        self._values: dict[str, Any] = {}
        self._streaming: tuple[str, Any] | None = None
        self._shown: dict[str, Any] = {}
        self._parsed_length = 0
        self.parses = 0
        """How many times jiter parsed some of the text (for benchmarks and tests)."""
        self.parsed_characters = 0
        """How many characters jiter was given in all (linear in the text's length)."""
        self.final: ModelT | None = None
        """The validated object, once the closing brace was seen."""

    def feed(self, fragment: str) -> ModelT | None:
        """Add ``fragment``. Returns a new partial instance when what is known changed,
        the validated object when this fragment closed the object, else ``None``.

        Raises ``ValueError`` for text that is not a JSON object and
        ``pydantic.ValidationError`` when the closed object does not fit the model.
        """
        if not fragment or self.final is not None:
            self._members.feed(fragment)
            return None
        members = self._members
        members.feed(fragment)
        touched = bool(members.finished)
        for text in members.finished:
            self._finish_member(text)
        members.finished.clear()
        if members.closed:
            self.final = self._validate(members.text())
            return self.final
        significant = members.significant_length
        grown = significant - self._parsed_length
        if grown > 0 and grown >= self._parsed_length // self._divisor:
            self._parsed_length = significant
            self._parse_streaming(members.member_text())
            touched = True
        if not touched:
            return None
        values = dict(self._values)
        if self._streaming is not None:
            name, value = self._streaming
            values[name] = value
        if values == self._shown:
            return None
        self._shown = values
        return self._model.model_construct(_fields_set=set(values), **values)

    def finish(self, *, empty: str = "") -> ModelT:
        """The validated object for everything fed (``empty`` stands for no text at all).

        Raises ``pydantic.ValidationError`` for an unfinished or invalid object and
        ``ValueError`` for text after the object's closing brace.
        """
        if self._members.trailing:
            raise ValueError("text follows the JSON object's closing brace")
        if self.final is not None:
            return self.final
        text = self._members.text()
        self.final = self._validate(text if text.strip() else empty)
        return self.final

    def _validate(self, text: str) -> ModelT:
        self.parses += 1
        self.parsed_characters += len(text)
        return self._model.model_validate_json(text)

    def _finish_member(self, text: str) -> None:
        self.parses += 1
        self.parsed_characters += len(text) + 2
        raw = from_json("{" + text + "}")
        self._streaming, self._parsed_length = None, 0
        for key, item in raw.items():
            field = self._fields.get(key)
            if field is None:
                continue
            value = _field_value(field, item, partial=False)
            if value is _missing:
                self._values.pop(field.name, None)
            else:
                self._values[field.name] = value

    def _parse_streaming(self, text: str) -> None:
        self._streaming = None
        if not text.strip():
            return
        self.parses += 1
        self.parsed_characters += len(text) + 1
        raw = from_json("{" + text, allow_partial="trailing-strings")
        for key, item in raw.items():
            field = self._fields.get(key)
            if field is None:
                continue
            value = _field_value(field, item, partial=True)
            if value is not _missing:
                self._streaming = (field.name, value)
