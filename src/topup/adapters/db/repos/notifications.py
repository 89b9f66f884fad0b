"""Every statement the notifications services run (implements `services.ports.notifications`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import select, text, update

from topup.adapters.db import tables as t
from topup.adapters.db.repos.orders import _order as order_of
from topup.domain.orders import Order
from topup.services.ports.notifications import (
    Delivery,
    DeliveryAttempt,
    DeliveryClaim,
    NewDelivery,
    NewEvent,
    StoredEvent,
)

if TYPE_CHECKING:
    from topup.adapters.db.engine import Tx

PENDING, DELIVERED, GAVE_UP = "pending", "delivered", "gave_up"

_CLAIM = (
    "SELECT d.url, d.status, d.merchant_id, d.created_at, e.payload, m.secret, o.notify_url"
    " FROM deliveries d JOIN events e ON e.id = d.event_id JOIN merchants m ON m.id = d.merchant_id"
    " LEFT OUTER JOIN orders o ON o.id = d.order_id WHERE d.event_id = $1"
)
_INSERT_EVENT = (
    "INSERT INTO events (id, merchant_id, order_id, type, payload, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6)"
)
_INSERT_DELIVERY = (
    "INSERT INTO deliveries (event_id, merchant_id, order_id, url, status, tries, next_at, created_at)"
    " VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5)"
)


def delivery_of(r: Any) -> Delivery:
    return Delivery(
        r.event_id,
        r.merchant_id,
        r.order_id,
        r.url,
        r.status,
        r.tries,
        r.next_at,
        r.delivered_at,
        r.created_at,
    )


class SqlNotifications:
    __slots__ = ("tx",)

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    # ---- the outbox ----------------------------------------------------------------------------

    async def order_rows(self, order_ids: Sequence[str]) -> list[Order]:
        found = (await self.tx.conn.execute(select(t.orders).where(t.orders.c.id.in_(order_ids)))).all()
        return [order_of(r._mapping) for r in found]

    async def add_events(self, events: list[NewEvent], deliveries: list[NewDelivery]) -> None:
        await self.tx.executemany(_INSERT_EVENT, [tuple(e) for e in events])
        if deliveries:
            await self.tx.executemany(_INSERT_DELIVERY, [tuple(d) for d in deliveries])

    def announce(self, merchant_ids: Iterable[str]) -> None:
        for mid in merchant_ids:
            self.tx.notify("topup_events", mid)
        self.tx.events_emitted = True

    # ---- delivering ----------------------------------------------------------------------------

    async def claim(self, event_id: str) -> DeliveryClaim | None:
        row = await self.tx.fetchrow(_CLAIM, event_id)
        if row is None:
            return None
        return DeliveryClaim(
            row.url, row.status, row.merchant_id, row.created_at, row.payload, row.secret, row.notify_url
        )

    async def add_attempt(
        self, event_id: str, status_code: int | None, latency_ms: float | None, error: str | None
    ) -> None:
        await self.tx.exec(
            "INSERT INTO delivery_attempts (event_id, at, status_code, latency_ms, error)"
            " VALUES ($1, $2, $3, $4, $5)",
            event_id,
            self.tx.now,
            status_code,
            latency_ms,
            error,
        )

    async def delivered(self, event_id: str) -> bool:
        changed = await self.tx.exec(
            "UPDATE deliveries SET status = $1, tries = tries + 1, delivered_at = $2, next_at = NULL"
            " WHERE event_id = $3 AND status = $4",
            DELIVERED,
            self.tx.now,
            event_id,
            PENDING,
        )
        return changed == 1

    async def failures_since(self, event_id: str, since: float) -> int:
        return int(
            (
                await self.tx.conn.execute(
                    text(
                        "SELECT count(*) FROM delivery_attempts WHERE event_id = :e AND at >= :since"
                        " AND (status_code IS NULL OR status_code < 200 OR status_code >= 300)"
                    ),
                    {"e": event_id, "since": since},
                )
            ).scalar_one()
        )

    async def give_up(self, event_id: str) -> bool:
        res = await self.tx.conn.execute(
            update(t.deliveries)
            .where(_pending(event_id))
            .values(status=GAVE_UP, tries=t.deliveries.c.tries + 1, next_at=None)
        )
        return bool(res.rowcount == 1)

    async def retry_at(self, event_id: str, next_at: float) -> bool:
        res = await self.tx.conn.execute(
            update(t.deliveries)
            .where(_pending(event_id))
            .values(tries=t.deliveries.c.tries + 1, next_at=next_at)
        )
        return bool(res.rowcount == 1)

    async def reopen(self, event_id: str) -> bool:
        tx = self.tx
        row = (
            await tx.conn.execute(
                select(t.deliveries).where(t.deliveries.c.event_id == event_id).with_for_update()
            )
        ).first()
        if row is None:
            return False
        await tx.conn.execute(
            update(t.deliveries)
            .where(t.deliveries.c.event_id == event_id)
            .values(status=PENDING, next_at=tx.now)
        )
        return True

    # ---- reads ---------------------------------------------------------------------------------

    async def delivery(self, event_id: str) -> Delivery | None:
        row = (
            await self.tx.conn.execute(select(t.deliveries).where(t.deliveries.c.event_id == event_id))
        ).first()
        return None if row is None else delivery_of(row)

    async def deliveries(
        self, status: str | None, merchant_id: str | None, cursor: str | None, limit: int
    ) -> list[Delivery]:
        q = select(t.deliveries).order_by(t.deliveries.c.event_id).limit(limit)
        if status:
            q = q.where(t.deliveries.c.status == status)
        if merchant_id:
            q = q.where(t.deliveries.c.merchant_id == merchant_id)
        if cursor:
            q = q.where(t.deliveries.c.event_id > cursor)
        return [delivery_of(r) for r in (await self.tx.conn.execute(q)).all()]

    async def last_attempts(self, event_ids: list[str]) -> dict[str, DeliveryAttempt]:
        if not event_ids:
            return {}
        conn = self.tx.conn
        latest = (
            select(t.delivery_attempts.c.event_id, t.delivery_attempts.c.id)
            .where(t.delivery_attempts.c.event_id.in_(event_ids))
            .order_by(t.delivery_attempts.c.id)
        )
        ids = {r.event_id: r.id for r in (await conn.execute(latest)).all()}
        if not ids:
            return {}
        rows = (
            await conn.execute(select(t.delivery_attempts).where(t.delivery_attempts.c.id.in_(ids.values())))
        ).all()
        return {
            r.event_id: DeliveryAttempt(r.event_id, r.at, r.status_code, r.latency_ms, r.error) for r in rows
        }

    async def event_seq(self, merchant_id: str, event_id: str) -> int | None:
        seq = (
            await self.tx.conn.execute(
                select(t.events.c.seq).where(t.events.c.id == event_id, t.events.c.merchant_id == merchant_id)
            )
        ).scalar()
        return None if seq is None else int(seq)

    async def events_after(self, merchant_id: str, seq: int, limit: int) -> list[StoredEvent]:
        rows = (
            await self.tx.conn.execute(
                select(t.events.c.id, t.events.c.payload, t.events.c.created_at)
                .where(t.events.c.merchant_id == merchant_id, t.events.c.seq > seq)
                .order_by(t.events.c.seq)
                .limit(limit)
            )
        ).all()
        return [StoredEvent(r.id, _json(r.payload), r.created_at) for r in rows]


def _pending(event_id: str) -> Any:
    return (t.deliveries.c.event_id == event_id) & (t.deliveries.c.status == PENDING)


def _json(payload: Any) -> Any:
    return orjson.loads(payload) if isinstance(payload, str) else payload
