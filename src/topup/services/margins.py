"""Margin reports (SPEC section 8): revenue of the orders that succeeded in a period, against the costs
posted to suppliers in it, by channel, product or merchant."""

from __future__ import annotations

from topup.adapters.db.engine import Tx
from topup.domain import ledger as L
from topup.domain.costs import MarginBy, MarginLine, margin_report

# The key of a line: the channel of the attempt that succeeded (revenue) or that cost (costs).
_KEY = {
    MarginBy.CHANNEL: "COALESCE(a.channel_code, '')",
    MarginBy.PRODUCT: "o.product_code",
    MarginBy.MERCHANT: "o.merchant_id",
}


async def margins(tx: Tx, start: float, end: float, by: MarginBy) -> tuple[list[MarginLine], MarginLine]:
    """`orders` and `revenue`: succeeded orders with `completed_at` in [start, end), each credited to
    the channel whose attempt succeeded; `cost`: cost postings made in [start, end) (an order's own cost
    is posted when it completes; a duplicate fulfilment or a late success adds cost only, when it
    happens)."""
    key = _KEY[by]
    revenue = await tx.fetch(
        f"SELECT {key} AS key, COUNT(*) AS orders, SUM(o.price) AS revenue,"
        " SUM(CASE WHEN c.id IS NULL THEN 1 ELSE 0 END) AS uncosted"
        " FROM orders o LEFT JOIN attempts a ON a.ref = o.succeeded_ref"
        " LEFT JOIN transfers c ON c.kind = $3 AND c.reference = o.succeeded_ref"
        " WHERE o.status = $4 AND o.completed_at >= $1 AND o.completed_at < $2"
        f" GROUP BY {key}",
        start,
        end,
        str(L.TransferKind.COST),
        "succeeded",
    )
    costs = await tx.fetch(
        f"SELECT {key} AS key, SUM(c.amount) AS cost, COUNT(*) AS fulfilments"
        " FROM transfers c JOIN attempts a ON a.ref = c.reference JOIN orders o ON o.id = a.order_id"
        " WHERE c.kind = $3 AND c.created_at >= $1 AND c.created_at < $2"
        f" GROUP BY {key}",
        start,
        end,
        str(L.TransferKind.COST),
    )
    return margin_report(
        {str(r.key): (int(r.orders), int(r.revenue or 0), int(r.uncosted or 0)) for r in revenue},
        {str(r.key): (int(r.cost or 0), int(r.fulfilments)) for r in costs},
    )
