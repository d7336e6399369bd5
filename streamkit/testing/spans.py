"""Finished OpenTelemetry spans as a tree: a text outline for tests and docs, an SVG
picture for the docs.

Works on what the SDK's ``InMemorySpanExporter`` returns (``ReadableSpan``) without
importing OpenTelemetry: any object with ``name``, ``context.span_id``, ``parent``,
``start_time``, ``end_time``, ``attributes`` and ``events`` will do::

    from streamkit.testing.spans import span_tree_text

    print(span_tree_text(exporter.get_finished_spans()))

Both read streamkit's own attributes (``streamkit.end.outcome``, ``streamkit.attempt``,
``streamkit.chunks``...) to say how each span ended.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from streamkit.testing.marbles._svg import _CHAR, _INK, _MUTED, _PAD, _RED, _num, _Svg

__all__ = ["SpanLike", "render_span_svg", "span_summary", "span_tree_text"]


class SpanLike(Protocol):
    """The part of an OpenTelemetry ``ReadableSpan`` read here."""

    @property
    def name(self) -> str:
        """The span's name."""

    @property
    def context(self) -> Any:
        """Its span context (``span_id``)."""

    @property
    def parent(self) -> Any:
        """Its parent's span context, or ``None``."""

    @property
    def start_time(self) -> int | None:
        """Start, in ns."""

    @property
    def end_time(self) -> int | None:
        """End, in ns."""

    @property
    def attributes(self) -> Mapping[str, Any] | None:
        """Its attributes."""

    @property
    def events(self) -> Sequence[Any]:
        """Its events (``name``, ``timestamp``, ``attributes``)."""


def _short_type(error_type: str) -> str:
    return error_type.rsplit(".", 1)[-1]


def span_summary(span: SpanLike) -> str:
    """How a span ended, in a few words: ``completed``, ``error IncompleteStreamError``,
    ``disposed by take_until_match``, ``timeout (first_chunk)``, with its attempt and
    how it fared (``won``, ``lost (attempt 2 won)``...), its chunks and (for an
    operator's span) its attempts; empty for a span streamkit did not make."""
    attributes = dict(span.attributes or {})
    outcome = attributes.get("streamkit.end.outcome")
    if outcome is None:
        return ""
    if outcome == "disposed":
        words = f"disposed by {attributes.get('streamkit.end.disposed_by', 'unknown')}"
    elif outcome == "timeout":
        words = f"timeout ({attributes.get('streamkit.end.timeout', '?')})"
    elif outcome == "error":
        words = f"error {_short_type(str(attributes.get('error.type', '?')))}"
    else:
        words = str(outcome)
    parts = []
    if "streamkit.attempt" in attributes:
        parts.append(f"attempt {attributes['streamkit.attempt']}")
    result = attributes.get("streamkit.attempt.result")
    if result is not None:
        reason = attributes.get("streamkit.attempt.reason")
        parts.append(f"{result} ({reason})" if reason and result != "failed" else str(result))
    parts.append(words)
    if "streamkit.attempts" in attributes:
        parts.append(f"{attributes['streamkit.attempts']} attempts")
        if "streamkit.winner" in attributes:
            parts.append(f"won by attempt {attributes['streamkit.winner']}")
    elif "streamkit.chunks" in attributes:
        parts.append(f"{attributes['streamkit.chunks']} chunks")
    return ", ".join(parts)


def _tree(spans: Iterable[SpanLike]) -> list[tuple[int, SpanLike]]:
    """``(depth, span)`` in tree order, children by start time."""
    spans = sorted(spans, key=lambda s: s.start_time or 0)
    ids = {s.context.span_id for s in spans}
    children: dict[int | None, list[SpanLike]] = {}
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        children.setdefault(parent if parent in ids else None, []).append(span)
    ordered: list[tuple[int, SpanLike]] = []

    def walk(parent: int | None, depth: int) -> None:
        for span in children.get(parent, []):
            ordered.append((depth, span))
            walk(span.context.span_id, depth + 1)

    walk(None, 0)
    return ordered


def span_tree_text(spans: Iterable[SpanLike]) -> str:
    """The spans as an indented outline, one line each: name, then how it ended."""
    lines = []
    for depth, span in _tree(spans):
        summary = span_summary(span)
        lines.append("    " * depth + span.name + (f"  ({summary})" if summary else ""))
    return "\n".join(lines)


_BLUE, _BLUE_FILL = "#2563eb", "#dbeafe"
_GREY_FILL = "#f3f4f6"
_ROW = 34.0
_STEP = 44.0
_INDENT = 18.0


def _row_name(span: SpanLike) -> str:
    operator = dict(span.attributes or {}).get("streamkit.operator")
    return f"{span.name} [{operator}]" if operator else span.name


def render_span_svg(spans: Iterable[SpanLike], *, title: str = "spans") -> str:
    """The spans as a waterfall: one row per span (indented under its parent), a bar from
    its start to its end, a dot for the first chunk, a triangle for a retry, a red cross
    for an error end, a red bar for a dispose; how it ended at the right.

    Columns follow the order of what happened (every start, event and end is one
    column), not the clock: the same run always gives the same picture.
    """
    rows = _tree(spans)
    moments: set[int] = set()
    for _, span in rows:
        moments.update(t for t in (span.start_time, span.end_time) if t is not None)
        moments.update(e.timestamp for e in span.events if e.name != "streamkit.end")
    column = {t: i for i, t in enumerate(sorted(moments))}
    names = [_row_name(span) for _, span in rows]
    origin = (
        _PAD
        + max(depth * _INDENT + len(n) * _CHAR for (depth, _), n in zip(rows, names, strict=True))
        + 2 * _PAD
    )
    plot_end = origin + max(len(column) - 1, 1) * _STEP
    summaries = [span_summary(span) for _, span in rows]
    width = plot_end + 2 * _PAD + max((len(s) for s in summaries), default=0) * 6.6 + _PAD
    height = _PAD * 2 + 28 + len(rows) * _ROW + 18

    def x_of(t: int | None) -> float:
        return origin + column[t] * _STEP if t is not None else plot_end

    svg = _Svg()
    svg.text(_PAD, _PAD + 12, title, font_size="13", font_weight="bold", fill=_INK)
    for index, ((depth, span), name, summary) in enumerate(
        zip(rows, names, summaries, strict=True)
    ):
        top = _PAD + 28 + index * _ROW
        middle = top + _ROW / 2
        attributes = dict(span.attributes or {})
        outcome = attributes.get("streamkit.end.outcome")
        mine = outcome is not None
        svg.text(_PAD + depth * _INDENT, middle + 4, name, font_size="12", fill=_INK)
        x1, x2 = x_of(span.start_time), x_of(span.end_time)
        svg.add(
            f'<rect x="{_num(x1)}" y="{_num(middle - 8)}" width="{_num(max(x2 - x1, 3))}" '
            f'height="16" rx="3" fill="{_BLUE_FILL if mine else _GREY_FILL}" '
            f'stroke="{_BLUE if mine else _MUTED}" stroke-width="1.5">'
            f"<title>{span.name}</title></rect>"
        )
        for event in span.events:
            if event.timestamp not in column:
                continue  # the end event: the bar's end shows it
            ex = x_of(event.timestamp)
            if event.name == "streamkit.first_chunk":
                svg.add(
                    f'<circle cx="{_num(ex)}" cy="{_num(middle)}" r="4" fill="{_BLUE}">'
                    "<title>first chunk</title></circle>"
                )
            elif event.name == "streamkit.retry":
                svg.add(
                    f'<path d="M{_num(ex)} {_num(middle - 6)} l6 12 h-12 z" fill="{_INK}">'
                    "<title>retry</title></path>"
                )
        if outcome == "error" or outcome == "timeout":
            svg.add(
                f'<path d="M{_num(x2 - 6)} {_num(middle - 6)} l12 12 m0 -12 l-12 12" '
                f'stroke="{_RED}" stroke-width="2.5"><title>{summary}</title></path>'
            )
        elif outcome == "disposed":
            svg.line(x2, middle - 10, x2, middle + 10, stroke=_RED, stroke_width="3")
        elif outcome == "completed":
            svg.line(x2, middle - 10, x2, middle + 10, stroke=_INK, stroke_width="2")
        color = _RED if outcome in ("error", "timeout") else _INK
        svg.text(plot_end + 2 * _PAD, middle + 4, summary, font_size="11", fill=color)
    legend_y = height - _PAD + 2
    svg.text(
        _PAD,
        legend_y,
        "● first chunk   ▲ retry   ✕ error   ▌ disposed   columns: order of events",
        font_size="10",
        fill=_MUTED,
    )
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_num(width)}" height="{_num(height)}" '
        f'viewBox="0 0 {_num(width)} {_num(height)}" font-family="ui-monospace, SFMono-Regular, '
        'Menlo, Consolas, \'DejaVu Sans Mono\', monospace" role="img" '
        f'aria-label="{title}">\n<title>{title}</title>\n'
        f'<rect width="{_num(width)}" height="{_num(height)}" rx="6" fill="#ffffff"/>\n'
    )
    return head + "\n".join(svg.parts) + "\n</svg>\n"
