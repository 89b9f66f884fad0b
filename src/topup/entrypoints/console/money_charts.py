"""The margin chart: one horizontal bar per line, its margin from a zero line (green to the right, red to
the left when the cost exceeded the revenue). Inline SVG, no scripts or inline styles, like charts.py.

Margins are a small share of the revenue (a few per mille for airtime), so the bars show the margin
itself; the revenue and cost are in each bar's tooltip and in the table under the chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

from topup.domain.costs import MarginLine
from topup.entrypoints.webcommon import money

MAX_BARS = 25


def _share(line: MarginLine) -> str:
    return f"{100 * line.margin / line.revenue:.1f}%" if line.revenue else "-"


def margin_bars(lines: Sequence[MarginLine], *, label: str, width: int = 1000) -> Markup:
    """The largest `MAX_BARS` lines by revenue (then cost), in that order."""
    shown = sorted(lines, key=lambda x: (-x.revenue, -x.cost, x.key))[:MAX_BARS]
    left, right, row_h, top = 170, 130, 24, 8
    height = top * 2 + row_h * max(1, len(shown))
    plot_w = width - left - right
    gain = max((x.margin for x in shown if x.margin > 0), default=0)
    loss = max((-x.margin for x in shown if x.margin < 0), default=0)
    span = (gain + loss) or 1
    zero = left + plot_w * loss / span
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(label)}</title>",
        f'<rect class="plot" x="{left}" y="0" width="{plot_w}" height="{height}"/>',
        f'<line class="grid" x1="{zero:.1f}" x2="{zero:.1f}" y1="0" y2="{height}"/>',
    ]
    if not shown:
        parts.append(f'<text class="axis" x="{left + 8}" y="{top + 14}">Nothing in this period.</text>')
    for i, line in enumerate(shown):
        y = top + i * row_h
        tip = (
            f"{line.key}: {line.orders} orders, revenue {money(line.revenue)}, cost {money(line.cost)}, "
            f"margin {money(line.margin)} ({_share(line)})"
        )
        parts.append(f"<g><title>{escape(tip)}</title>")
        key = line.key if len(line.key) <= 24 else line.key[:23] + "…"
        parts.append(f'<text class="axis" x="{left - 8}" y="{y + 15}" text-anchor="end">{escape(key)}</text>')
        w = plot_w * abs(line.margin) / span
        x = zero if line.margin >= 0 else zero - w
        cls = "ok" if line.margin >= 0 else "bad"
        if w > 0:
            parts.append(
                f'<rect class="bar {cls}" x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}"/>'
            )
        text = escape(f"{money(line.margin)} ({_share(line)})")
        parts.append(f'<text class="axis" x="{max(zero, x + w) + 6:.1f}" y="{y + 15}">{text}</text>')
        parts.append(f'<rect class="hit" x="0" y="{y}" width="{width}" height="{row_h}"/></g>')
    parts.append("</svg>")
    return Markup("".join(parts))
