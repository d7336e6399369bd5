"""``partial_object``: structured output, validated as its JSON content streams in."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel
from reactivex import Observable, abc
from reactivex.disposable import SingleAssignmentDisposable

from streamkit._models import Chunk
from streamkit._partial_json import ModelT, PartialModelParser
from streamkit.ops._fusion import Sink, SubscribeUpstream, fusable

__all__ = ["partial_object"]


def partial_object(model: type[ModelT]) -> Callable[[Observable[Chunk]], Observable[ModelT]]:
    """Instances of ``model`` as the JSON object in the chunks' ``content`` grows.

    For structured output (OpenAI ``response_format`` JSON schema, JSON mode, or any
    provider asked for one JSON object): the content must be that object, leading
    whitespace allowed. Each emitted item is a partial instance (see below) whenever
    what is known changed; the closing brace makes the last item, the object validated
    by ``model.model_validate_json`` over the whole content. It completes when the
    stream completes; a stream that ends before the object closes fails with
    ``pydantic.ValidationError``, as does a closed object that does not fit the model.
    Content that is not a JSON object, or text after the closing brace, fails with
    ``ValueError``, and so does a refusal (OpenAI's ``refusal`` text instead of the
    object; the message quotes it). An upstream error passes through.

    A partial instance is built with ``model.model_construct``: fields seen so far hold
    values validated against their field's type (an unfinished string as far as it
    goes, an unfinished list with its finished items, a nested model still streaming as
    a partial instance itself); a number that may have more digits, or a string that is
    not valid yet (an unfinished enum value), is left out until complete; fields not
    seen keep their default, and required ones are not set (``model_fields_set`` names
    what is known; reading an unset field raises ``AttributeError``). Validators of
    the model itself run on the final object only.

    Cost: O(chunk) per chunk to scan it, plus jiter parses bounded to O(n) in total for
    an object of n characters: each finished top-level member is parsed once, the one
    still streaming is parsed again only when it grew by 1/32 of its size (so a huge
    member shows up in steps of 1/32 of its length). See ``bench/bench_partial.py``.

    Raises ``TypeError`` at once when ``model`` is not a pydantic model class.

    Example:
        ```python
        stream.pipe(ops.partial_object(Book)).subscribe(render)
        ```
    """
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"partial_object needs a pydantic model class, got {model!r}")

    def stage(
        observer: Sink[ModelT], subscribe_upstream: SubscribeUpstream[Chunk]
    ) -> abc.DisposableBase:
        parser = PartialModelParser(model)
        upstream = SingleAssignmentDisposable()
        refusal: list[str] = []
        stopped = False

        def fail(error: Exception) -> None:
            nonlocal stopped
            stopped = True
            upstream.dispose()
            observer.on_error(error)

        def on_next(chunk: Chunk) -> None:
            if chunk.refusal:
                refusal.append(chunk.refusal)
            if stopped or not chunk.content:
                return
            try:
                update = parser.feed(chunk.content)
            except Exception as error:
                fail(error)
                return
            if update is not None:
                observer.on_next(update)

        def on_error(error: Exception) -> None:
            if not stopped:
                observer.on_error(error)

        def on_completed() -> None:
            if stopped:
                return
            if refusal and parser.final is None:
                observer.on_error(ValueError(f"the model refused: {''.join(refusal)!r}"))
                return
            try:
                # The object was emitted at its closing brace; this checks that it
                # closed, and that nothing followed it.
                parser.finish()
            except Exception as error:
                observer.on_error(error)
                return
            observer.on_completed()

        upstream.disposable = subscribe_upstream(on_next, on_error, on_completed)
        return upstream

    return fusable(stage)
