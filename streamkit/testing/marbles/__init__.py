"""Marble diagrams of real pipeline runs: record what went in and out, and when.

A marble diagram shows each observable of a pipeline as a line in time: its items as
marbles, its completion as a bar, its error as a cross, and when it was subscribed and
disposed. Here the diagram is not drawn by hand: :func:`record` runs your pipeline on
reactivex's ``TestScheduler`` (virtual time) against test sources, or
:func:`record_live` runs it on a real stream (wall-clock time), and records every event
with its time. :func:`render_svg` draws the result; :func:`render_text` prints it::

    from streamkit import ops
    from streamkit.testing import marbles

    source = marbles.cold(["Welcome", " to", " M", "oria", "!"], name="chunks")
    diagram = marbles.record(lambda chunks: chunks.pipe(ops.take_until_match("Moria")), source)
    print(marbles.render_text(diagram))
    Path("take_until_match.svg").write_text(marbles.render_svg(diagram))

The sources of :func:`record` are cold (each subscription plays its events again,
relative to the time of subscribing: a request) or hot (events at absolute times), and
record when they were subscribed and disposed, so the diagram shows, say, that
``take_until_match`` disposed upstream at the match, and which of the source's events
were never sent. ``str`` items are labelled in quotes (so a leading space shows),
chunks by what they carry (:func:`describe`).

Only the standard library, pydantic and reactivex are used (no hypothesis, no provider
SDK): the SVG is written as text, and is byte-for-byte the same for the same run.
"""

from streamkit.testing.marbles._labels import MAX_LABEL as MAX_LABEL  # not in __all__, as before
from streamkit.testing.marbles._labels import describe
from streamkit.testing.marbles._model import (
    Diagram,
    EventKind,
    MarbleEvent,
    Subscription,
    Timeline,
)
from streamkit.testing.marbles._model import (
    Label as Label,
)
from streamkit.testing.marbles._model import (
    SubscriberTimes as SubscriberTimes,
)
from streamkit.testing.marbles._recording import record, record_live
from streamkit.testing.marbles._sources import Source, attempts, cold, hot
from streamkit.testing.marbles._svg import render_svg
from streamkit.testing.marbles._text import render_text

__all__ = [
    "Diagram",
    "EventKind",
    "MarbleEvent",
    "Source",
    "Subscription",
    "Timeline",
    "attempts",
    "cold",
    "describe",
    "hot",
    "record",
    "record_live",
    "render_svg",
    "render_text",
]
