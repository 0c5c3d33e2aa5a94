"""Bar charts as inline SVG, drawn on the server: no script, no library, nothing fetched, so
the chart is there for every browser, in print, and under the dashboard's CSP.

The chart is for looking at; the figures it draws are in a table beside it (the page's),
so a screen reader reads the table and the SVG carries a title and a description only.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 276
LEFT, RIGHT, TOP, BOTTOM = 70, 10, 16, 72


def _label_every(count: int, room: float) -> int:
    """Every how many bars a period's name fits under the axis (about 44 px a name)."""
    fits = max(1, int(room // 44))
    return max(1, -(-count // fits))


def bar_chart(chart_id: str, title: str, description: str, axes: tuple[str, str],
              bars: Sequence[tuple[str, Decimal, str]]) -> Markup:
    """An SVG bar chart of `bars` (period name, value, the value as a person reads it),
    `axes` the (x, y) axes' labels.

    Negative values (a period with more refunds than sales) are drawn as zero-height bars:
    the table beside the chart gives the figure.
    """
    x_label, y_label = axes
    room_x, room_y = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    highest = max((value for _, value, _ in bars), default=Decimal(0))
    scale = highest if highest > 0 else Decimal(1)
    step = room_x / max(1, len(bars))
    every = _label_every(len(bars), room_x)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(description)}</desc>',
        # The axes, and the top of the scale with its value.
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + room_y}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP + room_y}" x2="{WIDTH - RIGHT}" '
        f'y2="{TOP + room_y}"/>',
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">'
        f'{escape(_top_text(bars, highest))}</text>',
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + room_y}" text-anchor="end">0</text>',
        f'<text class="axis-label" x="14" y="{TOP + room_y / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {TOP + room_y / 2:.1f})">{escape(y_label)}</text>',
        f'<text class="axis-label" x="{LEFT + room_x / 2:.1f}" y="{HEIGHT - 4}" '
        f'text-anchor="middle">{escape(x_label)}</text>',
    ]
    for index, (name, value, shown) in enumerate(bars):
        height = float(max(value, Decimal(0)) / scale) * room_y
        x = LEFT + index * step + step * 0.15
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{TOP + room_y - height:.1f}" '
            f'width="{step * 0.7:.1f}" height="{height:.1f}" data-value="{value}">'
            f'<title>{escape(name)}: {escape(shown)}</title></rect>')
        if index % every == 0:
            center = LEFT + index * step + step / 2
            parts.append(
                f'<text class="tick" x="{center:.1f}" y="{TOP + room_y + 14}" '
                f'text-anchor="end" transform="rotate(-35 {center:.1f} {TOP + room_y + 14})">'
                f'{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _top_text(bars: Sequence[tuple[str, Decimal, str]], highest: Decimal) -> str:
    for _, value, shown in bars:
        if value == highest:
            return shown
    return ""
