"""The balance chart of a channel page: its supplier balance over its recent checks, and the
`min_balance` line below which it pauses. Inline SVG, classes only (the console's CSP)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from markupsafe import Markup

from topup.domain.suppliers import fen_to_yuan


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%m-%d %H:%M:%S")


def balance_line(
    checks: Sequence[dict[str, Any]],
    min_balance: int | None,
    *,
    label: str,
    width: int = 720,
    height: int = 170,
) -> Markup:
    """`checks`: successful checks oldest first, each {"amount", "currency", "checked_at"}; amounts in
    minor units, drawn as a step line (a balance holds until the next check)."""
    left, right, top, bottom = 70, 16, 10, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    parts = [
        f'<svg class="chart balance" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(label)}</title>",
        f'<rect class="plot" x="{left}" y="{top}" width="{plot_w}" height="{plot_h}"/>',
    ]
    if not checks:
        middle = top + plot_h / 2
        parts.append(f'<text class="axis" x="{left + 8}" y="{middle:.0f}">no balance checks yet</text>')
        parts.append("</svg>")
        return Markup("".join(parts))
    amounts = [int(c["amount"]) for c in checks]
    peak = max([*amounts, min_balance or 0]) or 1
    t0, t1 = float(checks[0]["checked_at"]), float(checks[-1]["checked_at"])
    span = (t1 - t0) or 1.0

    def x(ts: float) -> float:
        return left + plot_w * (ts - t0) / span if len(checks) > 1 else left + plot_w / 2

    def y(amount: int) -> float:
        return top + plot_h * (1 - amount / peak)

    currency = str(checks[-1].get("currency") or "")
    for frac in (0.0, 0.5, 1.0):
        yy = top + plot_h * (1 - frac)
        parts.append(f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{yy:.1f}" y2="{yy:.1f}"/>')
        text = f"{fen_to_yuan(int(peak * frac))} {currency}".strip()
        parts.append(
            f'<text class="axis" x="{left - 4}" y="{yy + 4:.1f}" text-anchor="end">{escape(text)}</text>'
        )
    if min_balance is not None:
        ym = y(min_balance)
        parts.append(
            f'<line class="threshold" x1="{left}" x2="{left + plot_w}" y1="{ym:.1f}" y2="{ym:.1f}"/>'
        )
        parts.append(
            f'<text class="axis" x="{left + plot_w - 4}" y="{ym - 3:.1f}" text-anchor="end">'
            f"min {escape(fen_to_yuan(min_balance))}</text>"
        )
    points: list[str] = []
    for i, c in enumerate(checks):
        xi, yi = x(float(c["checked_at"])), y(amounts[i])
        if points:
            points.append(f"{xi:.1f},{float(points[-1].split(',')[1]):.1f}")  # hold until this check
        points.append(f"{xi:.1f},{yi:.1f}")
        low = min_balance is not None and amounts[i] < min_balance
        tip = f"{_when(float(c['checked_at']))} UTC: {fen_to_yuan(amounts[i])} {c.get('currency') or ''}"
        parts.append(
            f'<circle class="point{" low" if low else ""}" cx="{xi:.1f}" cy="{yi:.1f}" r="3">'
            f"<title>{escape(tip.strip())}</title></circle>"
        )
    if len(points) > 1:
        parts.insert(-len(checks), f'<polyline class="balance-line" points="{" ".join(points)}"/>')
    parts.append(f'<text class="axis" x="{left}" y="{height - 6}">{escape(_when(t0))}</text>')
    if len(checks) > 1:
        end, right_x = escape(_when(t1)), left + plot_w
        parts.append(f'<text class="axis" x="{right_x}" y="{height - 6}" text-anchor="end">{end}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
