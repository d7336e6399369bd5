"""The text view of a diagram."""

from __future__ import annotations

from streamkit.testing.marbles._model import Diagram, Timeline


def _time(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def render_text(diagram: Diagram) -> str:
    """The diagram as text: one line per timeline, each event as ``time:label``.

    ``|`` is a completion, ``#`` an error (with its type), ``^`` a subscription and
    ``!`` a disposal; events in parentheses were scheduled but never sent.
    """
    width = max(len(t.name) for t in (*diagram.inputs, *diagram.outputs))
    rows = [f"{diagram.title}  (time in {diagram.unit})"]

    def row(timeline: Timeline) -> str:
        marks: list[tuple[float, int, str]] = []
        for span in timeline.subscriptions:
            marks.append((span.start, 0, f"{_time(span.start)}:^"))
            if span.disposed and span.end is not None:
                marks.append((span.end, 2, f"{_time(span.end)}:!"))
        for event in timeline.events:
            text = {"next": event.label, "completed": "|", "error": f"#{event.label}"}[event.kind]
            mark = f"{_time(event.time)}:{text}"
            marks.append((event.time, 1, mark if event.delivered else f"({mark})"))
        marks.sort(key=lambda m: (m[0], m[1]))
        return f"{timeline.name:<{width}}  " + " ".join(m[2] for m in marks)

    rows.extend(row(t) for t in diagram.inputs)
    rows.append(f"{'':<{width}}  [{diagram.title}]")
    rows.extend(row(t) for t in diagram.outputs)
    return "\n".join(rows)
