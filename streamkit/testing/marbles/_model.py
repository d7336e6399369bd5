"""The model of a marble diagram: events, subscriptions, lines and the diagram."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

EventKind: TypeAlias = Literal["next", "error", "completed"]
"""What a marble is: an item, an error, or the completion."""

Label: TypeAlias = Callable[[Any], str]
SubscriberTimes: TypeAlias = "float | tuple[float, float | None]"
"""When a subscriber subscribes, or ``(subscribe, dispose)`` (``None``: never disposed)."""


@dataclass(frozen=True)
class MarbleEvent:
    """One event on a line: its time, its kind and its label.

    ``delivered`` is ``False`` for an event a test source had scheduled but never
    sent, because its subscriber had disposed first (drawn hollow: what the cut
    spared).
    """

    time: float
    kind: EventKind
    label: str = ""
    delivered: bool = True


@dataclass(frozen=True)
class Subscription:
    """One subscription to a line: from ``start`` to ``end`` (``None``: still
    subscribed when the recording stopped). ``disposed`` is ``True`` when the subscriber
    left before the line's own completion or error: upstream was cut."""

    start: float
    end: float | None = None
    disposed: bool = False


@dataclass(frozen=True)
class Timeline:
    """A line of the diagram: an input (a source, with its subscriptions) or an output
    (one subscriber of the pipeline, with its subscription)."""

    name: str
    events: tuple[MarbleEvent, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()

    @property
    def labels(self) -> list[str]:
        """The labels of the delivered items, in order (handy in assertions)."""
        return [e.label for e in self.events if e.kind == "next" and e.delivered]


@dataclass(frozen=True)
class Diagram:
    """A recorded run: the input lines, the operator's title, the output lines, and
    where the time axis ends. ``unit`` names the time unit (virtual or real seconds)."""

    title: str
    inputs: tuple[Timeline, ...]
    outputs: tuple[Timeline, ...]
    end: float
    unit: str = "virtual s"

    def line(self, name: str) -> Timeline:
        """The input or output line called ``name`` (``KeyError`` if there is none)."""
        for timeline in (*self.inputs, *self.outputs):
            if timeline.name == name:
                return timeline
        known = ", ".join(t.name for t in (*self.inputs, *self.outputs))
        raise KeyError(f"no line named {name!r} in this diagram; lines: {known}")
