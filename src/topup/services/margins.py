"""Margin reports (SPEC section 8): revenue of the orders that succeeded in a period, against the costs
posted to suppliers in it, by channel, product or merchant."""

from __future__ import annotations

from topup.domain.costs import MarginBy, MarginLine, margin_report
from topup.services.uow import UnitOfWork


async def margins(
    uow: UnitOfWork, start: float, end: float, by: MarginBy
) -> tuple[list[MarginLine], MarginLine]:
    """`orders` and `revenue`: succeeded orders with `completed_at` in [start, end), each credited to
    the channel whose attempt succeeded; `cost`: cost postings made in [start, end) (an order's own cost
    is posted when it completes; a duplicate fulfilment or a late success adds cost only, when it
    happens)."""
    revenue, costs = await uow.ledger.margin_lines(start, end, by)
    return margin_report(
        {r.key: (r.orders, r.revenue, r.uncosted) for r in revenue},
        {r.key: (r.cost, r.fulfilments) for r in costs},
    )
