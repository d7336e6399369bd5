"""``take_until_match``: stop the stream (and the request) once the text matches."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol, TypeAlias, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import SingleAssignmentDisposable

from streamkit._accumulator import ResponseSnapshot
from streamkit._lifecycle import disposing
from streamkit._models import Chunk
from streamkit.ops._fusion import Sink, SubscribeUpstream, fusable

__all__ = ["TextPattern", "take_until_match"]

TextPattern: TypeAlias = str | re.Pattern[str] | Callable[[str], bool]
"""What ``take_until_match`` accepts: a regular expression (source or compiled), or a
predicate on the text so far."""

ItemT = TypeVar("ItemT", bound=Chunk | str | ResponseSnapshot)

# Characters with a meaning in a regular expression outside a character class. A
# pattern without them (or with them backslash-escaped, as ``re.escape`` writes them)
# is a literal: it matches exactly its own characters.
_REGEX_SYNTAX = frozenset(".^$*+?{}[]|()")


def take_until_match(
    pattern: TextPattern,
    *,
    inclusive: bool = True,
    max_match_length: int | None = None,
    literal: bool = False,
) -> Callable[[Observable[ItemT]], Observable[ItemT]]:
    """Pass chunks on until the text so far matches ``pattern``, then complete and
    dispose upstream, which closes the HTTP response so the provider stops generating.

    This is the early-termination search: "stop as soon as the model has named a book"
    (``take_until_match(r"“[^”]+”")``), "stop at the first complete JSON object".

    ``pattern`` is a regular expression (a ``str`` is a **regular expression** by
    default, or a compiled ``re.Pattern``, searched anywhere in the text so far; pass
    ``literal=True`` to search a ``str`` as plain text, ``"?"`` or ``"(1)"`` included),
    or a predicate ``Callable[[str], bool]``
    called with the text so far. The text is the concatenation of the chunks'
    ``content``, so a match split across chunk boundaries is found. The test runs after
    the first chunk and after every chunk that adds text (a chunk without text cannot
    change the outcome). Anchors and ``\\b`` are read against the text *so far*: ``$``
    matches at the end of what has arrived, so ``"done$"`` can stop on a chunk ending
    in "done" that the next chunk would have continued (a pattern whose matches can
    vanish as text grows depends on where the chunks split). The chunk that completes
    the match is emitted when
    ``inclusive`` (the default) and dropped otherwise; when nothing matches, every
    chunk is passed on and the stream completes as upstream does.

    What each test costs, for a text of n characters so far and a new piece of k:

    - a literal pattern (no regex syntax, or escaped as ``re.escape`` does; flags
      other than ``re.VERBOSE`` allowed): a match that was not there before must
      start within the last ``len(pattern) - 1`` old characters, so only those plus
      the new piece are searched: O(len(pattern) + k), linear over the stream
      (``max_match_length`` is not needed, and not used, for a literal);
    - another regex with ``max_match_length=m``, your promise that a match, together
      with any lookbehind, lookahead, ``\\b`` or anchor it depends on, spans at most
      m characters: the last m - 1 old characters plus the new piece are searched
      (with m more characters of context behind them): O(m + k). A match longer than
      m can be missed;
    - another regex without ``max_match_length``: a match can start anywhere
      (``"a.*b"``), so the whole text is searched again: O(n) per chunk (plus what
      the regex itself costs), O(n²) over a long stream;
    - a predicate: called with the text so far, kept as one string that grows by the
      new piece (earlier pieces are not joined again), which is O(n) per call in the
      worst case, plus whatever the predicate does with it.

    Items are chunks, ``str`` deltas (after ``ops.text()``) or the snapshots of
    ``ops.accumulate()`` (``pipe(ops.accumulate(), ops.take_until_match(p))``): of a
    snapshot only the text added since the previous one is read, so the cost is the
    same as on chunks.

    Raises ``ValueError`` for a regular expression that does not compile or a
    ``max_match_length`` below 1 (or given with a predicate), ``TypeError`` for a
    pattern of another type (bytes included): at once, before any request.

    Example:
        ```python
        stream.pipe(ops.take_until_match(r"Moria"), ops.text())
        ```
    """
    if literal:
        if not isinstance(pattern, str):
            raise TypeError(f"literal=True takes a str pattern, not {type(pattern).__name__}")
        pattern = re.escape(pattern)
    new_matcher = _matcher_factory(pattern, max_match_length)

    def stage(
        observer: Sink[ItemT], subscribe_upstream: SubscribeUpstream[ItemT]
    ) -> abc.DisposableBase:
        matcher = new_matcher()
        delta = _DeltaReader()
        upstream = SingleAssignmentDisposable()
        tested = False
        stopped = False

        def stop() -> None:
            nonlocal stopped
            stopped = True
            # Dispose before telling downstream: the HTTP response closes now, not
            # after whatever downstream does with the last chunk.
            with disposing("take_until_match"):
                upstream.dispose()

        def on_next(item: ItemT) -> None:
            nonlocal tested
            if stopped:
                return
            try:
                piece = delta.read(item)
                matched = False
                if piece or not tested:
                    tested = True
                    matched = matcher.feed(piece)
            except Exception as error:
                stop()
                observer.on_error(error)
                return
            if not matched:
                observer.on_next(item)
                return
            stop()
            if inclusive:
                observer.on_next(item)
            observer.on_completed()

        def on_error(error: Exception) -> None:
            if not stopped:
                observer.on_error(error)

        def on_completed() -> None:
            if not stopped:
                observer.on_completed()

        upstream.disposable = subscribe_upstream(on_next, on_error, on_completed)
        return upstream

    return fusable(stage)


class _DeltaReader:
    """The text each item adds: a chunk's content, a ``str`` delta, or what a snapshot
    adds to the previous one."""

    def __init__(self) -> None:
        self._previous: ResponseSnapshot | None = None

    def read(self, item: Chunk | str | ResponseSnapshot) -> str:
        if isinstance(item, str):
            return item
        if isinstance(item, Chunk):
            return item.content
        if isinstance(item, ResponseSnapshot):
            piece = item.content_since(self._previous)
            self._previous = item
            return piece
        raise TypeError(
            "take_until_match reads chunks, str deltas or accumulate() snapshots, "
            f"not {type(item).__name__}"
        )


class _Matcher(Protocol):
    def feed(self, piece: str) -> bool:
        """Append ``piece`` to the text; whether the text so far matches."""
        ...


class _WindowSearch:
    """Searches only where a new match can be: the last ``lookback`` old characters and
    the new piece; ``context`` more characters are kept for lookbehind and ``\\b``."""

    def __init__(self, pattern: re.Pattern[str], lookback: int, context: int) -> None:
        self._pattern = pattern
        self._lookback = lookback
        self._keep = lookback + context
        self._tail = ""

    def feed(self, piece: str) -> bool:
        buffer = self._tail + piece
        start = max(0, len(self._tail) - self._lookback)
        if self._pattern.search(buffer, start) is not None:
            return True
        self._tail = buffer[-self._keep :] if self._keep else ""
        return False


class _FullSearch:
    """Searches the whole text so far: for a regex whose matches have no known bound."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self._pattern = pattern
        self._text = ""

    def feed(self, piece: str) -> bool:
        self._text += piece
        return self._pattern.search(self._text) is not None


class _PredicateTest:
    """Calls the user's predicate with the text so far."""

    def __init__(self, predicate: Callable[[str], bool]) -> None:
        self._predicate = predicate
        self._text = ""

    def feed(self, piece: str) -> bool:
        self._text += piece
        return bool(self._predicate(self._text))


def _matcher_factory(pattern: TextPattern, max_match_length: int | None) -> Callable[[], _Matcher]:
    """Validate the arguments now and return how to make one matcher per subscription."""
    if max_match_length is not None:
        if isinstance(max_match_length, bool) or not isinstance(max_match_length, int):
            raise TypeError(f"max_match_length must be an int, not {max_match_length!r}")
        if max_match_length < 1:
            raise ValueError(f"max_match_length must be >= 1, got {max_match_length}")
    if isinstance(pattern, str):
        try:
            compiled = re.compile(pattern)
        except re.error as error:
            raise ValueError(f"invalid regular expression {pattern!r}: {error}") from error
    elif isinstance(pattern, re.Pattern):
        if not isinstance(pattern.pattern, str):
            raise TypeError("take_until_match searches text: compile the pattern from a str")
        compiled = pattern
    elif callable(pattern):
        if max_match_length is not None:
            raise ValueError(
                "max_match_length bounds a regular expression's search; "
                "a predicate always sees the whole text"
            )
        predicate = pattern
        return lambda: _PredicateTest(predicate)
    else:
        raise TypeError(
            "pattern must be a regular expression (str or re.Pattern) or a predicate "
            f"Callable[[str], bool], not {type(pattern).__name__}"
        )

    literal_length = _literal_length(compiled)
    if literal_length is not None:
        lookback = max(literal_length - 1, 0)
        return lambda: _WindowSearch(compiled, lookback, context=0)
    if max_match_length is not None:
        bound = max_match_length
        return lambda: _WindowSearch(compiled, bound - 1, context=bound)
    return lambda: _FullSearch(compiled)


def _literal_length(pattern: re.Pattern[str]) -> int | None:
    """How many characters the pattern matches if it is a plain literal, else ``None``.

    Conservative: anything that might be regex syntax makes it "not a literal", which
    only costs speed (a wider search), never a missed match.
    """
    if pattern.flags & re.VERBOSE:
        return None
    source = pattern.pattern
    length = 0
    position = 0
    while position < len(source):
        character = source[position]
        if character == "\\":
            escaped = source[position + 1 : position + 2]
            # \. or \  matches that character; \d, \b, \1, \n ... are regex syntax.
            if not escaped or (escaped.isascii() and escaped.isalnum()):
                return None
            position += 2
        elif character in _REGEX_SYNTAX:
            return None
        else:
            position += 1
        length += 1
    return length
