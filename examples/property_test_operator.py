"""Property-test your own operator with ``streamkit.testing.strategies`` and hypothesis.

What it shows:

1. a user-written operator, ``words()``: whole words from a chunk stream, however the
   provider cut the text into chunks;
2. the property it must hold, checked by hypothesis on generated chunk streams
   (``strategies.chunk_streams()``: text cut at arbitrary boundaries, empty pieces, one
   character per chunk, unicode, tool calls and usage chunks mixed in): the words
   emitted are ``text.split()``;
3. the same property catching a naive version that splits each chunk on its own;
4. the operator on a real stream, replayed offline by ReplayServer to the ``openai`` client.

    python examples/property_test_operator.py

In your own test suite, name such a ``@given`` function ``test_...`` and pytest runs it.
"""

from __future__ import annotations

from collections.abc import Callable

import reactivex
import reactivex.operators as rx
from hypothesis import given, settings
from reactivex import Observable, abc

import streamkit as sk
from streamkit.testing import ReplayServer
from streamkit.testing import strategies as sks

Operator = Callable[[Observable[sk.Chunk]], Observable[str]]


def words() -> Operator:
    """Emit each whole word of the stream's text as soon as it is complete."""

    def words_(source: Observable[sk.Chunk]) -> Observable[str]:
        def subscribe(
            observer: abc.ObserverBase[str], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            pending = ""  # the start of a word that may continue in the next chunk

            def on_next(chunk: sk.Chunk) -> None:
                nonlocal pending
                pending += chunk.content
                cut = max((i for i, ch in enumerate(pending) if ch.isspace()), default=-1)
                for word in pending[: cut + 1].split():
                    observer.on_next(word)
                pending = pending[cut + 1 :]

            def on_completed() -> None:
                if pending:
                    observer.on_next(pending)
                observer.on_completed()

            return source.subscribe(on_next, observer.on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return words_


def naive_words() -> Operator:
    """Splits each chunk on its own: a word cut between two chunks comes out as two."""
    return rx.flat_map(lambda chunk: reactivex.from_iterable(chunk.content.split()))


def emitted(operator: Operator, chunks: list[sk.Chunk]) -> list[str]:
    result: list[str] = reactivex.from_iterable(chunks).pipe(operator, rx.to_list()).run()
    return result


checked = 0


@settings(max_examples=100, database=None)
@given(sks.chunk_streams())
def check_words_do_not_depend_on_where_the_text_was_cut(stream: sks.ChunkStream) -> None:
    global checked
    checked += 1
    assert emitted(words(), stream.chunks) == stream.text.split()


@settings(max_examples=100, database=None)
@given(sks.chunk_streams())
def check_naive_words_too(stream: sks.ChunkStream) -> None:
    assert emitted(naive_words(), stream.chunks) == stream.text.split()


def main() -> None:
    check_words_do_not_depend_on_where_the_text_was_cut()  # runs the property
    print(f"words(): the property held on {checked} generated chunk streams")

    try:
        check_naive_words_too()
    except AssertionError:
        print("naive_words(): hypothesis found a chunk stream that breaks it (as it should)")
    else:
        raise SystemExit("the property should have caught naive_words()")

    with ReplayServer("openai/chat-text-after-tool-results") as server:
        stream = sk.stream("openai", "gpt-4o", "Which secret?", client=server.client("openai"))
        print("words of a replayed stream:", stream.pipe(words(), rx.to_list()).run())


if __name__ == "__main__":
    main()
