"""``partial_tool_args``: a tool call's arguments, validated as they stream in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic

from pydantic import BaseModel
from reactivex import Observable, abc
from reactivex.disposable import SingleAssignmentDisposable

from streamkit._accumulator import ToolCallCompletion
from streamkit._models import Chunk, ToolCallDelta
from streamkit._partial_json import ModelT, PartialModelParser

__all__ = ["PartialToolArgs", "partial_tool_args"]


@dataclass(frozen=True)
class PartialToolArgs(Generic[ModelT]):
    """The arguments of one tool call as known so far, validated into the user's model.

    ``index`` tells parallel calls apart (the provider's tool-call index). ``args`` is a
    partial instance while ``complete`` is false (see ``ops.partial_tool_args``); the
    item with ``complete`` set is the last one for that call and holds
    ``model.model_validate_json(arguments)``, what ``ToolCall.parse(model)`` gives.
    """

    index: int
    id: str | None
    name: str
    args: ModelT
    complete: bool


class _Call(Generic[ModelT]):
    """One tool call being streamed: who it is and its arguments so far."""

    __slots__ = ("complete", "id", "index", "name", "parser")

    def __init__(self, index: int, model: type[ModelT]) -> None:
        self.index = index
        self.id: str | None = None
        self.name: str | None = None
        self.complete = False
        self.parser = PartialModelParser(model)

    def item(self, args: ModelT) -> PartialToolArgs[ModelT]:
        return PartialToolArgs(self.index, self.id, self.name or "", args, self.complete)


def partial_tool_args(
    model: type[ModelT], *, name: str | None = None
) -> Callable[[Observable[Chunk]], Observable[PartialToolArgs[ModelT]]]:
    """:class:`PartialToolArgs` for each tool call as its arguments stream in.

    ``name`` keeps only the tool calls with that name; ``None`` (the default) keeps
    every tool call, which suits a request with one tool. For each kept call (parallel
    calls apart, by index) an item is emitted whenever what is known of its arguments
    changed, with ``args`` a partial instance of ``model``, and one last item with
    ``complete=True`` when the call completes: when its provider marks it complete,
    another call starts, a finish reason arrives or the stream ends (the one rule,
    ``streamkit._accumulator.ToolCallCompletion``, that the reducer follows too).
    Calls with no arguments at all are validated as ``{}``.

    A partial instance is built with ``model.model_construct``: fields seen so far hold
    values validated against their field's type (an unfinished string as far as it
    goes, an unfinished list with its finished items, a nested model as a partial
    instance); a value that cannot be valid yet (a number that may go on) is left out;
    required fields not seen are not set (``model_fields_set`` names what is known).
    The model's own validators run on the complete arguments only.

    Arguments that do not fit the model fail the observable with
    ``pydantic.ValidationError`` at their closing brace (arguments that never close:
    when the call completes), text that is not a JSON object with ``ValueError`` as
    soon as it shows; the items before are delivered, then upstream is disposed. An
    upstream error passes through.

    Cost: O(fragment) per fragment plus jiter parses bounded to O(n) per call of n
    characters (see ``ops.partial_object``).

    Raises ``TypeError`` at once when ``model`` is not a pydantic model class.

    Example:
        ```python
        stream.pipe(ops.partial_tool_args(GetWeather)).subscribe(show)
        ```
    """
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"partial_tool_args needs a pydantic model class, got {model!r}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str or None, got {name!r}")

    def partial_tool_args_(
        source: Observable[Chunk],
    ) -> Observable[PartialToolArgs[ModelT]]:
        def subscribe(
            observer: abc.ObserverBase[PartialToolArgs[ModelT]],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            calls: dict[int, _Call[ModelT]] = {}
            completion = ToolCallCompletion()
            upstream = SingleAssignmentDisposable()
            stopped = False

            def kept(call: _Call[ModelT]) -> bool:
                return name is None or call.name == name

            def complete(indices: list[int], items: list[PartialToolArgs[ModelT]]) -> None:
                for index in indices:
                    call = calls[index]
                    call.complete = True
                    if kept(call):
                        items.append(call.item(call.parser.finish(empty="{}")))

            def add(delta: ToolCallDelta, items: list[PartialToolArgs[ModelT]]) -> None:
                complete(completion.before(delta), items)
                call = calls.get(delta.index)
                if call is None:
                    call = calls[delta.index] = _Call(delta.index, model)
                call.id = delta.id or call.id
                call.name = delta.name or call.name
                # A call whose name is not known yet is read too, in case it is kept.
                if not call.complete and (call.name is None or kept(call)):
                    update = call.parser.feed(delta.arguments)
                    # A fragment that also completes its call (whole calls, as Gemini
                    # sends them) shows only as the complete item.
                    if update is not None and kept(call) and not delta.complete:
                        items.append(call.item(update))
                complete(completion.after(delta), items)

            def complete_all(items: list[PartialToolArgs[ModelT]]) -> None:
                complete(completion.finish(), items)

            def settle(step: Callable[[list[PartialToolArgs[ModelT]]], None], end: bool) -> None:
                """Run ``step``; deliver the items it made, then its failure (upstream
                disposed first) or, at the end of the stream, the completion."""
                nonlocal stopped
                items: list[PartialToolArgs[ModelT]] = []
                failure: Exception | None = None
                try:
                    step(items)
                except Exception as error:
                    failure = error
                    stopped = True
                    upstream.dispose()
                for item in items:
                    observer.on_next(item)
                if failure is not None:
                    observer.on_error(failure)
                elif end:
                    observer.on_completed()

            def on_next(chunk: Chunk) -> None:
                def step(items: list[PartialToolArgs[ModelT]]) -> None:
                    for delta in chunk.tool_calls:
                        add(delta, items)
                    if chunk.finish_reasons:
                        complete_all(items)

                if not stopped:
                    settle(step, end=False)

            def on_error(error: Exception) -> None:
                if not stopped:
                    observer.on_error(error)

            def on_completed() -> None:
                if not stopped:
                    settle(complete_all, end=True)

            upstream.disposable = source.subscribe(
                on_next, on_error, on_completed, scheduler=scheduler
            )
            return upstream

        return Observable(subscribe)

    return partial_tool_args_
