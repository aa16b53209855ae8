"""Inline SVG charts with no scripts and no external references.

They must read in print and in grey scale: a missed target is a hatched bar, series differ by dash
and marker shape and are labelled at their ends, every target line carries its own label; colour only
repeats what the shapes say. All text is escaped here, whatever the caller passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

_FONT = 12


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _svg(uid: str, width: float, height: float, title: str, body: list[str]) -> str:
    defs = (
        f'<defs><pattern id="{uid}-miss" patternUnits="userSpaceOnUse" width="6" height="6" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#f4d3cd"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#a93226" stroke-width="2.6"/></pattern></defs>'
    )
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:g} {height:g}" '
        f'width="{width:g}" height="{height:g}" role="img" aria-labelledby="{uid}-title">'
        f'<title id="{uid}-title">{_e(title)}</title>{defs}{"".join(body)}</svg>'
    )


def _text(x: float, y: float, text: str, anchor: str = "start", size: int = _FONT, cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{klass}>{_e(text)}</text>'


def _text_width(text: str, size: float) -> float:
    """About how wide `text` is drawn: CJK characters are square, Latin ones about half as wide."""
    return sum(size if ord(ch) > 0x2E80 else size * 0.56 for ch in text)


@dataclass(frozen=True)
class Bar:
    """One bar: `shown` is its value as text; `ok` False hatches it; `limit` draws a tick on its row."""

    label: str
    value: float | None
    shown: str
    ok: bool | None = None
    limit: float | None = None
    light: bool = False  # context (e.g. active studios beside the compliant ones)


@dataclass(frozen=True)
class Rule:
    """A labelled target or limit line across a chart."""

    value: float
    label: str


def bars(
    items: Sequence[Bar],
    rules: Sequence[Rule],
    top: float,
    title: str,
    uid: str,
    width: int = 420,
    label_width: int = 96,
    row: int = 24,
    note: str = "",
) -> str:
    """Horizontal bars from 0 to `top`, with target lines labelled above the plot and a `note` below."""
    value_width = 84
    plot = width - label_width - value_width
    head = 15 * len(rules) + 6
    bottom = head + row * max(len(items), 1) + 4
    height = bottom + (18 if note else 4)
    top = top or 1.0

    def x(v: float) -> float:
        return label_width + plot * min(max(v, 0.0), top) / top

    body = [f'<line x1="{label_width}" x2="{label_width}" y1="{head - 4}" y2="{bottom}" stroke="#555"/>']
    for n, item in enumerate(items):
        y = head + n * row
        base = y + row / 2 + 4  # text baseline, centred on the bar
        body.append(_text(label_width - 6, base, item.label, "end"))
        if item.value is not None:
            w = max(x(item.value) - label_width, 0.0)
            fill = f"url(#{uid}-miss)" if item.ok is False else ("#9fb7d4" if item.light else "#2e5e8e")
            body.append(
                f'<rect x="{label_width}" y="{y + 3}" width="{w:.1f}" height="{row - 7}" fill="{fill}" '
                'stroke="#333" stroke-width="0.6"/>'
            )
        end = x(item.value) if item.value is not None else label_width
        if item.limit is not None:  # the value's label goes clear of the limit tick
            end = max(end, x(item.limit) + 2)
        body.append(_text(end + 4, base, item.shown, cls="c-value"))
        if item.limit is not None:
            lx = x(item.limit)
            body.append(
                f'<line x1="{lx:.1f}" x2="{lx:.1f}" y1="{y}" y2="{y + row - 2}" '
                'stroke="#000" stroke-width="2.5"/>'
            )
    for n, rule in enumerate(rules):
        rx = x(rule.value)
        ly = 12 + 15 * n
        anchor = "end" if rx > label_width + plot * 0.6 else "start"
        body.append(
            f'<line x1="{rx:.1f}" x2="{rx:.1f}" y1="{ly + 2}" y2="{bottom}" stroke="#000" '
            'stroke-width="1.4" stroke-dasharray="5 3"/>'
        )
        body.append(_text(rx + (-3 if anchor == "end" else 3), ly, rule.label, anchor, 11, "c-rule"))
    if note:
        body.append(_text(label_width, height - 4, note, size=10))
    return _svg(uid, width, height, title, body)


# --- line charts -----------------------------------------------------------------------------------

#: (stroke colour, dash pattern, marker shape) per series, in order: the first is the total
_STYLES = (
    ("#111111", "", "circle"),
    ("#1f5fa8", "7 4", "square"),
    ("#c0561b", "2 3", "triangle"),
    ("#1b7a5a", "11 3 2 3", "diamond"),
    ("#6a3d9a", "4 2", "circle-open"),
)


@dataclass(frozen=True)
class LineSeries:
    label: str
    points: tuple[float | None, ...]


def _marker(shape: str, x: float, y: float, colour: str) -> str:
    if shape == "square":
        return (
            f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" fill="#fff" '
            f'stroke="{colour}" stroke-width="1.6"/>'
        )
    if shape == "triangle":
        pts = f"{x:.1f},{y - 4.5:.1f} {x + 4.2:.1f},{y + 3:.1f} {x - 4.2:.1f},{y + 3:.1f}"
        return f'<polygon points="{pts}" fill="{colour}" stroke="{colour}"/>'
    if shape == "diamond":
        pts = f"{x:.1f},{y - 4.5:.1f} {x + 4.5:.1f},{y:.1f} {x:.1f},{y + 4.5:.1f} {x - 4.5:.1f},{y:.1f}"
        return f'<polygon points="{pts}" fill="#fff" stroke="{colour}" stroke-width="1.6"/>'
    fill = "#fff" if shape == "circle-open" else colour
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.4" fill="{fill}" stroke="{colour}" stroke-width="1.6"/>'


def nice_range(lo: float, hi: float, ticks: int = 5) -> tuple[float, float, float]:
    """(start, end, step) of round axis ticks covering lo..hi."""
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / ticks
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return math.floor(lo / step) * step, math.ceil(hi / step) * step, step


def _spread(ys: list[float], gap: float, lo: float, hi: float) -> list[float]:
    """Move label positions apart by at least `gap`, keeping their order, within lo..hi."""
    order = sorted(range(len(ys)), key=lambda i: ys[i])
    placed = [ys[i] for i in order]
    for i in range(1, len(placed)):
        placed[i] = max(placed[i], placed[i - 1] + gap)
    overflow = placed[-1] - hi if placed else 0
    if overflow > 0:
        placed = [max(p - overflow, lo) for p in placed]
        for i in range(1, len(placed)):
            placed[i] = max(placed[i], placed[i - 1] + gap)
    out = [0.0] * len(ys)
    for rank, i in enumerate(order):
        out[i] = placed[rank]
    return out


def line_chart(
    series: Sequence[LineSeries],
    x_labels: Sequence[str],
    rules: Sequence[Rule],
    title: str,
    uid: str,
    fmt: Callable[[float], str],
    empty: str,
    floor_zero: bool = False,
    ceiling: float | None = None,
    width: int = 480,
    height: int = 250,
) -> str:
    """Lines over months, each series with its own dash and marker and its name at its end; the axis
    starts at 0 with `floor_zero` and stops at `ceiling` (100% for shares) when the data allow."""
    left, right, top, bottom = 50, 112, 12, 30
    pw, ph = width - left - right, height - top - bottom
    values = [v for s in series for v in s.points if v is not None]
    if not values or not x_labels:
        body = [
            f'<rect x="1" y="1" width="{width - 2}" height="{height - 2}" fill="none" stroke="#999" '
            'stroke-dasharray="4 3"/>',
            _text(width / 2, height / 2, empty, "middle", 14),
        ]
        return _svg(uid, width, height, title, body)
    lo, hi = min(values + [r.value for r in rules]), max(values + [r.value for r in rules])
    pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 1.0
    top_value = hi + pad if ceiling is None or hi > ceiling else min(hi + pad, ceiling)
    y0, y1, step = nice_range(0.0 if floor_zero else lo - pad, top_value)
    n = len(x_labels)

    def x(i: int) -> float:
        return left + (pw * i / (n - 1) if n > 1 else pw / 2)

    def y(v: float) -> float:
        return top + ph * (1 - (v - y0) / (y1 - y0))

    body = []
    tick = y0
    while tick <= y1 + step / 1000:
        body.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>'
        )
        body.append(_text(left - 5, y(tick) + 4, fmt(tick), "end", 11))
        tick += step
    # every other month when the labels would touch (counting from the last, the latest month)
    every = 2 if n > 1 and pw / (n - 1) < max(_text_width(label, 11) for label in x_labels) + 4 else 1
    for i, label in enumerate(x_labels):
        if (n - 1 - i) % every == 0:
            body.append(_text(x(i), height - bottom + 16, label, "middle", 11))
    body.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" stroke="#555"/>')
    body.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="#555"/>')
    placed_labels: list[float] = []
    for rule in sorted(rules, key=lambda r: -r.value):
        ry = y(rule.value)
        body.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{ry:.1f}" y2="{ry:.1f}" stroke="#000" '
            'stroke-width="1.2" stroke-dasharray="5 3"/>'
        )
        # above its line, else below it: whichever stays in the plot and clear of the labels so far
        options = [ly for ly in (ry - 4, ry + 13) if top + 10 <= ly <= top + ph]
        label_y = next((ly for ly in options if all(abs(ly - p) >= 12 for p in placed_labels)), ry + 13)
        placed_labels.append(label_y)
        body.append(_text(left + 4, label_y, rule.label, size=11, cls="c-rule"))
    ends: list[tuple[float, str, str]] = []
    for k, s in enumerate(series):
        colour, dash, shape = _STYLES[k % len(_STYLES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        pts = [(x(i), y(v)) for i, v in enumerate(s.points) if v is not None]
        if len(pts) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
            width_ = 2.6 if k == 0 else 1.8
            body.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" '
                f'stroke-width="{width_}"{dash_attr}/>'
            )
        body.extend(_marker(shape, px, py, colour) for px, py in pts)
        if pts:
            last = next(v for v in reversed(s.points) if v is not None)
            ends.append((pts[-1][1], f"{s.label} {fmt(last)}", colour))
    placed = _spread([e[0] + 4 for e in ends], 13, top + 8, top + ph + 4)
    for (_, label, colour), ly in zip(ends, placed, strict=True):
        body.append(
            f'<text x="{left + pw + 8}" y="{ly:.1f}" font-size="11" fill="{colour}">{_e(label)}</text>'
        )
    return _svg(uid, width, height, title, body)
