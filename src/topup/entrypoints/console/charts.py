"""Inline SVG charts drawn on the server: no front-end libraries, no scripts, no inline styles (CSP)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from markupsafe import Markup

from topup.entrypoints.console.stats import Bucket


def _hhmm(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M")


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.0f}%"


def volume_and_success(
    series: Sequence[Bucket], *, label: str, unit: str = "orders", width: int = 720, height: int = 170
) -> Markup:
    """Stacked bars per step (succeeded / failed / other) and a success-rate line on a 0-100 % scale."""
    left, right, top, bottom = 36, 40, 10, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(1, len(series))
    step_w = plot_w / n
    bar_w = max(1.0, step_w - 1.0)
    peak = max((b.total for b in series), default=0) or 1
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(label)}</title>",
        f'<rect class="plot" x="{left}" y="{top}" width="{plot_w}" height="{plot_h}"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - frac)
        parts.append(f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{left + plot_w + 4}" y="{y + 4:.1f}">{int(frac * 100)}%</text>')
    parts.append(f'<text class="axis" x="{left - 4}" y="{top + 9}" text-anchor="end">{peak}</text>')
    parts.append(f'<text class="axis" x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>')
    points = []
    for i, b in enumerate(series):
        x = left + i * step_w
        tip = f"{_hhmm(b.start)} UTC: {b.total} {unit}, {b.ok} ok, {b.failed} failed, {_pct(b.success_rate)}"
        parts.append(f"<g><title>{escape(tip)}</title>")
        y = top + plot_h
        for cls, count in (("ok", b.ok), ("bad", b.failed), ("other", b.total - b.ok - b.failed)):
            if count <= 0:
                continue
            h = plot_h * count / peak
            y -= h
            parts.append(
                f'<rect class="bar {cls}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}"/>'
            )
        parts.append(f'<rect class="hit" x="{x:.1f}" y="{top}" width="{step_w:.1f}" height="{plot_h}"/></g>')
        if b.success_rate is not None:
            points.append(f"{x + step_w / 2:.1f},{top + plot_h * (1 - b.success_rate):.1f}")
        if round(b.start / 60) % 10 == 0:  # a label every ten minutes, on the tens
            parts.append(f'<text class="axis" x="{x:.1f}" y="{height - 6}">{_hhmm(b.start)}</text>')
    if len(points) > 1:
        parts.append(f'<polyline class="rate" points="{" ".join(points)}"/>')
    for p in points if len(points) == 1 else []:
        cx, cy = p.split(",")
        parts.append(f'<circle class="rate-dot" cx="{cx}" cy="{cy}" r="2.5"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
