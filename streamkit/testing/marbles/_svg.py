"""The SVG view of a diagram: laid out, then drawn line by line, the operator box, the
time axis and the legend."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from streamkit.testing.marbles._model import Diagram, MarbleEvent, Timeline
from streamkit.testing.marbles._text import _time

_FONT = "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace"
_CHAR = 7.2  # width of one character of the 12 px monospace labels
_PILL_HEIGHT = 22.0
_STACK_STEP = 26.0
_ROW = 50.0
_PAD = 16.0
_PLOT_WIDTH = 640.0
_MAX_PLOT_WIDTH = 2400.0

_INPUT_COLORS = ("#dbeafe", "#2563eb")
_OUTPUT_COLORS = ("#dcfce7", "#15803d")
_MUTED = "#9ca3af"
_RED = "#dc2626"
_INK = "#111827"


def _pill_width(label: str) -> float:
    return max(_PILL_HEIGHT, len(label) * _CHAR + 14)


def _num(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


@dataclass
class _Svg:
    parts: list[str] = field(default_factory=list)

    def add(self, element: str) -> None:
        self.parts.append(element)

    def text(self, x: float, y: float, content: str, **attrs: str) -> None:
        extra = "".join(f" {k.replace('_', '-')}={quoteattr(v)}" for k, v in attrs.items())
        self.add(f'<text x="{_num(x)}" y="{_num(y)}"{extra}>{escape(content)}</text>')

    def line(self, x1: float, y1: float, x2: float, y2: float, **attrs: str) -> None:
        extra = "".join(f" {k.replace('_', '-')}={quoteattr(v)}" for k, v in attrs.items())
        self.add(f'<line x1="{_num(x1)}" y1="{_num(y1)}" x2="{_num(x2)}" y2="{_num(y2)}"{extra}/>')


def _groups(events: Iterable[MarbleEvent], tolerance: float) -> list[list[MarbleEvent]]:
    """Events at the same time (within ``tolerance``: real clocks jitter), together: they
    are drawn stacked."""
    groups: list[list[MarbleEvent]] = []
    for event in events:
        if groups and event.time - groups[-1][0].time <= tolerance:
            groups[-1].append(event)
        else:
            groups.append([event])
    return groups


def _group_width(group: list[MarbleEvent]) -> float:
    widths = [_pill_width(e.label) for e in group if e.kind == "next"]
    return max(widths, default=0.0)


def _tolerance(diagram: Diagram) -> float:
    """Events closer than this are drawn as one stack: 1/400 of the time axis."""
    return diagram.end / 400


def _scale(diagram: Diagram) -> float:
    """Pixels per time unit: the plot is about _PLOT_WIDTH wide, wider (up to
    _MAX_PLOT_WIDTH) when marbles close in time would overlap."""
    span = diagram.end if diagram.end > 0 else 1.0
    scale = _PLOT_WIDTH / span
    for timeline in (*diagram.inputs, *diagram.outputs):
        groups = _groups(timeline.events, _tolerance(diagram))
        for before, after in itertools.pairwise(groups):
            gap = after[0].time - before[0].time
            need = _group_width(before) / 2 + _group_width(after) / 2 + 8
            if any(e.kind != "next" for e in before):
                need += 10
            if gap > 0:
                scale = max(scale, need / gap)
    return min(scale, _MAX_PLOT_WIDTH / span)


def _nice_step(span: float, ticks: int = 10) -> float:
    raw = span / ticks if span > 0 else 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 5.0, 10.0):
        if raw <= factor * power:
            return factor * power
    return 10.0 * power


def _row_height(timeline: Timeline, tolerance: float) -> float:
    deepest = max((len(g) for g in _groups(timeline.events, tolerance)), default=1)
    return _ROW + (deepest - 1) * _STACK_STEP


@dataclass(frozen=True)
class _Layout:
    """Where a diagram's pieces go: the time axis (``origin`` at time 0, ``scale``
    pixels per time unit, up to ``plot_end``), the names' column and the width."""

    scale: float
    tolerance: float
    origin: float
    plot_end: float
    width: float

    def x_of(self, t: float) -> float:
        return self.origin + t * self.scale


def _layout(diagram: Diagram) -> _Layout:
    """Room for the longest name on the left, for the first marble's half right of the
    origin, and for the last stack and its end marks right of the axis' end."""
    scale = _scale(diagram)
    tolerance = _tolerance(diagram)
    timelines = (*diagram.inputs, *diagram.outputs)
    left = max(72.0, max(len(t.name) for t in timelines) * _CHAR + 2 * _PAD)
    origin = left + _PAD
    widest_first = max(
        (_pill_width(t.events[0].label) / 2 for t in timelines if t.events),
        default=0.0,
    )
    origin = max(origin, left + widest_first + 4)
    last_overhang = max(
        (_group_width(_groups(t.events, tolerance)[-1]) / 2 + 26 for t in timelines if t.events),
        default=0.0,
    )
    plot_end = origin + diagram.end * scale + max(24.0, last_overhang)
    return _Layout(scale, tolerance, origin, plot_end, width=plot_end + _PAD + 8)


def _draw_line(svg: _Svg, name: str, base: float, layout: _Layout) -> None:
    """The line's name, the line and its arrow head."""
    svg.text(_PAD, base + 4, name, font_size="12", fill=_INK)
    svg.line(layout.origin, base, layout.plot_end, base, stroke=_INK, stroke_width="1.5")
    svg.add(f'<path d="M{_num(layout.plot_end)} {_num(base)} l-8 -4 v8 z" fill="{_INK}"/>')


def _draw_subscriptions(
    svg: _Svg, timeline: Timeline, base: float, color: str, layout: _Layout
) -> None:
    """A triangle under the line where each subscription started."""
    for span in timeline.subscriptions:
        sx = layout.x_of(span.start)
        svg.add(
            f'<path d="M{_num(sx)} {_num(base + 6)} l-5 9 h10 z" fill="{color}">'
            f"<title>subscribed at {_time(span.start)}</title></path>"
        )


def _draw_marbles(
    svg: _Svg, group: list[MarbleEvent], gx: float, base: float, colors: tuple[str, str]
) -> float:
    """The items of one group, stacked upwards from the line at ``gx``; returns the half
    width of the widest (0 when the group has no item)."""
    level = 0
    after_pill = 0.0
    for event in group:
        if event.kind != "next":
            continue
        cy = base - level * _STACK_STEP
        level += 1
        w = _pill_width(event.label)
        after_pill = max(after_pill, w / 2)
        fill, stroke = colors if event.delivered else ("#ffffff", _MUTED)
        dash = "" if event.delivered else ' stroke-dasharray="3 2"'
        tip = f"{event.label} at {_time(event.time)}"
        if not event.delivered:
            tip += " (never sent)"
        svg.add(
            f'<g><title>{escape(tip)}</title><rect x="{_num(gx - w / 2)}" '
            f'y="{_num(cy - _PILL_HEIGHT / 2)}" width="{_num(w)}" '
            f'height="{_num(_PILL_HEIGHT)}" rx="11" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="1.5"{dash}/>'
        )
        svg.text(
            gx,
            cy + 4,
            event.label,
            font_size="12",
            text_anchor="middle",
            fill=_INK if event.delivered else _MUTED,
        )
        svg.add("</g>")
    return after_pill


def _draw_ends(svg: _Svg, group: list[MarbleEvent], ex: float, base: float) -> None:
    """The completions (a bar) and errors (a red cross, its label below) of one group,
    left to right from ``ex``."""
    for event in group:
        color = _INK if event.delivered else _MUTED
        if event.kind == "completed":
            svg.line(ex, base - 12, ex, base + 12, stroke=color, stroke_width="3")
            ex += 8
        elif event.kind == "error":
            cross = _RED if event.delivered else _MUTED
            svg.add(
                f'<path d="M{_num(ex - 7)} {_num(base - 7)} l14 14 m0 -14 l-14 14" '
                f'stroke="{cross}" stroke-width="3"><title>{escape(event.label)} at '
                f"{_time(event.time)}</title></path>"
            )
            svg.text(ex, base + 24, event.label, font_size="11", text_anchor="middle", fill=cross)
            ex += 16


def _draw_disposals(
    svg: _Svg,
    timeline: Timeline,
    base: float,
    pill_halves: dict[float, float],
    layout: _Layout,
) -> None:
    """A red dashed bar where a subscriber left before the line ended; drawn last,
    beside a marble of the same time rather than under it."""
    for span in timeline.subscriptions:
        if span.disposed and span.end is not None:
            half = max(
                (h for t, h in pill_halves.items() if abs(t - span.end) <= layout.tolerance),
                default=0.0,
            )
            dx = layout.x_of(span.end) + (half + 4 if half else 0.0)
            svg.add(
                f'<line x1="{_num(dx)}" y1="{_num(base - 15)}" x2="{_num(dx)}" '
                f'y2="{_num(base + 15)}" stroke="{_RED}" stroke-width="2.5" '
                f'stroke-dasharray="4 2"><title>disposed at {_time(span.end)}</title></line>'
            )


def _draw_timeline(
    svg: _Svg, timeline: Timeline, colors: tuple[str, str], top: float, layout: _Layout
) -> float:
    """One line of the diagram, its top at ``top``; returns where the next one starts."""
    height = _row_height(timeline, layout.tolerance)
    base = top + height - 24  # the line; stacked marbles rise above it
    _draw_line(svg, timeline.name, base, layout)
    _draw_subscriptions(svg, timeline, base, colors[1], layout)
    pill_halves: dict[float, float] = {}
    for group in _groups(timeline.events, layout.tolerance):
        gx = layout.x_of(group[0].time)
        after_pill = _draw_marbles(svg, group, gx, base, colors)
        pill_halves[group[0].time] = after_pill
        _draw_ends(svg, group, gx + (after_pill + 6 if after_pill else 0.0), base)
    _draw_disposals(svg, timeline, base, pill_halves, layout)
    return top + height


def _draw_operator(svg: _Svg, title: str, top: float, layout: _Layout) -> float:
    """The operator's box between the inputs and the outputs; returns its bottom."""
    box_height = 34.0
    svg.add(
        f'<rect x="{_num(layout.origin - 8)}" y="{_num(top)}" '
        f'width="{_num(layout.plot_end - layout.origin + 8)}" '
        f'height="{_num(box_height)}" rx="4" fill="#f3f4f6" stroke="{_INK}"/>'
    )
    svg.text(
        (layout.origin + layout.plot_end) / 2,
        top + box_height / 2 + 5,
        title,
        font_size="13",
        text_anchor="middle",
        fill=_INK,
    )
    return top + box_height


def _draw_axis(svg: _Svg, diagram: Diagram, y: float, layout: _Layout) -> None:
    """The time axis at ``y``, with round ticks."""
    svg.line(layout.origin, y, layout.plot_end, y, stroke=_MUTED)
    step = _nice_step(diagram.end)
    tick = 0.0
    while tick <= diagram.end + 1e-9:
        tx = layout.x_of(tick)
        svg.line(tx, y, tx, y + 5, stroke=_MUTED)
        svg.text(
            tx, y + 17, _time(round(tick, 6)), font_size="10", text_anchor="middle", fill="#6b7280"
        )
        tick += step
    svg.text(_PAD, y + 17, f"t ({diagram.unit})", font_size="10", fill="#6b7280")


def _draw_legend(svg: _Svg, legend_y: float) -> None:
    """What the marks mean, in one row at ``legend_y``."""
    lx = _PAD
    svg.add(
        f'<path d="M{_num(lx + 5)} {_num(legend_y - 9)} l-5 9 h10 z" fill="{_INPUT_COLORS[1]}"/>'
    )
    svg.text(lx + 14, legend_y, "subscribe", font_size="10", fill="#374151")
    lx += 82
    svg.line(
        lx, legend_y - 11, lx, legend_y + 2, stroke=_RED, stroke_width="2", stroke_dasharray="3 2"
    )
    svg.text(lx + 7, legend_y, "dispose", font_size="10", fill="#374151")
    lx += 66
    svg.line(lx, legend_y - 11, lx, legend_y + 2, stroke=_INK, stroke_width="3")
    svg.text(lx + 7, legend_y, "complete", font_size="10", fill="#374151")
    lx += 72
    svg.add(
        f'<path d="M{_num(lx - 4)} {_num(legend_y - 9)} l8 8 m0 -8 l-8 8" stroke="{_RED}" '
        'stroke-width="2.5"/>'
    )
    svg.text(lx + 8, legend_y, "error", font_size="10", fill="#374151")
    lx += 52
    svg.add(
        f'<rect x="{_num(lx - 8)}" y="{_num(legend_y - 10)}" width="16" height="12" rx="6" '
        f'fill="#ffffff" stroke="{_MUTED}" stroke-dasharray="3 2"/>'
    )
    svg.text(lx + 12, legend_y, "scheduled, never sent", font_size="10", fill="#374151")


def _document(title: str, svg: _Svg, width: float, height: float) -> str:
    """The drawn parts as one SVG document, on a white background."""
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_num(width)}" height="{_num(height)}" '
        f'viewBox="0 0 {_num(width)} {_num(height)}" font-family={quoteattr(_FONT)} '
        f'role="img" aria-label={quoteattr("marble diagram: " + title)}>'
    )
    background = f'<rect width="{_num(width)}" height="{_num(height)}" rx="6" fill="#ffffff"/>'
    return (
        "\n".join([head, f"<title>{escape(title)}</title>", background, *svg.parts, "</svg>"])
        + "\n"
    )


def render_svg(diagram: Diagram) -> str:
    """Draw ``diagram`` as an SVG document (a string).

    Inputs above the operator box, outputs below, time running left to right with an
    axis at the bottom. Items are marbles with their labels (items at the same time
    stacked), ``|`` a completion, a red cross an error; a triangle under a line marks
    a subscription, a red dashed bar a disposal that cut the line short, and hollow
    marbles what a source had scheduled but never sent. Deterministic: the same
    diagram always gives the same text.
    """
    layout = _layout(diagram)
    svg = _Svg()
    y = _PAD
    for timeline in diagram.inputs:
        y = _draw_timeline(svg, timeline, _INPUT_COLORS, y, layout)
    y = _draw_operator(svg, diagram.title, y + 8, layout) + 4
    for timeline in diagram.outputs:
        y = _draw_timeline(svg, timeline, _OUTPUT_COLORS, y, layout)
    y += 14
    _draw_axis(svg, diagram, y, layout)
    legend_y = y + 36
    _draw_legend(svg, legend_y)
    return _document(diagram.title, svg, layout.width, legend_y + _PAD)
