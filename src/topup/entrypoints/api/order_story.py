"""One order as operators read it (`GET /admin/v1/orders/{id}` and the console's order page): the order
with its timeline, supplier callbacks, webhook deliveries, ledger transfers and exceptions."""

from __future__ import annotations

from typing import Any

from topup.adapters.db.engine import Tx
from topup.adapters.db.queries import operator_views as q
from topup.clock import rfc3339
from topup.services import orders
from topup.services.ports.operators import ExceptionRow


async def order_story(tx: Tx, order_id: str) -> dict[str, Any]:
    """The order with everything that happened to it, for operators."""
    row = await orders.get_order(tx, order_id)
    out: dict[str, Any] = dict(await orders.render_order(tx, row))
    out["merchant_id"] = row.merchant_id
    out["group"] = row.group_code
    out["route_plan"] = row.route_plan
    out["is_probe"] = row.is_probe
    out["funding"] = row.funding
    out["payment_id"] = row.payment_id
    out["notify_url"] = row.notify_url
    evs = await q.order_events(tx, order_id)
    out["timeline"] = [
        {"at": rfc3339(e.at), "attempt": e.attempt_no, "kind": e.kind, "detail": e.detail} for e in evs
    ]
    cbs = await q.order_callbacks(tx, order_id)
    out["callbacks"] = [
        {
            "channel": cb.channel_code,
            "ref": cb.ref,
            "status": cb.status,
            "code": cb.code,
            "message": cb.message,
            "outcome": cb.outcome,
            "received_at": rfc3339(cb.received_at),
        }
        for cb in cbs
    ]
    notes = []
    for d in await q.order_deliveries(tx, order_id):
        notes.append(
            {
                "event_id": d.event_id,
                "url": d.url,
                "status": d.status,
                "tries": d.tries,
                "next_at": rfc3339(d.next_at) if d.status == "pending" else None,
                "delivered_at": rfc3339(d.delivered_at),
                "attempts": [
                    {
                        "at": rfc3339(a.at),
                        "status_code": a.status_code,
                        "latency_ms": a.latency_ms,
                        "error": a.error,
                    }
                    for a in d.attempts
                ],
            }
        )
    out["notifications"] = notes
    postings = []
    for tr in await q.order_transfers(tx, order_id):
        postings.append(
            {
                "transfer_id": tr.id,
                "kind": tr.kind,
                "amount": int(tr.amount),
                "at": rfc3339(tr.created_at),
                "postings": [{"account": p.account_id, "amount": p.amount} for p in tr.postings],
            }
        )
    out["ledger"] = postings
    out["exceptions"] = [render_exception(e) for e in await q.order_exceptions(tx, order_id)]
    return out


def render_exception(e: ExceptionRow) -> dict[str, Any]:
    return {
        "id": e.id,
        "kind": e.kind,
        "order_id": e.order_id,
        "ref": e.ref,
        "channel": e.channel_code,
        "detail": e.detail,
        "created_at": rfc3339(e.created_at),
        "resolved_at": rfc3339(e.resolved_at),
        "resolved_by": e.resolved_by,
        "resolution_note": e.resolution_note,
    }
