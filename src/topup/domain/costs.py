"""What a successful attempt cost, and margins: pure rules in integer fen (SPEC section 8)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class CostSource(StrEnum):
    """Where an attempt's cost came from, in the order they are tried."""

    MEMBER = "member"
    """The group member's `costs` for the product."""
    CHANNEL = "channel"
    """The channel's `products[code].price`."""
    SUPPLIER = "supplier"
    """What the supplier said it charged (its dispatch reply)."""


@dataclass(frozen=True)
class Cost:
    amount: int
    source: CostSource


def _fen(value: Any) -> int | None:
    """A usable amount of fen (a non-negative integer), else None."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def attempt_cost(
    product_code: str,
    member_costs: Mapping[str, Any] | None,
    channel_products: Mapping[str, Mapping[str, Any]] | None,
    reported: int | None,
) -> Cost | None:
    """The member's cost for the product, else the channel's `products[code].price`, else the supplier's
    reported charge; None when nobody says (the attempt posts no cost)."""
    amount = _fen((member_costs or {}).get(product_code))
    if amount is not None:
        return Cost(amount, CostSource.MEMBER)
    entry = (channel_products or {}).get(product_code)
    amount = _fen(entry.get("price")) if isinstance(entry, Mapping) else None
    if amount is not None:
        return Cost(amount, CostSource.CHANNEL)
    amount = _fen(reported)
    if amount is not None:
        return Cost(amount, CostSource.SUPPLIER)
    return None


class MarginBy(StrEnum):
    """How a margin report groups its lines."""

    CHANNEL = "channel"
    PRODUCT = "product"
    MERCHANT = "merchant"


@dataclass
class MarginLine:
    """One line of a margin report: succeeded orders and their revenue, and the costs posted."""

    key: str
    orders: int = 0
    revenue: int = 0
    cost: int = 0
    fulfilments: int = 0
    """Cost postings (successful attempts): more than `orders` when an order was fulfilled twice or a
    failed order was topped up late."""
    uncosted: int = 0
    """Counted orders whose successful attempt posted no cost (nobody said what it cost)."""

    @property
    def margin(self) -> int:
        return self.revenue - self.cost

    def add(self, other: MarginLine) -> None:
        self.orders += other.orders
        self.revenue += other.revenue
        self.cost += other.cost
        self.fulfilments += other.fulfilments
        self.uncosted += other.uncosted

    def public(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "orders": self.orders,
            "revenue": self.revenue,
            "cost": self.cost,
            "margin": self.margin,
            "fulfilments": self.fulfilments,
            "uncosted": self.uncosted,
        }


def margin_report(
    revenue: Mapping[str, tuple[int, int, int]], costs: Mapping[str, tuple[int, int]]
) -> tuple[list[MarginLine], MarginLine]:
    """Lines by key from `revenue` (key -> orders, revenue, uncosted) and `costs` (key -> cost,
    fulfilments), sorted by key, and their totals."""
    lines: dict[str, MarginLine] = {}
    for key, (orders, amount, uncosted) in revenue.items():
        line = lines.setdefault(key, MarginLine(key))
        line.orders, line.revenue, line.uncosted = orders, amount, uncosted
    for key, (cost, fulfilments) in costs.items():
        line = lines.setdefault(key, MarginLine(key))
        line.cost, line.fulfilments = cost, fulfilments
    items = [lines[k] for k in sorted(lines)]
    totals = MarginLine("")
    for line in items:
        totals.add(line)
    return items, totals
