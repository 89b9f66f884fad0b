"""The outbox: one event per final order state, written in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text

from topup.adapters.db import tables as t
from topup.adapters.db.engine import Tx
from topup.adapters.db.helpers import new_id
from topup.services import jobs
from topup.services.orders import render_order


async def emit_final(tx: Tx, order_id: str) -> str:
    """Write `order.<status>` for the order as it is now, and queue its webhook delivery."""
    order = (await tx.conn.execute(select(t.orders).where(t.orders.c.id == order_id))).one()
    payload = await render_order(tx, order)
    event_id = new_id("evt", tx.now)
    etype = f"order.{order.status}"
    await tx.conn.execute(
        t.events.insert().values(
            id=event_id,
            merchant_id=order.merchant_id,
            order_id=order.id,
            type=etype,
            payload={"event_id": event_id, "type": etype, "order": payload},
            created_at=tx.now,
        )
    )
    url = order.notify_url
    if not url:
        url = (
            await tx.conn.execute(
                select(t.merchants.c.notify_url).where(t.merchants.c.id == order.merchant_id)
            )
        ).scalar()
    if url:
        await tx.conn.execute(
            t.deliveries.insert().values(
                event_id=event_id,
                merchant_id=order.merchant_id,
                order_id=order.id,
                url=url,
                status="pending",
                tries=0,
                next_at=tx.now,
                created_at=tx.now,
            )
        )
        await jobs.enqueue(tx, "notify", f"notify:{event_id}", {"event_id": event_id})
    if tx.is_postgres:
        await tx.conn.execute(text("SELECT pg_notify('topup_events', :m)"), {"m": order.merchant_id})
    tx.events_emitted = True
    return event_id


def event_message(row: Any) -> dict[str, Any]:
    """The stream / webhook body of a stored event."""
    return dict(row.payload)
